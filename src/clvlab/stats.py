"""Small numerics shared by models, CLV and plots: one implementation of the HDI.

The highest-density interval (HDI) of draws is the narrowest interval holding ``prob`` of
them; with n sorted draws it spans k = floor(prob * n) positions, the rule ArviZ uses
("nearest"). Plots that show central (equal-tailed) intervals instead say so in their labels.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["HDI_PROB", "hdi", "hdi_sorted", "hdi_inplace", "equal_tailed"]

HDI_PROB = 0.94
"""Default credible mass of every interval clvlab reports (ArviZ's default)."""


def hdi_sorted(sorted_draws: np.ndarray, prob: float = HDI_PROB, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """HDI from draws already sorted along ``axis``.

    Parameters
    ----------
    sorted_draws : ndarray
        Draws sorted ascending along ``axis``.
    prob : float
        Credible mass in (0, 1).
    axis : int
        The draws axis.

    Returns
    -------
    (low, high) : tuple of ndarray
        Interval ends, with ``axis`` removed; NaN when there are no draws.
    """
    s = np.moveaxis(np.asarray(sorted_draws), axis, -1)
    n = s.shape[-1]
    if n == 0:
        nan = np.full(s.shape[:-1], np.nan)
        return nan, nan
    k = int(math.floor(prob * n))
    if k >= n or k == 0:
        return s[..., 0], s[..., -1]
    widths = s[..., k:] - s[..., : n - k]
    i = np.argmin(widths, axis=-1)[..., None]
    return np.take_along_axis(s, i, -1)[..., 0], np.take_along_axis(s, i + k, -1)[..., 0]


def hdi(draws: np.ndarray, prob: float = HDI_PROB, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """HDI of ``draws`` (unsorted).

    Parameters
    ----------
    draws : array_like
        Posterior draws.
    prob : float
        Credible mass in (0, 1).
    axis : int, optional
        The draws axis; None flattens (one interval, returned as two floats).

    Returns
    -------
    (low, high) : tuple of float or ndarray
    """
    a = np.asarray(draws, dtype=float)
    if axis is None:
        lo, hi = hdi_sorted(np.sort(a.ravel()), prob)
        return float(lo), float(hi)
    return hdi_sorted(np.sort(a, axis=axis), prob, axis=axis)


def hdi_inplace(draws: np.ndarray, prob: float = HDI_PROB) -> tuple[np.ndarray, np.ndarray]:
    """Per-row HDI of a 2-d array (rows = quantities, columns = draws), reordering rows in place.

    Only the m = n - floor(prob n) smallest and largest draws can be interval ends, so two
    partial partitions plus sorts of those m columns replace a full sort; the result equals
    :func:`hdi_sorted` on the sorted rows. Used by the chunked CLV engine.
    """
    n = draws.shape[1]
    k = int(math.floor(prob * n))
    m = n - k
    if k == 0 or k >= n or 2 * m >= n:
        draws.sort(axis=1)
        return hdi_sorted(draws, prob)
    draws.partition(m - 1, axis=1)
    rest = draws[:, m:]
    rest.partition(k - m, axis=1)
    low = np.sort(draws[:, :m], axis=1)
    high = np.sort(draws[:, k:], axis=1)
    i = np.argmin(high - low, axis=1)[:, None]
    return np.take_along_axis(low, i, 1)[:, 0], np.take_along_axis(high, i, 1)[:, 0]


def equal_tailed(draws: np.ndarray, prob: float = HDI_PROB, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Central interval: the (1 - prob)/2 and (1 + prob)/2 quantiles along ``axis``.

    For counts and other discrete or skewed quantities where a plot labels it "equal-tailed".
    """
    lo, hi = np.quantile(np.asarray(draws, dtype=float), [(1 - prob) / 2, (1 + prob) / 2], axis=axis)
    return lo, hi
