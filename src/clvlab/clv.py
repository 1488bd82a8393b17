"""Posterior customer lifetime value: per customer, per segment / channel, CLV/CAC, sensitivity.

CLV over H periods with per-period discount d and margin m (design.md; the discrete form of
lifetimes and pymc-marketing)::

    CLV = m * E[M] * sum_{k=1..H} (E[Y(k L)] - E[Y((k-1) L)]) / (1+d)^k

where L is the length of one CLV period in the data's time unit (a month is
365.25/12/7 = 4.348 weeks; lifetimes hard-codes 4.345, pass ``period_length=4.345`` to
reproduce it exactly). With E[Y(t)] = N(x, T, t) / D(x, t_x, T) (FHL 2005 eq. 10), the
2F1 numerator N does not depend on t_x and D does not depend on t, so

    CLV = m * E[M] * B(segment, x, T) / D,   B = sum_k (N(kL) - N((k-1)L)) / (1+d)^k.

The engine (:func:`customer_lifetime_value`) sorts customers by (segment, x, T), walks
through them in chunks, evaluates B once per unique (segment, x, T) in the chunk for all
draws, multiplies by each customer's E[M] and 1/D, and reduces the (draws x chunk) block to
per-customer summaries and per-draw group totals. No dense draws x customers x periods
array is ever built; memory is bounded by ``chunk_size * n_draws``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .errors import ClvlabInputError
from .models import bgnbd_math as bm
from .models.bgnbd_math import expected_purchases_numerator, log_d
from .models.gamma_gamma_math import gg_conditional_mean_spend, gg_spend_weight
from .units import unit_days

__all__ = [
    "BGNBD_PARAMS",
    "GG_PARAMS",
    "PosteriorCLV",
    "ParamDraws",
    "cac_ratio",
    "cac_ratio_draws",
    "clv_at_params",
    "customer_lifetime_value",
    "discount_factors",
    "discounted_purchases",
    "hdi_sorted",
    "lifecycle_stage",
    "param_draws",
    "clv_period_length",
    "scale_dropout",
    "sensitivity",
    "retention_whatif",
]

BGNBD_PARAMS = ("r", "alpha", "a", "b")
GG_PARAMS = ("p", "q", "gamma")
POOLED = "all"


# --------------------------------------------------------------------------------------
# pure math at fixed parameters
# --------------------------------------------------------------------------------------
def clv_period_length(time_unit: str = "M", data_time_unit: str = "W") -> float:
    """Length of one CLV period (``time_unit``) in the data's time unit, e.g. M in W = 4.348."""
    return unit_days(time_unit) / unit_days(data_time_unit)


def discount_factors(horizon: int, discount_rate: float) -> np.ndarray:
    """(1+d)^-k for k = 1..horizon."""
    return (1.0 + discount_rate) ** -np.arange(1, horizon + 1, dtype=float)


def discounted_purchases(
    r: Any, alpha: Any, a: Any, b: Any, x: Any, T: Any, *, horizon: int, period_length: float, discount_rate: float
) -> np.ndarray:
    """B = sum_k (N(kL) - N((k-1)L)) / (1+d)^k, N the t_x-free numerator of FHL 2005 eq. 10.

    Arguments broadcast (e.g. params (draws, 1) against patterns (1, n)); N(0) = 0.
    """
    w = discount_factors(horizon, discount_rate)
    out = 0.0
    prev = 0.0
    for k in range(1, horizon + 1):
        cur = expected_purchases_numerator(r, alpha, a, b, x, T, k * period_length)
        out = out + w[k - 1] * (cur - prev)
        prev = cur
    return np.asarray(out, dtype=float)


def clv_at_params(
    r: Any, alpha: Any, a: Any, b: Any, p: Any, q: Any, gamma: Any,
    x: Any, t_x: Any, T: Any, zbar: Any, *,
    horizon: int = 12, period_length: float, discount_rate: float = 0.01, margin: float = 1.0,
) -> np.ndarray:  # fmt: skip
    """CLV = m * E[M | x, zbar] * B(x, T) / D(x, t_x, T) (module docstring); arguments broadcast."""
    big_b = discounted_purchases(
        r, alpha, a, b, x, T, horizon=horizon, period_length=period_length, discount_rate=discount_rate
    )
    spend = gg_conditional_mean_spend(x, zbar, p, q, gamma)
    return margin * spend * big_b * np.exp(-log_d(r, alpha, a, b, x, t_x, T))


def hdi_sorted(sorted_draws: np.ndarray, prob: float = 0.94, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Shortest interval holding ``prob`` of the draws, from draws already sorted along ``axis``.

    Same rule as ArviZ ('nearest'): width floor(prob * n) in sorted positions.
    """
    s = np.moveaxis(sorted_draws, axis, -1)
    n = s.shape[-1]
    k = int(math.floor(prob * n))
    if n == 0:
        nan = np.full(s.shape[:-1], np.nan)
        return nan, nan
    if k >= n or k == 0:
        return s[..., 0], s[..., -1]
    widths = s[..., k:] - s[..., : n - k]
    i = np.argmin(widths, axis=-1)[..., None]
    return np.take_along_axis(s, i, -1)[..., 0], np.take_along_axis(s, i + k, -1)[..., 0]


# --------------------------------------------------------------------------------------
# parameter draws from fitted models (or fixed values)
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParamDraws:
    """Population parameters per draw and segment: ``values[name]`` has shape (n_draws, n_segments)."""

    values: dict[str, np.ndarray]
    segments: list[str]
    segment_col: str | None  # None: pooled, one segment for every customer

    @property
    def n_draws(self) -> int:
        return next(iter(self.values.values())).shape[0]

    def thin(self, idx: np.ndarray) -> ParamDraws:
        return ParamDraws({k: v[idx] for k, v in self.values.items()}, self.segments, self.segment_col)

    def with_values(self, **values: np.ndarray) -> ParamDraws:
        return ParamDraws({**self.values, **values}, self.segments, self.segment_col)


def _posterior_of(obj: Any) -> Any:
    """The posterior Dataset of a fitted estimator / InferenceData / DataTree, or ``obj`` itself."""
    if isinstance(getattr(obj, "posterior_", None), xr.Dataset):
        return obj.posterior_
    for attr in ("idata_", "idata", "trace_"):
        idata = getattr(obj, attr, None)
        if idata is not None:
            obj = idata
            break
    try:
        post = obj["posterior"]
    except (KeyError, TypeError, IndexError, ValueError):
        post = getattr(obj, "posterior", obj)
    if hasattr(post, "to_dataset") and not isinstance(post, xr.Dataset | xr.DataArray):
        post = post.to_dataset()  # DataTree node
    return post


def param_draws(
    source: Any, names: Sequence[str], *, segment_col: str | None = None, segment_dim: str = "segment"
) -> ParamDraws:
    """Collect parameter draws as (n_draws, n_segments) arrays.

    ``source`` is a fitted clvlab estimator (its ``idata_`` posterior, segment column in
    ``.segment``), an InferenceData / DataTree / xarray Dataset with variables ``names`` on
    dims (chain, draw[, segment]), or a mapping name -> scalar (fixed params, one draw),
    1-D array over draws, or {segment: scalar} dict (fixed params per segment).
    """
    if isinstance(source, ParamDraws):
        return source
    if segment_col is None:
        segment_col = getattr(source, "segment", None)
        if not isinstance(segment_col, str):
            segment_col = None
    if isinstance(source, Mapping) and not isinstance(source, xr.Dataset):
        vals = {n: source[n] for n in names}
        if all(isinstance(v, Mapping) for v in vals.values()):
            segs = [str(s) for s in next(iter(vals.values()))]
            out = {n: np.array([[float(vals[n][s]) for s in segs]]) for n in names}
            return ParamDraws(out, segs, segment_col)
        out = {}
        for n, v in vals.items():
            arr = np.asarray(v, dtype=float)
            if arr.ndim == 0:
                arr = arr.reshape(1, 1)
            elif arr.ndim == 1:
                arr = arr[:, None]
            out[n] = arr
        segs = [POOLED] if next(iter(out.values())).shape[1] == 1 else [str(i) for i in range(next(iter(out.values())).shape[1])]
        return ParamDraws(out, segs, segment_col if len(segs) > 1 else None)

    post = _posterior_of(source)
    missing = [n for n in names if n not in post]
    if missing:
        raise ClvlabInputError(
            [f"posterior has no variable {n!r} (has {sorted(map(str, post.data_vars))})" for n in missing],
            what="model posterior",
        )
    out = {}
    segs: list[str] = [POOLED]
    for n in names:
        da = post[n]
        sample_dims = [d for d in ("chain", "draw") if d in da.dims]
        extra = [d for d in da.dims if d not in sample_dims]
        if extra and extra != [segment_dim]:
            raise ClvlabInputError(
                f"{n!r} has dims {da.dims}: expected (chain, draw) or (chain, draw, {segment_dim!r})",
                what="model posterior",
            )
        if extra:
            da = da.stack(__sample__=sample_dims).transpose("__sample__", segment_dim)
            segs = [str(s) for s in da[segment_dim].values]
            out[n] = np.asarray(da.values, dtype=float)
        else:
            da = da.stack(__sample__=sample_dims) if sample_dims else da.expand_dims("__sample__")
            out[n] = np.asarray(da.values, dtype=float).reshape(-1, 1)
    n_seg = max(v.shape[1] for v in out.values())
    out = {k: np.broadcast_to(v, (v.shape[0], n_seg)).copy() for k, v in out.items()}
    if n_seg == 1:
        segs, segment_col = [POOLED], None
    return ParamDraws(out, segs, segment_col)


def scale_dropout(bg: ParamDraws, scale: float | Mapping[str, float]) -> ParamDraws:
    """Retention what-if: phi = a/(a+b) -> scale * phi per segment, kappa = a+b kept.

    ``scale`` < 1 lowers the mean dropout probability (a retention uplift). Scalar or
    {segment: scale} (segments not named keep scale 1).
    """
    if isinstance(scale, Mapping):
        unknown = [s for s in scale if str(s) not in bg.segments]
        if unknown:
            raise ClvlabInputError(f"dropout scale for unknown segment(s) {unknown}; model has {bg.segments}", what="argument")
        s = np.array([float(scale.get(g, 1.0)) for g in bg.segments])[None, :]
    else:
        s = float(scale)
    a, b = bg.values["a"], bg.values["b"]
    kappa = a + b
    phi = np.asarray(s * a / kappa)
    if np.any(phi <= 0) or np.any(phi >= 1):
        raise ClvlabInputError(f"dropout scale {scale!r} moves phi = a/(a+b) outside (0, 1)", what="argument")
    return bg.with_values(a=phi * kappa, b=(1.0 - phi) * kappa)


# --------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------
def _check_rfm(data: pd.DataFrame, extra_cols: Sequence[str]) -> None:
    problems: list[str] = []
    need = ["customer_id", "frequency", "recency", "T", "monetary_value", *extra_cols]
    miss = [c for c in dict.fromkeys(need) if c not in data.columns]
    if miss:
        raise ClvlabInputError([f"missing column {c!r}" for c in miss], what="RFM table")
    for c in ("frequency", "recency", "T", "monetary_value"):
        v = pd.to_numeric(data[c], errors="coerce")
        bad = data.index[v.isna() | ~np.isfinite(v.astype(float)) | (v < 0)]
        if len(bad):
            problems.append(f"column {c!r}: {len(bad)} row(s) not a finite number >= 0, e.g. rows {list(bad[:5])}")
    if not problems:
        bad = data.index[data["recency"] > data["T"] + 1e-9]
        if len(bad):
            problems.append(f"recency > T in {len(bad)} row(s), e.g. rows {list(bad[:5])}")
        bad = data.index[(data["frequency"] == 0) & (data["recency"] > 0)]
        if len(bad):
            problems.append(f"frequency 0 with recency > 0 in {len(bad)} row(s), e.g. rows {list(bad[:5])}")
    if data["customer_id"].duplicated().any():
        d = data.loc[data["customer_id"].duplicated(), "customer_id"]
        problems.append(f"column 'customer_id': {len(d)} duplicated id(s), e.g. {list(d[:5])}")
    if problems:
        raise ClvlabInputError(problems, what="RFM table")


def _segment_codes(data: pd.DataFrame, pd_: ParamDraws, model: str) -> np.ndarray:
    if pd_.segment_col is None:
        return np.zeros(len(data), dtype=np.int64)
    labels = data[pd_.segment_col].astype(str)
    lookup = {s: i for i, s in enumerate(pd_.segments)}
    codes = labels.map(lookup)
    if codes.isna().any():
        unknown = sorted(labels[codes.isna()].unique())[:5]
        raise ClvlabInputError(
            f"column {pd_.segment_col!r}: value(s) {unknown} not among the {model} model's segments {pd_.segments[:20]}",
            what="RFM table",
        )
    return codes.to_numpy(dtype=np.int64)


# --------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------
@dataclass
class PosteriorCLV:
    """Posterior CLV reduced to summaries.

    ``customers``: one row per customer (input order): ``clv_mean``, ``clv_sd``,
    ``clv_hdi_low/high``, ``p_clv_gt_<threshold>``, ``p_alive_mean``, ``spend_mean`` (E[M]).
    ``group_totals[col]``: DataArray (draw, col) of per-draw total CLV of each group;
    ``group_counts[col]``: customers per group. The column ``"all"`` is the whole base.
    """

    customers: pd.DataFrame
    group_totals: dict[str, xr.DataArray]
    group_counts: dict[str, pd.Series]
    settings: dict[str, Any] = field(default_factory=dict)

    def group_means(self, by: str) -> xr.DataArray:
        """Per-draw mean CLV per customer in each group of ``by``: DataArray (draw, by)."""
        tot = self.group_totals[by]
        n = xr.DataArray(self.group_counts[by].reindex(tot[by].values).to_numpy(float), dims=[by], coords={by: tot[by]})
        return tot / n

    def summary(self, by: str = "all", hdi_prob: float | None = None) -> pd.DataFrame:
        """Tidy table per group: customers, total and mean-per-customer CLV (posterior mean, sd,
        HDI, 5/50/95% quantiles), from the per-draw group totals."""
        hdi_prob = hdi_prob or self.settings.get("hdi_prob", 0.94)
        rows = []
        for what, da in (("total", self.group_totals[by]), ("mean", self.group_means(by))):
            v = np.sort(da.transpose(by, "draw").values, axis=1)
            lo, hi = hdi_sorted(v, hdi_prob)
            q = np.quantile(v, [0.05, 0.5, 0.95], axis=1)
            rows.append(
                pd.DataFrame(
                    {
                        by: da[by].values,
                        f"{what}_mean": v.mean(1),
                        f"{what}_sd": v.std(1, ddof=1) if v.shape[1] > 1 else np.zeros(v.shape[0]),
                        f"{what}_hdi_low": lo,
                        f"{what}_hdi_high": hi,
                        f"{what}_q05": q[0],
                        f"{what}_q50": q[1],
                        f"{what}_q95": q[2],
                    }
                ).set_index(by)
            )
        out = pd.concat(rows, axis=1)
        out.insert(0, "n_customers", self.group_counts[by].reindex(out.index).to_numpy())
        return out.reset_index()


RECURRENCE_MAX_Z = 0.45
"""Backward recurrence in x is used only where z = t/(alpha+T+t) <= this (2F1 minimal there)."""


def _pattern_table(
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
    return out


def _inv_d_factored(
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


def _hdi_inplace(draws: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-row HDI of ``draws`` (rows = customers), reordering each row in place.

    Only the m = n - floor(prob n) smallest and largest draws can be interval ends, so two
    partial partitions plus sorts of those m columns replace a full sort (same result as
    :func:`hdi_sorted` on the sorted rows).
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


# --------------------------------------------------------------------------------------
# the chunked engine
# --------------------------------------------------------------------------------------
def _runs(*keys: np.ndarray) -> np.ndarray:
    """Start offsets of runs of equal consecutive keys (plus the end)."""
    n = len(keys[0])
    change = np.zeros(n, dtype=bool)
    if n:
        change[0] = True
        for k in keys:
            change[1:] |= k[1:] != k[:-1]
    return np.append(np.flatnonzero(change), n)


def customer_lifetime_value(
    bgnbd: Any,
    gg: Any,
    data: pd.DataFrame,
    horizon: int = 12,
    time_unit: str = "M",
    discount_rate: float = 0.01,
    margin: float = 1.0,
    *,
    data_time_unit: str | None = None,
    period_length: float | None = None,
    by: Sequence[str] = (),
    threshold: float | Sequence[float] = (),
    hdi_prob: float = 0.94,
    max_draws: int | None = None,
    dropout_scale: float | Mapping[str, float] | None = None,
    customer_summaries: bool = True,
    chunk_size: int | None = None,
    n_threads: int | None = None,
    progress: bool | None = None,
    table_max_elements: int = 50_000_000,
) -> PosteriorCLV:
    """Posterior CLV of every customer in ``data`` (an RFM table) for ``horizon`` periods of ``time_unit``.

    ``bgnbd`` / ``gg``: fitted models, posteriors, or fixed params (see :func:`param_draws`).
    ``data_time_unit``: the unit of ``recency``/``T`` (default: the model's ``time_unit``);
    ``period_length`` overrides the conversion (lifetimes uses 4.345 weeks per month).
    ``by``: extra grouping columns (e.g. "channel") whose per-draw totals are accumulated.
    ``threshold``: value(s) c for the per-customer P(CLV > c). ``dropout_scale``: see
    :func:`scale_dropout`. Per draw: CLV = m E[M] B(segment, x, T) / D (module docstring).
    B is tabulated once per (segment, x, T) when patterns x draws <= ``table_max_elements``
    (:func:`_pattern_table`), else evaluated per chunk; memory stays bounded either way.
    """
    if getattr(bgnbd, "covariates", None):
        raise ClvlabInputError("BG/NBD models with covariates are not supported by the CLV engine yet", what="argument")
    bg = bgnbd if isinstance(bgnbd, ParamDraws) else param_draws(bgnbd, BGNBD_PARAMS)
    sp = gg if isinstance(gg, ParamDraws) else param_draws(gg, GG_PARAMS)
    if dropout_scale is not None:
        bg = scale_dropout(bg, dropout_scale)
    thresholds = [float(threshold)] if np.isscalar(threshold) else [float(t) for t in threshold]
    by = [by] if isinstance(by, str) else list(by)
    group_cols = list(dict.fromkeys([c for c in (bg.segment_col, sp.segment_col) if c] + by))
    _check_rfm(data, group_cols)
    if horizon < 1:
        raise ClvlabInputError(f"horizon={horizon}: expected a positive number of periods", what="argument")
    if period_length is None:
        data_time_unit = data_time_unit or data.attrs.get("time_unit") or getattr(bgnbd, "time_unit", None)
        if not isinstance(data_time_unit, str):
            raise ClvlabInputError(
                "data_time_unit is unknown: pass data_time_unit= (unit of recency/T) or period_length=",
                what="argument",
            )
        L = clv_period_length(time_unit, data_time_unit)
    else:
        L = float(period_length)

    # pair draws of the two (independent) posteriors, thinned evenly to a common count
    n_draws = min(bg.n_draws, sp.n_draws, max_draws or 10**12)
    bg = bg.thin(np.linspace(0, bg.n_draws - 1, n_draws).round().astype(int))
    sp = sp.thin(np.linspace(0, sp.n_draws - 1, n_draws).round().astype(int))

    g_bg = _segment_codes(data, bg, "BG/NBD")
    g_gg = _segment_codes(data, sp, "Gamma-Gamma")
    x = data["frequency"].to_numpy(float)
    tx = data["recency"].to_numpy(float)
    T = data["T"].to_numpy(float)
    zbar = np.where(x > 0, data["monetary_value"].to_numpy(float), 0.0)
    total_spend = x * zbar
    n = len(data)

    # group codes for the per-draw totals ("all" first)
    groups: dict[str, tuple[np.ndarray, np.ndarray]] = {"all": (np.zeros(n, np.int64), np.array([POOLED]))}
    for c in group_cols:
        codes, uniq = pd.factorize(data[c].astype(str), sort=True)
        groups[c] = (codes.astype(np.int64), np.asarray(uniq))
    offsets = np.cumsum([0] + [len(u) for _, u in groups.values()])
    n_groups_total = int(offsets[-1])
    gcode = np.stack([codes + off for (codes, _), off in zip(groups.values(), offsets[:-1], strict=True)], axis=1)

    order = np.lexsort((T, x, g_gg, g_bg))
    blocks = _runs(g_bg[order], g_gg[order])

    # B(x, T) per BG/NBD segment on its unique (x, T), once, when it fits in memory
    gpat = np.zeros(n, dtype=np.int64)
    tables: dict[int, np.ndarray] = {}
    keys = pd.DataFrame({"g": g_bg, "x": x, "T": T})
    codes = keys.groupby(["g", "x", "T"], sort=True).ngroup().to_numpy()
    uniq = keys.drop_duplicates().sort_values(["g", "x", "T"])
    offs = np.searchsorted(uniq["g"].to_numpy(), np.arange(len(bg.segments) + 1))
    gpat = codes - offs[g_bg]
    if len(uniq) * n_draws <= table_max_elements:
        for gb in np.unique(g_bg):
            u = uniq.iloc[offs[gb] : offs[gb + 1]]
            tables[int(gb)] = _pattern_table(
                *(bg.values[k][:, gb] for k in BGNBD_PARAMS), u["x"].to_numpy(float), u["T"].to_numpy(float),
                horizon=horizon, period_length=L, discount_rate=discount_rate,
            )  # fmt: skip
    chunk_size = chunk_size or max(256, int(4_000_000 // max(n_draws, 1)))
    items = [
        (s, min(s + chunk_size, e)) for s0, e in zip(blocks[:-1], blocks[1:], strict=True) for s in range(s0, e, chunk_size)
    ]

    out_mean = np.empty(n)
    out_sd = np.empty(n)
    out_lo = np.empty(n)
    out_hi = np.empty(n)
    out_p = np.empty((len(thresholds), n))
    out_alive = np.empty(n)
    out_spend = np.empty(n)
    totals = np.zeros((n_draws, n_groups_total))
    lock = threading.Lock()

    def work(item: tuple[int, int]) -> None:
        s, e = item
        idx = order[s:e]
        gb, gs = g_bg[idx[0]], g_gg[idx[0]]
        r, alpha, a, b = (bg.values[k][:, gb] for k in BGNBD_PARAMS)  # (draws,)
        p, q, gam = (sp.values[k][:, gs] for k in GG_PARAMS)
        xi, Ti, si = x[idx], T[idx], total_spend[idx]
        starts = _runs(xi, Ti)  # customers are sorted by (x, T) inside a block
        pat = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
        px, pT = xi[starts[:-1]][:, None], Ti[starts[:-1]][:, None]
        # per (x, T) pattern and draw: m * B(x, T) * p / (p x + q - 1)
        weight = gg_spend_weight(px, p, q)
        if int(gb) in tables:
            tab = tables[int(gb)][gpat[idx[starts[:-1]]]]
        else:
            tab = discounted_purchases(r, alpha, a, b, px, pT, horizon=horizon, period_length=L, discount_rate=discount_rate)
        tab *= weight
        if margin != 1.0:
            tab *= margin
        clv = np.repeat(tab, np.diff(starts), axis=0)  # (customers, draws); rows sorted by pattern
        k0 = int(np.searchsorted(xi, 0.0, side="right"))  # x = 0 first: D = 1 and x zbar = 0 there
        clv[:k0] *= gam[None, :]  # E[M] = (gamma + x zbar) p / (p x + q - 1)
        clv[k0:] *= gam[None, :] + si[k0:, None]
        spend_mean = (weight * gam).mean(1)[pat] + si * weight.mean(1)[pat]
        alive_mean = np.ones(len(idx))
        if k0 < len(idx):
            inv_d = _inv_d_factored(r, alpha, a, b, px, pT, pat[k0:], tx[idx[k0:]])
            alive_mean[k0:] = inv_d.mean(1)
            clv[k0:] *= inv_d
            del inv_d
        # reductions: per-draw group totals (column sums per group), per-customer summaries
        gc = gcode[idx]
        part: dict[int, np.ndarray] = {}
        colsum = None
        for j in range(gc.shape[1]):
            if gc[0, j] == gc[-1, j] and np.all(gc[:, j] == gc[0, j]):
                colsum = clv.sum(0) if colsum is None else colsum
                part[int(gc[0, j])] = colsum
            else:
                for k in np.unique(gc[:, j]):
                    part[int(k)] = clv[gc[:, j] == k].sum(0)
        with lock:
            for k, v in part.items():
                totals[:, k] += v
        out_alive[idx] = alive_mean
        out_spend[idx] = spend_mean
        mean = clv.sum(1) / n_draws
        out_mean[idx] = mean
        for j, c in enumerate(thresholds):
            out_p[j, idx] = np.count_nonzero(clv > c, axis=1) / n_draws
        if customer_summaries:
            if n_draws > 1:  # one pass, no temporary: sum of squares minus n mean^2
                ss = np.einsum("ij,ij->i", clv, clv) - n_draws * mean * mean
                out_sd[idx] = np.sqrt(np.maximum(ss, 0.0) / (n_draws - 1))
            else:
                out_sd[idx] = 0.0
            out_lo[idx], out_hi[idx] = _hdi_inplace(clv, hdi_prob)

    n_threads = n_threads or min(2, len(items) or 1)
    if progress is None:
        progress = n * n_draws > 50_000_000
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, unit="customer", desc="posterior CLV")
    if n_threads <= 1:
        for it in items:
            work(it)
            if bar is not None:
                bar.update(it[1] - it[0])
    else:
        with ThreadPoolExecutor(n_threads) as ex:
            for it, _ in zip(items, ex.map(work, items), strict=True):
                if bar is not None:
                    bar.update(it[1] - it[0])
    if bar is not None:
        bar.close()

    cust = pd.DataFrame({"customer_id": data["customer_id"].to_numpy()})
    for c in group_cols:
        cust[c] = data[c].to_numpy()
    cust["clv_mean"] = out_mean
    if customer_summaries:
        cust["clv_sd"] = out_sd
        cust["clv_hdi_low"] = out_lo
        cust["clv_hdi_high"] = out_hi
    for j, c in enumerate(thresholds):
        cust[f"p_clv_gt_{c:g}"] = out_p[j]
    cust["p_alive_mean"] = out_alive
    cust["spend_mean"] = out_spend

    group_totals: dict[str, xr.DataArray] = {}
    group_counts: dict[str, pd.Series] = {}
    for (name, (codes, uniq)), off in zip(groups.items(), offsets[:-1], strict=True):
        group_totals[name] = xr.DataArray(
            totals[:, off : off + len(uniq)], dims=["draw", name], coords={"draw": np.arange(n_draws), name: uniq}
        )
        group_counts[name] = pd.Series(np.bincount(codes, minlength=len(uniq)), index=uniq, name="n_customers")
    settings = dict(
        horizon=horizon, time_unit=time_unit, discount_rate=discount_rate, margin=margin, period_length=L,
        hdi_prob=hdi_prob, n_draws=n_draws, thresholds=thresholds, bgnbd_segment=bg.segment_col,
        gg_segment=sp.segment_col, dropout_scale=dropout_scale,
    )  # fmt: skip
    return PosteriorCLV(cust, group_totals, group_counts, settings)


# --------------------------------------------------------------------------------------
# CLV / CAC, sensitivity, lifecycle
# --------------------------------------------------------------------------------------
def cac_ratio_draws(result: PosteriorCLV, cac: Mapping[str, float] | pd.Series | pd.DataFrame, by: str = "channel") -> xr.DataArray:
    """Per-draw CLV/CAC per channel, DataArray (draw, ``by``): mean CLV per customer / CAC.

    ``cac``: acquisition cost per customer by channel ({channel: cost}, a Series, or a table
    with columns ``by`` and ``cac``).
    """
    if by not in result.group_totals:
        raise ClvlabInputError(f"the CLV result has no grouping {by!r}: pass by=[{by!r}] to customer_lifetime_value", what="argument")
    if isinstance(cac, pd.DataFrame):
        cac = cac.set_index(by)["cac"]
    cac = pd.Series(cac, dtype=float)
    cac.index = cac.index.astype(str)
    means = result.group_means(by)
    chans = [str(c) for c in means[by].values]
    problems = [f"no CAC for channel {c!r}" for c in chans if c not in cac.index]
    problems += [f"CAC of channel {c!r} is {cac[c]!r}: expected a number > 0" for c in chans if c in cac.index and not cac[c] > 0]
    if problems:
        raise ClvlabInputError(problems, what="CAC table")
    cost = xr.DataArray(cac.reindex(chans).to_numpy(), dims=[by], coords={by: means[by].values})
    return (means / cost).transpose("draw", by).rename("clv_cac")


def cac_ratio(result: PosteriorCLV, cac: Mapping[str, float] | pd.Series | pd.DataFrame, by: str = "channel") -> pd.DataFrame:
    """Posterior of CLV/CAC per channel, P(CLV/CAC > 1) and the channel ranking with uncertainty.

    Per draw (:func:`cac_ratio_draws`): ratio = mean CLV per customer / CAC; rank 1 = best
    ratio. Columns: channel, cac, clv_mean, ratio_mean, ratio_sd, ratio_hdi_low/high,
    p_ratio_gt_1, p_rank_1, expected_rank (sorted by expected rank).
    """
    ratio = cac_ratio_draws(result, cac, by)
    means = result.group_means(by)
    v = ratio.values
    ranks = (-v).argsort(axis=1).argsort(axis=1) + 1  # rank per draw, 1 = best
    hdi_prob = result.settings.get("hdi_prob", 0.94)
    lo, hi = hdi_sorted(np.sort(v, axis=0), hdi_prob, axis=0)
    out = pd.DataFrame({
        by: [str(c) for c in ratio[by].values], "cac": (means / ratio).mean("draw").values,
        "clv_mean": means.mean("draw").values, "ratio_mean": v.mean(0),
        "ratio_sd": v.std(0, ddof=1) if v.shape[0] > 1 else 0.0, "ratio_hdi_low": lo, "ratio_hdi_high": hi,
        "p_ratio_gt_1": (v > 1.0).mean(0), "p_rank_1": (ranks == 1).mean(0), "expected_rank": ranks.mean(0),
    })  # fmt: skip
    return out.sort_values("expected_rank").reset_index(drop=True)


def sensitivity(
    bgnbd: Any, gg: Any, data: pd.DataFrame, *,
    discount_rates: Sequence[float] = (0.0, 0.005, 0.01, 0.02, 0.03),
    margins: Sequence[float] = (0.2, 0.3, 0.5, 1.0), by: str | None = None, **kwargs: Any,
) -> pd.DataFrame:  # fmt: skip
    """CLV over a grid of discount rates x margins, per group of ``by`` (default: the whole base).

    One engine pass per discount rate (no per-customer summaries); CLV is linear in the
    margin, so margins rescale the per-draw totals exactly. Tidy columns: discount_rate,
    margin, group, total_mean, total_hdi_low/high, mean_mean, mean_hdi_low/high.
    """
    by_cols = [by] if by else []
    rows = []
    for d in discount_rates:
        res = customer_lifetime_value(bgnbd, gg, data, discount_rate=float(d), margin=1.0, by=by_cols,
                                      customer_summaries=False, **kwargs)  # fmt: skip
        key = by or "all"
        summ = res.summary(key)
        for m in margins:
            t = summ.copy()
            cols = [c for c in t.columns if c.startswith(("total_", "mean_"))]
            t[cols] = t[cols] * float(m)
            t = t.rename(columns={key: "group"})
            t.insert(0, "margin", float(m))
            t.insert(0, "discount_rate", float(d))
            rows.append(t)
    out = pd.concat(rows, ignore_index=True)
    keep = ["discount_rate", "margin", "group", "n_customers", "total_mean", "total_hdi_low", "total_hdi_high",
            "mean_mean", "mean_hdi_low", "mean_hdi_high"]  # fmt: skip
    return out[keep]


def retention_whatif(
    bgnbd: Any, gg: Any, data: pd.DataFrame, *, scales: Sequence[float] = (0.8, 0.9, 1.0, 1.1), **kwargs: Any
) -> pd.DataFrame:
    """What-if: dropout mean phi = a/(a+b) scaled by s (kappa kept), per BG/NBD segment.

    Each segment's CLV depends only on its own parameters, so one engine pass per scale
    (applied to every segment) gives each segment's what-if. The uplift against s = 1 is
    computed draw by draw (same posterior draws), so its interval is the paired one.
    Columns: dropout_scale, segment, total_mean, total_hdi_low/high, uplift_mean,
    uplift_hdi_low/high, uplift_pct.
    """
    bg = param_draws(bgnbd, BGNBD_PARAMS)
    key = bg.segment_col or "all"
    by = [key] if bg.segment_col else []

    def totals(s: float) -> xr.DataArray:
        res = customer_lifetime_value(bg, gg, data, by=by, customer_summaries=False,
                                      dropout_scale=None if s == 1.0 else s, **kwargs)  # fmt: skip
        return res.group_totals[key]

    base = totals(1.0)
    rows = []
    for s in scales:
        tot = base if s == 1.0 else totals(float(s))
        up = (tot - base).transpose("draw", key).values
        tv = tot.transpose("draw", key).values
        tlo, thi = hdi_sorted(np.sort(tv, 0), axis=0)
        ulo, uhi = hdi_sorted(np.sort(up, 0), axis=0)
        for j, g in enumerate(tot[key].values):
            rows.append(dict(dropout_scale=float(s), segment=str(g), total_mean=tv[:, j].mean(), total_hdi_low=tlo[j],
                             total_hdi_high=thi[j], uplift_mean=up[:, j].mean(), uplift_hdi_low=ulo[j],
                             uplift_hdi_high=uhi[j], uplift_pct=100.0 * up[:, j].mean() / base.values[:, j].mean()))  # fmt: skip
    return pd.DataFrame(rows)


STAGES = ("new", "active", "at risk", "lapsed")
TIERS = ("high", "medium", "low")


def lifecycle_stage(
    result: PosteriorCLV, data: pd.DataFrame, *, new_tenure: float = 8.0, active_p_alive: float = 0.7,
    lapsed_p_alive: float = 0.3, tier_quantiles: tuple[float, float] = (0.5, 0.8), path: str | None = None,
) -> pd.DataFrame:  # fmt: skip
    """CRM table: lifecycle stage and value tier per customer (optionally written to CSV/Parquet).

    stage: ``new`` if tenure T < ``new_tenure`` (data time units); otherwise by posterior
    mean P(alive): ``active`` >= ``active_p_alive`` > ``at risk`` >= ``lapsed_p_alive`` >
    ``lapsed``. value_tier by posterior mean CLV: ``high`` above the ``tier_quantiles[1]``
    quantile, ``medium`` above ``tier_quantiles[0]``, else ``low``.
    """
    problems = []
    if not 0.0 <= lapsed_p_alive <= active_p_alive <= 1.0:
        problems.append(f"need 0 <= lapsed_p_alive ({lapsed_p_alive}) <= active_p_alive ({active_p_alive}) <= 1")
    if not 0.0 < tier_quantiles[0] < tier_quantiles[1] < 1.0:
        problems.append(f"tier_quantiles={tier_quantiles}: expected 0 < low < high < 1")
    if "T" not in data.columns or len(data) != len(result.customers):
        problems.append("data must be the RFM table the CLV result was computed from (same rows, column 'T')")
    elif not np.array_equal(data["customer_id"].astype(str).to_numpy(), result.customers["customer_id"].astype(str).to_numpy()):
        problems.append("customer_id of data and of the CLV result differ (same rows, same order expected)")
    if problems:
        raise ClvlabInputError(problems, what="lifecycle settings")
    out = result.customers.copy()
    tenure = data["T"].to_numpy(float)
    pa = out["p_alive_mean"].to_numpy()
    stage = np.where(pa >= active_p_alive, "active", np.where(pa >= lapsed_p_alive, "at risk", "lapsed"))
    stage = np.where(tenure < new_tenure, "new", stage)
    lo, hi = np.quantile(out["clv_mean"], tier_quantiles)
    tier = np.where(out["clv_mean"] > hi, "high", np.where(out["clv_mean"] > lo, "medium", "low"))
    out.insert(1, "tenure", tenure)
    out["stage"] = pd.Categorical(stage, categories=list(STAGES))
    out["value_tier"] = pd.Categorical(tier, categories=list(TIERS))
    if path is not None:
        from .io import write_table

        write_table(out.assign(stage=out["stage"].astype(str), value_tier=out["value_tier"].astype(str)), path)
    return out
