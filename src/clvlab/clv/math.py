"""CLV math at fixed parameters: period length, discounting, B(x, T), 1/D and the closed form.

CLV over H periods with per-period discount d and margin m (design.md; the discrete form of
lifetimes and pymc-marketing)::

    CLV = m * E[M] * sum_{k=1..H} (E[Y(k L)] - E[Y((k-1) L)]) / (1+d)^k

where L is the length of one CLV period in the data's time unit (a month is
365.25/12/7 = 4.348 weeks; lifetimes hard-codes 4.345, pass ``period_length=4.345`` to
reproduce it exactly). With E[Y(t)] = N(x, T, t) / D(x, t_x, T) (FHL 2005 eq. 10), the
2F1 numerator N does not depend on t_x and D does not depend on t, so

    CLV = m * E[M] * B(segment, x, T) / D,   B = sum_k (N(kL) - N((k-1)L)) / (1+d)^k.

Everything here is a pure function of parameters and data arrays (no posterior handling).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..models import bgnbd_math as bm
from ..models.bgnbd_math import expected_purchases_numerator, log_d
from ..models.gamma_gamma_math import gg_conditional_mean_spend
from ..units import unit_days

__all__ = [
    "RECURRENCE_MAX_Z",
    "clv_at_params",
    "clv_period_length",
    "discount_factors",
    "discounted_purchases",
    "inv_d_factored",
    "pattern_table",
]

RECURRENCE_MAX_Z = 0.45
"""Backward recurrence in x is used only where z = t/(alpha+T+t) <= this (2F1 minimal there)."""


def clv_period_length(period: str = "M", time_unit: str = "W") -> float:
    """Length of one CLV period in the data's time unit.

    Parameters
    ----------
    period : {"D", "W", "M"}
        Unit of one CLV period (the horizon counts these).
    time_unit : {"D", "W", "M"}
        Unit of the data's ``recency`` and ``T``.

    Returns
    -------
    float
        ``period`` measured in ``time_unit`` (e.g. M in W = 365.25 / 12 / 7 = 4.348).
    """
    return unit_days(period, "period") / unit_days(time_unit, "time_unit")


def discount_factors(horizon: int, discount_rate: float) -> np.ndarray:
    """Per-period discount weights.

    Parameters
    ----------
    horizon : int
        Number of periods H.
    discount_rate : float
        Discount rate d per period.

    Returns
    -------
    ndarray, shape (horizon,)
        (1+d)^-k for k = 1..H.
    """
    return (1.0 + discount_rate) ** -np.arange(1, horizon + 1, dtype=float)


def discounted_purchases(
    r: Any,
    alpha: Any,
    a: Any,
    b: Any,
    x: Any,
    T: Any,
    *,
    horizon: int,
    period_length: float,
    discount_rate: float,
    numerator: Callable[..., Any] = expected_purchases_numerator,
) -> np.ndarray:
    """B = sum_k (N(kL) - N((k-1)L)) / (1+d)^k, N the t_x-free numerator of FHL 2005 eq. 10.

    Parameters
    ----------
    r, alpha, a, b : array_like
        BG/NBD parameters (or another purchase model's four, with its ``numerator``); broadcast
        against the data (e.g. params (draws, 1), patterns (1, n)).
    x, T : array_like
        Repeat purchases and customer age (data time unit).
    horizon : int
        Number of CLV periods H.
    period_length : float
        L, one period in the data's time unit.
    discount_rate : float
        Discount rate d per period.
    numerator : callable
        N(params, x, T, t), E[Y(t)] given alive at T (default BG/NBD's; any purchase model's
        ``expected_purchases_numerator``).

    Returns
    -------
    ndarray
        B, with the broadcast shape of the arguments (N(0) = 0).
    """
    w = discount_factors(horizon, discount_rate)
    out = 0.0
    prev = 0.0
    for k in range(1, horizon + 1):
        cur = numerator(r, alpha, a, b, x, T, k * period_length)
        out = out + w[k - 1] * (cur - prev)
        prev = cur
    return np.asarray(out, dtype=float)


def clv_at_params(
    r: Any, alpha: Any, a: Any, b: Any, p: Any, q: Any, gamma: Any,
    x: Any, t_x: Any, T: Any, zbar: Any, *,
    horizon: int = 12, period_length: float, discount_rate: float = 0.01, margin: float = 1.0,
) -> np.ndarray:  # fmt: skip
    """CLV = m * E[M | x, zbar] * B(x, T) / D(x, t_x, T) (module docstring), the dense reference.

    Parameters
    ----------
    r, alpha, a, b : array_like
        BG/NBD parameters.
    p, q, gamma : array_like
        Gamma-Gamma parameters.
    x, t_x, T, zbar : array_like
        Frequency, recency, age and mean repeat spend; all arguments broadcast.
    horizon : int
        Number of CLV periods H.
    period_length : float
        L, one period in the data's time unit.
    discount_rate : float
        Discount rate d per period.
    margin : float
        Margin m applied to the spend.

    Returns
    -------
    ndarray
        CLV with the broadcast shape of the arguments.
    """
    big_b = discounted_purchases(
        r, alpha, a, b, x, T, horizon=horizon, period_length=period_length, discount_rate=discount_rate
    )
    spend = gg_conditional_mean_spend(x, zbar, p, q, gamma)
    return margin * spend * big_b * np.exp(-log_d(r, alpha, a, b, x, t_x, T))


def pattern_table(
    r: np.ndarray, alpha: np.ndarray, a: np.ndarray, b: np.ndarray, xs: np.ndarray, Ts: np.ndarray,
    *, horizon: int, period_length: float, discount_rate: float,
) -> np.ndarray:  # fmt: skip
    """B(x, T) of :func:`discounted_purchases` for patterns (xs, Ts) of one segment, (patterns, draws).

    Per T, 2F1(alpha', beta'; c + x; z) over x = 0, 1, ... obeys the three-term contiguous
    relation in c (DLMF 15.5.18)
        c(c-1)(z-1) F(c-1) + c[c-1-(2c-alpha'-beta'-1)z] F(c) + (c-alpha')(c-beta') z F(c+1) = 0,
    and F is its minimal solution for z < 1/2, so running it *backward* from two exact values at
    the largest x is stable: two hyp2f1 calls per (T, period, draw) instead of one per
    (x, T, period, draw). Where the recurrence does not apply (z > RECURRENCE_MAX_Z, a near 1,
    a+b <= 1.05, non-integer x, fewer than 4 distinct x) B comes from :func:`discounted_purchases`.
    """
    import scipy.special as sps

    npat, nd = len(xs), len(r)
    out = np.empty((npat, nd))
    w = discount_factors(horizon, discount_rate)
    tk = period_length * np.arange(1, horizon + 1, dtype=float)
    A, B_ = (a + b - 1.0 - r)[:, None], (a - 1.0)[:, None]
    usable = bool(np.all(np.abs(a - 1.0) > 1e-3) and np.all(a + b > 1.05) and np.all(xs == np.round(xs)))
    for T in np.unique(Ts):
        sel = np.flatnonzero(Ts == T)
        x_here = xs[sel]
        log1mz = np.log(alpha[:, None] + T) - np.log(alpha[:, None] + T + tk[None, :])  # (draws, K)
        z = -np.expm1(log1mz)
        if not usable or len(x_here) < 4 or z.max() > RECURRENCE_MAX_Z:
            out[sel] = discounted_purchases(
                r, alpha, a, b, x_here[:, None], T, horizon=horizon, period_length=period_length,
                discount_rate=discount_rate,
            )  # fmt: skip
            continue
        xi = x_here.astype(np.int64)
        top = int(xi.max())
        need = np.zeros(top + 2, dtype=bool)
        need[xi] = True

        def c_of(x: int) -> np.ndarray:
            return (a + b + x - 1.0)[:, None]

        with np.errstate(over="ignore", invalid="ignore"):  # overflow is caught below
            f_hi = sps.hyp2f1(A, B_, c_of(top + 1), z)  # F at x+1
            f = sps.hyp2f1(A, B_, c_of(top), z)  # F at x
            res: dict[int, np.ndarray] = {}
            x = top
            while True:
                if need[x]:
                    res[x] = f
                if x <= xi.min():
                    break
                c = c_of(x)
                f_lo = -(c * (c - 1.0 - (2.0 * c - A - B_ - 1.0) * z) * f + (c - A) * (c - B_) * z * f_hi) / (
                    c * (c - 1.0) * (z - 1.0)
                )
                f_hi, f, x = f, f_lo, x - 1
            for j, xv in zip(sel, xi, strict=True):
                num = bm.numerator_from_hyp(a[:, None], c_of(int(xv)), log1mz, res[int(xv)])  # (draws, K)
                inc = np.diff(num, axis=1, prepend=0.0)
                out[j] = inc @ w
        # draws far in a tail (a, b in the thousands) can overflow the recurrence's products:
        # those draws take the direct path, which stays finite there
        bad = np.flatnonzero(~np.isfinite(out[sel]).all(axis=0))
        if len(bad):
            out[np.ix_(sel, bad)] = discounted_purchases(
                r[bad], alpha[bad], a[bad], b[bad], x_here[:, None], T, horizon=horizon,
                period_length=period_length, discount_rate=discount_rate,
            )  # fmt: skip
    return out


def inv_d_factored(
    r: np.ndarray, alpha: np.ndarray, a: np.ndarray, b: np.ndarray,
    px: np.ndarray, pT: np.ndarray, pat: np.ndarray, t_x: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """1/D for repeat customers (x > 0), (customers, draws), factored as design.md asks.

    D = 1 + exp(:func:`clvlab.models.bgnbd_math.log_d_excess`) (FHL 2005 eq. 10), the quantity of
    :func:`clvlab.models.bgnbd_math.log_d` (tested equal). log(D - 1) is linear in log(alpha+T)
    and log(alpha+t_x): its (x, T) part is evaluated per pattern (``px``, ``pT``: (patterns, 1)),
    log(alpha+t_x) per unique t_x, and each customer costs gathers, a multiply-add and one exp.
    ``r, alpha, a, b``: (draws,).
    """
    rx = r[None, :] + px
    vp = bm.log_d_excess(bm.log_ratio(a[None, :], b[None, :], px), rx, np.log(alpha[None, :] + pT), 0.0)
    utx, itx = np.unique(t_x, return_inverse=True)
    ltx = np.log(alpha[None, :] + utx[:, None])
    v = ltx[itx]
    bm.log_d_excess(vp[pat], rx[pat], 0.0, v, out=v)  # log(D - 1) per customer, in place
    with np.errstate(over="ignore"):
        np.exp(v, out=v)
    v += 1.0
    return np.reciprocal(v, out=v)
