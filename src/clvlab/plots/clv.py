"""Figures for posterior CLV and the spend model. Each function takes results and returns a Figure (no I/O)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["plot_cac_ratio", "plot_clv_distribution", "plot_sensitivity", "plot_spend_ppc"]


def plot_clv_distribution(result: Any, by: str = "all") -> Figure:
    """Left: distribution of customers' posterior-mean CLV per group (log scale).
    Right: posterior of the mean CLV per customer of each group (from the per-draw totals)."""
    cust = result.customers
    means = result.group_means(by)
    groups = [str(g) for g in means[by].values]
    fig = Figure(figsize=(11, 4.2), layout="tight")
    ax0, ax1 = fig.subplots(1, 2)
    vals = [np.log10(1.0 + cust.loc[cust[by].astype(str) == g, "clv_mean"].to_numpy()) if by != "all"
            else np.log10(1.0 + cust["clv_mean"].to_numpy()) for g in groups]  # fmt: skip
    ax0.violinplot(vals, showmedians=True)
    ax0.set_xticks(range(1, len(groups) + 1), groups)
    ticks = np.array([0, 1, 10, 100, 1000, 10000])
    ax0.set_yticks(np.log10(1 + ticks), [f"{t:g}" for t in ticks])
    ax0.set_ylim(0, max(np.log10(1 + ticks[-2]), max(v.max() for v in vals if len(v)) * 1.05))
    ax0.set_ylabel("customer CLV (posterior mean)")
    ax0.set_title("Customer CLV by " + by)
    for j, g in enumerate(groups):
        d = means.sel({by: means[by].values[j]}).values
        lo, hi = np.quantile(d, [0.03, 0.97])
        ax1.hist(d, bins=30, alpha=0.45, density=True, label=f"{g}: {d.mean():.1f} [{lo:.1f}, {hi:.1f}]")
    ax1.set_xlabel("mean CLV per customer (posterior draws)")
    ax1.set_ylabel("density")
    ax1.set_title("Posterior of segment mean CLV (94% interval)")
    ax1.legend(fontsize=8)
    return fig


def plot_cac_ratio(table: pd.DataFrame, by: str = "channel") -> Figure:
    """CLV/CAC per channel: posterior mean and HDI, break-even line at 1, P(>1) and P(rank 1)."""
    t = table.sort_values("ratio_mean")
    fig = Figure(figsize=(8, 0.6 * len(t) + 1.8), layout="tight")
    ax = fig.subplots()
    y = np.arange(len(t))
    lo, hi = t["ratio_hdi_low"].to_numpy(), t["ratio_hdi_high"].to_numpy()
    mean = t["ratio_mean"].to_numpy()
    colors = np.where(lo > 1, "tab:green", np.where(hi < 1, "tab:red", "tab:orange"))
    ax.hlines(y, lo, hi, color=colors, lw=3)
    ax.scatter(mean, y, color="k", zorder=3)
    ax.axvline(1.0, color="grey", ls="--", lw=1)
    ax.text(1.0, len(t) - 0.45, " break-even", color="grey", fontsize=8, va="bottom")
    for yi, (_, row) in zip(y, t.iterrows(), strict=True):
        ax.annotate(f"P(>1)={row['p_ratio_gt_1']:.2f}  P(best)={row['p_rank_1']:.2f}  E[rank]={row['expected_rank']:.1f}",
                    (row["ratio_hdi_high"], yi), xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)  # fmt: skip
    ax.set_yticks(y, t[by].astype(str))
    ax.set_xscale("log")
    ax.set_xlim(min(lo.min(), 1.0) / 1.5, max(hi.max(), 1.0) * 6)
    ax.set_ylim(-0.6, len(t) - 0.1)
    ax.set_xlabel("CLV / CAC (posterior mean, 94% HDI; log scale)")
    ax.set_title("Return on acquisition spend by " + by)
    return fig


def plot_sensitivity(sens: pd.DataFrame, whatif: pd.DataFrame | None = None, group: str | None = None) -> Figure:
    """Left: total CLV vs discount rate, one line (with HDI band) per margin, for one group.
    Right (with ``whatif``): CLV uplift (%) vs dropout-mean scale per segment."""
    ncol = 2 if whatif is not None else 1
    fig = Figure(figsize=(5.5 * ncol, 4.2), layout="tight")
    axes = fig.subplots(1, ncol, squeeze=False)
    ax = axes[0, 0]
    group = group or str(sens["group"].iloc[0])
    s = sens[sens["group"].astype(str) == group]
    for m, d in s.groupby("margin"):
        d = d.sort_values("discount_rate")
        ax.plot(100 * d["discount_rate"], d["total_mean"], marker="o", label=f"margin {m:g}")
        ax.fill_between(100 * d["discount_rate"], d["total_hdi_low"], d["total_hdi_high"], alpha=0.2)
    ax.set_xlabel("discount rate per period (%)")
    ax.set_ylabel("total CLV")
    ax.set_title(f"CLV sensitivity ({group})")
    ax.legend(fontsize=8)
    if whatif is not None:
        ax = axes[0, 1]
        for g, d in whatif.groupby("segment"):
            d = d.sort_values("dropout_scale")
            base = d["total_mean"].to_numpy() - d["uplift_mean"].to_numpy()
            ax.plot(d["dropout_scale"], d["uplift_pct"], marker="o", label=str(g))
            ax.fill_between(d["dropout_scale"], 100 * d["uplift_hdi_low"] / base, 100 * d["uplift_hdi_high"] / base, alpha=0.15)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("dropout mean scale (phi' = s * phi, kappa kept)")
        ax.set_ylabel("CLV change vs s = 1 (%)")
        ax.set_title("Retention what-if by segment")
        ax.legend(fontsize=8)
    return fig


def plot_spend_ppc(observed: np.ndarray, replicated: np.ndarray, n_show: int = 40) -> Figure:
    """Posterior predictive check of the spend model: ECDF and density of observed mean repeat
    spend against ``n_show`` replicated data sets (``replicated``: (n_rep, customers))."""
    obs = np.asarray(observed, dtype=float)
    rep = np.asarray(replicated, dtype=float).reshape(-1, obs.size)
    idx = np.linspace(0, rep.shape[0] - 1, min(n_show, rep.shape[0])).round().astype(int)
    fig = Figure(figsize=(11, 4.2), layout="tight")
    ax0, ax1 = fig.subplots(1, 2)
    lo = max(min(obs.min(), np.quantile(rep, 0.001)), 1e-2)
    hi = max(obs.max(), np.quantile(rep, 0.999))
    bins = np.logspace(np.log10(lo), np.log10(hi), 40)
    for i in idx:
        r = np.sort(rep[i])
        ax0.step(r, np.arange(1, r.size + 1) / r.size, color="tab:blue", alpha=0.12, lw=0.8)
        h, _ = np.histogram(rep[i], bins=bins, density=True)
        ax1.step(bins[:-1], h, where="post", color="tab:blue", alpha=0.12, lw=0.8)
    o = np.sort(obs)
    ax0.step(o, np.arange(1, o.size + 1) / o.size, color="k", lw=1.8, label="observed")
    ax0.plot([], [], color="tab:blue", label="replicated (posterior predictive)")
    h, _ = np.histogram(obs, bins=bins, density=True)
    ax1.step(bins[:-1], h, where="post", color="k", lw=1.8, label="observed")
    for ax in (ax0, ax1):
        ax.set_xscale("log")
        ax.set_xlabel("mean repeat spend per customer")
    ax0.set_ylabel("ECDF")
    ax1.set_ylabel("density")
    ax0.set_title("Spend model PPC: ECDF")
    ax1.set_title("Spend model PPC: distribution")
    ax0.legend(fontsize=8, loc="lower right")
    return fig
