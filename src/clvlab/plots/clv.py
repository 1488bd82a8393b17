"""Figures for posterior CLV and the spend model.

Each function takes results and returns a Figure (no I/O), in the clvlab style
(:mod:`clvlab.plots`). Credible intervals are HDIs (:func:`clvlab.stats.hdi`, or the HDI
columns of the CLV tables) and labelled so. Money axes carry ``currency`` (default ``"$"``);
CLV axes name the horizon of the CLV result (``result.settings``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from clvlab.choices import ALL_SEGMENTS, unit_name
from clvlab.plots import category_ticks, interval_label, segment_colors, styled
from clvlab.stats import HDI_PROB, hdi

__all__ = ["plot_cac_ratio", "plot_clv_distribution", "plot_sensitivity", "plot_spend_ppc"]


def _segment_arg(segment: str | None, by: str | None, default: str, func: str) -> str:
    """Resolve the new ``segment=`` and the deprecated ``by=`` keyword of a plot function."""
    if by is not None:
        if segment is not None and segment != by:
            raise TypeError(f"{func}: got segment={segment!r} and by={by!r}; pass only segment=")
        warnings.warn(f"{func}(by=...) is deprecated: use segment=...", DeprecationWarning, stacklevel=4)
        segment = by
    return default if segment is None else segment


def _money_fmt(currency: str):
    def fmt(v: float, _pos: Any = None) -> str:
        body = f"{v:,.0f}" if abs(v) >= 10 or v == 0 else f"{v:,.3g}"
        return f"{currency}{body}" if len(currency) <= 1 else f"{body} {currency}"

    return fmt


def _settings(result: Any) -> dict[str, Any]:
    """A CLV result's settings as a dict (a ``CLVSettings`` dataclass or a plain dict)."""
    st = getattr(result, "settings", None)
    if st is None:
        return {}
    if isinstance(st, dict):
        return st
    if hasattr(st, "to_dict"):
        return dict(st.to_dict())
    return dict(vars(st))


def horizon_text(settings: dict[str, Any]) -> str:
    """``"over 12 months"`` from a CLV result's settings (empty when they do not say).

    The CLV period is ``settings["period"]`` (``CLVSettings``) or, in older results,
    ``settings["time_unit"]``.
    """
    h = settings.get("horizon")
    unit = settings.get("period") or settings.get("time_unit")
    if h is None:
        return ""
    name = unit_name(unit) if unit else "period"
    return f"over {h:g} {name}{'' if h == 1 else 's'}"


def _group_dim(da: Any) -> str:
    others = [d for d in da.dims if d != "draw"]
    return others[0] if others else ALL_SEGMENTS


@styled
def plot_clv_distribution(
    result: Any, segment: str | None = None, *, by: str | None = None, currency: str = "$", prob: float | None = None
) -> Figure:
    """Customer CLV by segment: distribution of customers' CLV and posterior of the segment mean.

    Parameters
    ----------
    result : PosteriorCLV
        From :func:`clvlab.clv.customer_lifetime_value`; ``result.group_means(segment)``
        gives the per-draw mean CLV per customer of each group.
    segment : str, optional
        Grouping column (e.g. ``"cohort"``, ``"channel"``); default ``"all"`` (whole base).
    by : str, optional
        Deprecated alias of ``segment``.
    currency : str
        Currency symbol for the axis labels.
    prob : float, optional
        HDI mass; default the result's ``settings.hdi_prob``.

    Returns
    -------
    Figure
        Left: violins of the customers' posterior-mean CLV per group (log scale). Right: the
        posterior of each group's mean CLV per customer (up to 3 groups: histograms of the
        draws; more groups: posterior mean and HDI, groups on a shared vertical axis so the
        labels never overlap).
    """
    key = _segment_arg(segment, by, ALL_SEGMENTS, "plot_clv_distribution")
    cust = result.customers
    means = result.group_means(key)
    gdim = _group_dim(means)
    settings = _settings(result)
    prob = prob or settings.get("hdi_prob") or HDI_PROB
    horizon = horizon_text(settings)
    groups_raw = list(means[gdim].values) if gdim in means.dims else [ALL_SEGMENTS]
    groups = [str(g) for g in groups_raw]
    n = len(groups)
    col = key if key in cust.columns else None
    vals = [np.log10(1.0 + cust.loc[cust[col].astype(str) == g, "clv_mean"].to_numpy(float)) if col
            else np.log10(1.0 + cust["clv_mean"].to_numpy(float)) for g in groups]  # fmt: skip
    draws = [np.asarray(means.sel({gdim: g}).values if gdim in means.dims else means.values, float) for g in groups_raw]
    clv_label = f"CLV {horizon} ({currency})".replace("  ", " ")
    what = "all customers" if key == ALL_SEGMENTS else f"by {key}"
    horizontal = n > 3
    fig = Figure(figsize=(11, max(4.5, 0.34 * n + 2.0)) if horizontal else (11, 4.5))
    ax0, ax1 = fig.subplots(1, 2, sharey=horizontal, width_ratios=[1, 1])
    vmax = max((v.max() for v in vals if len(v)), default=1.0)
    ticks = np.array([0, 10, 100, 1000, 10000, 100000])
    ticks = ticks[np.log10(1 + ticks) <= max(vmax * 1.05, np.log10(1 + 100))]
    pos = np.arange(1, n + 1)
    nonempty = [i for i, v in enumerate(vals) if len(v)]
    if nonempty:
        parts = ax0.violinplot(
            [vals[i] for i in nonempty],
            positions=pos[nonempty] if not horizontal else n + 1 - pos[nonempty],
            showmedians=True,
            orientation="horizontal" if horizontal else "vertical",
            widths=0.8 if horizontal else 0.55,
        )
        for body in parts["bodies"]:
            body.set_facecolor("#4C72B0")
            body.set_alpha(0.45)
        for k in ("cbars", "cmins", "cmaxes", "cmedians"):
            if k in parts:
                parts[k].set_color("#2F4B7C")
                parts[k].set_linewidth(1.0)
    fmt = _money_fmt(currency)
    if horizontal:
        y = n + 1 - pos  # first group at the top
        category_ticks(ax0, y, groups, axis="y", max_labels=40)
        ax0.set_ylabel(key)
        ax0.set_xticks(np.log10(1 + ticks), [fmt(t) for t in ticks])
        ax0.set_xlim(0, max(np.log10(1 + ticks[-1]), vmax * 1.05))
        ax0.set_xlabel(f"customer {clv_label}, posterior mean (log scale)")
        ax0.grid(axis="x")
    else:
        category_ticks(ax0, pos, groups)
        ax0.set_yticks(np.log10(1 + ticks), [fmt(t) for t in ticks])
        ax0.set_ylim(0, max(np.log10(1 + ticks[-1]), vmax * 1.05))
        ax0.set_ylabel(f"customer {clv_label},\nposterior mean (log scale)")
        ax0.set_xlabel(key if key != ALL_SEGMENTS else "")
        if key == ALL_SEGMENTS:
            ax0.set_xticks([1], ["all customers"])
        ax0.grid(axis="y")
    ax0.set_title(f"Customer CLV, {what}")
    if horizontal:
        mean = np.array([d.mean() for d in draws])
        lo, hi = (np.array(v) for v in zip(*(hdi(d, prob) for d in draws), strict=True))
        ax1.hlines(y, lo, hi, color="#4C72B0", lw=2.5)
        ax1.plot(mean, y, "o", color="#1F2937", ms=5)
        ax1.set_xlabel(f"mean {clv_label} per customer\n(dot: posterior mean; bar: {interval_label(prob)})")
        ax1.xaxis.set_major_formatter(FuncFormatter(fmt))
        ax1.grid(axis="x")
        ax1.tick_params(axis="y", labelleft=False)
    else:
        for d, g in zip(draws, groups, strict=True):
            lo, hi = hdi(d, prob)
            ax1.hist(d, bins=30, alpha=0.5, density=True, label=f"{g}: {fmt(d.mean())} [{fmt(lo)}, {fmt(hi)}]")
        ax1.set_xlabel(f"mean {clv_label} per customer (posterior draws)")
        ax1.set_ylabel("posterior density")
        ax1.set_yticks([])
        ax1.xaxis.set_major_formatter(FuncFormatter(fmt))
        ax1.legend(title=f"mean [{interval_label(prob)}]")
    ax1.set_title(f"Posterior of the mean CLV per customer ({interval_label(prob)})")
    return fig


@styled
def plot_cac_ratio(
    table: pd.DataFrame,
    segment: str | None = None,
    *,
    by: str | None = None,
    prob: float = HDI_PROB,
    what: str = "CLV / CAC",
) -> Figure:
    """CLV/CAC per channel: posterior mean and HDI, break-even line at 1, P(>1) and P(rank 1).

    Parameters
    ----------
    table : DataFrame
        From :func:`clvlab.clv.cac_ratio` (columns ``<segment>``, ``ratio_mean``,
        ``ratio_hdi_low``, ``ratio_hdi_high``, ``p_ratio_gt_1``, ``p_rank_1``, ``expected_rank``).
    segment : str, optional
        The channel column; default ``"channel"``.
    by : str, optional
        Deprecated alias of ``segment``.
    prob : float
        The HDI mass of the table's interval columns (for the label).
    what : str
        What the ratio divides (axis label), e.g. "new-customer value / CAC"
        (:func:`clvlab.clv.clv_cac`).
    """
    key = _segment_arg(segment, by, "channel", "plot_cac_ratio")
    t = table.sort_values("ratio_mean")
    fig = Figure(figsize=(9.5, 0.55 * len(t) + 2.0))
    ax = fig.subplots()
    y = np.arange(len(t))
    lo, hi = t["ratio_hdi_low"].to_numpy(), t["ratio_hdi_high"].to_numpy()
    mean = t["ratio_mean"].to_numpy()
    colors = np.where(lo > 1, "#55A868", np.where(hi < 1, "#C44E52", "#DD8452"))
    ax.hlines(y, lo, hi, color=colors, lw=4)
    ax.scatter(mean, y, color="#1F2937", zorder=3, s=30)
    ax.axvline(1.0, color="grey", ls="--", lw=1)
    ax.text(1.0, len(t) - 0.45, " break-even", color="grey", fontsize=10, va="bottom")
    for yi, (_, row) in zip(y, t.iterrows(), strict=True):
        ax.annotate(f"P(>1) {row['p_ratio_gt_1']:.2f}   P(best) {row['p_rank_1']:.2f}   E[rank] {row['expected_rank']:.1f}",
                    (row["ratio_hdi_high"], yi), xytext=(8, 0), textcoords="offset points", va="center", fontsize=10)  # fmt: skip
    ax.set_yticks(y, t[key].astype(str))
    ax.set_ylabel(key)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlim(min(lo.min(), 1.0) / 1.5, max(hi.max(), 1.0) * 8)
    ax.set_ylim(-0.6, len(t) - 0.1)
    ax.grid(axis="x")
    ax.set_xlabel(f"{what} (ratio; posterior mean and {interval_label(prob)}; log scale)")
    ax.set_title("Return on acquisition spend by " + key)
    return fig


@styled
def plot_sensitivity(
    sens: pd.DataFrame,
    whatif: pd.DataFrame | None = None,
    group: str | None = None,
    *,
    currency: str = "$",
    horizon: str | None = None,
    period: str = "period",
    prob: float = HDI_PROB,
) -> Figure:
    """CLV sensitivity to discount rate and margin, and the retention what-if.

    Parameters
    ----------
    sens : DataFrame
        From :func:`clvlab.clv.sensitivity` (discount_rate, margin, group, total_mean,
        total_hdi_low/high).
    whatif : DataFrame, optional
        From :func:`clvlab.clv.retention_whatif`; adds the right panel.
    group : str, optional
        The group of ``sens`` to show (default: its first).
    currency : str
        Currency symbol of the CLV axis.
    horizon : str, optional
        The CLV horizon for the axis label, e.g. ``"12 months"``.
    period : str
        The discounting period, e.g. ``"month"``.
    prob : float
        HDI mass of the table's interval columns (for the label).

    Returns
    -------
    Figure
        Left: total CLV vs discount rate, one line (with HDI band) per margin, for one group.
        Right (with ``whatif``): CLV change (%) vs dropout-mean scale per segment, with HDI bands.
    """
    ncol = 2 if whatif is not None else 1
    n_seg = whatif["segment"].nunique() if whatif is not None else 0
    fig = Figure(figsize=(6.0 * ncol + (1.6 if n_seg > 6 else 0), 4.6))
    axes = fig.subplots(1, ncol, squeeze=False)
    ax = axes[0, 0]
    group = group or str(sens["group"].iloc[0])
    s = sens[sens["group"].astype(str) == group]
    for m, d in s.groupby("margin"):
        d = d.sort_values("discount_rate")
        (line,) = ax.plot(100 * d["discount_rate"], d["total_mean"], marker="o", label=f"margin {m:.0%}")
        ax.fill_between(
            100 * d["discount_rate"], d["total_hdi_low"], d["total_hdi_high"], alpha=0.2, lw=0, color=line.get_color()
        )
        ax.annotate(
            f"margin {m:.0%}",
            (100 * d["discount_rate"].iloc[-1], d["total_mean"].iloc[-1]),
            xytext=(8, 0),
            textcoords="offset points",
            va="center",
            fontsize=10.5,
            color=line.get_color(),
        )  # direct labels
    ax.set_xlabel(f"discount rate per {period} (%)")
    ax.set_ylabel(f"total CLV{' over ' + horizon if horizon else ''} ({currency})")
    ax.yaxis.set_major_formatter(FuncFormatter(_money_fmt(currency)))
    ax.set_ylim(bottom=0)
    ax.grid(axis="y")
    ax.set_title(f"CLV sensitivity ({group}; bands: {interval_label(prob)})")
    x0, x1 = ax.get_xlim()
    ax.set_xlim(x0, x1 + 0.22 * (x1 - x0))  # room for the direct labels
    if whatif is not None:
        ax = axes[0, 1]
        colors = segment_colors(n_seg)
        for (g, d), color in zip(whatif.groupby("segment"), colors, strict=True):
            d = d.sort_values("dropout_scale")
            base = d["total_mean"].to_numpy() - d["uplift_mean"].to_numpy()
            ax.plot(d["dropout_scale"], d["uplift_pct"], marker="o", ms=4, label=str(g), color=color)
            ax.fill_between(
                d["dropout_scale"],
                100 * d["uplift_hdi_low"] / base,
                100 * d["uplift_hdi_high"] / base,
                alpha=0.12,
                lw=0,
                color=color,
            )
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("dropout-mean scale s (phi -> s * phi, kappa kept)")
        ax.set_ylabel("CLV change vs s = 1 (%)")
        ax.set_title(f"Retention what-if by segment ({interval_label(prob)})")
        ax.grid(axis="y")
        if n_seg > 6:
            ax.legend(
                title="segment", loc="center left", bbox_to_anchor=(1.02, 0.5), ncol=1 if n_seg <= 14 else 2, fontsize=9
            )
        else:
            ax.legend(title="segment")
    return fig


@styled
def plot_spend_ppc(observed: np.ndarray, replicated: np.ndarray, n_show: int = 40, *, currency: str = "$") -> Figure:
    """Posterior predictive check of the spend model: ECDF and density of observed mean repeat
    spend against ``n_show`` replicated data sets (``replicated``: (n_rep, customers)).
    ``currency`` labels the spend axis."""
    obs = np.asarray(observed, dtype=float)
    rep = np.asarray(replicated, dtype=float).reshape(-1, obs.size)
    idx = np.linspace(0, rep.shape[0] - 1, min(n_show, rep.shape[0])).round().astype(int)
    fig = Figure(figsize=(11, 4.5))
    ax0, ax1 = fig.subplots(1, 2)
    lo = max(min(obs.min(), np.quantile(rep, 0.001)), 1e-2)
    hi = max(obs.max(), np.quantile(rep, 0.999))
    bins = np.logspace(np.log10(lo), np.log10(hi), 40)
    for i in idx:
        r = np.sort(rep[i])
        ax0.step(r, np.arange(1, r.size + 1) / r.size, color="#4C72B0", alpha=0.15, lw=0.8)
        h, _ = np.histogram(rep[i], bins=bins, density=True)
        ax1.step(bins[:-1], h, where="post", color="#4C72B0", alpha=0.15, lw=0.8)
    o = np.sort(obs)
    ax0.step(o, np.arange(1, o.size + 1) / o.size, color="k", lw=2, label="observed")
    ax0.plot([], [], color="#4C72B0", label=f"replicated ({len(idx)} posterior predictive draws)")
    h, _ = np.histogram(obs, bins=bins, density=True)
    ax1.step(bins[:-1], h, where="post", color="k", lw=2, label="observed")
    fmt = _money_fmt(currency)
    for ax in (ax0, ax1):
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(fmt))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"mean repeat spend per customer ({currency}, log scale)")
        ax.grid(axis="y")
    ax0.set_ylabel("share of customers (ECDF)")
    ax0.set_ylim(0, 1.02)
    ax1.set_ylabel("density")
    ax1.set_yticks([])
    ax0.set_title("Spend model PPC: ECDF")
    ax1.set_title("Spend model PPC: distribution")
    ax0.legend(loc="upper left")
    return fig
