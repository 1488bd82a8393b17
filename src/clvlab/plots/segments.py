"""Figures of the behavioural segments: the choice of k and the segment centres."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from clvlab.plots import styled

__all__ = ["FEATURE_LABELS", "plot_k_selection", "plot_segment_centres"]

#: How figures and the report name each behaviour feature.
FEATURE_LABELS = {
    "frequency": "repeat purchases",
    "gap": "time since last purchase",
    "monetary_value": "spend per repeat",
    "first_amount": "first-order spend",
    "early_purchases": "early repeats",
}


@styled
def plot_k_selection(selection: pd.DataFrame, *, min_stability: float | None = None) -> Figure:
    """Silhouette and stability against k, the chosen k marked.

    Parameters
    ----------
    selection : DataFrame
        ``BehaviouralSegments.selection_``: k, silhouette, stability, stability_min, chosen.
    min_stability : float, optional
        The stability a k needs to be chosen on silhouette (drawn as a line).

    Returns
    -------
    Figure
    """
    fig = Figure(figsize=(9.6, 3.8))
    ax_s, ax_t = fig.subplots(1, 2, sharex=True)
    k = selection["k"].to_numpy()
    chosen = selection["chosen"].to_numpy(bool)
    ax_s.plot(k, selection["silhouette"], marker="o", color="C0")
    ax_s.set_ylabel("mean silhouette width")
    ax_s.set_title("Silhouette (higher: better separated)", fontsize=10)
    ax_t.plot(k, selection["stability"], marker="o", color="C1", label="mean over subsample refits")
    ax_t.plot(k, selection["stability_min"], marker=".", ls=":", color="C1", alpha=0.7, label="worst refit")
    if min_stability is not None:
        ax_t.axhline(min_stability, color="grey", ls="--", lw=1, label=f"needed: {min_stability:g}")
    ax_t.set_ylabel("adjusted Rand index")
    ax_t.set_title("Stability (1: the same segments every refit)", fontsize=10)
    ax_t.set_ylim(min(0.0, float(np.nanmin(selection["stability_min"]))) if len(selection) else 0.0, 1.02)
    ax_t.legend(loc="lower left", fontsize=8, frameon=False)
    for ax, col in ((ax_s, "silhouette"), (ax_t, "stability")):
        ax.scatter(k[chosen], selection.loc[chosen, col], s=140, facecolors="none", edgecolors="black", zorder=3,
                   label=None)  # fmt: skip
        ax.set_xlabel("number of segments k")
        ax.set_xticks(k)
        ax.grid(True, axis="y")
    fig.suptitle(f"Choosing k: {int(k[chosen][0])} (circled)" if chosen.any() else "Choosing k")
    return fig


@styled
def plot_segment_centres(centres: pd.DataFrame, raw_means: pd.DataFrame, sizes: pd.Series) -> Figure:
    """Heat map of the segment centres (standardised features), annotated with raw means.

    Parameters
    ----------
    centres : DataFrame
        ``BehaviouralSegments.centres_``: segment x feature, in standard deviations.
    raw_means : DataFrame
        Same shape: each cell's mean of the feature on its own scale (the annotation).
    sizes : Series
        Customers per segment (the row labels).

    Returns
    -------
    Figure
    """
    n_s, n_f = centres.shape
    fig = Figure(figsize=(2.6 + 1.45 * n_f, 1.5 + 0.55 * n_s))
    ax = fig.subplots()
    z = centres.to_numpy(float)
    lim = max(1.0, float(np.nanmax(np.abs(z))))
    im = ax.imshow(z, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim)
    for i in range(n_s):
        for j in range(n_f):
            v = raw_means.iat[i, j]
            text = "–" if not np.isfinite(v) else f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=10,
                    color="white" if abs(z[i, j]) > 0.6 * lim else "#1F2937")  # fmt: skip
    ax.set_xticks(range(n_f), [FEATURE_LABELS.get(c, c).replace(" ", "\n", 1) for c in centres.columns])
    ax.set_yticks(range(n_s), [f"{s} ({int(sizes.get(s, 0)):,})" for s in centres.index])
    ax.set_ylabel("segment (customers)")
    ax.set_title("Segment centres: colour = standard deviations from the mean; text = the segment's mean")
    fig.colorbar(im, ax=ax, label="standardised log(1 + feature)")
    return fig
