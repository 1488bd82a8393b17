"""Figures for survival churn: KM curves by segment, hazard-ratio forest plot, ROC and calibration.

Each function takes results (tidy tables / fitted objects) and returns a matplotlib
Figure; no I/O.  Figures are built without pyplot (no global state, any backend; saving
to PNG uses Agg).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

_UNIT_NAMES = {"D": "days", "W": "weeks", "M": "months"}


def _subplots(figsize: tuple[float, float]):
    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def plot_km_by_segment(km, *, title: str | None = None, time_unit: str | None = None) -> Figure:
    """Kaplan-Meier step curves with confidence bands per segment; log-rank p-value in the title.

    ``km`` is a fitted :class:`clvlab.models.survival.KaplanMeierBySegment`.
    """
    fig, ax = _subplots((7, 4.5))
    unit = time_unit or getattr(km, "time_unit_", None) or "time units"
    unit = _UNIT_NAMES.get(unit, unit)
    for i, (seg, g) in enumerate(km.survival_.groupby("segment", sort=True)):
        color = f"C{i}"
        ax.step(g["time"], g["survival"], where="post", color=color, label=f"{seg} (n={int(g['at_risk'].iloc[0]):,})")
        ax.fill_between(g["time"], g["lower"], g["upper"], step="post", color=color, alpha=0.2, linewidth=0)
    ax.set_xlabel(f"time since first purchase ({unit})")
    ax.set_ylabel("share not yet lapsed")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    level = round((1 - km.alpha) * 100)
    head = title or "Kaplan-Meier survival (time to lapse)"
    if km.logrank_ is not None:
        lr = km.logrank_.iloc[0]
        head += f"\nlog-rank chi2={lr['test_statistic']:.1f}, df={int(lr['df'])}, p={lr['p_value']:.3g}"
    ax.set_title(head, fontsize=10)
    ax.legend(title=f"segment ({level}% bands)", fontsize=8, title_fontsize=8)
    fig.tight_layout()
    return fig


def plot_hazard_ratios(hazard_ratios: pd.DataFrame, *, title: str = "Cox model: hazard ratios of lapse") -> Figure:
    """Forest plot of hazard ratios with intervals (log scale), from ``CoxChurnModel.hazard_ratios()``."""
    hr = hazard_ratios.iloc[::-1].reset_index(drop=True)
    fig, ax = _subplots((7, 0.45 * len(hr) + 1.5))
    y = np.arange(len(hr))
    sig = (hr["hr_lower"] > 1) | (hr["hr_upper"] < 1)
    ax.errorbar(
        hr["hazard_ratio"], y,
        xerr=[hr["hazard_ratio"] - hr["hr_lower"], hr["hr_upper"] - hr["hazard_ratio"]],
        fmt="none", ecolor="0.4", capsize=3,
    )
    ax.scatter(hr["hazard_ratio"], y, c=np.where(sig, "C3", "C0"), zorder=3)
    ax.axvline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xscale("log")
    lo, hi = float(hr["hr_lower"].min()), float(hr["hr_upper"].max())
    ax.set_xlim(min(lo, 1.0) / 1.08, max(hi, 1.0) * 1.08)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_minor_locator(LogLocator(base=10, subs=np.arange(1, 10) / 1.0))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if (hi / lo) < 4 else ""))
    ax.set_ylim(-0.6, len(hr) - 0.3)
    ax.set_yticks(y, hr["covariate"])
    level = round(float(hr["ci_level"].iloc[0]) * 100) if "ci_level" in hr else 95
    ax.set_xlabel(f"hazard ratio (log scale), {level}% interval; >1 = lapses sooner")
    for yi, (h, p) in enumerate(zip(hr["hazard_ratio"], hr["p_value"])):
        ax.annotate(f"{h:.2f} (p={p:.2g})", (h, yi), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=7,
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def plot_roc_curves(roc: pd.DataFrame, comparison: pd.DataFrame | None = None, *, title: str = "Churn ROC") -> Figure:
    """ROC curves per score from ``evaluate.roc_table``; AUCs from ``churn_comparison`` (segment "all") in the legend."""
    fig, ax = _subplots((5, 5))
    auc = {}
    if comparison is not None:
        auc = comparison[comparison["segment"] == "all"].set_index("score")["auc"].to_dict()
    for i, (name, g) in enumerate(roc.groupby("score", sort=False)):
        label = f"{name} (AUC {auc[name]:.3f})" if name in auc else str(name)
        ax.plot(g["fpr"], g["tpr"], color=f"C{i}", label=label)
    ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1, label="random")
    ax.set_xlabel("false positive rate (non-churners flagged)")
    ax.set_ylabel("true positive rate (churners flagged)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_calibration_curves(calibration: pd.DataFrame, comparison: pd.DataFrame | None = None,
                            *, title: str = "Churn calibration") -> Figure:
    """Reliability diagram per score from ``evaluate.calibration_curve`` (observed rate +- 2 se vs predicted)."""
    fig, ax = _subplots((5, 5))
    brier = {}
    if comparison is not None:
        brier = comparison[comparison["segment"] == "all"].set_index("score")["brier"].to_dict()
    for i, (name, g) in enumerate(calibration.groupby("score", sort=False)):
        label = f"{name} (Brier {brier[name]:.3f})" if name in brier else str(name)
        ax.errorbar(g["mean_predicted"], g["observed_rate"], yerr=2 * g["se"], fmt="o-", color=f"C{i}",
                    capsize=3, label=label, ms=4)
        for _, row in g.iterrows():
            ax.annotate(f"{int(row['n'])}", (row["mean_predicted"], row["observed_rate"]), fontsize=6,
                        textcoords="offset points", xytext=(4, -8), color=f"C{i}")
    ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1, label="perfect calibration")
    ax.set_xlabel("mean predicted churn probability (bin)")
    ax.set_ylabel("observed churn rate")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title + " (numbers: customers per bin)", fontsize=10)
    fig.tight_layout()
    return fig
