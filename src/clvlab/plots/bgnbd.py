"""BG/NBD figures: frequency x recency heatmaps, segment forest plot, repeat-purchase PPC.

Each function takes fitted models / results and returns a matplotlib Figure (no I/O), in the
clvlab style (:mod:`clvlab.plots`). Figures are built without pyplot (no global state).
Parameter intervals are HDIs (:func:`clvlab.stats.hdi`); intervals of predicted counts are
equal-tailed and labelled so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.ticker
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from clvlab.choices import ALL_SEGMENTS, unit_name
from clvlab.plots import category_ticks, interval_label, styled
from clvlab.stats import HDI_PROB, equal_tailed, hdi

__all__ = ["frequency_recency_grid", "plot_frequency_recency", "plot_repeat_purchase_ppc", "plot_segment_forest"]

_POOLING_COLORS = {"pooled": "#8C8C8C", "unpooled": "#C44E52", "partial": "#4C72B0"}
_LABELS = {"expected_purchases": "E[purchases in next {t:g} {unit}]", "p_alive": "P(alive)"}


def _unit_name(model: Any, time_unit: str | None) -> str:
    """Plural name of the model's time unit: argument, else the fit data's attrs, else 'time units'."""
    unit = time_unit or getattr(model, "time_unit_", None) or getattr(model, "time_unit", None)
    if unit is None:
        data = getattr(model, "data_", None)
        unit = getattr(data, "attrs", {}).get("time_unit") if data is not None else None
    unit = unit or "time units"
    return unit_name(unit, plural=True)


def frequency_recency_grid(
    max_frequency: int,
    T: float,
    n_recency: int = 40,
    segments: Sequence[str] = (ALL_SEGMENTS,),
    segment: str | None = None,
) -> pd.DataFrame:
    """RFM rows for every (frequency 0..max_frequency, recency on a grid in [0, T]) cell, age T."""
    rec = np.linspace(0.0, T, n_recency)
    rows = []
    for seg in segments:
        for x in range(max_frequency + 1):
            for j, tx in enumerate(rec if x > 0 else rec[:1]):
                rows.append(
                    {
                        "customer_id": f"{seg}|{x}|{j}",
                        "frequency": float(x),
                        "recency": tx,
                        "T": T,
                        "_j": j,
                        "_seg": seg,
                    }
                )
    df = pd.DataFrame(rows)
    if segment:
        df[segment] = df["_seg"]
    return df


@styled
def plot_frequency_recency(
    model: Any,
    quantity: str = "expected_purchases",
    t: float = 39.0,
    T: float | None = None,
    max_frequency: int | None = None,
    segments: Sequence[str] | None = None,
    thin: int = 10,
    ncols: int = 4,
    *,
    time_unit: str | None = None,
) -> Figure:
    """Posterior-mean heatmap of E[Y(t)] or P(alive) over frequency x recency, one panel per segment.

    ``T`` (customer age) defaults to the largest T of the fit data; ``max_frequency`` to its
    99th percentile of frequency. The frequency-0 row is one value across recency (with no
    repeat purchase the BG/NBD quantity does not depend on it). ``time_unit`` (e.g. ``"W"``) names the unit of recency,
    T and t in the labels; by default the fit data's ``attrs["time_unit"]``.
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
    unit = _unit_name(model, time_unit)
    ncols = min(ncols, len(segs))
    nrows = int(np.ceil(len(segs) / ncols))
    fig = Figure(figsize=(2.9 * ncols + 1.6, 2.6 * nrows + 1.0) if len(segs) > 1 else (6.5, 4.8))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    vmax = float(np.nanmax(mean)) if quantity != "p_alive" else 1.0
    rec = np.linspace(0.0, T, n_rec)
    im = None
    for ax, seg in zip(axes.ravel(), segs, strict=False):
        m = np.full((max_frequency + 1, n_rec), np.nan)
        sel = (grid["_seg"] == seg).to_numpy()
        xs, js = grid.loc[sel, "frequency"].astype(int).to_numpy(), grid.loc[sel, "_j"].to_numpy()
        m[xs, js] = mean[sel]
        m[0, :] = m[0, 0]  # no repeat purchase: recency is undefined and the BG/NBD value does not depend on it
        im = ax.imshow(
            m, origin="lower", aspect="auto", cmap="viridis", vmin=0.0, vmax=vmax,
            extent=(-0.5 * T / (n_rec - 1), T + 0.5 * T / (n_rec - 1), -0.5, max_frequency + 0.5),
        )  # fmt: skip
        ax.set_title(f"{seg}" if model.segment else "all customers", fontsize=12)
        ax.set_xlim(rec[0] - 0.5, rec[-1] + 0.5)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4, integer=True))
        ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5, integer=True))
    for k in range(len(segs), nrows * ncols):
        axes.flat[k].set_visible(False)
        if k - ncols >= 0:  # the panel above a hidden one is the lowest of its column: give it x tick labels
            axes.flat[k - ncols].xaxis.set_tick_params(labelbottom=True)
    label = _LABELS[quantity].format(t=t, unit=unit)
    fig.colorbar(im, ax=axes.ravel().tolist(), label=label, shrink=0.9 if nrows <= 2 else 0.6, aspect=25)
    xlabel = f"recency ({unit} from first to last purchase; customer age T = {T:.3g} {unit})"
    if len(segs) > 1:
        fig.supxlabel(xlabel)
        fig.supylabel("frequency (repeat purchases)")
    else:
        axes[0, 0].set_xlabel(xlabel.replace("; ", ";\n"))
        axes[0, 0].set_ylabel("frequency (repeat purchases)")
    fig.suptitle(f"BG/NBD: posterior mean {label}")
    return fig


def _interval(da: xr.DataArray, prob: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior mean and ``prob`` HDI (:func:`clvlab.stats.hdi`) per segment."""
    s = da.stack(_s=("chain", "draw")).transpose("segment", "_s").values
    lo, hi = hdi(s, prob, axis=1)
    return s.mean(axis=1), lo, hi


@styled
def plot_segment_forest(
    models: Mapping[str, Any],
    params: Sequence[str] = ("r", "alpha", "a", "b"),
    prob: float = HDI_PROB,
    segment_sizes: Mapping[str, int] | None = None,
    truth: pd.DataFrame | None = None,
    *,
    time_unit: str | None = None,
) -> Figure:
    """Forest plot of segment parameters under several fits (e.g. pooled / unpooled / partial).

    ``models`` maps a label to a fitted model (colour by its pooling); points are posterior
    means, bars ``prob`` HDIs; the partial-pooling population value (``<param>_pop``) is
    drawn as a dashed line; ``truth`` (index = segment, columns = params) adds true values
    as black crosses. Log x-axis. ``time_unit`` names the unit of ``alpha`` (a scale in
    time units); by default the fit data's ``attrs["time_unit"]``.
    """
    labels = list(models)
    first = next(iter(models.values()))
    segs = list(first.segments_)
    unit = _unit_name(first, time_unit)
    fig = Figure(figsize=(2.9 * len(params) + 2.2, max(3.6, 0.32 * len(segs) * max(len(labels), 2) / 2 + 2.2)))
    axes = np.atleast_1d(fig.subplots(1, len(params), sharey=True))
    step = 0.8 / max(len(labels), 1)
    y = np.arange(len(segs))[::-1].astype(float)
    for ax, p in zip(axes, params, strict=True):
        for i, lab in enumerate(labels):
            m = models[lab]
            mean, lo, hi = _interval(m.posterior_[p].sel(segment=segs), prob)
            yy = y + 0.4 - step * (i + 0.5)
            color = _POOLING_COLORS.get(getattr(m, "effective_pooling", lab), None)
            # interval and mean drawn apart: a skewed posterior's mean can lie outside its HDI
            ax.hlines(yy, lo, hi, color=color, lw=1.6)
            ax.plot(mean, yy, "o", ms=4, color=color, label=lab)
            if f"{p}_pop" in m.posterior_ and getattr(m, "effective_pooling", "") == "partial":
                ax.axvline(float(m.posterior_[f"{p}_pop"].mean()), color=color, ls="--", lw=1, alpha=0.7)
        if truth is not None and p in truth:
            ax.plot(truth.loc[segs, p].to_numpy(), y, "x", color="black", ms=7, label="truth")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(_SparseLogLocator())
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(p)
        ax.set_xlabel(_PARAM_UNITS.get(p, "{p}").format(p=p, unit=unit))
        ax.grid(axis="x")
    ticks = [f"{s} (n={segment_sizes[s]:,})" if segment_sizes and s in segment_sizes else str(s) for s in segs]
    category_ticks(axes[0], y, ticks, axis="y", max_labels=30)
    axes[0].set_ylabel("segment")
    handles, names = axes[0].get_legend_handles_labels()
    uniq = dict(zip(names, handles, strict=False))
    fig.legend(uniq.values(), uniq.keys(), loc="outside lower center", ncol=len(uniq))
    fig.suptitle(f"Segment parameters: posterior mean and {interval_label(prob)}; dashed: population value")
    return fig


_PARAM_UNITS = {
    "r": "r (shape; log scale)",
    "alpha": "alpha ({unit}; log scale)",
    "a": "a (dropout shape; log scale)",
    "b": "b (dropout shape; log scale)",
    "phi": "phi (mean P(drop) per purchase)",
    "kappa": "kappa (concentration; log scale)",
}


class _SparseLogLocator(matplotlib.ticker.Locator):
    """Log-axis ticks at 1-2-5 steps; decades when that gives more than 5 ticks, 1-1.5-2-3-5-7 when
    fewer than 2 (a narrow range: matplotlib 3.11's LogLocator gives decades only, none inside)."""

    STEPS = ((1.0, 2.0, 5.0), (1.0,), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0), tuple(float(v) for v in range(1, 10)))

    def __call__(self) -> np.ndarray:
        vmin, vmax = self.axis.get_view_interval()
        return self.tick_values(vmin, vmax)

    def tick_values(self, vmin: float, vmax: float) -> np.ndarray:
        lo, hi = sorted((float(vmin), float(vmax)))
        lo = max(lo, 1e-300)
        decades = np.arange(np.floor(np.log10(lo)) - 1, np.ceil(np.log10(max(hi, lo))) + 2)

        def ticks(steps: tuple[float, ...]) -> tuple[np.ndarray, int]:
            t = np.array(sorted(m * 10.0**k for k in decades for m in steps))
            return t, int(np.count_nonzero((t >= lo) & (t <= hi)))

        first, n = ticks(self.STEPS[0])
        if n > 5:
            return ticks(self.STEPS[1])[0]
        for steps in self.STEPS[2:]:
            if n >= 2:
                break
            first, n = ticks(steps)
        return first


@styled
def plot_repeat_purchase_ppc(
    observed: np.ndarray | pd.Series,
    simulated: xr.DataArray,
    max_count: int = 7,
    prob: float = HDI_PROB,
    title: str = "Posterior predictive check: repeat purchases per customer",
    *,
    period: str | None = None,
) -> Figure:
    """Histogram of observed repeat-purchase counts (0..max_count+) against the posterior predictive.

    ``simulated`` has dims (chain, draw, customer_id) (e.g. ``model.sample_frequency()`` or
    ``model.sample_holdout_purchases(duration)``); bars show observed customers per count,
    points and whiskers the predictive mean and the ``prob`` **equal-tailed** interval of the
    number of customers (counts: :func:`clvlab.stats.equal_tailed`). ``period`` describes
    the time window in the x label, e.g. ``"in the 39-week holdout"``.
    """
    obs = np.minimum(np.asarray(observed, dtype=int), max_count)
    obs_counts = np.bincount(obs, minlength=max_count + 1)
    sim = np.minimum(simulated.stack(_s=("chain", "draw")).transpose("_s", "customer_id").values, max_count).astype(int)
    sim_counts = np.stack([np.bincount(row, minlength=max_count + 1) for row in sim])
    mean = sim_counts.mean(axis=0)
    lo, hi = equal_tailed(sim_counts, prob, axis=0)
    k = np.arange(max_count + 1)
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    ax.bar(k, obs_counts, color="#C9CED6", edgecolor="#6B7280", lw=0.8, label="observed")
    ax.errorbar(k, mean, yerr=[mean - lo, hi - mean], fmt="o", color="#4C72B0", capsize=4, ms=6,
                label=f"posterior predictive: mean, {interval_label(prob, 'equal-tailed')}")  # fmt: skip
    ax.set_xticks(k, [str(i) for i in k[:-1]] + [f"{max_count}+"])
    ax.set_xlabel("repeat purchases per customer" + (f" {period}" if period else ""))
    ax.set_ylabel("customers")
    ax.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
    ax.grid(axis="y")
    ax.set_title(title)
    ax.legend()
    return fig
