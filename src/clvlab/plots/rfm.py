"""Figures for the features: inter-purchase times, cohort sizes, RFM segments.

Each function takes a result of :mod:`clvlab.features` and returns a matplotlib Figure
(no I/O; the caller saves it), in the clvlab style (:mod:`clvlab.plots`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, StrMethodFormatter

from clvlab.errors import ClvlabInputError
from clvlab.plots import category_ticks, styled

_THOUSANDS = StrMethodFormatter("{x:,.0f}")
_FREQ_NAMES = {"D": "day", "W": "week", "M": "month", "Q": "quarter", "Y": "year"}

__all__ = ["plot_cohort_sizes", "plot_interpurchase_times", "plot_rfm_segments"]


def _require(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ClvlabInputError([f"columns {missing} missing (present: {list(df.columns)})"], what=what)


@styled
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
    fig = Figure(figsize=(11, 4.5))
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
        ax.axvline(v, color="#C44E52", ls=styles[i % len(styles)], lw=1.4)
        ax2.axvline(
            v, color="#C44E52", ls=styles[i % len(styles)], lw=1.2, label=f"{q:.0%} of gaps \u2264 {v:,.0f} days"
        )
    if log_x:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("days since the previous purchase" + (" (log scale)" if log_x else ""))
    ax.set_ylabel("repeat purchases")
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax.set_title(f"{title} (n = {len(g):,})")
    xs = np.sort(g)
    surv = 1.0 - np.arange(1, len(xs) + 1) / len(xs)
    ax2.step(xs, surv, where="post", color="#55A868")
    ax2.set_xscale("log" if log_x else "linear")
    if log_x:
        ax2.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax2.set_xlabel("lapse threshold L (days" + (", log scale)" if log_x else ")"))
    ax2.set_ylabel("share of gaps > L")
    ax2.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax2.set_ylim(0, 1)
    ax2.grid()
    ax2.set_title("Returns later than L")
    ax2.legend(loc="upper right", fontsize=9.5)
    return fig


@styled
def plot_cohort_sizes(
    sizes: pd.DataFrame, *, title: str = "Acquisition cohorts", currency: str = "$", freq: str | None = None
) -> Figure:
    """Bars of ``n_customers`` per ``cohort`` (the ``sizes`` of :func:`cohorts`), stacked by a
    segment column when the table has one, and first-purchase revenue on a second axis.

    ``currency`` labels the revenue axis; ``freq`` (the cohort frequency, e.g. ``"M"``) names
    the cohort period in the x label. Many cohorts get rotated, thinned tick labels."""
    _require(sizes, ["cohort", "n_customers"], "cohort sizes")
    extra = [
        c for c in sizes.columns if c not in ("cohort", "cohort_start", "n_customers", "share", "first_purchase_amount")
    ]
    fig = Figure(figsize=(min(12.0, max(7.0, 0.35 * sizes["cohort"].nunique() + 4)), 4.6))
    ax = fig.subplots()
    labels = sorted(sizes["cohort"].unique())
    x = np.arange(len(labels))
    if extra:
        wide = sizes.pivot_table(
            index="cohort", columns=extra[0], values="n_customers", aggfunc="sum", fill_value=0
        ).reindex(labels, fill_value=0)
        bottom = np.zeros(len(labels))
        for col in wide.columns:
            ax.bar(x, wide[col].to_numpy(), bottom=bottom, label=str(col))
            bottom += wide[col].to_numpy()
        ax.legend(
            title=extra[0],
            loc="upper left",
            bbox_to_anchor=(0.0, -0.28 if len(labels) > 6 else -0.15),
            ncol=min(len(wide.columns), 6),
        )
    else:
        counts = sizes.groupby("cohort")["n_customers"].sum().reindex(labels)
        ax.bar(x, counts.to_numpy(), color="#4C72B0")
    category_ticks(ax, x, labels, max_labels=16)
    ax.set_ylabel("new customers")
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax.grid(axis="y")
    period = _FREQ_NAMES.get(freq or "", "period")
    ax.set_xlabel(f"cohort ({period} of first purchase)")
    ax.set_title(f"{title}: {int(sizes['n_customers'].sum()):,} customers")
    if "first_purchase_amount" in sizes.columns:
        rev = sizes.groupby("cohort")["first_purchase_amount"].sum().reindex(labels)
        ax2 = ax.twinx()
        ax2.spines["right"].set_visible(True)
        ax2.plot(x, rev.to_numpy(), color="#C44E52", marker="o", lw=1.5)
        ax2.set_ylabel(f"first-purchase revenue ({currency})", color="#C44E52")
        ax2.tick_params(axis="y", colors="#C44E52")
        ax2.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax2.set_ylim(0, float(rev.max()) * 1.15 if rev.max() > 0 else 1)
    return fig


@styled
def plot_rfm_segments(scored: pd.DataFrame, *, title: str = "RFM segments") -> Figure:
    """Horizontal bars: customers per ``rfm_segment`` (from :func:`rfm_scores`) with their
    share, next to the R x F grid of customer counts the segments are cut from."""
    _require(scored, ["rfm_segment", "R", "F"], "scored RFM table")
    seg = scored["rfm_segment"]
    order = list(seg.cat.categories) if isinstance(seg.dtype, pd.CategoricalDtype) else sorted(seg.unique())
    counts = seg.value_counts().reindex(order, fill_value=0)
    fig = Figure(figsize=(12, 5.0))
    ax, ax2 = fig.subplots(1, 2, width_ratios=[3, 2])
    y = np.arange(len(order))[::-1]
    ax.barh(y, counts.to_numpy(), color="#4C72B0")
    total = max(int(counts.sum()), 1)
    for yi, n in zip(y, counts.to_numpy()):
        ax.text(n, yi, f" {n:,} ({n / total:.0%})", va="center", fontsize=10)
    ax.set_yticks(y, order)
    ax.set_ylabel("RFM segment")
    ax.set_xlabel("customers")
    ax.xaxis.set_major_formatter(_THOUSANDS)
    has_spend = "monetary_value" in scored.columns and "frequency" in scored.columns
    ax.set_xlim(0, counts.max() * (1.5 if has_spend else 1.25) if counts.max() > 0 else 1)
    if has_spend:
        spend = (scored["monetary_value"] * scored["frequency"]).groupby(seg, observed=False).sum().reindex(order)
        share = spend / max(spend.sum(), 1e-300)
        ax.set_title(f"{title}: {total:,} customers")
        for yi, s in zip(y, share.to_numpy()):
            ax.text(ax.get_xlim()[1], yi, f"{s:.0%}", va="center", ha="right", fontsize=10, color="#C44E52")
        ax.text(
            ax.get_xlim()[1],
            y.max() + 0.75,
            "share of\nrepeat revenue",
            va="bottom",
            ha="right",
            fontsize=9,
            color="#C44E52",
            linespacing=1.0,
        )
        ax.set_ylim(-0.6, y.max() + 1.6)
    else:
        ax.set_title(f"{title} ({total:,} customers)")
    n_bins = int(max(scored["R"].max(), scored["F"].max()))
    grid = pd.crosstab(scored["R"], scored["F"]).reindex(
        index=range(n_bins, 0, -1), columns=range(1, n_bins + 1), fill_value=0
    )
    im = ax2.imshow(grid.to_numpy(), cmap="Blues", aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = grid.iat[i, j]
            ax2.text(
                j,
                i,
                f"{v:,}",
                ha="center",
                va="center",
                fontsize=9 if n_bins <= 5 else 7,
                color="white" if v > grid.to_numpy().max() / 2 else "black",
            )
    ax2.set_xticks(range(n_bins), grid.columns)
    ax2.set_yticks(range(n_bins), grid.index)
    ax2.set_xlabel("F score (higher = more repeat purchases)")
    ax2.set_ylabel("R score (higher = more recent)")
    ax2.set_title("Customers by R x F score")
    ax2.spines[:].set_visible(False)
    fig.colorbar(im, ax=ax2, shrink=0.8, label="customers", format=_THOUSANDS)
    return fig
