"""The run's report: :class:`~clvlab.study.StudyResults` -> the HTML document of :mod:`clvlab.report`.

First screen: what the run found, with intervals (:func:`headline_cards`), and one
diagnostics badge per sampled model (:func:`diagnostics_badge`). Then one section per stage
(:data:`SECTIONS`, in pipeline order) and the run details (config, data hash, versions,
stage timings) at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .choices import ALL_SEGMENTS, BEHAVIOUR_COLUMN, MODEL_LABELS, unit_name
from .comparison import headline_labels
from .report import Badge, Headline, Report, describe_table, format_compact, format_number
from .study import Study, StudyResults
from .versions import package_versions

__all__ = [
    "SECTIONS",
    "build_report",
    "clv_table",
    "diagnostics_badge",
    "headline_cards",
    "headline_numbers",
    "parameter_table",
]

SECTIONS = (
    "Data",
    "Customers",
    "Purchase model",
    "Spend model (Gamma-Gamma)",
    "Posterior CLV",
    "Churn",
    "Model comparison",
)
RHAT_FAIL = 1.05
"""R-hat above this fails the badge (above RHAT_MAX it warns)."""
DIVERGENCE_FAIL_SHARE = 0.01
"""Divergent transitions above this share of the draws fail the badge (any warns)."""

BEHAVIOUR_SECTION = "Behavioural segments"


def _money(value: float) -> str:
    """$1,234.56 below $100k, else the compact form ($123k, $1.23M)."""
    sign = "-" if value < 0 else ""
    return sign + (f"${abs(value):,.2f}" if abs(value) < 1e5 else format_compact(abs(value), "$"))


def diagnostics_badge(name: str, model: Any) -> Badge:
    """Pass / warn / fail on R-hat, bulk and tail ESS, divergences and BFMI, naming the parameter.

    Parameters
    ----------
    name : str
        The badge's title (e.g. "BG/NBD sampler").
    model : BayesianEstimator
        A fitted model; MAP fits (no sampler diagnostics) pass with a note.

    Returns
    -------
    Badge
        ``fail`` when max R-hat > :data:`RHAT_FAIL` or divergences exceed
        :data:`DIVERGENCE_FAIL_SHARE` of the draws; ``warn`` when R-hat > RHAT_MAX, an ESS < ESS_MIN,
        any divergence or a BFMI < BFMI_MIN; else ``pass``.
    """
    conv = model.convergence_
    if not conv:
        return Badge(name, "pass", "MAP fit: no sampler diagnostics")
    status = "warn" if conv.problems() else "pass"
    if conv.max_r_hat > RHAT_FAIL or conv.divergences > DIVERGENCE_FAIL_SHARE * conv.n_draws:
        status = "fail"
    detail = conv.describe()
    return Badge(name, status, detail)


def comparison_badge(fits: dict[str, Any], exclude: Any = None) -> Badge:
    """One badge for the comparison's sampled fits: the worst of their :func:`diagnostics_badge`
    (fail > warn > pass), naming the fit; ``exclude`` (the purchase model, badged already) is skipped."""
    rank = {"pass": 0, "warn": 1, "fail": 2}
    badges = [(label, diagnostics_badge(label, m)) for label, m in fits.items() if m is not exclude and m.convergence_]
    if not badges:
        return Badge("Comparison samplers", "pass", "point fits only: no sampler diagnostics")
    label, worst = max(badges, key=lambda lb: rank[lb[1].status])
    n_bad = sum(b.status != "pass" for _, b in badges)
    head = (
        f"{len(badges)} sampled fits, all pass" if not n_bad else f"{n_bad} of {len(badges)} not passing; worst {label}"
    )
    return Badge("Comparison samplers", worst.status, f"{head}: {worst.detail}" if n_bad else head)


def headline_numbers(results: StudyResults) -> dict[str, Any]:
    """The numbers of the report's first screen (also asserted by the browser test)."""
    f, p, c, ch = results.features, results.purchase, results.clv, results.churn
    prob = results.config.clv.hdi_prob
    pred, lo, hi = p.holdout_total(prob)
    total = c.by_segment[ALL_SEGMENTS].iloc[0]
    seg = results.config.features.segment
    per = c.by_segment.get(seg) if seg else None
    overall = ch.comparison[ch.comparison["segment"] == ALL_SEGMENTS].set_index("score")["auc"]
    out = dict(customers=len(f.rfm), repeaters=f.n_repeaters, holdout_actual=float(f.rfm["frequency_holdout"].sum()),
               holdout_predicted=pred, holdout_low=lo, holdout_high=hi, clv_total=float(total["total_mean"]),
               clv_low=float(total["total_hdi_low"]), clv_high=float(total["total_hdi_high"]),
               churn_auc=overall.to_dict())  # fmt: skip
    if per is not None and len(per) > 1:
        ranked = per.sort_values("mean_mean", ascending=False)
        out["best_segment"], out["worst_segment"] = ranked.iloc[0], ranked.iloc[-1]
    return out


def headline_cards(results: StudyResults) -> list[Headline]:
    """What the run found, for the first screen: customers, holdout purchases predicted vs actual,
    total CLV, best and worst segment by CLV per customer, churn AUC — with intervals."""
    cfg, h = results.config, headline_numbers(results)
    pct = round(100 * cfg.clv.hdi_prob)
    unit = unit_name(cfg.features.time_unit, plural=True)
    period = f"{cfg.clv.horizon} {unit_name(cfg.clv.period, plural=True)}"
    err = h["holdout_predicted"] / h["holdout_actual"] - 1 if h["holdout_actual"] else float("nan")
    cards = [
        Headline("Customers", format_number(h["customers"]),
                 detail=f"{format_number(h['repeaters'])} repeat buyers in calibration (to {cfg.features.calibration_end})"),
        Headline(f"Holdout repeat purchases ({results.purchase.holdout_duration:.0f} {unit})",
                 f"{format_number(h['holdout_predicted'])} predicted",
                 interval=f"{pct}% HDI {format_number(h['holdout_low'])} – {format_number(h['holdout_high'])}",
                 detail=f"actual {format_number(h['holdout_actual'])} ({err:+.1%})"),
        Headline(f"Total CLV, next {period}", format_compact(h["clv_total"], "$"),
                 interval=f"{pct}% HDI {format_compact(h['clv_low'], '$')} – {format_compact(h['clv_high'], '$')}",
                 detail=f"margin {cfg.clv.margin:.0%}, discount {cfg.clv.discount_rate:.1%} a {unit_name(cfg.clv.period)}"),
    ]  # fmt: skip
    seg = cfg.features.segment
    for key, label in (("best_segment", "Best"), ("worst_segment", "Worst")):
        row = h.get(key)
        if row is not None:
            cards.append(Headline(f"{label} {seg} by CLV per customer", f"{row[seg]}: {_money(row['mean_mean'])}",
                                  interval=f"{pct}% HDI {_money(row['mean_hdi_low'])} – {_money(row['mean_hdi_high'])}",
                                  detail=f"{format_number(row['n_customers'])} customers"))  # fmt: skip
    cmp = results.compare.comparison
    if cmp is not None and len(cmp.errors) > 1:
        e, e2 = cmp.errors.iloc[0], cmp.errors.iloc[1]
        cards.append(Headline("Best purchase model on the holdout", str(e["label"]),
                              interval=f"MAE {e['mae']:.3f} vs {e2['mae']:.3f} ({e2['label']}); difference "
                                       f"{e2['mae_diff']:.2g} ± {e2['mae_diff_se']:.2g}",
                              detail=f"LOO best: {_loo_best(cmp.loo)}; see Model comparison"))  # fmt: skip
    auc = h["churn_auc"]
    best = max(auc, key=auc.get)
    cards.append(Headline("Churn ROC AUC (holdout)", f"{auc[best]:.3f}", detail=f"{best}; "
                          + ", ".join(f"{k} {v:.3f}" for k, v in auc.items() if k != best)))  # fmt: skip
    return cards


def _loo_best(loo: pd.DataFrame) -> str:
    """The best PSIS-LOO row's label (point fits' log L - k rows only when there is none)."""
    bayes = loo[loo["criterion"] == "PSIS-LOO"]
    return str((bayes if len(bayes) else loo)["label"].iloc[0])


def parameter_table(summary: pd.DataFrame, segment_level: bool) -> pd.DataFrame:
    """Posterior summary for people: segment-level parameters as a segment x parameter pivot of
    "mean (HDI low – high)", or the population-level ones as one row per parameter."""
    cell = summary.assign(value=[f"{format_number(m)} ({format_number(lo)} – {format_number(hi)})" for m, lo, hi in
                                 zip(summary["mean"], summary["hdi_low"], summary["hdi_high"], strict=True)])  # fmt: skip
    seg = cell["segment"].astype(str).str.len() > 0
    if segment_level:
        wide = cell[seg].pivot(index="segment", columns="parameter", values="value")
        return wide[list(dict.fromkeys(cell.loc[seg, "parameter"]))]
    cols = [c for c in ("parameter", "mean", "sd", "hdi_low", "hdi_high", "r_hat", "ess_bulk", "ess_tail") if c in cell]
    return cell.loc[~seg, cols].reset_index(drop=True)


def _span(lo: pd.Series, hi: pd.Series) -> list[str]:
    """An interval per row as "low – high"."""
    return [f"{format_number(a)} – {format_number(b)}" for a, b in zip(lo, hi, strict=True)]


def clv_table(summary: pd.DataFrame, segment: str, prob: float) -> pd.DataFrame:
    """A CLV summary (:meth:`PosteriorCLV.summary`) for people: customers, total and per-customer
    CLV with their HDIs as "low – high" (the run folder keeps every column)."""
    pct = f"{round(100 * prob)}% HDI"
    span = _span

    out = pd.DataFrame({
        segment: summary[segment].astype(str), "customers": summary["n_customers"],
        "total CLV ($)": summary["total_mean"], f"total, {pct}": span(summary["total_hdi_low"], summary["total_hdi_high"]),
        "CLV per customer ($)": summary["mean_mean"],
        f"per customer, {pct}": span(summary["mean_hdi_low"], summary["mean_hdi_high"]),
    })  # fmt: skip
    return out if segment != ALL_SEGMENTS else out.drop(columns=segment)


def independence_table(check: pd.DataFrame, segment: str) -> pd.DataFrame:
    """:func:`clvlab.models.gamma_gamma.independence_check` for people: correlations to two
    decimals with the Pearson interval as "low – high" (the run folder keeps every column)."""

    def r2(v: float) -> str:
        return f"{v:+.2f}".replace("-", "\u2212") if pd.notna(v) else "–"

    return pd.DataFrame({
        segment: check["segment"].astype(str), "repeat customers": check["n"],
        "Pearson r": [r2(v) for v in check["pearson_r"]],
        "95% CI": [f"{r2(a)} – {r2(b)}" if pd.notna(a) else "–" for a, b in zip(check["ci_low"], check["ci_high"],
                                                                                  strict=True)],
        "Spearman \u03c1": [r2(v) for v in check["spearman_rho"]],
    })  # fmt: skip


def acquisition_table(table: pd.DataFrame, segment: str, prob: float, period_name: str) -> pd.DataFrame:
    """:func:`clvlab.clv.clv_cac` for people: value and ratio with their HDIs as "low – high",
    payback as a median and interval of periods (the run folder keeps every column)."""
    pct = f"{round(100 * prob)}% HDI"
    span = _span

    def periods(v: float) -> str:
        return "never" if not pd.notna(v) or v == float("inf") else f"{v:.0f}"

    return pd.DataFrame({
        segment: table[segment].astype(str), "customers": table["customers"], "CAC ($)": table["cac"],
        "new-customer value ($)": table["value_mean"], f"value, {pct}": span(table["value_hdi_low"], table["value_hdi_high"]),
        "value / CAC": table["ratio_mean"], f"ratio, {pct}": span(table["ratio_hdi_low"], table["ratio_hdi_high"]),
        "P(ratio > 1)": [f"{v:.2f}" for v in table["p_ratio_gt_1"]],
        f"payback ({period_name})": [periods(m) if a == b == m else f"{periods(m)} ({periods(a)} – {periods(b)})"
                                     for m, a, b in zip(table["payback_median"], table["payback_low"],
                                                        table["payback_high"], strict=True)],
        "P(best ratio)": [f"{v:.2f}" for v in table["p_rank_1"]],
    })  # fmt: skip


def _pct(values: pd.Series) -> list[str]:
    return [f"{x:.0%}" if pd.notna(x) else "–" for x in values]


def behaviour_table(profile: pd.DataFrame, unit: str) -> pd.DataFrame:
    """What marks each behavioural segment (:meth:`BehaviouralSegments.profile`), for people."""
    out = pd.DataFrame({
        "segment": profile[BEHAVIOUR_COLUMN], "what marks it": profile["description"], "customers": profile["customers"],
        "repeat buyers": _pct(profile["repeat_rate"]),
        "repeat purchases": profile["frequency"], f"since last purchase ({unit})": profile["gap"],
        "spend per repeat ($)": profile["monetary_value"],
    })  # fmt: skip
    if "first_amount" in profile:
        out["first order ($)"] = profile["first_amount"]
        out["early repeats"] = profile["early_purchases"]
    return out


def behaviour_value_table(profile: pd.DataFrame, prob: float) -> pd.DataFrame:
    """What each behavioural segment is worth: revenue shares and CLV (the profile with ``clv=``)."""
    out = pd.DataFrame({"segment": profile[BEHAVIOUR_COLUMN], "customers": profile["customers"],
                        "share of customers": _pct(profile["share"])})  # fmt: skip
    if "revenue_share" in profile:
        out["calibration revenue share"] = _pct(profile["revenue_share"])
    if "holdout_revenue_share" in profile:
        out["holdout revenue share"] = _pct(profile["holdout_revenue_share"])
    if "clv_mean" in profile:
        out["CLV per customer ($)"] = profile["clv_mean"]
        out[f"CLV, {round(100 * prob)}% HDI"] = _span(profile["clv_low"], profile["clv_high"])
        out["CLV share"] = _pct(profile["clv_share"])
    return out


def _behaviour_section(rep: Report, results: StudyResults, period_name: str) -> None:
    """K-means behavioural segments: how k was chosen, what marks each segment, its value."""
    from .plots import segments as psg
    from .plots.segments import FEATURE_LABELS

    cfg, feat, c = results.config, results.features, results.clv
    b, seg = cfg.features.behaviour, feat.behaviour.segments
    sec, unit = BEHAVIOUR_SECTION, unit_name(cfg.features.time_unit, plural=True)
    chosen = seg.selection_.loc[seg.selection_["chosen"]].iloc[0]
    pooled = cfg.features.segment == BEHAVIOUR_COLUMN
    names = ", ".join(FEATURE_LABELS[name] for name in b.features)
    rep.add_text(sec, f"K-means on the standardised log(1 + x) of {names} (calibration period; early repeats: "
                      f"within {b.early_days} days of the first purchase). k = {seg.k_}: {seg.rule_} "
                      f"(silhouette {chosen['silhouette']:.2f}, stability {chosen['stability']:.2f}). Segments are "
                      "numbered from the least to the most engaged. "
                      + ("The models pool across these segments." if pooled else
                         f"The models pool by {cfg.features.segment}; CLV is summed by segment from the "
                         "per-customer posterior."))  # fmt: skip
    rep.add_figure(
        sec,
        psg.plot_k_selection(seg.selection_, min_stability=b.min_stability),
        "behaviour_k_selection",
        caption="Silhouette and stability of each k tried",
    )
    profile = c.behaviour_profile
    rep.add_table(sec, behaviour_table(profile, unit), caption="Segment profiles (calibration-period means)")
    sizes = profile.set_index(BEHAVIOUR_COLUMN)["customers"]
    rep.add_figure(
        sec,
        psg.plot_segment_centres(seg.centres_, seg.feature_means_, sizes),
        "behaviour_centres",
        caption="What sets each segment apart",
    )
    rep.add_table(sec, behaviour_value_table(profile, cfg.clv.hdi_prob),
                  caption=f"What each segment is worth: revenue shares and CLV over the next {cfg.clv.horizon} "
                          f"{period_name}")  # fmt: skip


def _channel_mix_section(rep: Report, results: StudyResults, period_name: str) -> None:
    """Which channel pays, how sure, and how much budget where (a config with ``acquisition.cac``)."""
    from .plots import acquisition as pa
    from .plots import clv as pc

    cfg, c = results.config, results.clv
    acq, c_cfg, ch = cfg.acquisition, cfg.clv, cfg.cac_segment
    horizon = c.new_customer.settings.horizon
    sec = "Channel mix"
    best = c.cac.iloc[0]
    rep.add_text(sec, f"What buying one more customer through each {ch} yields: the first order plus the discounted "
                      f"repeat purchases a new customer is expected to make over {horizon} {period_name} (its {ch}'s "
                      f"population parameters), at margin {c_cfg.margin:.0%}, against the {ch}'s CAC. "
                      f"{best[ch]} has the best return: {best['ratio_mean']:.2f}x its CAC "
                      f"(P(best) {best['p_rank_1']:.2f}).")  # fmt: skip
    rep.add_table(
        sec,
        acquisition_table(c.cac, ch, c_cfg.hdi_prob, period_name),
        caption=f"A new customer's value against its acquisition cost, by {ch}",
    )
    feat = results.features
    if feat.kpis is not None:
        from .features.kpis import value_concentration
        from .plots import kpis as pk

        k = feat.kpis.merge(c.cac[[ch, "cac", "value_mean", "ratio_mean"]], on=ch, how="left")
        k = k.rename(columns={"value_mean": "new-customer CLV", "ratio_mean": "CLV / CAC"})
        k = k.drop(columns=[col for col in k.columns if col.startswith("eligible_")])
        rep.add_table(sec, k, caption=f"Channel KPIs in the calibration period (to {cfg.features.calibration_end}): "
                                      "retention_<d>d = share of the customers acquired at least d days before its "
                                      "end who bought again within d days")  # fmt: skip
        rep.add_figure(
            sec,
            pk.plot_retention_matrix(feat.retention),
            "retention_matrix",
            caption="Monthly acquisition cohorts: share buying again in each month",
        )
        rep.add_table(sec, feat.migration, index=True,
                      caption="Customers by recency stage at two snapshots (new: first purchase within 60 days; "
                              "active: a purchase within 90 days; at risk: within 180; else lapsed)")  # fmt: skip
        revenue = feat.rfm["frequency"] * feat.rfm["monetary_value"].fillna(0.0)
        rep.add_figure(sec, pk.plot_lorenz({"calibration repeat revenue": value_concentration(revenue),
                                            f"CLV, next {c_cfg.horizon} {period_name}":
                                                value_concentration(c.customers["clv_mean"])}),
                       "value_concentration", caption="Value concentration across customers")  # fmt: skip
    rep.add_figure(sec, pc.plot_cac_ratio(c.cac, segment=ch, what="new-customer value / CAC", prob=c_cfg.hdi_prob),
                   "clv_cac")  # fmt: skip
    rep.add_figure(
        sec,
        pa.plot_payback(c.new_customer, acq.cac),
        "payback",
        caption="Payback: when the cumulative discounted margin of a new customer reaches its CAC",
    )
    if c.budget is not None:
        s = c.budget.summary.set_index("strategy")
        opt, alt = s.iloc[0], s.iloc[1]
        rep.add_text(sec, f"Budget {_money(acq.budget)}: the allocation below maximises the expected net value "
                          f"(value of the customers bought, less the spend): {_money(opt['expected_net_value'])}, "
                          f"with a 5% bad case of {_money(opt['net_value_q05'])} and P(loss) {opt['p_loss']:.2f}. "
                          f"Putting it all on the best point estimate ({s.index[1].removeprefix('all on ')}) "
                          f"would expect {_money(alt['expected_net_value'])} (5% bad case "
                          f"{_money(alt['net_value_q05'])}, P(loss) {alt['p_loss']:.2f})."
                          + (" CAC rises with volume where a saturation is configured "
                             "(n = N (1 - exp(-S / (CAC N))))." if acq.saturation else ""))  # fmt: skip
        rep.add_figure(
            sec, pa.plot_budget(c.budget), "budget", caption="The budget decision under posterior uncertainty"
        )
        rep.add_table(
            sec, c.budget.summary, caption="Strategies compared: the optimum and all-in on the best point estimate"
        )
    residual = c.residual_cac.assign(**{ch: c.residual_cac[ch].astype(str)})
    rep.add_table(sec, residual[[ch, "cac", "clv_mean", "ratio_mean", "ratio_hdi_low", "ratio_hdi_high"]],
                  caption=f"Residual value of the customers already acquired (their next {c_cfg.horizon} {period_name}, "
                          "mean per customer) / CAC: the existing base, not what a new customer is worth")  # fmt: skip


def build_report(study: Study, results: StudyResults) -> Path:
    """Write the run's report into ``study.out_report_dir``; returns the path of ``index.html``."""
    from .plots import bgnbd as pb
    from .plots import clv as pc
    from .plots import rfm as pr
    from .plots import survival as ps

    cfg = results.config
    f, m, c_cfg = cfg.features, cfg.purchase, cfg.clv
    unit = unit_name(f.time_unit, plural=True)
    d, feat, p, s, c, ch = results.data, results.features, results.purchase, results.spend, results.clv, results.churn
    rep = Report(title=f"clvlab run: {cfg.name}", directory=study.out_report_dir,
                 subtitle=f"data: {cfg.data.source} ({Path(d.validation.source).name}) · "
                          f"{'quick run · ' if cfg.quick else ''}seed {cfg.seed}")  # fmt: skip
    rep.set_headline(headline_cards(results))
    rep.add_badge(diagnostics_badge(f"{MODEL_LABELS[cfg.purchase.model]} sampler", p.model))
    rep.add_badge(diagnostics_badge("Gamma-Gamma sampler", s.model))
    if results.compare.fits:
        rep.add_badge(comparison_badge(results.compare.fits, exclude=p.model))
    for name in SECTIONS:
        rep.section(name)
        if name == "Posterior CLV" and feat.behaviour is not None:
            rep.section(BEHAVIOUR_SECTION)

    sec = "Data"
    rep.add_text(
        sec,
        f"{len(d.transactions):,} purchase days of {d.transactions['customer_id'].nunique():,} customers "
        f"after validation (several transactions of a customer on one day count as one purchase).",
    )
    rep.add_table(sec, d.validation.to_frame(readable=True), caption="Validation report")

    sec = "Customers"
    rep.add_table(sec, describe_table(feat.rfm), caption=f"RFM summary of the calibration period (times in {unit})")
    rep.add_figure(sec, pr.plot_rfm_segments(feat.rfm), "rfm_segments", caption="RFM-score segments")
    rep.add_figure(sec, pr.plot_cohort_sizes(feat.cohort_sizes), "cohort_sizes", caption="Acquisition cohorts")
    rep.add_figure(
        sec,
        pr.plot_interpurchase_times(feat.interpurchase),
        "interpurchase_times",
        caption="Days between consecutive purchases",
    )

    sec = "Purchase model"
    model = p.model
    rep.add_text(
        sec,
        f"{MODEL_LABELS[m.model]}, pooling {m.pooling} by {f.segment}; {model.n_patterns_:,} likelihood patterns for "
        f"{len(feat.rfm):,} customers" + ("; fit reused from the cache." if p.cached else "."),
    )
    summary = p.summary
    rep.add_table(
        sec,
        parameter_table(summary, True),
        caption=f"Segment parameters: posterior mean ({round(100 * c_cfg.hdi_prob)}% HDI)",
        index=True,
    )
    rep.add_table(sec, parameter_table(summary, False), caption="Population-level parameters")
    heat_t = m.heatmap_horizon or p.holdout_duration
    thin = max(1, m.draws // m.heatmap_draws) if m.method == "nuts" else 1
    for quantity in ("p_alive", "expected_purchases"):
        rep.add_figure(
            sec, pb.plot_frequency_recency(model, quantity, t=heat_t, thin=thin), f"bgnbd_{quantity}_heatmap"
        )
    if p.pooling_fits:
        sizes = feat.rfm[f.segment].value_counts().to_dict()
        rep.add_figure(
            sec,
            pb.plot_segment_forest(p.pooling_fits, segment_sizes=sizes),
            "bgnbd_pooling_forest",
            caption="Segment parameters: pooled vs unpooled vs partial pooling (shrinkage)",
        )
    rep.add_table(
        sec, p.holdout_check, caption=f"Holdout ({p.holdout_duration:g} {unit}): predicted vs actual repeat purchases"
    )
    rep.add_figure(
        sec,
        pb.plot_repeat_purchase_ppc(
            feat.rfm["frequency_holdout"],
            p.holdout_draws,
            title="Posterior predictive check: holdout repeat purchases",
            period=f"in the {p.holdout_duration:g}-{unit[:-1]} holdout",
        ),
        "bgnbd_holdout_ppc",
    )

    sec = "Spend model (Gamma-Gamma)"
    if len(s.excluded):
        rep.add_note(
            sec,
            f"{len(s.excluded):,} repeat customer(s) with zero mean repeat spend were left out of the "
            f"spend-model fit (e.g. {list(s.excluded['customer_id'].head(3))}); their CLV is still computed.",
        )
    rep.add_table(
        sec,
        independence_table(s.independence, f.segment or "segment"),
        caption="Independence assumption: correlation of frequency and mean repeat spend (near 0 is what "
        "Gamma-Gamma assumes)",
    )
    gsum = s.summary
    rep.add_table(sec, parameter_table(gsum, True), caption="Segment parameters: posterior mean (HDI)", index=True)
    rep.add_table(sec, parameter_table(gsum, False), caption="Population-level parameters")
    rep.add_figure(sec, pc.plot_spend_ppc(s.fit_data["monetary_value"].to_numpy(), s.spend_replicates), "gg_spend_ppc")

    sec = "Posterior CLV"
    rep.add_text(
        sec,
        f"CLV over the next {c_cfg.horizon} {unit_name(c_cfg.period, plural=True)}, margin {c_cfg.margin:.0%}, "
        f"discount {c_cfg.discount_rate:.1%} a period, {c.posterior.settings.n_draws:,} posterior draws.",
    )
    for col, table in c.by_segment.items():
        rep.add_table(sec, clv_table(table, col, c_cfg.hdi_prob),
                      caption=f"CLV {'of all customers' if col == ALL_SEGMENTS else 'by ' + col}: posterior mean of "
                              "the total and of the mean per customer")  # fmt: skip
        if col != ALL_SEGMENTS:
            rep.add_figure(sec, pc.plot_clv_distribution(c.posterior, segment=col), f"clv_by_{col}")
    rep.add_table(
        sec,
        c.stage_tier,
        caption="Lifecycle stage x value tier (customers; the CRM export has one row each)",
        index=True,
    )
    period_name = unit_name(c_cfg.period, plural=True)
    rep.add_figure(
        sec,
        pc.plot_sensitivity(
            c.sensitivity, horizon=f"{c_cfg.horizon} {period_name}", period=period_name[:-1], prob=c_cfg.hdi_prob
        ),
        "clv_sensitivity",
        caption="CLV under discount-rate and margin assumptions",
    )
    if feat.behaviour is not None:
        _behaviour_section(rep, results, period_name)
    if c.cac is not None:
        _channel_mix_section(rep, results, period_name)

    sec = "Churn"
    rep.add_text(sec, ch.lapse_explanation)
    rep.add_figure(
        sec,
        ps.plot_km_by_segment(ch.km, time_unit=f.time_unit),
        "km_by_segment",
        caption=f"Time to lapse (no purchase within {ch.lapse_after:g} {unit}) by {f.segment}",
    )
    rep.add_figure(
        sec,
        ps.plot_hazard_ratios(ch.hazard_ratios),
        "cox_hazard_ratios",
        caption=f"Cox model (strata = {f.segment}); held-out concordance {ch.concordance:.3f}",
    )
    rep.add_table(sec, ch.ph_check, caption="Proportional-hazards check (Schoenfeld residuals)")
    rep.add_table(
        sec,
        ch.comparison[ch.comparison["segment"] == ALL_SEGMENTS],
        caption="Holdout churn (no purchase in the holdout window): AUC and Brier score",
    )
    rep.add_figure(sec, ps.plot_roc_curves(ch.roc, ch.comparison), "churn_roc")
    rep.add_figure(sec, ps.plot_calibration_curves(ch.calibration, ch.comparison), "churn_calibration")

    if results.compare.comparison is not None:
        _comparison_section(rep, results)

    rep.set_footer(config_yaml=yaml.safe_dump(cfg.to_dict(), sort_keys=False), data_hash=d.hash,
                   versions=package_versions(), timings=dict(results.timings))  # fmt: skip
    rep.write(self_contained=cfg.outputs.self_contained)  # index.html (+ report_standalone.html)
    return rep.directory / "index.html"


def comparison_tables(cmp: Any) -> dict[str, pd.DataFrame]:
    """The comparison's tables for people: LOO, holdout errors and totals, churn (the run folder keeps every column)."""
    pct = f"{round(100 * cmp.hdi_prob)}% HDI"
    loo = cmp.loo
    loo_t = pd.DataFrame({
        "model": loo["label"], "criterion": loo["criterion"], "elpd": loo["elpd"], "se": loo["se"],
        "difference to best": loo["elpd_diff"], "se of difference": loo["se_diff"], "p_loo": loo["p_loo"],
        "Pareto k > 0.7": loo["n_k_gt_0.7"],
    })  # fmt: skip
    hold = cmp.holdout[cmp.holdout["segment"] == ALL_SEGMENTS].set_index("label")
    err = cmp.errors
    err_t = pd.DataFrame({
        "model": err["label"], "MAE": err["mae"], "RMSE": err["rmse"], "MAE minus best": err["mae_diff"],
        "se (paired)": err["mae_diff_se"], "total error": [f"{v:+.1f}%" for v in err["total_error_pct"]],
        "predicted total": hold.loc[err["label"], "predicted_mean"].to_numpy(),
        f"total, {pct}": [f"{format_number(a)} – {format_number(b)}" for a, b in
                          zip(hold.loc[err["label"], "predicted_hdi_low"], hold.loc[err["label"], "predicted_hdi_high"],
                              strict=True)],
        "covers actual": ["yes" if v else "no" for v in hold.loc[err["label"], "covered"]],
    })  # fmt: skip
    churn = cmp.churn.pivot(index="label", columns="score", values="auc").add_prefix("AUC ")
    brier = cmp.churn.pivot(index="label", columns="score", values="brier").add_prefix("Brier ")
    churn_t = churn.join(brier).loc[err["label"]].rename_axis("model").reset_index()
    return {"loo": loo_t, "errors": err_t, "churn": churn_t}


def _comparison_section(rep: Report, results: StudyResults) -> None:
    from .plots import compare as pk

    cmp, cfg = results.compare.comparison, results.config
    sec, prob = "Model comparison", cmp.hdi_prob
    unit = unit_name(cfg.features.time_unit, plural=True)
    rep.add_text(sec, cmp.verdict)
    rep.add_text(sec, "Every model is fitted on the same calibration customers and scored on the same holdout "
                      f"({results.purchase.holdout_duration:g} {unit}). MLE rows are flat-prior pooled MAP fits "
                      "(the classic maximum-likelihood estimate): their intervals carry process noise only. "
                      "The NBD row has no dropout at all: the floor every model must beat.")  # fmt: skip
    tables = comparison_tables(cmp)
    rep.add_table(
        sec, tables["loo"], caption="Leave-one-out fit of the calibration data (PSIS-LOO; higher elpd is better)"
    )
    rep.add_figure(sec, pk.plot_loo(cmp.loo), "compare_loo")
    rep.add_table(sec, tables["errors"], caption="Holdout: per-customer error of the expected repeat purchases and the "
                                                 "posterior predictive total")  # fmt: skip
    rep.add_figure(sec, pk.plot_holdout_totals(cmp.holdout, prob), "compare_holdout_totals")
    shown = headline_labels(cmp.tracking["label"])
    rep.add_figure(sec, pk.plot_tracking(cmp.tracking, prob, labels=shown, time_unit=cfg.features.time_unit),
                   "compare_tracking", caption="Weekly and cumulative repeat purchases: actual (counted from the "
                   "transaction log) vs each model")  # fmt: skip
    rep.add_figure(sec, pk.plot_conditional_expectations(cmp.conditional, prob, labels=shown), "compare_conditional")
    rep.add_table(sec, tables["churn"], caption="Holdout churn (no purchase in the holdout): ROC AUC and Brier score")
