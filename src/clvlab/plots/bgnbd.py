"""BG/NBD figures: frequency x recency heatmaps, segment forest plot, repeat-purchase PPC.

Each function takes fitted models / results and returns a matplotlib Figure (no I/O).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

_POOLING_COLORS = {"pooled": "#7f7f7f", "unpooled": "#d62728", "partial": "#1f77b4"}
_LABELS = {"expected_purchases": "E[purchases in next {t:g}]", "p_alive": "P(alive)"}


def frequency_recency_grid(
    max_frequency: int, T: float, n_recency: int = 40, segments: Sequence[str] = ("all",), segment_col: str | None = None
) -> pd.DataFrame:
    """RFM rows for every (frequency 0..max_frequency, recency on a grid in [0, T]) cell, age T."""
    rec = np.linspace(0.0, T, n_recency)
    rows = []
    for seg in segments:
        for x in range(max_frequency + 1):
            for j, tx in enumerate(rec if x > 0 else rec[:1]):
                rows.append({"customer_id": f"{seg}|{x}|{j}", "frequency": float(x), "recency": tx, "T": T, "_j": j, "_seg": seg})
    df = pd.DataFrame(rows)
    if segment_col:
        df[segment_col] = df["_seg"]
    return df


def plot_frequency_recency(
    model: Any,
    quantity: str = "expected_purchases",
    t: float = 39.0,
    T: float | None = None,
    max_frequency: int | None = None,
    segments: Sequence[str] | None = None,
    thin: int = 10,
    ncols: int = 4,
) -> Figure:
    """Posterior-mean heatmap of E[Y(t)] or P(alive) over frequency x recency, one panel per segment.

    ``T`` (customer age) defaults to the largest T of the fit data; ``max_frequency`` to its
    99th percentile of frequency.
    """
    if quantity not in _LABELS:
        raise ValueError(f"quantity={quantity!r}: expected one of {sorted(_LABELS)}")
    data = getattr(model, "data_", None)
    if T is None:
        T = float(data["T"].max()) if data is not None else 39.0
    if max_frequency is None:
        max_frequency = int(np.quantile(data["frequency"], 0.99)) if data is not None else 20
        max_frequency = max(max_frequency, 5)
    segs = list(segments) if segments is not None else list(model.segments_)
    n_rec = 40
    grid = frequency_recency_grid(max_frequency, T, n_rec, segs, model.segment)
    if quantity == "p_alive":
        val = model.p_alive(grid, thin=thin)
    else:
        val = model.expected_purchases(t, grid, thin=thin)
    mean = val.mean(("chain", "draw")).values
    ncols = min(ncols, len(segs))
    nrows = int(np.ceil(len(segs) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols + 1.0, 3.2 * nrows), squeeze=False, constrained_layout=True)
    vmax = float(np.nanmax(mean)) if quantity != "p_alive" else 1.0
    rec = np.linspace(0.0, T, n_rec)
    im = None
    for ax, seg in zip(axes.ravel(), segs, strict=False):
        m = np.full((max_frequency + 1, n_rec), np.nan)
        sel = (grid["_seg"] == seg).to_numpy()
        xs, js = grid.loc[sel, "frequency"].astype(int).to_numpy(), grid.loc[sel, "_j"].to_numpy()
        m[xs, js] = mean[sel]
        im = ax.imshow(
            m, origin="lower", aspect="auto", cmap="viridis", vmin=0.0, vmax=vmax,
            extent=(-0.5 * T / (n_rec - 1), T + 0.5 * T / (n_rec - 1), -0.5, max_frequency + 0.5),
        )  # fmt: skip
        ax.set_title(f"{seg}" if model.segment else "all customers", fontsize=10)
        ax.set_xlabel(f"recency (T = {T:.1f})")
        ax.set_ylabel("frequency (repeat purchases)")
        ax.set_xlim(rec[0] - 0.5, rec[-1] + 0.5)
    for ax in axes.ravel()[len(segs):]:
        ax.set_visible(False)
    label = _LABELS[quantity].format(t=t)
    fig.colorbar(im, ax=axes.ravel().tolist(), label=label, shrink=0.9)
    fig.suptitle(f"BG/NBD posterior mean {label} by frequency and recency")
    return fig


def _interval(da: xr.DataArray, prob: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = da.stack(_s=("chain", "draw")).transpose("segment", "_s").values
    lo, hi = np.quantile(s, [(1 - prob) / 2, (1 + prob) / 2], axis=1)
    return s.mean(axis=1), lo, hi


def plot_segment_forest(
    models: Mapping[str, Any],
    params: Sequence[str] = ("r", "alpha", "a", "b"),
    prob: float = 0.94,
    segment_sizes: Mapping[str, int] | None = None,
    truth: pd.DataFrame | None = None,
) -> Figure:
    """Forest plot of segment parameters under several fits (e.g. pooled / unpooled / partial).

    ``models`` maps a label to a fitted model (colour by its pooling); the partial-pooling
    population value (``<param>_pop``) is drawn as a dashed line; ``truth`` (index =
    segment, columns = params) adds true values as black crosses. Log x-axis.
    """
    labels = list(models)
    segs = list(next(iter(models.values())).segments_)
    fig, axes = plt.subplots(1, len(params), figsize=(3.3 * len(params) + 1.5, 0.45 * len(segs) * len(labels) / 2 + 2.0),
                             sharey=True, constrained_layout=True)  # fmt: skip
    axes = np.atleast_1d(axes)
    step = 0.8 / max(len(labels), 1)
    y = np.arange(len(segs))[::-1].astype(float)
    for ax, p in zip(axes, params, strict=True):
        for i, lab in enumerate(labels):
            m = models[lab]
            mean, lo, hi = _interval(m.posterior_[p].sel(segment=segs), prob)
            yy = y + 0.4 - step * (i + 0.5)
            color = _POOLING_COLORS.get(getattr(m, "effective_pooling", lab), None)
            ax.errorbar(mean, yy, xerr=[mean - lo, hi - mean], fmt="o", ms=4, color=color, label=lab, capsize=2, lw=1.2)
            if f"{p}_pop" in m.posterior_ and getattr(m, "effective_pooling", "") == "partial":
                ax.axvline(float(m.posterior_[f"{p}_pop"].mean()), color=color, ls="--", lw=1, alpha=0.7)
        if truth is not None and p in truth:
            ax.plot(truth.loc[segs, p].to_numpy(), y, "x", color="black", ms=7, label="truth")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(p)
        ax.grid(axis="x", alpha=0.3)
    ticks = [f"{s} (n={segment_sizes[s]})" if segment_sizes and s in segment_sizes else str(s) for s in segs]
    axes[0].set_yticks(y, ticks)
    handles, names = axes[0].get_legend_handles_labels()
    uniq = dict(zip(names, handles, strict=False))
    fig.legend(uniq.values(), uniq.keys(), loc="outside lower center", ncol=len(uniq))
    fig.suptitle(f"Segment parameters, {int(prob * 100)}% intervals (dashed: partial-pooling population value)")
    return fig


def plot_repeat_purchase_ppc(
    observed: np.ndarray | pd.Series,
    simulated: xr.DataArray,
    max_count: int = 7,
    prob: float = 0.94,
    title: str = "Posterior predictive check: repeat purchases per customer",
) -> Figure:
    """Histogram of observed repeat-purchase counts (0..max_count+) against the posterior predictive.

    ``simulated`` has dims (chain, draw, customer_id) (e.g. ``model.sample_frequency()`` or
    ``model.sample_holdout_purchases(duration)``); bars show observed customers per count,
    points and whiskers the predictive mean and ``prob`` interval.
    """
    obs = np.minimum(np.asarray(observed, dtype=int), max_count)
    obs_counts = np.bincount(obs, minlength=max_count + 1)
    sim = np.minimum(simulated.stack(_s=("chain", "draw")).transpose("_s", "customer_id").values, max_count).astype(int)
    sim_counts = np.stack([np.bincount(row, minlength=max_count + 1) for row in sim])
    mean = sim_counts.mean(axis=0)
    lo, hi = np.quantile(sim_counts, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    k = np.arange(max_count + 1)
    fig, ax = plt.subplots(figsize=(7.5, 4.2), constrained_layout=True)
    ax.bar(k, obs_counts, color="#c7c7c7", edgecolor="#555555", label="observed")
    ax.errorbar(k, mean, yerr=[mean - lo, hi - mean], fmt="o", color="#1f77b4", capsize=4,
                label=f"posterior predictive (mean, {int(prob * 100)}%)")  # fmt: skip
    ax.set_xticks(k, [str(i) for i in k[:-1]] + [f"{max_count}+"])
    ax.set_xlabel("repeat purchases")
    ax.set_ylabel("customers")
    ax.set_title(title)
    ax.legend()
    return fig
