"""Model comparison: tracking actuals from the log, predictions from the math, LOO / holdout scoring,
the deliberately wrong NBD (no dropout) losing, the pipeline stage with any purchase model."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from clvlab.comparison import Candidate, compare_models, loo_table, tracking_actual, tracking_edges
from clvlab.errors import ClvlabInputError
from clvlab.features import calibration_holdout
from clvlab.models import bgnbd_math as bm
from clvlab.models import nbd_math as nm
from clvlab.models import purchase_model_class
from clvlab.models.base import ConvergenceWarning
from clvlab.models.bgnbd import BGNBD
from clvlab.models.nbd import NBD
from clvlab.study import Study

CAL, OBS = "1997-09-30", "1998-06-30"
WIDE = {"scale": 10.0}


@pytest.fixture(scope="module")
def rfm(cdnow_sample_tx):
    return calibration_holdout(cdnow_sample_tx, CAL, OBS, time_unit="W")


def test_tracking_actual_equals_counts_from_the_log(cdnow_sample_tx, rfm):
    edges = tracking_edges(rfm, float(rfm["duration_holdout"].iloc[0]))
    assert edges[0] <= -rfm["T"].max() and 0.0 in edges and edges[-1] == rfm["duration_holdout"].iloc[0]
    weekly = tracking_actual(cdnow_sample_tx, rfm, CAL, edges, "W")
    # calibration and holdout sums are the RFM table's repeat purchases
    assert weekly[edges[1:] <= 0].sum() == rfm["frequency"].sum()
    assert weekly[edges[1:] > 0].sum() == rfm["frequency_holdout"].sum()
    # each week, counted directly: day d after the calibration end is in week ceil(d / 7)
    tx = cdnow_sample_tx.sort_values(["customer_id", "date"])
    rep = tx[tx.duplicated("customer_id")]  # every purchase day after the first
    days = (rep["date"] - pd.Timestamp(CAL)).dt.days.to_numpy()
    week = np.ceil(days / 7).astype(int)  # ... -1, 0 (the last calibration week), 1, ...
    direct = pd.Series(week).value_counts()
    for j, end in enumerate(edges[1:]):
        assert weekly[j] == direct.get(int(end), 0), end


def test_tracking_expected_and_point_fit_rows_equal_the_math(cdnow_sample_tx, rfm):
    bg = BGNBD(pooling="pooled", priors={k: WIDE for k in BGNBD.link_params}).fit(rfm, method="map", progressbar=False)
    nbd = NBD(pooling="pooled", priors={k: WIDE for k in NBD.link_params}).fit(rfm, method="map", progressbar=False)
    est = {k: float(nbd.posterior_[k].values.ravel()[0]) for k in ("r", "alpha")}
    assert est == pytest.approx(dict(r=0.385, alpha=12.072), rel=2e-3)  # FHL 2005's NBD MLE on this sample
    cands = [Candidate("BG/NBD MLE", bg, "mle"), Candidate("NBD MLE", nbd, "mle")]
    res = compare_models(cands, rfm, cdnow_sample_tx, calibration_end=CAL, time_unit="W", segment="cohort")
    dur = float(rfm["duration_holdout"].iloc[0])
    p = [float(bg.posterior_[k].values.ravel()[0]) for k in bg.params]
    end = res.tracking[(res.tracking["label"] == "BG/NBD MLE") & (res.tracking["kind"] == "cumulative")]
    expected = bm.expected_purchases_new(*p, rfm["T"].to_numpy() + dur).sum()
    assert end["predicted_mean"].iloc[-1] == pytest.approx(expected, rel=1e-10)
    assert (end["actual"].diff().dropna() >= 0).all() and end["actual"].iloc[-1] == rfm[
        ["frequency", "frequency_holdout"]
    ].sum().sum()
    loo = res.loo.set_index("label")
    ll = nm.loglik(est["r"], est["alpha"], rfm["frequency"], rfm["recency"], rfm["T"]).sum()
    assert loo.loc["NBD MLE", "elpd"] == pytest.approx(ll - 2, rel=1e-10) and loo.loc[
        "NBD MLE", "criterion"
    ].startswith("log L")
    err = res.errors.set_index("label")
    e = nm.conditional_expected_purchases(est["r"], est["alpha"], rfm["frequency"], rfm["recency"], rfm["T"], dur)
    assert err.loc["NBD MLE", "mae"] == pytest.approx(np.abs(e - rfm["frequency_holdout"]).mean(), rel=1e-10)
    # per-segment holdout totals add up; the conditional table covers every customer once per model
    h = res.holdout[res.holdout["label"] == "NBD MLE"]
    assert h.loc[h["segment"] != "all", "actual_total"].sum() == h.loc[h["segment"] == "all", "actual_total"].item()
    assert res.conditional.groupby("label")["customers"].sum().eq(len(rfm)).all()
    assert "NBD MLE" in res.verdict or "BG/NBD MLE" in res.verdict
    with pytest.raises(ClvlabInputError, match="not unique"):
        compare_models([cands[0], cands[0]], rfm, cdnow_sample_tx, calibration_end=CAL, time_unit="W")


@pytest.mark.slow
def test_the_wrong_model_loses_on_loo_and_on_the_holdout(cdnow_sample_tx, rfm):
    """NBD has no dropout: on CDNOW it must lose to BG/NBD on LOO and on holdout error.

    Deterministic (fixed data and seeds); the margins are many standard errors wide (measured:
    elpd -179 with se 35, MAE +0.26 with se 0.02), so a different seed cannot flip them."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fits = [Candidate(name, cls(pooling="pooled").fit(rfm, chains=2, draws=1000, seed=3, progressbar=False), "pooled")
                for name, cls in (("BG/NBD", BGNBD), ("NBD", NBD))]  # fmt: skip
    res = compare_models(fits, rfm, cdnow_sample_tx, calibration_end=CAL, time_unit="W", draws_per_chain=200)
    loo = res.loo.set_index("label")
    assert loo.index[0] == "BG/NBD" and (loo["criterion"] == "PSIS-LOO").all()
    assert -loo.loc["NBD", "elpd_diff"] > 4 * loo.loc["NBD", "se_diff"]
    err = res.errors.set_index("label")
    assert err.index[0] == "BG/NBD" and err.loc["NBD", "mae_diff"] > 4 * err.loc["NBD", "mae_diff_se"]
    hold = res.holdout.set_index(["label", "segment"])
    actual = rfm["frequency_holdout"].sum()
    assert hold.loc[("NBD", "all"), "predicted_hdi_low"] > 1.3 * actual  # no dropout: far too many purchases
    assert hold.loc[("BG/NBD", "all"), "predicted_mean"] == pytest.approx(actual, rel=0.2)
    assert loo_table(fits, draws_per_chain=200).equals(res.loo)
    # LOO on unique patterns, weighted, equals ArviZ's LOO over every customer
    import arviz as az
    import xarray as xr

    m = fits[0].fit
    tree = xr.DataTree.from_dict({"log_likelihood": m.log_likelihood(rfm, thin=5).to_dataset(name="y"),
                                  "posterior": m.posterior_.isel(draw=slice(None, None, 5))})  # fmt: skip
    ref = az.loo(tree, var_name="y", pointwise=True)
    row = loo.loc["BG/NBD"]
    assert row["elpd"] == pytest.approx(float(ref.elpd), rel=1e-9) and row["se"] == pytest.approx(
        float(ref.se), rel=1e-6
    )
    assert row["p_loo"] == pytest.approx(float(ref.p), rel=1e-6)
    assert row["max_k"] == pytest.approx(float(np.max(ref.pareto_k)), rel=1e-9)
    assert "BG/NBD is best" in res.verdict and "NBD" in res.verdict


@pytest.mark.parametrize("model", ["mbgnbd", "pareto_nbd"])
def test_pipeline_runs_any_purchase_model_and_the_comparison_stage(tmp_path, model):
    """purchase.model picks the model behind CLV and the churn scores; compare scores MAP fits (fast)."""
    cfg = {"name": "cmp", "seed": 3, "data": {"source": "cdnow_sample"},
           "features": {"calibration_end": CAL, "observation_end": OBS, "time_unit": "W", "segment": "cohort",
                        "cohort_freq": "M"},
           "purchase": {"model": model, "method": "map", "pooling": "partial"},
           "gamma_gamma": {"method": "map", "pooling": "pooled"},
           "compare": {"models": ["bgnbd", model], "poolings": ["pooled"], "baseline": "nbd"}}  # fmt: skip
    study = Study(cfg, root=tmp_path, log=lambda s: None, progress=False)
    assert type(study.purchase().model) is purchase_model_class(model)
    clv = study.clv()
    assert clv.posterior.settings.purchase_model == model and (clv.customers["clv_mean"] > 0).all()
    assert (clv.customers.loc[study.features().rfm["frequency"].to_numpy() == 0, "p_alive_mean"] < 1).all()
    churn = study.churn()
    assert any(k.startswith(("MBG/NBD", "Pareto/NBD")) for k in churn.scores)
    cmp = study.compare()
    labels = set(cmp.comparison.loo["label"])
    name = {"mbgnbd": "MBG/NBD", "pareto_nbd": "Pareto/NBD"}[model]
    # MAP fits (method: map) are labelled as such, as `clvlab compare` labels them
    assert labels == {"BG/NBD pooled MAP", f"{name} pooled MAP", "BG/NBD MLE", f"{name} MLE",
                      "NBD (no dropout) pooled MAP"}  # fmt: skip
    assert (study.run_dir / f"{model}_mle").is_dir() and (study.run_dir / "nbd_pooled").is_dir()
    # a pooled fit by cohort repeats one value per parameter over the cohorts: k counts it once
    loo = cmp.comparison.loo.set_index("label")
    assert loo.loc[f"{name} MLE", "p_loo"] == 4 and loo.loc["NBD (no dropout) pooled MAP", "p_loo"] == 2


def test_run_writes_the_comparison_and_clvlab_compare_rescores_saved_runs(tmp_path, capsys):
    """A MAP run (fast) with the comparison stage: tables in the run folder, the report section, and
    `clvlab compare` on the run folder gives the same tables."""
    from clvlab.cli import main
    from clvlab.config import load_config
    from clvlab.runs import run

    cfg = load_config({"name": "cmpmap", "seed": 3, "data": {"source": "cdnow_sample"},
                       "features": {"segment": "cohort", "cohort_freq": "M"},
                       "purchase": {"model": "pareto_nbd", "method": "map", "pooling": "pooled"},
                       "gamma_gamma": {"method": "map", "pooling": "pooled"},
                       "clv": {"sensitivity_discount_rates": [0.01], "sensitivity_margins": [1.0]},
                       "survival": {"lapse_after": 20},
                       "compare": {"models": ["bgnbd", "pareto_nbd"], "poolings": ["pooled"], "mle": False},
                       "outputs": {"runs_dir": str(tmp_path / "runs"), "reports_dir": str(tmp_path / "reports"),
                                   "self_contained": False}})  # fmt: skip
    res = run(cfg)
    run_dir = tmp_path / "runs/cmpmap"
    loo = pd.read_csv(run_dir / "compare_loo.csv")
    assert set(loo["label"]) == {"BG/NBD pooled MAP", "Pareto/NBD pooled MAP", "NBD (no dropout) pooled MAP"}
    html = (tmp_path / "reports/cmpmap/index.html").read_text()
    assert "Model comparison" in html and "compare_tracking.png" in html and res.compare.comparison.verdict[:40] in html
    out = tmp_path / "cmp"
    assert main(["compare", "--runs", str(run_dir), "--out", str(out)]) == 0
    md = (out / "comparison.md").read_text()
    assert md.startswith("# Purchase-model comparison") and "| model |" in md and "![Tracking](tracking.png)" in md
    again = pd.read_csv(out / "loo.csv")
    assert set(again["label"]) == {"Pareto/NBD pooled MAP", "BG/NBD pooled MAP", "NBD (no dropout) pooled MAP"}
    np.testing.assert_allclose(np.sort(again["elpd"]), np.sort(loo["elpd"]), rtol=1e-12)
    assert (out / "tracking.png").stat().st_size > 10_000
    assert main(["compare", "--runs", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "not a finished clvlab run folder" in capsys.readouterr().err
