"""Figures of the KPI layer: the cohort retention heat map and value concentration (Lorenz curves)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from clvlab.plots import styled

__all__ = ["plot_lorenz", "plot_retention_matrix"]


@styled
def plot_retention_matrix(matrix: pd.DataFrame, *, period: str = "month") -> Figure:
    """Cohort x period retention heat map (:func:`clvlab.features.kpis.retention_matrix`).

    Parameters
    ----------
    matrix : DataFrame
        Index cohort, column ``customers`` then periods 0, 1, ...
    period : str
        Name of one period (axis label).

    Returns
    -------
    Figure
    """
    shares = matrix.drop(columns="customers")
    n_c, n_k = shares.shape
    fig = Figure(figsize=(min(2.5 + 0.55 * n_k, 14), 1.6 + 0.38 * n_c))
    ax = fig.subplots()
    data = np.ma.masked_invalid(shares.to_numpy(float))
    vmax = float(np.nanmax(shares.to_numpy(float))) if np.isfinite(shares.to_numpy(float)).any() else 1.0
    im = ax.imshow(data, aspect="auto", cmap="Blues", vmin=0.0, vmax=max(vmax, 1e-9))
    for i in range(n_c):
        for j in range(n_k):
            v = shares.iat[i, j]
            if np.isfinite(v) and n_k <= 24:
                ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=7,
                        color="white" if v > 0.6 * vmax else "#1F2937")  # fmt: skip
    ax.set_xticks(range(n_k), [str(k) for k in shares.columns])
    ax.set_yticks(range(n_c), [f"{c} ({n:,})" for c, n in zip(matrix.index, matrix["customers"], strict=True)])
    ax.set_xlabel(f"{period}s since the cohort's start (0 = its first {period}: repeat purchases only)")
    ax.set_ylabel("acquisition cohort (customers)")
    ax.set_title("Share of each cohort buying in each period")
    fig.colorbar(im, ax=ax, label="share of the cohort's customers", format=lambda v, _: f"{v:.0%}")
    return fig


@styled
def plot_lorenz(curves: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]]) -> Figure:
    """Lorenz curves of per-customer values, with the top-customer shares in the legend.

    Parameters
    ----------
    curves : Mapping
        Label (e.g. "revenue", "CLV") -> the pair from :func:`clvlab.features.kpis.value_concentration`.

    Returns
    -------
    Figure
    """
    fig = Figure(figsize=(6.4, 5.2))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="equal shares")
    for label, (curve, table) in curves.items():
        tops = ", ".join(
            f"top {t:.0%}: {v:.0%}" for t, v in zip(table["top_customers"], table["value_share"], strict=True)
        )
        ax.plot(curve["customer_share"], curve["value_share"], lw=2,
                label=f"{label}\nGini {table['gini'].iloc[0]:.2f}; {tops}")  # fmt: skip
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_xlabel("share of customers (lowest value first)")
    ax.set_ylabel("share of the total value")
    ax.set_title("Value concentration")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.grid(True)
    return fig
