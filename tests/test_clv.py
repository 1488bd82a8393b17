"""Posterior CLV: fixed-params oracle (lifetimes), chunked engine vs dense reference, CAC, sensitivity, lifecycle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from clvlab import clv, stats
from clvlab.clv import engine as clv_engine
from clvlab.clv import math as clv_math
from clvlab.data.cdnow import load_cdnow
from clvlab.errors import ClvlabInputError
from clvlab.features.rfm import calibration_holdout
from clvlab.models import bgnbd_math as bm

BG = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)  # FHL 2005 CDNOW MLE (weekly)
GG = dict(p=6.25, q=3.74, gamma=15.44)


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    return calibration_holdout(load_cdnow(sample=True), "1997-09-30", "1998-06-30", "W")


def _lifetimes_clv(rfm: pd.DataFrame, discount_rate: float, time: int = 12) -> np.ndarray:
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series(BG)
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time
    ggf = GammaGammaFitter()
    ggf.params_ = pd.Series({"p": GG["p"], "q": GG["q"], "v": GG["gamma"]})
    r = rfm.set_index("customer_id")
    out = ggf.customer_lifetime_value(bgf, r["frequency"], r["recency"], r["T"], r["monetary_value"],
                                      time=time, discount_rate=discount_rate, freq="W")  # fmt: skip
    return out.to_numpy()


@pytest.mark.parametrize("discount_rate", [0.01, 0.0])
def test_fixed_params_equal_lifetimes(rfm: pd.DataFrame, discount_rate: float) -> None:
    ref = _lifetimes_clv(rfm, discount_rate)
    # lifetimes converts months to weeks with 4.345; the engine's default is 365.25/12/7
    res = clv.customer_lifetime_value(BG, GG, rfm, discount_rate=discount_rate, period_length=4.345, threshold=50)
    np.testing.assert_allclose(res.customers["clv_mean"], ref, rtol=1e-6, atol=1e-9)
    dense = clv.clv_at_params(**BG, **GG, x=rfm["frequency"].to_numpy(), t_x=rfm["recency"].to_numpy(),
                              T=rfm["T"].to_numpy(), zbar=rfm["monetary_value"].to_numpy(),
                              period_length=4.345, discount_rate=discount_rate)  # fmt: skip
    np.testing.assert_allclose(dense, ref, rtol=1e-6, atol=1e-9)
    assert res.group_totals["all"].values[0, 0] == pytest.approx(ref.sum(), rel=1e-9)
    np.testing.assert_array_equal(res.customers["p_clv_gt_50"], (ref > 50).astype(float))


def test_margin_scales_and_period_length_default(rfm: pd.DataFrame) -> None:
    assert clv.clv_period_length("M", "W") == pytest.approx(365.25 / 12 / 7)
    a = clv.customer_lifetime_value(BG, GG, rfm)  # time_unit from rfm.attrs
    b = clv.customer_lifetime_value(BG, GG, rfm, margin=0.3, time_unit="W")
    assert a.settings.period_length == pytest.approx(365.25 / 12 / 7)
    np.testing.assert_allclose(b.customers["clv_mean"], 0.3 * a.customers["clv_mean"], rtol=1e-12)
    with pytest.raises(ClvlabInputError, match="pass time_unit="):
        clv.customer_lifetime_value(BG, GG, pd.DataFrame(rfm))  # attrs dropped


def test_factored_alive_equals_bgnbd_math() -> None:
    rng = np.random.default_rng(0)
    n, d = 300, 7
    x = rng.integers(1, 40, n).astype(float)
    T = rng.uniform(1, 80, n)
    tx = rng.uniform(0, 1, n) * T
    order = np.lexsort((T, x))
    x, T, tx = x[order], T[order], tx[order]
    r, alpha, a, b = (rng.uniform(lo, hi, d) for lo, hi in ((0.2, 2), (1, 10), (0.3, 2), (0.5, 4)))
    starts = clv_engine._runs(x, T)
    pat = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    got = clv_math.inv_d_factored(r, alpha, a, b, x[starts[:-1]][:, None], T[starts[:-1]][:, None], pat, tx)
    ref = bm.p_alive(r[None, :], alpha[None, :], a[None, :], b[None, :], x[:, None], tx[:, None], T[:, None])
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_hdi_partition_matches_sorted_and_arviz() -> None:
    import arviz as az

    rng = np.random.default_rng(1)
    v = rng.gamma(0.7, 10, (50, 400))
    lo, hi = stats.hdi_inplace(v.copy(), 0.94)
    slo, shi = stats.hdi_sorted(np.sort(v, 1), 0.94)
    np.testing.assert_array_equal(lo, slo)
    np.testing.assert_array_equal(hi, shi)
    ref = np.asarray(az.hdi(v[0], prob=0.94))
    np.testing.assert_allclose([lo[0], hi[0]], ref.ravel())


def _posterior(rng: np.random.Generator, n_draws: int, segs: list[str], center: dict[str, float], sd: float = 0.1):
    return xr.Dataset(
        {k: (("chain", "draw", "segment"), np.exp(np.log(v) + sd * rng.standard_normal((1, n_draws, len(segs)))))
         for k, v in center.items()},
        coords={"segment": segs},
    )  # fmt: skip


@pytest.fixture(scope="module")
def segmented(rfm: pd.DataFrame):
    rng = np.random.default_rng(2)
    data = rfm.copy()
    data["seg"] = np.where(rng.random(len(data)) < 0.3, "s1", "s2")
    data["channel"] = rng.choice(["email", "search", "social"], len(data))
    bg = clv.param_draws(_posterior(rng, 40, ["s1", "s2"], BG), clv.BGNBD_PARAMS, segment="seg")
    gg = clv.param_draws(_posterior(rng, 40, ["all"], GG), clv.GG_PARAMS)
    return data, bg, gg


def test_engine_equals_dense_reference(segmented) -> None:
    data, bg, gg = segmented
    res = clv.customer_lifetime_value(bg, gg, data, segment=["channel"], threshold=[20.0, 100.0], chunk_size=97,
                                      n_threads=2, progress=False)  # fmt: skip
    code = data["seg"].map({"s1": 0, "s2": 1}).to_numpy()
    par = {k: v[:, code] for k, v in bg.values.items()}
    par.update({k: np.broadcast_to(v, (v.shape[0], len(data))) for k, v in gg.values.items()})
    dense = clv.clv_at_params(
        **par,
        x=data["frequency"].to_numpy(),
        t_x=data["recency"].to_numpy(),
        T=data["T"].to_numpy(),
        zbar=data["monetary_value"].to_numpy(),
        period_length=clv.clv_period_length("M", "W"),
    )  # fmt: skip  (draws, customers)
    c = res.customers
    np.testing.assert_allclose(c["clv_mean"], dense.mean(0), rtol=1e-10)
    np.testing.assert_allclose(c["clv_sd"], dense.std(0, ddof=1), rtol=1e-8)
    lo, hi = stats.hdi_sorted(np.sort(dense, 0), 0.94, axis=0)
    np.testing.assert_allclose(c["clv_hdi_low"], lo, rtol=1e-10)
    np.testing.assert_allclose(c["clv_hdi_high"], hi, rtol=1e-10)
    np.testing.assert_allclose(c["p_clv_gt_100"], (dense > 100).mean(0))
    alive = bm.p_alive(par["r"], par["alpha"], par["a"], par["b"], data["frequency"].to_numpy(),
                       data["recency"].to_numpy(), data["T"].to_numpy())  # fmt: skip
    np.testing.assert_allclose(c["p_alive_mean"], alive.mean(0), rtol=1e-10)
    # per-draw group totals
    for col in ("seg", "channel"):
        tot = res.group_totals[col]
        for g in tot[col].values:
            np.testing.assert_allclose(
                tot.sel({col: g}).values, dense[:, (data[col] == g).to_numpy()].sum(1), rtol=1e-10
            )
    np.testing.assert_allclose(res.group_totals["all"].values[:, 0], dense.sum(1), rtol=1e-10)
    s = res.summary("channel")
    assert set(s["channel"]) == {"email", "search", "social"}
    assert (s["total_hdi_low"] <= s["total_mean"]).all() and (s["total_mean"] <= s["total_hdi_high"]).all()
    assert s["n_customers"].sum() == len(data)


MBG = dict(r=0.525, alpha=6.183, a=0.891, b=1.614)  # BTYDplus CDNOW sample MLE (weekly)
PARETO = dict(r=0.553, alpha=10.58, s=0.606, beta=11.67)  # Fader & Hardie CDNOW sample MLE


@pytest.mark.parametrize(("model", "center", "math_module"), [("mbgnbd", MBG, "mbgnbd_math"),
                                                              ("pareto_nbd", PARETO, "pareto_nbd_math")])  # fmt: skip
def test_engine_other_purchase_models_equal_dense_reference(
    segmented, model: str, center: dict, math_module: str
) -> None:
    """CLV = m E[M] sum_k w_k (E[Y(kL)] - E[Y((k-1)L)]) with E[Y] the model's own conditional
    expectation, draw by draw; one-time buyers have P(alive) < 1 under both models."""
    import importlib

    mod = importlib.import_module(f"clvlab.models.{math_module}")
    data, _, gg = segmented
    rng = np.random.default_rng(5)
    post = clv.param_draws(_posterior(rng, 12, ["s1", "s2"], center), tuple(center), segment="seg", model=model)
    gg = gg.thin(np.arange(12))
    res = clv.customer_lifetime_value(post, gg, data, chunk_size=61, n_threads=2, progress=False, discount_rate=0.02)
    assert res.settings.purchase_model == model
    code = data["seg"].map({"s1": 0, "s2": 1}).to_numpy()
    par = [v[:, code] for v in post.values.values()]
    x, t_x, T = (data[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    zbar = np.where(x > 0, data["monetary_value"].to_numpy(float), 0.0)
    L, w = clv.clv_period_length("M", "W"), clv.discount_factors(12, 0.02)
    ey = [mod.conditional_expected_purchases(*par, x, t_x, T, k * L) for k in range(13)]
    big_b = sum(w[k - 1] * (ey[k] - ey[k - 1]) for k in range(1, 13))
    p, q, g = (gg.values[k] for k in ("p", "q", "gamma"))
    dense = big_b * (g + x * zbar) * p / (p * x + q - 1)
    np.testing.assert_allclose(res.customers["clv_mean"], dense.mean(0), rtol=1e-9)
    alive = mod.p_alive(*par, x, t_x, T)
    np.testing.assert_allclose(res.customers["p_alive_mean"], alive.mean(0), rtol=1e-9)
    assert (alive[:, x == 0] < 1).all()
    np.testing.assert_allclose(res.group_totals["seg"].sel(seg="s1").values, dense[:, code == 0].sum(1), rtol=1e-9)
    # the retention what-if lowers the model's own dropout: a lower dropout scale, a higher CLV
    up = clv.customer_lifetime_value(post, gg, data, dropout_scale=0.8, customer_summaries=False, discount_rate=0.02)
    assert (up.group_totals["all"].values > res.group_totals["all"].values).all()
    with pytest.raises(ClvlabInputError, match="model='bgnbd' but the purchase model is a"):
        clv.customer_lifetime_value(post, gg, data, model="bgnbd")


def test_unknown_segment_and_bad_rows(segmented) -> None:
    data, bg, gg = segmented
    bad = data.copy()
    bad.loc[0, "seg"] = "s9"
    with pytest.raises(ClvlabInputError, match="s9"):
        clv.customer_lifetime_value(bg, gg, bad)
    bad = data.copy()
    bad.loc[1, "recency"] = bad.loc[1, "T"] + 1
    bad.loc[2, "frequency"] = -1
    with pytest.raises(ClvlabInputError) as err:
        clv.customer_lifetime_value(bg, gg, bad)
    problems = err.value.problems  # every problem at once (the shared validator of models and CLV)
    assert any("frequency" in p and "negative" in p and "rows [2]" in p for p in problems)
    assert any("recency > T" in p and "rows [1]" in p for p in problems), problems


def test_cac_ratio_ranking(segmented) -> None:
    data, bg, gg = segmented
    res = clv.customer_lifetime_value(bg, gg, data, segment=["channel"], customer_summaries=False)
    tab = clv.cac_ratio(res, {"email": 5.0, "search": 50.0, "social": 1000.0}, segment="channel")
    assert list(tab["channel"]) == ["email", "search", "social"]
    assert tab["p_rank_1"].sum() == pytest.approx(1.0)
    assert tab["expected_rank"].sum() == pytest.approx(6.0)
    assert tab.loc[0, "p_rank_1"] == 1.0 and tab.loc[2, "p_ratio_gt_1"] == 0.0
    means = res.group_means("channel").mean("draw")
    assert tab.set_index("channel").loc["email", "ratio_mean"] == pytest.approx(float(means.sel(channel="email")) / 5)
    with pytest.raises(ClvlabInputError, match="no CAC for channel 'social'"):
        clv.cac_ratio(res, {"email": 5.0, "search": 50.0})
    # the residual ratio reads CAC tables as the new-customer analyses do (clvlab.clv.cac): every
    # problem at once, a table form; a channel priced but with no customers left is not an error here
    with pytest.raises(ClvlabInputError) as err:
        clv.cac_ratio(res, {"email": -1.0, "search": "n/a"})
    want = "expected a number >= 1e-06 (not text, not True/False)"
    assert sorted(err.value.problems) == [
        f"CAC of channel 'email' is -1.0: {want}",
        f"CAC of channel 'search' is 'n/a': {want}",
        "no CAC for channel 'social'",
    ]
    table = pd.DataFrame({"channel": ["email", "search", "social", "tv"], "cac": [5.0, 50.0, 1000.0, 9.0]})
    assert clv.cac_ratio(res, table, segment="channel")["ratio_mean"].tolist() == tab["ratio_mean"].tolist()
    with pytest.raises(ClvlabInputError, match="a CAC table needs columns 'channel' and 'cac'"):
        clv.cac_ratio(res, table.rename(columns={"cac": "cost"}), segment="channel")


def test_sensitivity_and_retention_whatif(segmented) -> None:
    data, bg, gg = segmented
    sens = clv.sensitivity(bg, gg, data, discount_rates=[0.0, 0.01, 0.05], margins=[0.5, 1.0], segment="seg")
    one = sens[(sens["margin"] == 1.0) & (sens["group"] == "s1")].sort_values("discount_rate")
    assert one["total_mean"].is_monotonic_decreasing and one["total_mean"].iloc[0] > one["total_mean"].iloc[-1]
    half = sens[(sens["margin"] == 0.5) & (sens["group"] == "s1")].sort_values("discount_rate")
    np.testing.assert_allclose(half["total_mean"].to_numpy(), 0.5 * one["total_mean"].to_numpy())
    what = clv.retention_whatif(bg, gg, data, scales=[0.8, 1.0, 1.2])
    s1 = what[what["segment"] == "s1"].set_index("dropout_scale")
    assert s1.loc[1.0, "uplift_mean"] == 0.0
    assert s1.loc[0.8, "uplift_mean"] > 0 > s1.loc[1.2, "uplift_mean"]
    assert s1.loc[0.8, "uplift_hdi_low"] > 0  # paired draws: the uplift is clearly positive
    # kappa kept, phi scaled
    scaled = clv.scale_dropout(bg, {"s1": 0.5})
    kap = bg.values["a"] + bg.values["b"]
    np.testing.assert_allclose(scaled.values["a"] + scaled.values["b"], kap)
    np.testing.assert_allclose(scaled.values["a"][:, 0] / kap[:, 0], 0.5 * bg.values["a"][:, 0] / kap[:, 0])
    np.testing.assert_allclose(scaled.values["a"][:, 1], bg.values["a"][:, 1])


def test_lifecycle_stage_export(segmented, tmp_path) -> None:
    data, bg, gg = segmented
    res = clv.customer_lifetime_value(bg, gg, data)
    out = clv.lifecycle_stage(res, data, new_tenure=30.0, active_p_alive=0.7, lapsed_p_alive=0.3,
                              path=tmp_path / "crm.csv")  # fmt: skip
    pa, T = out["p_alive_mean"], data["T"].to_numpy()
    assert (out.loc[T < 30, "stage"] == "new").all()
    old = T >= 30
    assert (out.loc[old & (pa >= 0.7), "stage"] == "active").all()
    assert (out.loc[old & (pa < 0.3), "stage"] == "lapsed").all()
    assert (out.loc[old & (pa >= 0.3) & (pa < 0.7), "stage"] == "at risk").all()
    assert set(out["stage"]) == {"new", "active", "at risk", "lapsed"}
    share = out["value_tier"].value_counts(normalize=True)
    assert share["high"] == pytest.approx(0.2, abs=0.02)
    back = pd.read_csv(tmp_path / "crm.csv")
    assert list(back["stage"]) == list(out["stage"].astype(str))
    with pytest.raises(ClvlabInputError):
        clv.lifecycle_stage(res, data, active_p_alive=0.2, lapsed_p_alive=0.5)


def test_fitted_estimators_feed_the_engine(segmented) -> None:
    from clvlab.models.bgnbd import BGNBD
    from clvlab.models.gamma_gamma import GammaGamma

    data, bg, gg = segmented
    rng = np.random.default_rng(3)
    bgm = BGNBD(pooling="unpooled", segment="seg")
    bgm.posterior_ = _posterior(rng, 30, ["s1", "s2"], BG)
    ggm = GammaGamma(pooling="pooled")
    ggm.posterior_ = _posterior(rng, 30, ["all"], GG)
    res = clv.customer_lifetime_value(bgm, ggm, data)
    assert res.settings.purchase_segment == "seg" and res.settings.spend_segment is None
    assert set(res.group_totals) == {"all", "seg"}
    ref = clv.customer_lifetime_value(clv.param_draws(bgm.posterior_, clv.BGNBD_PARAMS, segment="seg"),
                                      clv.param_draws(ggm.posterior_, clv.GG_PARAMS), data)  # fmt: skip
    np.testing.assert_allclose(res.customers["clv_mean"], ref.customers["clv_mean"])


def test_figures_render(segmented) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from clvlab.plots import clv as pc

    data, bg, gg = segmented
    res = clv.customer_lifetime_value(bg, gg, data, segment=["channel"])
    tab = clv.cac_ratio(res, {"email": 5.0, "search": 20.0, "social": 40.0})
    sens = clv.sensitivity(bg, gg, data, discount_rates=[0.0, 0.02], margins=[1.0])
    what = clv.retention_whatif(bg, gg, data, scales=[0.9, 1.0])
    rng = np.random.default_rng(0)
    figs = [pc.plot_clv_distribution(res, "channel"), pc.plot_cac_ratio(tab), pc.plot_sensitivity(sens, what),
            pc.plot_spend_ppc(rng.gamma(5, 5, 200), rng.gamma(5, 5, (10, 200)))]  # fmt: skip
    for f in figs:
        assert isinstance(f, Figure) and f.axes
        plt.close(f)


def test_pattern_table_recurrence_equals_direct() -> None:
    rng = np.random.default_rng(4)
    d = 25
    r, alpha, a, b = (rng.uniform(lo, hi, d) for lo, hi in ((0.15, 1.5), (2, 8), (0.4, 1.6), (1.0, 4)))
    xs = np.concatenate([np.arange(0, 60), np.arange(0, 120, 7), [0, 1, 2, 3]]).astype(float)
    Ts = np.concatenate([np.full(60, 70.0), np.full(18, 55.5), np.full(4, 1.0)])  # T = 1: z > 1/2, direct path
    kw = dict(horizon=12, period_length=clv.clv_period_length("M", "W"), discount_rate=0.01)
    got = clv_math.pattern_table(r, alpha, a, b, xs, Ts, **kw)
    ref = clv.discounted_purchases(r[None, :], alpha[None, :], a[None, :], b[None, :], xs[:, None], Ts[:, None], **kw)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


def test_pattern_table_stays_finite_in_a_far_tail() -> None:
    """A posterior draw of a BG/NBD fitted to one-off-heavy behavioural segments (a, b in the
    thousands) overflowed the recurrence (NaN CLV); such draws now take the direct path."""
    r = np.array([14.62481856507997, 0.4])
    alpha, a, b = (
        np.array([128.42392589924802, 60.0]),
        np.array([7716.8255050944945, 0.8]),
        np.array([5033.85207985165, 2.5]),
    )
    xs = np.arange(0, 12, dtype=float)
    Ts = np.full(len(xs), 37.0)
    kw = dict(horizon=12, period_length=clv.clv_period_length("M", "W"), discount_rate=0.01)
    got = clv_math.pattern_table(r, alpha, a, b, xs, Ts, **kw)
    ref = clv.discounted_purchases(r[None, :], alpha[None, :], a[None, :], b[None, :], xs[:, None], Ts[:, None], **kw)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


# ---- the data's time unit, the CLV period, segment= and the shared HDI ----------------------
def _pooled_bgnbd(time_unit_: str | None, seed: int = 5):
    from clvlab.models.bgnbd import BGNBD

    model = BGNBD(pooling="pooled")
    model.posterior_ = _posterior(np.random.default_rng(seed), 20, ["all"], BG)
    if time_unit_ is not None:
        model.time_unit_ = time_unit_  # what a fit stores: the unit of the data's recency / T
    return model


GG_POST = _posterior(np.random.default_rng(6), 20, ["all"], GG)


def test_model_time_unit_equals_explicit_time_unit(rfm: pd.DataFrame) -> None:
    bare = rfm.copy()
    bare.attrs = {}  # as after reading the RFM table back from CSV
    assert "time_unit" not in bare.attrs and rfm.attrs.get("time_unit") == "W"
    weekly = _pooled_bgnbd("W")
    by_model = clv.customer_lifetime_value(weekly, GG_POST, bare, period="M")
    by_arg = clv.customer_lifetime_value(_pooled_bgnbd(None), GG_POST, bare, period="M", time_unit="W")
    by_attrs = clv.customer_lifetime_value(_pooled_bgnbd(None), GG_POST, rfm, period="M")
    np.testing.assert_allclose(by_model.customers["clv_mean"], by_arg.customers["clv_mean"], rtol=1e-12)
    np.testing.assert_allclose(by_model.customers["clv_mean"], by_attrs.customers["clv_mean"], rtol=1e-12)
    for res in (by_model, by_arg, by_attrs):
        assert res.settings.time_unit == "W" and res.settings.period == "M"
        assert res.settings.period_length == pytest.approx(365.25 / 12 / 7)
    # the fitted model's unit wins over a stale data attribute
    stale = rfm.copy()
    stale.attrs = {"time_unit": "D"}
    np.testing.assert_allclose(clv.customer_lifetime_value(weekly, GG_POST, stale).customers["clv_mean"],
                               by_model.customers["clv_mean"], rtol=1e-12)  # fmt: skip
    daily = clv.customer_lifetime_value(_pooled_bgnbd(None), GG_POST, stale)
    assert daily.settings.time_unit == "D" and daily.customers["clv_mean"].sum() > by_model.customers["clv_mean"].sum()
    # a weekly period is shorter than a monthly one: less value over the same number of periods
    per_week = clv.customer_lifetime_value(weekly, GG_POST, bare, period="W")
    assert per_week.settings.period_length == 1.0
    assert per_week.customers["clv_mean"].sum() < 0.4 * by_model.customers["clv_mean"].sum()
    # the analyses take the unit from the model too (bare data, no time_unit=)
    what = clv.retention_whatif(weekly, GG_POST, bare, scales=[0.9, 1.0])
    assert set(what["segment"]) == {"all"} and (what.loc[what["dropout_scale"] == 0.9, "uplift_mean"] > 0).all()
    sens = clv.sensitivity(weekly, GG_POST, bare, discount_rates=[0.01], margins=[1.0], period="M")
    assert sens["total_mean"].iloc[0] == pytest.approx(by_model.summary()["total_mean"].iloc[0], rel=1e-12)


def test_time_unit_conflicting_with_the_model_raises(rfm: pd.DataFrame) -> None:
    weekly = _pooled_bgnbd("W")
    with pytest.raises(ClvlabInputError) as err:
        clv.customer_lifetime_value(weekly, GG_POST, rfm, horizon=12, time_unit="M")  # old spelling of period="M"
    msg = str(err.value)
    assert "time_unit='M'" in msg and "time_unit_='W'" in msg and "period=" in msg
    with pytest.raises(ClvlabInputError, match="time_unit_='W'"):
        clv.retention_whatif(weekly, GG_POST, rfm, scales=[1.0], time_unit="D")
    # agreeing units are fine
    ok = clv.customer_lifetime_value(weekly, GG_POST, rfm, time_unit="W")
    assert ok.settings.time_unit == "W"
    with pytest.raises(ClvlabInputError, match="period='Q'"):
        clv.customer_lifetime_value(weekly, GG_POST, rfm, period="Q")


def test_segment_accepts_str_and_list(segmented) -> None:
    data, bg, gg = segmented
    data = data.assign(region=np.where(np.arange(len(data)) % 3 == 0, "north", "south"))
    one = clv.customer_lifetime_value(bg, gg, data, segment="channel", customer_summaries=False)
    listed = clv.customer_lifetime_value(bg, gg, data, segment=["channel"], customer_summaries=False)
    assert set(one.group_totals) == set(listed.group_totals) == {"all", "seg", "channel"}
    np.testing.assert_array_equal(one.group_totals["channel"].values, listed.group_totals["channel"].values)
    two = clv.customer_lifetime_value(bg, gg, data, segment=["channel", "region"], customer_summaries=False)
    assert set(two.group_totals) == {"all", "seg", "channel", "region"}
    assert list(two.customers.columns[:4]) == ["customer_id", "seg", "channel", "region"]
    np.testing.assert_allclose(two.group_totals["region"].sum("region").values,
                               two.group_totals["all"].values[:, 0], rtol=1e-12)  # fmt: skip
    reg = two.summary(segment="region")
    assert list(reg["region"]) == ["north", "south"]
    assert reg["n_customers"].tolist() == [
        int((data["region"] == "north").sum()),
        int((data["region"] == "south").sum()),
    ]
    assert two.group_means(segment="region").dims == ("draw", "region")
    with pytest.raises(ClvlabInputError, match="segment='region'"):
        one.summary(segment="region")
    with pytest.raises(ClvlabInputError, match="segment='region'"):
        clv.cac_ratio(one, {"north": 1.0, "south": 1.0}, segment="region")
    with pytest.raises(ClvlabInputError, match="missing column 'nope'"):
        clv.customer_lifetime_value(bg, gg, data, segment=["channel", "nope"])
    with pytest.raises(ClvlabInputError, match="segment="):
        clv.customer_lifetime_value(bg, gg, data, segment=[3])


@pytest.mark.parametrize("prob", [0.5, 0.89, 0.94])
def test_stats_hdi_equals_arviz(prob: float) -> None:
    import arviz as az

    rng = np.random.default_rng(int(prob * 100))
    for n in (7, 100, 401, 1000):
        for v in (rng.gamma(0.7, 10, n), rng.standard_normal(n), rng.lognormal(0, 1.5, n)):
            lo, hi = stats.hdi(v, prob)
            np.testing.assert_allclose([lo, hi], np.asarray(az.hdi(v, prob=prob)).ravel(), rtol=1e-12)
    # along an axis: (quantities, draws) with axis=1 and (draws, quantities) with axis=0
    v = rng.gamma(0.5, 3, (6, 333))
    ref = az.hdi(xr.DataArray(v.T[None], dims=("chain", "draw", "q")), prob=prob)
    for lo, hi in (stats.hdi(v, prob, axis=1), stats.hdi(v.T, prob, axis=0)):
        np.testing.assert_allclose(lo, ref.sel(ci_bound="lower").values, rtol=1e-12)
        np.testing.assert_allclose(hi, ref.sel(ci_bound="upper").values, rtol=1e-12)
    assert np.all(hi - lo < np.ptp(v, axis=1))  # a real interval, narrower than the range
    lo_in, hi_in = stats.hdi_inplace(v.copy(), prob)
    np.testing.assert_array_equal(lo_in, lo)
    np.testing.assert_array_equal(hi_in, hi)


def test_group_totals_are_bit_identical_whatever_the_thread_timing(segmented) -> None:
    """Chunks run on 2 threads; their per-draw sums are added in chunk order, so the totals do not
    depend on which thread finished first (they did before: floating-point addition is not associative)."""
    data, bg, gg = segmented
    runs = [clv.customer_lifetime_value(bg, gg, data, segment=["channel"], chunk_size=7, n_threads=2,
                                        customer_summaries=False) for _ in range(5)]  # fmt: skip
    one = clv.customer_lifetime_value(bg, gg, data, segment=["channel"], chunk_size=7, n_threads=1,
                                      customer_summaries=False)  # fmt: skip
    for res in runs:
        for key in ("all", "channel"):
            np.testing.assert_array_equal(res.group_totals[key].values, one.group_totals[key].values)
