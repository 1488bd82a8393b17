"""Figures of the model comparison (:mod:`clvlab.comparison`): LOO, holdout totals, tracking, conditional expectations.

Each function takes the tidy tables of a :class:`~clvlab.comparison.ModelComparison` and returns
a matplotlib Figure in the clvlab style; no I/O, no pyplot state.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from clvlab.choices import ALL_SEGMENTS, unit_name
from clvlab.plots import category_ticks, interval_label, segment_colors, styled

__all__ = ["plot_conditional_expectations", "plot_holdout_totals", "plot_loo", "plot_tracking"]


def _colors(labels: Sequence[str]) -> dict[str, object]:
    return dict(zip(labels, segment_colors(len(labels)), strict=True))


@styled
def plot_loo(loo: pd.DataFrame) -> Figure:
    """elpd difference to the best PSIS-LOO model, with the se of the paired difference.

    Point fits (MLE rows: log L - k) are drawn hollow, without an interval.
    """
    df = loo.iloc[::-1].reset_index(drop=True)  # best on top
    fig = Figure(figsize=(8, 0.45 * len(df) + 1.6))
    ax = fig.subplots()
    y = np.arange(len(df))
    point = (df["criterion"] != "PSIS-LOO").to_numpy()
    ax.errorbar(df.loc[~point, "elpd_diff"], y[~point], xerr=df.loc[~point, "se_diff"], fmt="o", color="C0",
                capsize=3, label="PSIS-LOO ± se of the difference")  # fmt: skip
    if point.any():
        ax.plot(
            df.loc[point, "elpd_diff"], y[point], "o", mfc="none", color="C1", label="point fit: log L - k (AIC/-2)"
        )
    ax.axvline(0.0, color="0.4", lw=1, ls="--")
    # a far-off row (the no-dropout floor) would squash the rest: draw it at the edge, labelled
    d = df["elpd_diff"].to_numpy(float)
    lo_ci = d - np.nan_to_num(df["se_diff"].to_numpy(float))
    off = np.zeros(len(df), bool)
    while (~off).sum() > 2:  # the worst row is off scale when it is 3x further out than the rest
        rest = np.where(off, np.inf, lo_ci)
        worst = int(np.argmin(rest))
        others = np.min(np.where(off | (np.arange(len(df)) == worst), np.inf, lo_ci))
        if not (others < 0 and lo_ci[worst] < 3 * others):
            break
        off[worst] = True
    left = float(np.min(lo_ci[~off])) - 0.08 * (1.0 - float(np.min(lo_ci[~off])))
    if off.any():
        ax.set_xlim(left, max(0.0, float(np.nanmax(d))) + 0.05 * (0.0 - left))
        for yi, di in zip(y[off], d[off], strict=True):
            ax.annotate(f"\u25c0 {di:,.0f} (off scale)", (left, yi), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=9, color="C0")  # fmt: skip
    category_ticks(ax, y, df["label"], axis="y")
    ax.set_xlabel("elpd difference to the best model (higher is better)")
    ax.set_title("Out-of-sample fit of the calibration data (LOO)")
    ax.grid(axis="x")
    ax.set_ylim(-0.6, len(df) - 0.4)
    ax.legend(loc="best", fontsize=9)
    return fig


@styled
def plot_holdout_totals(holdout: pd.DataFrame, prob: float) -> Figure:
    """Posterior predictive total holdout repeat purchases per model (interval) against the actual."""
    df = holdout[holdout["segment"] == ALL_SEGMENTS].iloc[::-1].reset_index(drop=True)
    fig = Figure(figsize=(8, 0.45 * len(df) + 1.6))
    ax = fig.subplots()
    y = np.arange(len(df))
    m = df["predicted_mean"].to_numpy()
    err = np.vstack([m - df["predicted_hdi_low"], df["predicted_hdi_high"] - m])
    ax.errorbar(m, y, xerr=err, fmt="o", color="C0", capsize=3, label=f"predicted, {interval_label(prob)}")
    actual = float(df["actual_total"].iloc[0])
    ax.axvline(actual, color="k", lw=1.5, label=f"actual {actual:,.0f}")
    category_ticks(ax, y, df["label"], axis="y")
    ax.set_xlabel("repeat purchases in the holdout")
    ax.set_title("Holdout total: posterior predictive vs actual")
    ax.grid(axis="x")
    ax.legend(loc="best", fontsize=9)
    return fig


@styled
def plot_tracking(tracking: pd.DataFrame, prob: float, *, labels: Sequence[str] | None = None,
                  time_unit: str = "W") -> Figure:  # fmt: skip
    """Weekly and cumulative repeat purchases, actual vs each model, calibration + holdout (FHL 2005 fig. 2).

    ``labels``: the models drawn (default: every label in the table).
    """
    labels = list(dict.fromkeys(tracking["label"])) if labels is None else list(labels)
    colors = _colors(labels)
    unit = unit_name(time_unit)
    fig = Figure(figsize=(9, 7.2))
    axes = fig.subplots(2, 1, sharex=True)
    for ax, kind in zip(axes, ("weekly", "cumulative"), strict=True):
        part = tracking[tracking["kind"] == kind]
        first = part[part["label"] == labels[0]]
        for lab in labels:
            g = part[part["label"] == lab]
            ax.plot(g["end"], g["predicted_mean"], color=colors[lab], lw=1.4, label=lab)
            ax.fill_between(g["end"], g["predicted_hdi_low"], g["predicted_hdi_high"], color=colors[lab], alpha=0.15,
                            linewidth=0)  # fmt: skip
        ax.plot(first["end"], first["actual"], color="k", lw=1.6, label="actual")
        ax.axvline(0.0, color="0.4", ls="--", lw=1)
        ax.set_ylabel(f"repeat purchases per {unit}" if kind == "weekly" else "cumulative repeat purchases")
        ax.grid()
    axes[0].set_title(f"Tracking repeat purchases (bands: {interval_label(prob)}); dashed line: end of calibration")
    axes[1].set_xlabel(f"{unit}s from the end of the calibration period")
    axes[0].legend(fontsize=9, ncol=2, loc="upper left")
    return fig


@styled
def plot_conditional_expectations(conditional: pd.DataFrame, prob: float, *,
                                  labels: Sequence[str] | None = None) -> Figure:  # fmt: skip
    """Mean holdout repeat purchases by calibration frequency: actual vs each model (FHL 2005 fig. 4)."""
    labels = list(dict.fromkeys(conditional["label"])) if labels is None else list(labels)
    colors = _colors(labels)
    fig = Figure(figsize=(8.5, 4.8))
    ax = fig.subplots()
    first = conditional[conditional["label"] == labels[0]]
    x = np.arange(len(first))
    width = 0.8 / max(len(labels), 1)
    for i, lab in enumerate(labels):
        g = conditional[conditional["label"] == lab]
        m = g["predicted_mean"].to_numpy()
        err = np.vstack([m - g["predicted_hdi_low"], g["predicted_hdi_high"] - m])
        ax.errorbar(x - 0.4 + width * (i + 0.5), m, yerr=err, fmt="o", ms=4, color=colors[lab], capsize=2, label=lab)
    ax.plot(x, first["actual_mean"], "k_", ms=22, mew=2.2, label="actual")
    ax.set_xticks(x, [f"{f}\n(n={n:,})" for f, n in zip(first["frequency"], first["customers"], strict=True)])
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("mean repeat purchases in the holdout")
    ax.set_title(f"Conditional expectations ({interval_label(prob)} of the group mean)")
    ax.grid(axis="y")
    ax.legend(fontsize=9, ncol=2)
    return fig
