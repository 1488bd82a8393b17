"""Survival models on simulated proportional-hazards data with known coefficients."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvlab.errors import ClvlabInputError
from clvlab.models.survival import (
    CoxChurnModel,
    KaplanMeierBySegment,
    _cumulative_hazard,
    train_test_split_customers,
)

BETA = {"x1": 0.7, "x2": -0.5, "segment[b]": 0.4}
SHAPE, SCALE = 1.5, 20.0  # Weibull baseline: H0(t) = (t / SCALE) ** SHAPE


def simulate_ph(
    n: int = 2000, seed: int = 0, *, beta=BETA, strata_scale: dict | None = None, nonph_x1: bool = False
) -> pd.DataFrame:
    """Cox data: T = SCALE_s * (E / exp(x'beta)) ** (1 / SHAPE), E ~ Exp(1); uniform censoring.

    ``strata_scale`` gives each segment its own Weibull scale (a different baseline: strata).
    ``nonph_x1`` makes x1's effect switch sign at t = SCALE (proportional hazards broken).
    """
    rng = np.random.default_rng(seed)
    seg = rng.choice(["a", "b"], size=n)
    x1 = rng.normal(size=n)
    x2 = rng.binomial(1, 0.4, size=n).astype(float)
    lp = beta["x1"] * x1 + beta["x2"] * x2 + beta["segment[b]"] * (seg == "b")
    scale = np.array([strata_scale[s] for s in seg]) if strata_scale else SCALE
    e = rng.exponential(size=n)
    if nonph_x1:
        # hazard exp(+b x1) before t0 and exp(-b x1) after: invert the piecewise cumulative hazard.
        lp_no1 = lp - beta["x1"] * x1
        r1, r2 = np.exp(lp_no1 + 1.5 * x1), np.exp(lp_no1 - 1.5 * x1)
        H_t0 = r1  # (t0 / SCALE) ** SHAPE = 1 at t0 = SCALE
        u = np.where(e < H_t0, e / r1, 1.0 + (e - H_t0) / r2)
        t = SCALE * u ** (1 / SHAPE)
    else:
        t = scale * (e / np.exp(lp)) ** (1 / SHAPE)
    c = rng.uniform(5, 60, size=n)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:05d}" for i in range(n)],
            "duration": np.minimum(t, c),
            "event": (t <= c).astype(int),
            "x1": x1,
            "x2": x2,
            "segment": seg,
        }
    )


@pytest.fixture(scope="module")
def ph_data() -> pd.DataFrame:
    return simulate_ph()


def test_hazard_ratio_intervals_cover_truth(ph_data):
    model = CoxChurnModel(covariates=["x1", "x2"], categorical=["segment"]).fit(ph_data)
    hr = model.hazard_ratios().set_index("covariate")
    assert list(hr.index) == ["x1", "x2", "segment[b]"]
    for name, b in BETA.items():
        lo, hi = hr.loc[name, ["hr_lower", "hr_upper"]]
        assert lo < np.exp(b) < hi, (name, lo, np.exp(b), hi)
        assert hi / lo < 1.6  # informative, not vacuous
    assert (hr["ci_level"] == 0.95).all()
    # A wrong-sign truth is outside the intervals: the check can fail.
    assert not (hr.loc["x1", "hr_lower"] < np.exp(-0.7) < hr.loc["x1", "hr_upper"])


def test_interval_coverage_over_replications():
    covered = 0
    for seed in range(20):
        hr = CoxChurnModel(covariates=["x1", "x2"]).fit(
            simulate_ph(500, seed=100 + seed, beta=BETA | {"segment[b]": 0.0})
        )
        t = hr.hazard_ratios().set_index("covariate").loc["x1"]
        covered += t["hr_lower"] < np.exp(0.7) < t["hr_upper"]
    assert covered >= 16  # nominal 19/20; P(<16 | 95%) ~ 0.3%


def test_strata_model_recovers_coefficients():
    df = simulate_ph(2000, seed=5, strata_scale={"a": 10.0, "b": 30.0})
    model = CoxChurnModel(covariates=["x1", "x2"], segment="segment").fit(df)
    hr = model.hazard_ratios().set_index("covariate")
    assert list(hr.index) == ["x1", "x2"]
    for name in ["x1", "x2"]:
        assert hr.loc[name, "hr_lower"] < np.exp(BETA[name]) < hr.loc[name, "hr_upper"]
    # Survival with strata: the model's own S(t|x) matches lifelines' inside the data range.
    # (at training durations: lifelines interpolates between them, the Breslow estimate is a step function)
    test = df.head(5)
    t = np.sort(df["duration"].to_numpy()[10:15])  # lifelines returns times sorted
    ours = model.survival_at(test, t)
    ref = model.fitter_.predict_survival_function(model._design(test, fitting=False), times=t)
    expected = [ref[i].iloc[j] for j, i in enumerate(test.index)]  # lifelines orders columns by stratum
    np.testing.assert_allclose(ours, expected, rtol=1e-10)
    assert not np.allclose(ours, model.survival_at(test.assign(segment="a"), t))  # strata matter


def test_held_out_concordance(ph_data):
    train, test = train_test_split_customers(ph_data, 0.3, seed=1)
    assert set(train["customer_id"]).isdisjoint(test["customer_id"])
    assert len(test) == 600 and len(train) + len(test) == len(ph_data)
    again = train_test_split_customers(ph_data, 0.3, seed=1)[1]
    assert test["customer_id"].tolist() == again["customer_id"].tolist()
    model = CoxChurnModel(covariates=["x1", "x2"], categorical=["segment"]).fit(train)
    c = model.concordance(test)
    assert c > 0.65  # |beta| ~ 0.5-0.7 gives about 0.68; random is 0.5
    noise = test.assign(
        x1=np.random.default_rng(0).permutation(test["x1"].to_numpy()),
        x2=np.random.default_rng(1).permutation(test["x2"].to_numpy()),
        segment=np.random.default_rng(2).permutation(test["segment"].to_numpy()),
    )
    assert abs(model.concordance(noise) - 0.5) < 0.05


def test_proportional_hazards_check_names_offender():
    ok = CoxChurnModel(covariates=["x1", "x2"]).fit(simulate_ph(1500, seed=3))
    table = ok.check_proportional_hazards(p_threshold=0.01)
    assert set(table["covariate"]) == {"x1", "x2"} and not table["violates"].any()
    bad = CoxChurnModel(covariates=["x1", "x2"]).fit(simulate_ph(1500, seed=3, nonph_x1=True))
    table = bad.check_proportional_hazards(p_threshold=0.01)
    assert table.loc[0, "covariate"] == "x1" and table.loc[0, "violates"]
    assert table.set_index("covariate").loc["x2", "p_value"] > 0.01


def test_lapse_probability(ph_data):
    model = CoxChurnModel(covariates=["x1", "x2"], categorical=["segment"]).fit(ph_data)
    rows = ph_data.head(6).assign(lapsed_now=[0, 0, 0, 1, 0, 0], age=[1.0, 5.0, 10.0, 10.0, 30.0, 80.0])
    p = model.predict_lapse_probability(rows, horizon=10.0)
    assert p.index.tolist() == rows["customer_id"].tolist() and p.name == "p_lapse"
    assert p.iloc[3] == 1.0  # lapsed at the cut-off
    s = lambda t: model.survival_at(rows, np.asarray(t, float))  # noqa: E731
    d = rows["age"].to_numpy()
    expect = 1 - s(d + 10) / s(d)
    np.testing.assert_allclose(p.to_numpy()[[0, 1, 2, 4, 5]], expect[[0, 1, 2, 4, 5]], rtol=1e-12)
    assert ((p.iloc[:5] > 0) & (p.iloc[:5] <= 1)).all()
    # Age 80 is past the last training time (60): flat baseline tail -> no more lapses; the
    # constant-hazard tail keeps a positive risk.
    assert p.iloc[5] == 0.0
    assert 0 < model.predict_lapse_probability(rows, 10.0, extrapolate=True).iloc[5] < 1
    # Unconditional: 1 - S(h|x), monotone in the horizon, and higher for higher-risk customers.
    p5 = model.predict_lapse_probability(rows, 5.0, conditional=False)
    p20 = model.predict_lapse_probability(rows, 20.0, conditional=False)
    assert (p20 > p5).all()
    hi_risk = rows.assign(x1=3.0, x2=0.0, segment="b")
    lo_risk = rows.assign(x1=-3.0, x2=1.0, segment="a")
    assert (
        model.predict_lapse_probability(hi_risk, 5.0, conditional=False).to_numpy()
        > model.predict_lapse_probability(lo_risk, 5.0, conditional=False).to_numpy()
    ).all()
    # Close to the true Weibull-PH probabilities 1 - exp(-H0(h) exp(x'beta)) at a horizon inside the data
    # (sampling error of beta-hat and the Breslow baseline: measured mean |diff| 0.024 with n = 2000).
    lp = sum(b * (ph_data["segment"] == "b" if k == "segment[b]" else ph_data[k]) for k, b in BETA.items())
    true = 1 - np.exp(-((10.0 / SCALE) ** SHAPE) * np.exp(lp))
    pred = model.predict_lapse_probability(ph_data, 10.0, conditional=False)
    assert np.corrcoef(true, pred)[0, 1] > 0.99
    assert np.abs(true.to_numpy() - pred.to_numpy()).mean() < 0.04


def test_cumulative_hazard_extrapolation():
    grid = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    H = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    t = np.array([0.5, 1.0, 2.5, 5.0, 7.0])
    np.testing.assert_allclose(_cumulative_hazard(grid, H, t, False), [0, 0.1, 0.2, 0.5, 0.5])
    # tail hazard = average over the last quarter of [1, 5] = (0.5 - 0.4) / (5 - 4) = 0.1 per unit
    np.testing.assert_allclose(_cumulative_hazard(grid, H, t, True), [0, 0.1, 0.2, 0.5, 0.7])


def test_kaplan_meier_by_segment():
    df = simulate_ph(2000, seed=7)
    km = KaplanMeierBySegment().fit(df, "segment")
    s = km.survival_
    assert set(s["segment"]) == {"a", "b"}
    assert ((s["lower"] <= s["survival"] + 1e-12) & (s["survival"] <= s["upper"] + 1e-12)).all()
    for _, g in s.groupby("segment"):
        assert (np.diff(g["survival"].to_numpy()) <= 1e-12).all()
    # Segment b has hazard ratio exp(0.4): the log-rank test should see it, and its median is earlier.
    assert km.logrank_.loc[0, "p_value"] < 1e-3 and km.logrank_.loc[0, "df"] == 1
    med = km.median_.set_index("segment")["median_duration"]
    assert med["b"] < med["a"]
    # Same baseline in both groups -> log-rank does not reject (beta of segment = 0).
    null = KaplanMeierBySegment().fit(simulate_ph(2000, seed=8, beta=BETA | {"segment[b]": 0.0}), "segment")
    assert null.logrank_.loc[0, "p_value"] > 0.01
    # Pooled curve, and the product-limit estimate by hand at one time.
    pooled = KaplanMeierBySegment().fit(df)
    assert pooled.logrank_ is None and set(pooled.survival_["segment"]) == {"all"}
    t = 10.0
    ev = np.sort(df.loc[df["event"] == 1, "duration"].unique())
    prod = np.prod(
        [1 - ((df["duration"] == u) & (df["event"] == 1)).sum() / (df["duration"] >= u).sum() for u in ev[ev <= t]]
    )
    curve = pooled.survival_
    assert curve.loc[curve["time"] <= t, "survival"].iloc[-1] == pytest.approx(prod, rel=1e-12)


def test_bad_input_errors(ph_data):
    with pytest.raises(ClvlabInputError) as err:
        CoxChurnModel(covariates=["x1", "nope"]).fit(ph_data.assign(duration=-1.0))
    text = str(err.value)
    assert "missing column(s) ['nope']" in text and "'duration'" in text
    with pytest.raises(ClvlabInputError, match="'x2': all values are NaN"):
        CoxChurnModel(covariates=["x1", "x2"]).fit(ph_data.assign(x2=np.nan))
    with pytest.raises(ClvlabInputError, match="no events"):
        CoxChurnModel(covariates=["x1"]).fit(ph_data.assign(event=0))
    with pytest.raises(ClvlabInputError, match="constant"):
        CoxChurnModel(covariates=["x1", "x2"]).fit(ph_data.assign(x2=1.0))
    with pytest.raises(ClvlabInputError, match="both"):
        CoxChurnModel(covariates=["x1"], categorical=["segment"], segment="segment").fit(ph_data)
    model = CoxChurnModel(covariates=["x1"], categorical=["segment"]).fit(ph_data)
    with pytest.raises(ClvlabInputError, match="not seen in fit"):
        model.predict_lapse_probability(ph_data.head(3).assign(segment="zzz"), 5.0, conditional=False)
    with pytest.raises(ClvlabInputError, match="horizon"):
        model.predict_lapse_probability(ph_data.head(3), 0.0, conditional=False)
    with pytest.raises(ClvlabInputError, match="age"):
        model.predict_lapse_probability(ph_data.head(3), 5.0)
    with pytest.raises(RuntimeError, match="not fitted"):
        CoxChurnModel().hazard_ratios()
    with pytest.raises(ClvlabInputError, match="segment"):
        KaplanMeierBySegment().fit(ph_data.drop(columns="segment"), "segment")


def test_survival_figures(tmp_path):
    from matplotlib.figure import Figure

    from clvlab.plots.survival import plot_hazard_ratios, plot_km_by_segment

    df = simulate_ph(600, seed=9)
    km = KaplanMeierBySegment().fit(df, "segment")
    fig = plot_km_by_segment(km)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert f"p={km.logrank_.loc[0, 'p_value']:.3g}" in ax.get_title()
    assert len(ax.collections) == 2  # one confidence band per segment
    hr = CoxChurnModel(covariates=["x1", "x2"]).fit(df).hazard_ratios()
    fig = plot_hazard_ratios(hr)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["x2", "x1"]
    fig.savefig(tmp_path / "hr.png")
    assert (tmp_path / "hr.png").stat().st_size > 1000
