"""A new customer's value per channel, CLV/CAC on that basis and payback (clvlab.clv.acquisition)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvlab.clv import ParamDraws, clv_cac, clv_period_length, new_customer_value
from clvlab.data.simulate import DEFAULT_SEGMENTS, SegmentParams, simulate
from clvlab.errors import ClvlabInputError

HORIZON, DISCOUNT, MARGIN = 12, 0.01, 0.3
L = clv_period_length("M", "W")


def _truth_draws(truth: pd.DataFrame, names: tuple[str, ...], model: str | None) -> ParamDraws:
    """The simulator's true parameters as one draw per channel."""
    return ParamDraws({k: truth[k].to_numpy(float)[None, :] for k in names}, [str(s) for s in truth.index], "channel",
                      model)  # fmt: skip


def _monte_carlo(sim, horizon_weeks: float) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """Discounted margin of each simulated new customer over the horizon, counted from its log:
    the first purchase day's spend undiscounted, a purchase t weeks later in period ceil(t / L)."""
    tx = sim.transactions.copy()
    first = tx.groupby("customer_id")["date"].transform("min")
    t = (tx["date"] - first).dt.days / 7.0
    tx = tx[t <= horizon_weeks]
    k = np.ceil(t[t <= horizon_weeks] / L)
    tx["value"] = MARGIN * tx["amount"] * (1.0 + DISCOUNT) ** -k
    per = tx.groupby(["customer_id", "channel"], as_index=False)["value"].sum()
    return per.groupby("channel")["value"].agg(["mean", "sem", "size"])


@pytest.mark.parametrize("process", ["bgnbd", "pareto_nbd"])
def test_new_customer_value_at_the_true_parameters_equals_the_simulated_value(process):
    """At the simulator's true parameters, each channel's value equals the Monte Carlo mean of
    20,000 simulated new customers' discounted margin (|z| < 4: a false alarm with probability
    6e-5 per channel, 5e-4 over the 8 checks), and the first order's share matches the log's."""
    segments = DEFAULT_SEGMENTS if process == "bgnbd" else {
        g: SegmentParams(r=s.r, alpha=s.alpha, s=0.7 + 0.2 * i, beta=8.0 + 3 * i, p=s.p, q=s.q, gamma=s.gamma)
        for i, (g, s) in enumerate(DEFAULT_SEGMENTS.items())}  # fmt: skip
    weeks = HORIZON * L
    sim = simulate(segments, n_customers={g: 20_000 for g in segments}, acquisition_days=1,
                   observation_days=int(np.ceil(weeks * 7)) + 2, seed=11, process=process)  # fmt: skip
    mc = _monte_carlo(sim, weeks)
    firsts = sim.transactions.sort_values("date").groupby("customer_id", as_index=False).first()
    names = ("r", "alpha", "a", "b") if process == "bgnbd" else ("r", "alpha", "s", "beta")
    ncv = new_customer_value(_truth_draws(sim.truth, names, process), _truth_draws(sim.truth, ("p", "q", "gamma"), None),
                             firsts.rename(columns={"amount": "first_amount"}), segment="channel", horizon=HORIZON,
                             period="M", discount_rate=DISCOUNT, margin=MARGIN, time_unit="W", seed=1)  # fmt: skip
    got = ncv.summary().set_index("channel")
    for g in segments:
        z = (got.loc[g, "value_mean"] - mc.loc[g, "mean"]) / mc.loc[g, "sem"]
        assert abs(z) < 4, (g, got.loc[g, "value_mean"], mc.loc[g, "mean"], z)
        assert got.loc[g, "customers"] == 20_000
        # the first-order factor is the mean of the observed first orders (one bootstrap draw of it)
        assert got.loc[g, "first_order_mean"] == pytest.approx(
            firsts.loc[firsts.channel == g, "amount"].mean(), rel=0.02
        )


def _fixed(seg: list[str], n_draws: int = 400, seed: int = 0) -> tuple[ParamDraws, ParamDraws, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    k = len(seg)
    bg = ParamDraws({"r": rng.uniform(0.2, 0.3, (n_draws, k)), "alpha": rng.uniform(3, 5, (n_draws, k)),
                     "a": np.full((n_draws, k), 0.8), "b": np.full((n_draws, k), 2.5)}, seg, "channel", "bgnbd")  # fmt: skip
    gg = ParamDraws({"p": np.full((n_draws, k), 6.0), "q": np.full((n_draws, k), 4.0),
                     "gamma": np.full((n_draws, k), 15.0)}, seg, "channel")  # fmt: skip
    first = pd.DataFrame({"channel": np.repeat(seg, 200), "first_amount": rng.gamma(6.0, 5.0, 200 * k)})
    return bg, gg, first


def test_clv_cac_ratio_payback_and_ranks():
    """Ratio = value / CAC per draw; payback is 0 when the first order's margin covers the CAC
    and never within the horizon when the CAC exceeds every draw's value; ranks follow the ratio."""
    bg, gg, first = _fixed(["a", "b", "c"])
    ncv = new_customer_value(bg, gg, first, segment="channel", horizon=HORIZON, margin=MARGIN, time_unit="W")
    value = ncv.value.values
    first_margin = ncv.cumulative.values[:, :, 0]
    cac = {"a": 0.5 * first_margin[:, 0].min(), "b": 2.0 * value[:, 1].max(), "c": float(np.median(value[:, 2]))}
    table = clv_cac(ncv, cac).set_index("channel")
    assert table.loc["a", "payback_high"] == 0 and table.loc["a", "p_payback"] == 1.0
    assert table.loc["b", "p_payback"] == 0.0 and np.isinf(table.loc["b", "payback_median"])
    assert table.loc["b", "p_ratio_gt_1"] == 0.0 and table.loc["a", "p_ratio_gt_1"] == 1.0
    np.testing.assert_allclose(table.loc["c", "ratio_mean"], (value[:, 2] / cac["c"]).mean(), rtol=1e-12)
    assert 0.4 < table.loc["c", "p_ratio_gt_1"] < 0.6  # CAC at the median value
    assert 0 < table.loc["c", "payback_median"] <= HORIZON
    assert table.index[0] == "a" and table.loc["a", "p_rank_1"] == 1.0 and table["p_rank_1"].sum() == pytest.approx(1.0)
    # cumulative value is non-decreasing and ends at the value
    assert np.all(np.diff(ncv.cumulative.values, axis=2) >= 0)
    np.testing.assert_array_equal(ncv.cumulative.values[:, :, -1], value)


def test_pooled_models_value_every_channel_of_the_first_orders_alike_but_their_first_orders():
    """Pooled purchase and spend draws apply to every channel; channels differ by first orders only."""
    bg, gg, first = _fixed(["a", "b"])
    pooled_bg = ParamDraws({k: v[:, :1] for k, v in bg.values.items()}, ["__all__"], None, "bgnbd")
    pooled_gg = ParamDraws({k: v[:, :1] for k, v in gg.values.items()}, ["__all__"], None)
    ncv = new_customer_value(pooled_bg, pooled_gg, first, segment="channel", horizon=6, time_unit="W")
    rep = ncv.repeat_purchases.values
    np.testing.assert_array_equal(rep[:, 0], rep[:, 1])
    assert not np.array_equal(ncv.first_order.values[:, 0], ncv.first_order.values[:, 1])


def test_bad_input_is_reported_with_every_problem():
    bg, gg, first = _fixed(["a", "b"])
    ncv = new_customer_value(bg, gg, first, segment="channel", time_unit="W")
    with pytest.raises(ClvlabInputError) as e:
        clv_cac(ncv, {"a": -5.0, "z": 10.0})
    msg = str(e.value)
    assert "no CAC for channel 'b'" in msg and "CAC of channel 'a' is -5.0" in msg
    assert "channel 'z' has a CAC but no customers" in msg
    with pytest.raises(ClvlabInputError, match="columns 'channel' and 'cac'"):
        clv_cac(ncv, pd.DataFrame({"segment": ["a"], "cost": [1.0]}))
    bad = first.copy()
    bad.loc[3, "first_amount"] = -1.0
    bad.loc[5, "channel"] = None
    with pytest.raises(ClvlabInputError) as e:
        new_customer_value(bg, gg, bad, segment="channel", time_unit="W")
    assert "rows [3]" in str(e.value) and "without a segment" in str(e.value)
    with pytest.raises(ClvlabInputError, match="missing column"):
        new_customer_value(bg, gg, first.drop(columns="first_amount"), segment="channel", time_unit="W")
    by_cohort = ParamDraws(bg.values, bg.segments, "cohort", "bgnbd")
    with pytest.raises(ClvlabInputError, match="by 'cohort', not 'channel'"):
        new_customer_value(by_cohort, gg, first, segment="channel", time_unit="W")
    infinite = gg.with_values(q=np.where(np.arange(400)[:, None] == 7, 0.9, 4.0) * np.ones((1, 2)))
    with pytest.raises(ClvlabInputError, match="q <= 1"):
        new_customer_value(bg, infinite, first, segment="channel", time_unit="W")
    with pytest.raises(ClvlabInputError, match="not among"):
        new_customer_value(bg, gg, pd.concat([first, pd.DataFrame({"channel": ["zz"], "first_amount": [3.0]})]),
                           segment="channel", time_unit="W")  # fmt: skip
    with pytest.raises(ClvlabInputError, match="horizon"):
        new_customer_value(bg, gg, first, segment="channel", time_unit="W", horizon=0)


@pytest.mark.slow
def test_posterior_new_customer_value_covers_the_truth_and_ranks_channels():
    """Unpooled BG/NBD and Gamma-Gamma fitted by channel on a simulated multi-channel business:
    each channel's posterior value lies within 4 posterior sd of its value at the true parameters
    (checked against the simulator above; under a normal posterior a miss has probability 6e-5
    per channel), the channel the truth ranks first has the highest P(rank 1), the expected ranks
    order the channels as the truth does, and a channel whose true ratio is below 1 gets
    P(ratio > 1) < 0.5."""
    import warnings

    from clvlab.features import cohorts, rfm_summary
    from clvlab.models.bgnbd import BGNBD
    from clvlab.models.gamma_gamma import GammaGamma

    sim = simulate(n_customers={"search": 1500, "social": 1500, "email": 1500, "affiliate": 1500}, seed=5)
    rfm = rfm_summary(sim.transactions, sim.observation_end, "W", segment_cols=["channel"])
    first = cohorts(sim.transactions, segment_cols=["channel"], observation_end=sim.observation_end).customers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bg = BGNBD(pooling="unpooled", segment="channel").fit(rfm, seed=1, chains=2, draws=300, progressbar=False)
        gg = GammaGamma(pooling="unpooled", segment="channel").fit(rfm[rfm["frequency"] > 0], seed=1, chains=2,
                                                                  draws=300, progressbar=False)  # fmt: skip
    kw = dict(segment="channel", horizon=HORIZON, discount_rate=DISCOUNT, margin=MARGIN, seed=2)
    post = new_customer_value(bg, gg, first, **kw)
    true = new_customer_value(_truth_draws(sim.truth, ("r", "alpha", "a", "b"), "bgnbd"),
                              _truth_draws(sim.truth, ("p", "q", "gamma"), None), first, time_unit="W", **kw)  # fmt: skip
    s = post.summary().set_index("channel")
    t = true.summary().set_index("channel")["value_mean"]
    z = (s["value_mean"] - t) / s["value_sd"]
    assert (z.abs() < 4).all(), z
    cac = {g: float(t[g]) * f for g, f in zip(t.index, (0.5, 1.6, 0.7, 0.8))}  # one channel does not pay
    table = clv_cac(post, cac).set_index("channel")
    true_ratio = pd.Series({g: t[g] / cac[g] for g in t.index})
    assert table["p_rank_1"].idxmax() == true_ratio.idxmax()
    assert list(table.index) == list(true_ratio.sort_values(ascending=False).index)
    loser = true_ratio.idxmin()
    assert true_ratio[loser] < 1 and table.loc[loser, "p_ratio_gt_1"] < 0.5


def test_a_run_with_a_cac_table_reports_acquisition_economics(tmp_path):
    """A config with a CAC table and models by channel: the run folder has the new-customer
    CLV/CAC, the new-customer values and the residual CLV/CAC tables, and the report's CLV
    section the acquisition table and the payback figure."""
    import contextlib
    import io

    import yaml

    from clvlab.cli import main
    from clvlab.config import load_config
    from clvlab.data.simulate import DEFAULT_CAC

    sim = simulate(n_customers=1200, seed=3)
    sim.transactions.to_csv(tmp_path / "tx.csv", index=False)
    cfg = {
        "name": "channels_map", "seed": 1,
        "data": {"source": str(tmp_path / "tx.csv"), "segment_cols": ["channel"]},
        "features": {"calibration_end": "2021-01-31", "observation_end": str(sim.observation_end.date()),
                     "time_unit": "W", "segment": "channel", "cohort_freq": "M"},
        "purchase": {"method": "map", "pooling": "partial", "compare_pooling": False},
        "gamma_gamma": {"method": "map", "pooling": "partial"},
        "clv": {"horizon": 12, "margin": 0.3, "sensitivity_draws": 1},
        "acquisition": {"cac": DEFAULT_CAC, "horizon": 24, "budget": 20_000, "saturation": {"email": 300}},
        "outputs": {"runs_dir": str(tmp_path / "runs"), "reports_dir": str(tmp_path / "reports")},
    }  # fmt: skip
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["run", "--config", str(tmp_path / "c.yaml")]) == 0, out.getvalue()[-2000:]
    run = tmp_path / "runs/channels_map"
    table = pd.read_csv(run / "clv_cac.csv")
    assert sorted(table["channel"]) == sorted(DEFAULT_CAC) and {"payback_median", "p_rank_1"} <= set(table.columns)
    assert sorted(pd.read_csv(run / "residual_clv_cac.csv")["channel"]) == sorted(DEFAULT_CAC)
    values = pd.read_csv(run / "new_customer_value.csv").set_index("channel")
    assert (values["value_mean"] > 0.3 * values["first_order_mean"]).all()  # first order plus repeat purchases
    html = (tmp_path / "reports/channels_map/index.html").read_text()
    assert "Channel mix" in html and "payback.png" in html and "budget.png" in html and "Residual value" in html
    alloc = pd.read_csv(run / "budget_allocation.csv")
    assert alloc["spend"].sum() <= 20_000 + 1e-6 and (alloc["spend"] >= 0).all()
    assert list(pd.read_csv(run / "budget_strategies.csv")["strategy"])[0] == "optimal"
    kpis = pd.read_csv(run / "channel_kpis.csv")
    assert sorted(kpis["channel"]) == sorted(DEFAULT_CAC) and kpis["customers"].sum() == len(pd.read_parquet(
        run / "rfm.parquet"))  # fmt: skip
    assert (run / "retention_matrix.csv").exists() and "retention_matrix.png" in html
    assert pd.read_csv(run / "stage_migration.csv").iloc[:, 1:].to_numpy().sum() == kpis["customers"].sum()
    # a CAC table with models segmented by another column is refused when the config is read
    bad = {**cfg, "features": {**cfg["features"], "segment": "cohort"}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(ClvlabInputError, match="needs models pooled or segmented by 'channel'"):
        load_config(tmp_path / "bad.yaml")


def test_payback_figure_has_one_labelled_panel_per_channel():
    from clvlab.plots.acquisition import plot_payback

    bg, gg, first = _fixed(["a", "b", "c", "d"], n_draws=100)
    ncv = new_customer_value(bg, gg, first, segment="channel", horizon=HORIZON, margin=MARGIN, time_unit="W")
    value = ncv.value.values.mean(0)
    fig = plot_payback(ncv, {"a": value[0] / 2, "b": value[1] * 3, "c": value[2], "d": 1.0})
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 4 and all(ax.get_xlabel() or ax.get_ylabel() for ax in panels)
    titles = [ax.get_title() for ax in panels]
    assert titles[1].startswith("b: no payback within 12 months") and "payback ~" in titles[0]
    assert all(ax.get_xlabel() == "months since acquisition (0 = first order)" for ax in panels[1:])
