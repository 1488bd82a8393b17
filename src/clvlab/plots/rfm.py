"""Figures for the features: inter-purchase times, cohort sizes, RFM segments.

Each function takes a result of :mod:`clvlab.features` and returns a matplotlib Figure
(no I/O; the caller saves it).
"""

from __future__ import annotations

from collections.abc import Sequence


import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from clvlab.errors import ClvlabInputError  # noqa: E402

__all__ = ["plot_cohort_sizes", "plot_interpurchase_times", "plot_rfm_segments"]


def _require(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ClvlabInputError([f"columns {missing} missing (present: {list(df.columns)})"], what=what)


def plot_interpurchase_times(
    gaps: pd.DataFrame,
    *,
    quantiles: Sequence[float] = (0.5, 0.8, 0.9, 0.95),
    bins: int = 60,
    log_x: bool = True,
    title: str = "Days between consecutive purchases",
) -> Figure:
    """Histogram of ``gap_days`` (from :func:`interpurchase_times`) with quantile markers, and
    the share of gaps longer than L on a second panel: a lapse threshold L leaves that share
    of returns misclassified as lapses."""
    _require(gaps, ["gap_days"], "inter-purchase table")
    g = gaps["gap_days"].to_numpy(dtype=float)
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax, ax2 = fig.subplots(1, 2, width_ratios=[3, 2])
    if len(g) == 0:
        ax.text(0.5, 0.5, "no repeat purchases", ha="center", va="center", transform=ax.transAxes)
        return fig
    if log_x:  # log-spaced, but on whole days so that short gaps (1, 2, 3 days) get one bar each
        edges = np.unique(np.round(np.geomspace(max(g.min(), 1.0), g.max() + 1, bins + 1))) - 0.5
    else:
        edges = np.linspace(0, g.max() + 1, bins + 1)
    ax.hist(g, bins=edges, color="#4C72B0", alpha=0.85)
    if log_x:
        ax.set_xscale("log")
    qs = np.quantile(g, quantiles)
    styles = ["--", "-.", ":", (0, (5, 1, 1, 1, 1, 1))]
    for i, (q, v) in enumerate(zip(quantiles, qs)):
        ax.axvline(v, color="#C44E52", ls=styles[i % len(styles)], lw=1.2, label=f"{q:.0%} of gaps <= {v:.0f} d")
        ax2.axvline(v, color="#C44E52", ls=styles[i % len(styles)], lw=1.0)
    ax.legend(fontsize=8, loc="upper right", framealpha=0.9)
    ax.set_xlabel("gap (days)" + (", log scale" if log_x else ""))
    ax.set_ylabel("repeat purchases")
    ax.set_title(f"{title} (n = {len(g):,})")
    xs = np.sort(g)
    surv = 1.0 - np.arange(1, len(xs) + 1) / len(xs)
    ax2.step(xs, surv, where="post", color="#55A868")
    ax2.set_xscale("log" if log_x else "linear")
    ax2.set_xlabel("threshold L (days)")
    ax2.set_ylabel("share of gaps > L")
    ax2.set_ylim(0, 1)
    ax2.grid(alpha=0.3)
    ax2.set_title("Returns later than L")
    return fig


def plot_cohort_sizes(sizes: pd.DataFrame, *, title: str = "Acquisition cohorts") -> Figure:
    """Bars of ``n_customers`` per ``cohort`` (the ``sizes`` of :func:`cohorts`), stacked by a
    segment column when the table has one, and first-purchase revenue on a second axis."""
    _require(sizes, ["cohort", "n_customers"], "cohort sizes")
    extra = [c for c in sizes.columns if c not in ("cohort", "cohort_start", "n_customers", "share",
                                                     "first_purchase_amount")]
    fig = Figure(figsize=(max(6, 0.45 * sizes["cohort"].nunique() + 3), 4.2), layout="constrained")
    ax = fig.subplots()
    labels = sorted(sizes["cohort"].unique())
    x = np.arange(len(labels))
    if extra:
        wide = sizes.pivot_table(index="cohort", columns=extra[0], values="n_customers", aggfunc="sum",
                                 fill_value=0).reindex(labels, fill_value=0)
        bottom = np.zeros(len(labels))
        for col in wide.columns:
            ax.bar(x, wide[col].to_numpy(), bottom=bottom, label=str(col))
            bottom += wide[col].to_numpy()
        ax.legend(title=extra[0], fontsize=8, loc="lower right", framealpha=0.9)
    else:
        counts = sizes.groupby("cohort")["n_customers"].sum().reindex(labels)
        ax.bar(x, counts.to_numpy(), color="#4C72B0")
    ax.set_xticks(x, labels, rotation=60 if len(labels) > 8 else 0, ha="right" if len(labels) > 8 else "center",
                  fontsize=8)
    ax.set_ylabel("new customers")
    ax.set_xlabel("cohort (period of first purchase)")
    ax.set_title(f"{title}: {int(sizes['n_customers'].sum()):,} customers")
    if "first_purchase_amount" in sizes.columns:
        rev = sizes.groupby("cohort")["first_purchase_amount"].sum().reindex(labels)
        ax2 = ax.twinx()
        ax2.plot(x, rev.to_numpy(), color="#C44E52", marker="o", lw=1.5)
        ax2.set_ylabel("first-purchase revenue", color="#C44E52")
        ax2.set_ylim(0, float(rev.max()) * 1.15 if rev.max() > 0 else 1)
    return fig


def plot_rfm_segments(scored: pd.DataFrame, *, title: str = "RFM segments") -> Figure:
    """Horizontal bars: customers per ``rfm_segment`` (from :func:`rfm_scores`) with their
    share, next to the R x F grid of customer counts the segments are cut from."""
    _require(scored, ["rfm_segment", "R", "F"], "scored RFM table")
    seg = scored["rfm_segment"]
    order = list(seg.cat.categories) if isinstance(seg.dtype, pd.CategoricalDtype) else sorted(seg.unique())
    counts = seg.value_counts().reindex(order, fill_value=0)
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    ax, ax2 = fig.subplots(1, 2, width_ratios=[3, 2])
    y = np.arange(len(order))[::-1]
    ax.barh(y, counts.to_numpy(), color="#4C72B0")
    total = max(int(counts.sum()), 1)
    for yi, n in zip(y, counts.to_numpy()):
        ax.text(n, yi, f" {n:,} ({n / total:.0%})", va="center", fontsize=8)
    ax.set_yticks(y, order)
    ax.set_xlabel("customers")
    ax.set_xlim(0, counts.max() * 1.25 if counts.max() > 0 else 1)
    if "monetary_value" in scored.columns and "frequency" in scored.columns:
        spend = (scored["monetary_value"] * scored["frequency"]).groupby(seg, observed=False).sum().reindex(order)
        share = spend / max(spend.sum(), 1e-300)
        ax.set_title(f"{title} ({total:,} customers; red: share of repeat revenue)", fontsize=10)
        for yi, s in zip(y, share.to_numpy()):
            ax.text(ax.get_xlim()[1], yi, f"{s:.0%} ", va="center", ha="right", fontsize=8, color="#C44E52")
    else:
        ax.set_title(f"{title} ({total:,} customers)")
    n_bins = int(max(scored["R"].max(), scored["F"].max()))
    grid = pd.crosstab(scored["R"], scored["F"]).reindex(index=range(n_bins, 0, -1), columns=range(1, n_bins + 1),
                                                        fill_value=0)
    im = ax2.imshow(grid.to_numpy(), cmap="Blues", aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = grid.iat[i, j]
            ax2.text(j, i, f"{v:,}", ha="center", va="center", fontsize=7,
                     color="white" if v > grid.to_numpy().max() / 2 else "black")
    ax2.set_xticks(range(n_bins), grid.columns)
    ax2.set_yticks(range(n_bins), grid.index)
    ax2.set_xlabel("F score")
    ax2.set_ylabel("R score (higher = more recent)")
    ax2.set_title("Customers by R x F score")
    fig.colorbar(im, ax=ax2, shrink=0.8)
    return fig
