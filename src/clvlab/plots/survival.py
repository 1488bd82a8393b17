"""Figures for survival churn: KM curves by segment, hazard-ratio forest plot, ROC and calibration.

Each function takes results (tidy tables / fitted objects) and returns a matplotlib
Figure; no I/O.  Figures are built without pyplot (no global state, any backend; saving
to PNG uses Agg), in the clvlab style (:mod:`clvlab.plots`). Kaplan-Meier bands and
hazard-ratio intervals are frequentist confidence intervals and labelled so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

from clvlab.choices import ALL_SEGMENTS, unit_name
from clvlab.plots import segment_colors, styled


def _subplots(figsize: tuple[float, float]):
    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


@styled
def plot_km_by_segment(km, *, title: str | None = None, time_unit: str | None = None) -> Figure:
    """Kaplan-Meier step curves with confidence bands per segment; log-rank p-value in the title.

    ``km`` is a fitted :class:`clvlab.models.survival.KaplanMeierBySegment`.
    """
    n_seg = km.survival_["segment"].nunique()
    fig, ax = _subplots((8.5 if n_seg > 6 else 8, 4.8))
    unit = time_unit or getattr(km, "time_unit_", None) or "time units"
    unit = unit_name(unit, plural=True)
    colors = segment_colors(n_seg)
    for i, (seg, g) in enumerate(km.survival_.groupby("segment", sort=True)):
        color = colors[i]
        ax.step(g["time"], g["survival"], where="post", color=color, label=f"{seg} (n={int(g['at_risk'].iloc[0]):,})")
        ax.fill_between(
            g["time"], g["lower"], g["upper"], step="post", color=color, alpha=0.2 if n_seg <= 4 else 0.07, linewidth=0
        )
    ax.set_xlabel(f"time since first purchase ({unit})")
    ax.set_ylabel("share not yet lapsed")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_ylim(0, 1.02)
    ax.grid()
    level = round((1 - km.alpha) * 100)
    head = title or "Kaplan-Meier survival (time to lapse)"
    if km.logrank_ is not None:
        lr = km.logrank_.iloc[0]
        head += f"\nlog-rank chi2={lr['test_statistic']:.1f}, df={int(lr['df'])}, p={lr['p_value']:.3g}"
    ax.set_title(head)
    if n_seg > 6:
        ax.legend(
            title=f"segment ({level}% confidence bands)",
            loc="center left",
            bbox_to_anchor=(1.02, 0.5),
            fontsize=9,
            ncol=1 if n_seg <= 14 else 2,
        )
    else:
        ax.legend(title=f"segment ({level}% confidence bands)")
    return fig


@styled
def plot_hazard_ratios(hazard_ratios: pd.DataFrame, *, title: str = "Cox model: hazard ratios of lapse") -> Figure:
    """Forest plot of hazard ratios with intervals (log scale), from ``CoxChurnModel.hazard_ratios()``."""
    hr = hazard_ratios.iloc[::-1].reset_index(drop=True)
    fig, ax = _subplots((8, 0.45 * len(hr) + 1.9))
    y = np.arange(len(hr))
    sig = (hr["hr_lower"] > 1) | (hr["hr_upper"] < 1)
    ax.errorbar(
        hr["hazard_ratio"],
        y,
        xerr=[hr["hazard_ratio"] - hr["hr_lower"], hr["hr_upper"] - hr["hazard_ratio"]],
        fmt="none",
        ecolor="0.4",
        capsize=3,
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
    ax.set_ylabel("covariate")
    level = round(float(hr["ci_level"].iloc[0]) * 100) if "ci_level" in hr else 95
    ax.set_xlabel(
        f"hazard ratio of lapse per unit of the covariate (log scale)\n{level}% confidence interval; > 1: lapses sooner"
    )
    for yi, (h, p) in enumerate(zip(hr["hazard_ratio"], hr["p_value"])):
        ax.annotate(
            f"{h:.2f} (p={p:.2g})",
            (h, yi),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=9,
            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
        )
    ax.set_title(title)
    ax.grid(axis="x")
    return fig


@styled
def plot_roc_curves(roc: pd.DataFrame, comparison: pd.DataFrame | None = None, *, title: str = "Churn ROC") -> Figure:
    """ROC curves per score from ``evaluate.roc_table``; AUCs from ``churn_comparison`` (segment "all") in the legend."""
    fig, ax = _subplots((6, 6))
    auc = {}
    if comparison is not None:
        auc = comparison[comparison["segment"] == ALL_SEGMENTS].set_index("score")["auc"].to_dict()
    for i, (name, g) in enumerate(roc.groupby("score", sort=False)):
        label = f"{name} (AUC {auc[name]:.3f})" if name in auc else str(name)
        ax.plot(g["fpr"], g["tpr"], color=f"C{i}", label=label)
    ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1, label="random")
    ax.set_xlabel("false positive rate (non-churners flagged)")
    ax.set_ylabel("true positive rate (churners flagged)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.grid()
    ax.legend(loc="lower right")
    ax.set_title(title)
    return fig


@styled
def plot_calibration_curves(
    calibration: pd.DataFrame, comparison: pd.DataFrame | None = None, *, title: str = "Churn calibration"
) -> Figure:
    """Reliability diagram per score from ``evaluate.calibration_curve`` (observed rate +- 2 se vs predicted)."""
    fig, ax = _subplots((6, 6))
    brier = {}
    if comparison is not None:
        brier = comparison[comparison["segment"] == ALL_SEGMENTS].set_index("score")["brier"].to_dict()
    labelled: list[tuple[float, float]] = []
    for i, (name, g) in enumerate(calibration.groupby("score", sort=False)):
        label = f"{name} (Brier {brier[name]:.3f})" if name in brier else str(name)
        ax.errorbar(
            g["mean_predicted"],
            g["observed_rate"],
            yerr=2 * g["se"],
            fmt="o-",
            color=f"C{i}",
            capsize=3,
            label=label,
            ms=4,
        )
        for _, row in g.iterrows():
            xy = (float(row["mean_predicted"]), float(row["observed_rate"]))
            if any(abs(xy[0] - u) < 0.06 and abs(xy[1] - v) < 0.05 for u, v in labelled):
                continue  # bins too close together: label only the first, keep the numbers readable
            labelled.append(xy)
            ax.annotate(
                f"{int(row['n']):,}", xy, fontsize=8.5, textcoords="offset points", xytext=(5, -10), color=f"C{i}"
            )
    ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1, label="perfect calibration")
    ax.set_xlabel("mean predicted churn probability (bin)")
    ax.set_ylabel("observed churn rate")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    ax.grid()
    ax.legend(loc="upper left", title="bars: \u00b1 2 s.e.; numbers: customers per bin", title_fontsize=9.5)
    ax.set_title(title)
    return fig
