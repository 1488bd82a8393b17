"""A run: config (YAML) -> artifacts in ``models/runs/<name>/`` and a report in ``reports/<name>/``.

Stages (each logs what it did and how long it took; all outputs are written atomically):

1. data      load + validate the transaction log (validation report)
2. features  calibration/holdout RFM (DuckDB), RFM scores, cohorts
3. bgnbd     hierarchical BG/NBD fit, diagnostics, P(alive) / expected-purchase figures
4. clv       hierarchical Gamma-Gamma + posterior CLV per customer / segment
5. survival  lapse table, Kaplan-Meier, Cox, churn-score comparison with BG/NBD P(alive)

``metadata.json`` in the run folder records the config, the data hash, package versions and
stage timings, so a run can be reproduced from its folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .config import RunConfig
from .io import write_json, write_table
from .report import Report
from .units import unit_days
from .versions import data_hash, package_versions


@dataclass
class RunContext:
    """What the stages share: the config, output folders, the report, and produced objects."""

    config: RunConfig
    report: Report
    timings: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return self.config.run_dir

    def log(self, msg: str) -> None:
        print(f"[{self.config.name}] {msg}", flush=True)

    def table(self, df: pd.DataFrame, name: str) -> Path:
        """Write ``df`` as Parquet (and CSV for small tables) into the run folder."""
        path = write_table(df, self.run_dir / f"{name}.parquet")
        if len(df) <= 5000:
            write_table(df, self.run_dir / f"{name}.csv")
        return path


def _load(ctx: RunContext) -> None:
    from .data import load_cdnow_with_report, load_transactions

    d = ctx.config.data
    if d.source in ("cdnow", "cdnow_sample"):
        tx, report = load_cdnow_with_report(sample=d.source == "cdnow_sample")
    else:
        tx, report = load_transactions(d.source, customer_col=d.customer_col, date_col=d.date_col,
                                       amount_col=d.amount_col, segment_cols=d.segment_cols,
                                       pseudonymise=d.pseudonymise)
    ctx.artifacts["transactions"] = tx
    ctx.meta["data"] = {"source": d.source, "hash": data_hash(tx), "rows": len(tx),
                        "customers": int(tx["customer_id"].nunique())}
    ctx.report.add_text("Data", str(report))
    ctx.log(f"data: {len(tx):,} purchase days, {tx['customer_id'].nunique():,} customers")


def _features(ctx: RunContext) -> None:
    from .features import calibration_holdout, cohorts, interpurchase_times, rfm_scores
    from .plots.rfm import plot_cohort_sizes, plot_interpurchase_times, plot_rfm_segments

    f, d = ctx.config.features, ctx.config.data
    tx = ctx.artifacts["transactions"]
    rfm = calibration_holdout(tx, f.calibration_end, f.observation_end, time_unit=f.time_unit,
                              segment_cols=d.segment_cols, whole_periods=f.whole_periods,
                              cohort_freq=f.cohort_freq)
    rfm = rfm_scores(rfm)
    ctx.artifacts["rfm"] = rfm
    ctx.table(rfm, "rfm")
    repeaters = int((rfm["frequency"] > 0).sum())
    ctx.log(f"features: {len(rfm):,} customers ({repeaters:,} repeaters) in calibration to {f.calibration_end}")
    seg_counts = rfm["rfm_segment"].value_counts().rename_axis("rfm_segment").reset_index(name="customers")
    ctx.report.add_table("RFM", rfm.describe().T, caption="RFM summary (calibration)")
    ctx.report.add_figure("RFM", plot_rfm_segments(rfm), "rfm_segments", caption="RFM-score segments")
    sizes = cohorts(tx, f.cohort_freq, observation_end=f.calibration_end).sizes
    ctx.table(sizes, "cohort_sizes")
    ctx.report.add_figure("RFM", plot_cohort_sizes(sizes), "cohort_sizes", caption="Acquisition cohorts")
    ctx.report.add_figure("RFM", plot_interpurchase_times(interpurchase_times(tx)), "interpurchase_times",
                          caption="Days between consecutive purchases")
    ctx.table(seg_counts, "rfm_segments")


def _fit_options(m) -> dict[str, Any]:
    return dict(method=m.method, sampler=m.sampler, chains=m.chains, draws=m.draws, tune=m.tune,
                target_accept=m.target_accept)


def _bgnbd(ctx: RunContext) -> None:
    from .evaluate import holdout_check
    from .models.bgnbd import BGNBD
    from .plots.bgnbd import plot_frequency_recency, plot_repeat_purchase_ppc, plot_segment_forest

    m, f = ctx.config.bgnbd, ctx.config.features
    rfm = ctx.artifacts["rfm"]
    model = BGNBD(pooling=m.pooling, segment=f.segment, parameterization=m.parameterization).fit(
        rfm, seed=ctx.config.seed, **_fit_options(m))
    model.save(ctx.run_dir / "bgnbd")
    ctx.artifacts["bgnbd"] = model
    summary = model.summary()
    ctx.table(summary, "bgnbd_summary")
    conv = model.convergence_ or {}
    ctx.meta["bgnbd"] = {"fit": model.fit_info_, "convergence": conv}
    ctx.log(f"bgnbd ({m.pooling}, by {f.segment}): {model.fit_info_['fit_s']:.1f} s; " + _convergence_line(conv))
    ctx.report.add_text("BG/NBD", f"pooling={m.pooling}, segment={f.segment}\n" + _convergence_line(conv))
    ctx.report.add_table("BG/NBD", summary, caption="Posterior of the segment and population parameters", max_rows=80)
    for quantity in ("p_alive", "expected_purchases"):
        fig = plot_frequency_recency(model, quantity, t=39.0, thin=max(1, m.draws // 100))
        ctx.report.add_figure("BG/NBD", fig, f"bgnbd_{quantity}_heatmap")
    if m.compare_pooling and f.segment:
        fits = {m.pooling: model}
        for pooling in ("pooled", "unpooled", "partial"):
            if pooling not in fits:
                fits[pooling] = BGNBD(pooling=pooling, segment=f.segment, parameterization=m.parameterization).fit(
                    rfm, seed=ctx.config.seed, progressbar=False, **_fit_options(m))
        sizes = rfm[f.segment].value_counts().to_dict()
        ctx.report.add_figure("BG/NBD", plot_segment_forest(fits, segment_sizes=sizes), "bgnbd_pooling_forest",
                              caption="Segment parameters: pooled vs unpooled vs partial pooling (shrinkage)")

    # holdout: expected purchases in the holdout window against what customers did
    duration = float(rfm["duration_holdout"].iloc[0])
    thin = max(1, m.draws // 250)
    expected = model.expected_purchases(duration, thin=thin).mean(("chain", "draw")).to_series()
    check = holdout_check(rfm, expected, segment=f.segment)
    ctx.table(check, "bgnbd_holdout_check")
    ctx.report.add_table("BG/NBD", check, caption=f"Holdout ({duration:g} {f.time_unit}): predicted vs actual repeat purchases")
    simulated = model.sample_holdout_purchases(duration, thin=thin, seed=ctx.config.seed)
    ctx.report.add_figure("BG/NBD", plot_repeat_purchase_ppc(rfm["frequency_holdout"], simulated,
                          title="Posterior predictive check: holdout repeat purchases"), "bgnbd_holdout_ppc")

    # churn scores for the survival comparison (posterior means per customer)
    p_alive = model.p_alive(thin=thin).mean(("chain", "draw")).to_series()
    p_none = model.p_no_purchase(duration, thin=thin).mean(("chain", "draw")).to_series()
    ctx.artifacts["bgnbd_churn_scores"] = {"BG/NBD 1 - P(alive)": 1.0 - p_alive,
                                           "BG/NBD P(no purchase in holdout)": p_none}
    ctx.artifacts["p_alive"] = p_alive


def _convergence_line(conv: dict[str, Any]) -> str:
    if not conv:
        return "MAP fit (no sampler diagnostics)"
    return (f"max R-hat {conv['max_r_hat']:.3f}, min bulk ESS {conv['min_ess_bulk']:.0f}, "
            f"min tail ESS {conv['min_ess_tail']:.0f}, divergences {conv['divergences']}, "
            f"min BFMI {min(conv['bfmi']):.2f}")


def _clv(ctx: RunContext) -> None:
    from .clv import cac_ratio, customer_lifetime_value, lifecycle_stage, sensitivity
    from .models.gamma_gamma import GammaGamma, independence_check
    from .plots.clv import plot_cac_ratio, plot_clv_distribution, plot_sensitivity, plot_spend_ppc

    m, f, c = ctx.config.gamma_gamma, ctx.config.features, ctx.config.clv
    rfm, bg = ctx.artifacts["rfm"], ctx.artifacts["bgnbd"]
    repeaters = rfm[rfm["frequency"] > 0]
    zero_spend = repeaters["monetary_value"] <= 0
    if zero_spend.any():  # the Gamma likelihood needs spend > 0; their CLV still uses E[M | x, zbar = 0]
        msg = (f"{int(zero_spend.sum())} repeat customer(s) with zero mean repeat spend left out of the spend-model "
               f"fit (e.g. {list(repeaters.loc[zero_spend, 'customer_id'].head(3))}); their CLV is still computed")
        ctx.log("gamma-gamma: " + msg)
        ctx.report.add_text("Spend (Gamma-Gamma)", msg)
        repeaters = repeaters[~zero_spend]
    indep = independence_check(repeaters, f.segment)
    ctx.table(indep, "gg_independence_check")
    ctx.report.add_table("Spend (Gamma-Gamma)", indep,
                         caption="Independence assumption: correlation of frequency and mean repeat spend")
    gg = GammaGamma(pooling=m.pooling, segment=f.segment).fit(repeaters, seed=ctx.config.seed + 1, **_fit_options(m))
    gg.save(ctx.run_dir / "gamma_gamma")
    conv = gg.convergence_ or {}
    ctx.meta["gamma_gamma"] = {"fit": gg.fit_info_, "convergence": conv}
    ctx.log(f"gamma-gamma ({m.pooling}): {gg.fit_info_['fit_s']:.1f} s; " + _convergence_line(conv))
    ctx.table(gg.summary(), "gg_summary")
    ctx.report.add_table("Spend (Gamma-Gamma)", gg.summary(), caption=_convergence_line(conv), max_rows=80)
    thin = max(1, m.draws // 250)
    ctx.report.add_figure("Spend (Gamma-Gamma)", plot_spend_ppc(repeaters["monetary_value"].to_numpy(),
                          gg.sample_mean_spend(thin=thin, seed=ctx.config.seed).values), "gg_spend_ppc")

    by = [f.segment] if f.segment else []
    by += [col for col in ctx.config.data.segment_cols if col not in by]
    settings = dict(horizon=c.horizon, time_unit=c.time_unit, discount_rate=c.discount_rate, margin=c.margin)
    result = customer_lifetime_value(bg, gg, rfm, by=by, threshold=[100.0], **settings)
    crm = lifecycle_stage(result, rfm)
    ctx.table(crm, "clv_customers")
    ctx.log(f"clv: {len(crm):,} customers, total {result.summary('all')['total_mean'].iloc[0]:,.0f} "
            f"over {c.horizon} {c.time_unit} (margin {c.margin}, discount {c.discount_rate}/period)")
    for col in ["all", *by]:
        table = result.summary(col)
        ctx.table(table, f"clv_by_{col}")
        ctx.report.add_table("Posterior CLV", table, caption=f"CLV by {col} (posterior of totals and means)")
        if col != "all":
            ctx.report.add_figure("Posterior CLV", plot_clv_distribution(result, by=col), f"clv_by_{col}")
    stages = crm.groupby(["stage", "value_tier"], observed=True).size().unstack(fill_value=0)
    ctx.report.add_table("Posterior CLV", stages.reset_index(), caption="Lifecycle stage x value tier (CRM export)")
    sens = sensitivity(bg, gg, rfm, by=f.segment, horizon=c.horizon, time_unit=c.time_unit, max_draws=200)
    ctx.table(sens, "clv_sensitivity")
    ctx.report.add_figure("Posterior CLV", plot_sensitivity(sens), "clv_sensitivity",
                          caption="CLV under discount-rate and margin assumptions")
    if c.cac:
        channel = ctx.config.data.segment_cols[0] if ctx.config.data.segment_cols else f.segment
        ratio = cac_ratio(result, c.cac, by=channel)
        ctx.table(ratio, "clv_cac")
        ctx.report.add_figure("Posterior CLV", plot_cac_ratio(ratio, by=channel), "clv_cac")


def _survival(ctx: RunContext) -> None:
    from .evaluate import calibration_curve, churn_comparison, holdout_churn_labels, roc_table
    from .features.lapse import lapse_table, suggest_lapse_threshold
    from .models.survival import CoxChurnModel, KaplanMeierBySegment, train_test_split_customers
    from .plots.survival import plot_calibration_curves, plot_hazard_ratios, plot_km_by_segment, plot_roc_curves

    f, s = ctx.config.features, ctx.config.survival
    tx = ctx.artifacts["transactions"]
    cal_end, obs_end = pd.Timestamp(f.calibration_end), pd.Timestamp(f.observation_end)
    if s.lapse_after is None:
        suggestion = suggest_lapse_threshold(tx, 0.9, f.time_unit, cutoff=cal_end)
        lapse_after = suggestion.lapse_after
        ctx.log(suggestion.explanation)
        ctx.report.add_text("Survival churn", suggestion.explanation)
    else:
        lapse_after = s.lapse_after
    segment = f.segment
    table = lapse_table(tx, cal_end, lapse_after, f.time_unit, cohort_freq=f.cohort_freq,
                        segment_cols=ctx.config.data.segment_cols)
    ctx.table(table, "lapse_table")
    km = KaplanMeierBySegment().fit(table, segment)
    ctx.report.add_figure("Survival churn", plot_km_by_segment(km, time_unit=f.time_unit), "km_by_segment",
                          caption=f"Time to lapse (no purchase within {lapse_after:g} {f.time_unit}) by {segment}")
    cox_kwargs = dict(strata=segment, penalizer=s.penalizer, log1p=["first_amount", "early_monetary"])
    train, test = train_test_split_customers(table, 0.3, seed=ctx.config.seed)
    concordance = CoxChurnModel(**cox_kwargs).fit(train).concordance(test)
    cox = CoxChurnModel(**cox_kwargs).fit(table)
    hr, ph = cox.hazard_ratios(), cox.check_proportional_hazards()
    ctx.table(hr, "cox_hazard_ratios")
    ctx.table(ph, "cox_ph_check")
    ctx.report.add_figure("Survival churn", plot_hazard_ratios(hr), "cox_hazard_ratios",
                          caption=f"Cox model (strata = {segment}); held-out concordance {concordance:.3f}")
    ctx.report.add_table("Survival churn", ph, caption="Proportional-hazards check (Schoenfeld residuals)")
    ctx.meta["survival"] = {"lapse_after": lapse_after, "heldout_concordance": concordance}
    ctx.log(f"survival: lapse after {lapse_after:g} {f.time_unit}, held-out concordance {concordance:.3f}")

    # churn in the holdout window: Cox lapse probability against the BG/NBD posterior scores
    horizon = (obs_end - cal_end).days / unit_days(f.time_unit)
    labels = holdout_churn_labels(tx, cal_end, obs_end)
    scores = {"Cox P(lapse)": cox.predict_lapse_probability(table, horizon)}
    scores.update(ctx.artifacts.get("bgnbd_churn_scores", {}))
    segments = table.set_index("customer_id")[segment] if segment else None
    comparison = churn_comparison(labels, scores, segments=segments)
    calib = calibration_curve(labels, scores, n_bins=10)
    ctx.table(comparison, "churn_comparison")
    ctx.report.add_table("Churn prediction", comparison[comparison["segment"] == "all"],
                         caption="Holdout churn (no purchase in the holdout window): AUC and Brier score")
    ctx.report.add_figure("Churn prediction", plot_roc_curves(roc_table(labels, scores), comparison), "churn_roc")
    ctx.report.add_figure("Churn prediction", plot_calibration_curves(calib, comparison), "churn_calibration")


STAGES: list[tuple[str, Callable[[RunContext], None]]] = [
    ("data", _load),
    ("features", _features),
    ("bgnbd", _bgnbd),
    ("clv", _clv),
    ("survival", _survival),
]


def run(config: RunConfig) -> RunContext:
    """Run every stage of ``config``; returns the context (artifacts, timings)."""
    report = Report(title=f"clvlab run: {config.name}", directory=config.report_dir)
    ctx = RunContext(config=config, report=report)
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    ctx.log(f"run folder {ctx.run_dir}, report {config.report_dir}")
    t_all = time.perf_counter()
    for name, stage in STAGES:
        t0 = time.perf_counter()
        stage(ctx)
        ctx.timings[name] = round(time.perf_counter() - t0, 2)
        ctx.log(f"{name} done in {ctx.timings[name]:.1f} s")
    ctx.timings["total"] = round(time.perf_counter() - t_all, 2)
    ctx.meta.update(config=config.to_dict(), versions=package_versions(), timings=ctx.timings,
                    finished_at=pd.Timestamp.now(tz="UTC").isoformat())
    write_json(ctx.run_dir / "metadata.json", ctx.meta)
    index = ctx.report.write()
    ctx.log(f"done in {ctx.timings['total']:.1f} s; report {index}")
    return ctx
