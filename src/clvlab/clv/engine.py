"""The chunked posterior-CLV engine (its result types live in :mod:`clvlab.clv.result`).

:func:`customer_lifetime_value` sorts customers by (segment, x, T), walks through them in
chunks, evaluates B(segment, x, T) (:mod:`clvlab.clv.math`) once per unique pattern for all
draws, multiplies by each customer's E[M] and 1/D, and reduces the (draws x chunk) block to
per-customer summaries and per-draw group totals. No dense draws x customers x periods
array is ever built; memory is bounded by ``chunk_size * n_draws``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..choices import ALL_SEGMENTS, MODEL_LABELS
from ..errors import ClvlabInputError
from ..features.validation import check_rfm
from ..models.gamma_gamma_math import gg_spend_weight
from ..stats import HDI_PROB, hdi_inplace
from ..units import unit_days
from .draws import GG_PARAMS, ParamDraws, param_draws, scale_dropout, segment_codes
from .families import family_of
from .math import clv_period_length
from .result import CLVSettings, PosteriorCLV

__all__ = ["CLVSettings", "PosteriorCLV", "customer_lifetime_value"]


HIGH_DISCOUNT_RATE = 0.5
"""A discount rate per period above this is accepted with a warning (likely a yearly rate)."""


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) and bool(np.isfinite(v))


def _check_settings(horizon: Any, discount_rate: Any, margin: Any, thresholds: list[Any], hdi_prob: Any,
                    max_draws: Any, period_length: Any) -> int:  # fmt: skip
    """Every CLV argument checked at once (a wrong value must never give a number); returns the horizon."""
    problems = []
    if not (_is_number(horizon) and horizon >= 1 and float(horizon).is_integer()):
        problems.append(f"horizon={horizon!r}: expected a whole number of periods >= 1")
    if not (_is_number(discount_rate) and discount_rate >= 0.0):
        problems.append(f"discount_rate={discount_rate!r}: expected a finite rate per period >= 0 (0.01 = 1%)")
    elif discount_rate > HIGH_DISCOUNT_RATE:
        warnings.warn(f"discount_rate={discount_rate!r} per period is high ({discount_rate:.0%}): is it a yearly rate "
                      "given for monthly periods?", UserWarning, stacklevel=3)  # fmt: skip
    if not (_is_number(margin) and 0.0 < margin <= 1.0):
        problems.append(f"margin={margin!r}: expected a fraction of revenue in (0, 1] (0.3 = 30%)")
    bad = [t for t in thresholds if not _is_number(t)]
    if bad:
        problems.append(f"threshold={bad!r}: expected finite numbers")
    if not (_is_number(hdi_prob) and 0.0 < hdi_prob < 1.0):
        problems.append(f"hdi_prob={hdi_prob!r}: expected a probability in (0, 1)")
    if max_draws is not None and not (_is_number(max_draws) and max_draws >= 1 and float(max_draws).is_integer()):
        problems.append(f"max_draws={max_draws!r}: expected a whole number >= 1")
    if period_length is not None and not (_is_number(period_length) and period_length > 0):
        problems.append(f"period_length={period_length!r}: expected a number > 0")
    if problems:
        raise ClvlabInputError(problems, what="CLV settings")
    return int(horizon)


def _check_params(bg: ParamDraws, sp: ParamDraws) -> None:
    """Model parameters in their domain: purchase and Gamma-Gamma parameters finite and > 0, and
    q > 1 (else the population mean spend p gamma / (q - 1) is infinite or negative)."""
    problems = []
    for model, draws in ((MODEL_LABELS[bg.model or "bgnbd"], bg), ("Gamma-Gamma", sp)):
        for name, v in draws.values.items():
            bad = ~(np.isfinite(v) & (v > 0))
            if bad.any():
                problems.append(f"{model} parameter {name}: {int(bad.sum())} value(s) not finite and > 0 "
                                f"(e.g. {v[bad].ravel()[:3].tolist()})")  # fmt: skip
    q = sp.values.get("q")
    if q is not None and np.any(np.isfinite(q) & (q > 0) & (q <= 1)):
        problems.append(f"Gamma-Gamma parameter q: {int(np.sum((q > 0) & (q <= 1)))} value(s) <= 1: the population "
                        "mean spend p gamma / (q - 1) is not finite; expected q > 1")  # fmt: skip
    if problems:
        raise ClvlabInputError(problems, what="model parameters")


def _resolve_time_unit(purchase: Any, time_unit: str | None, data: pd.DataFrame) -> str | None:
    """The data's time unit: the purchase model's ``time_unit_``, else ``time_unit``, else ``data.attrs``.

    Raises ClvlabInputError when ``time_unit`` and the model's ``time_unit_`` are both set and differ.
    """
    fitted = getattr(purchase, "time_unit_", None)
    fitted = fitted if isinstance(fitted, str) else None
    if time_unit is not None and fitted is not None and time_unit != fitted:
        raise ClvlabInputError(
            f"time_unit={time_unit!r} but the purchase model was fitted on data in time_unit_={fitted!r}: "
            "time_unit= is the unit of the data's recency/T (the CLV horizon's unit is period=)",
            what="argument",
        )
    attr = data.attrs.get("time_unit")
    return fitted or time_unit or (attr if isinstance(attr, str) else None)


def _runs(*keys: np.ndarray) -> np.ndarray:
    """Start offsets of runs of equal consecutive keys (plus the end)."""
    n = len(keys[0])
    change = np.zeros(n, dtype=bool)
    if n:
        change[0] = True
        for k in keys:
            change[1:] |= k[1:] != k[:-1]
    return np.append(np.flatnonzero(change), n)


def _segment_list(segment: str | Sequence[str] | None) -> list[str]:
    cols = [] if segment is None else [segment] if isinstance(segment, str) else list(segment)
    bad = [c for c in cols if not isinstance(c, str)]
    if bad:
        raise ClvlabInputError(
            f"segment={segment!r}: expected a column name or a list of column names", what="argument"
        )
    return cols


def _spend_draws(gg: Any, data: pd.DataFrame) -> ParamDraws:
    """Spend draws of every segment in ``data``: a segment the spend model never saw (no repeat
    buyer) gets its population draw (:meth:`GammaGamma.segment_posterior`)."""
    col = getattr(gg, "segment", None)
    if isinstance(col, str) and hasattr(gg, "segment_posterior") and col in getattr(data, "columns", ()):
        unseen = sorted(set(data[col].dropna().astype(str)) - set(map(str, gg.segments_)))
        if unseen:  # said, not silent: a misspelt label would land here too
            warnings.warn(
                f"Gamma-Gamma: {col} {unseen[:5]} not in the fit (no repeat buyer there): their spend is "
                f"a new draw from the population ({gg.effective_pooling} pooling)",
                UserWarning,
                stacklevel=3,
            )
            return param_draws(gg.segment_posterior(unseen), GG_PARAMS, segment=col)
    return param_draws(gg, GG_PARAMS)


def customer_lifetime_value(
    purchase: Any,
    gg: Any,
    data: pd.DataFrame,
    horizon: int = 12,
    period: str = "M",
    discount_rate: float = 0.01,
    margin: float = 1.0,
    *,
    model: str | None = None,
    time_unit: str | None = None,
    period_length: float | None = None,
    segment: str | Sequence[str] = (),
    threshold: float | Sequence[float] = (),
    hdi_prob: float = HDI_PROB,
    max_draws: int | None = None,
    dropout_scale: float | Mapping[str, float] | None = None,
    customer_summaries: bool = True,
    chunk_size: int | None = None,
    n_threads: int | None = None,
    progress: bool | None = None,
    table_max_elements: int = 50_000_000,
) -> PosteriorCLV:
    """Posterior CLV of every customer in ``data`` over ``horizon`` periods of ``period``.

    Per draw: CLV = m E[M] B(segment, x, T) P(alive) (:mod:`clvlab.clv.math`, with B and
    P(alive) of the purchase model, :mod:`clvlab.clv.families`). B is tabulated once per
    (segment, x, T) when patterns x draws <= ``table_max_elements``, else evaluated per chunk;
    memory stays bounded either way.

    Parameters
    ----------
    purchase, gg : estimator, posterior, mapping or ParamDraws
        Fitted purchase (BG/NBD, MBG/NBD or Pareto/NBD) and Gamma-Gamma models, their
        posteriors, or fixed parameters (see :func:`clvlab.clv.param_draws`).
    data : DataFrame
        RFM table: ``customer_id``, ``frequency``, ``recency``, ``T``, ``monetary_value`` and
        the segment columns.
    horizon : int
        Number of CLV periods.
    period : {"D", "W", "M"}
        Unit of one CLV period.
    discount_rate : float
        Discount rate per period.
    margin : float
        Margin applied to spend.
    model : {"bgnbd", "mbgnbd", "pareto_nbd"}, optional
        The purchase model of ``purchase`` (default: its ``model_name``; "bgnbd" for bare
        parameters). An error if it differs from the fitted model's.
    time_unit : {"D", "W", "M"}, optional
        Unit of the data's ``recency`` / ``T``. Default: the purchase model's ``time_unit_``,
        else ``data.attrs["time_unit"]``. An error if it differs from the model's ``time_unit_``.
    period_length : float, optional
        One period in the data's time unit, overriding the conversion (lifetimes uses
        4.345 weeks per month).
    segment : str or sequence of str
        Extra grouping column(s) (e.g. "channel") whose per-draw totals are accumulated; the
        models' segment columns are always included.
    threshold : float or sequence of float
        Value(s) c for the per-customer P(CLV > c).
    hdi_prob : float
        Credible mass of the HDIs.
    max_draws : int, optional
        Thin both posteriors evenly to at most this many paired draws.
    dropout_scale : float or Mapping, optional
        Retention what-if (:func:`clvlab.clv.scale_dropout`).
    customer_summaries : bool
        Compute per-customer sd and HDI (the costliest reductions).
    chunk_size : int, optional
        Customers per chunk (default: about 4e6 / n_draws).
    n_threads : int, optional
        Worker threads (default: up to 2).
    progress : bool, optional
        Show a progress bar (default: for large problems).
    table_max_elements : int
        Largest patterns x draws table of B built up front.

    Returns
    -------
    PosteriorCLV
    """
    if getattr(purchase, "covariates", None):
        raise ClvlabInputError(
            "purchase models with covariates are not supported by the CLV engine yet", what="argument"
        )
    family = family_of(purchase, model)
    data_unit = _resolve_time_unit(purchase, time_unit, data)
    bg = param_draws(purchase, family.params, model=family.name)
    if bg.model != family.name:  # ParamDraws passed through: name its model
        bg = ParamDraws(bg.values, bg.segments, bg.segment, family.name)
    sp = gg if isinstance(gg, ParamDraws) else _spend_draws(gg, data)
    if dropout_scale is not None:
        bg = scale_dropout(bg, dropout_scale)
    thresholds = [threshold] if np.isscalar(threshold) else list(threshold)
    horizon = _check_settings(horizon, discount_rate, margin, thresholds, hdi_prob, max_draws, period_length)
    thresholds = [float(t) for t in thresholds]
    _check_params(bg, sp)
    group_cols = list(dict.fromkeys([c for c in (bg.segment, sp.segment) if c] + _segment_list(segment)))
    data = check_rfm(
        data, columns=("frequency", "recency", "T", "monetary_value"), segment=group_cols, what="RFM table"
    )  # the one validator of models and CLV
    unit_days(period, "period")
    if period_length is None:
        if data_unit is None:
            raise ClvlabInputError(
                "the data's time unit is unknown: pass time_unit= (the unit of recency/T) or period_length=",
                what="argument",
            )
        L = clv_period_length(period, data_unit)
    else:
        if data_unit is not None:
            unit_days(data_unit, "time_unit")
        L = float(period_length)

    # pair draws of the two (independent) posteriors, thinned evenly to a common count
    n_draws = min(bg.n_draws, sp.n_draws, max_draws or 10**12)
    bg = bg.thin(np.linspace(0, bg.n_draws - 1, n_draws).round().astype(int))
    sp = sp.thin(np.linspace(0, sp.n_draws - 1, n_draws).round().astype(int))

    g_bg = segment_codes(data, bg, MODEL_LABELS[family.name])
    g_gg = segment_codes(data, sp, "Gamma-Gamma")
    x = data["frequency"].to_numpy(float)
    tx = data["recency"].to_numpy(float)
    T = data["T"].to_numpy(float)
    zbar = np.where(x > 0, data["monetary_value"].to_numpy(float), 0.0)
    total_spend = x * zbar
    n = len(data)

    # group codes for the per-draw totals (the whole base first)
    groups: dict[str, tuple[np.ndarray, np.ndarray]] = {ALL_SEGMENTS: (np.zeros(n, np.int64), np.array([ALL_SEGMENTS]))}
    for c in group_cols:
        codes, uniq = pd.factorize(data[c].astype(str), sort=True)
        groups[c] = (codes.astype(np.int64), np.asarray(uniq))
    offsets = np.cumsum([0] + [len(u) for _, u in groups.values()])
    n_groups_total = int(offsets[-1])
    gcode = np.stack([codes + off for (codes, _), off in zip(groups.values(), offsets[:-1], strict=True)], axis=1)

    order = np.lexsort((T, x, g_gg, g_bg))
    blocks = _runs(g_bg[order], g_gg[order])

    # B(x, T) per BG/NBD segment on its unique (x, T), once, when it fits in memory
    tables: dict[int, np.ndarray] = {}
    keys = pd.DataFrame({"g": g_bg, "x": x, "T": T})
    codes = keys.groupby(["g", "x", "T"], sort=True).ngroup().to_numpy()
    uniq = keys.drop_duplicates().sort_values(["g", "x", "T"])
    offs = np.searchsorted(uniq["g"].to_numpy(), np.arange(len(bg.segments) + 1))
    gpat = codes - offs[g_bg]
    if len(uniq) * n_draws <= table_max_elements:
        for gb in np.unique(g_bg):
            u = uniq.iloc[offs[gb] : offs[gb + 1]]
            tables[int(gb)] = family.table(
                tuple(bg.values[k][:, gb] for k in family.params), u["x"].to_numpy(float), u["T"].to_numpy(float),
                horizon=horizon, period_length=L, discount_rate=discount_rate,
            )  # fmt: skip
    chunk_size = chunk_size or max(256, int(4_000_000 // max(n_draws, 1)))
    items = [
        (s, min(s + chunk_size, e))
        for s0, e in zip(blocks[:-1], blocks[1:], strict=True)
        for s in range(s0, e, chunk_size)
    ]

    out_mean = np.empty(n)
    out_sd = np.empty(n)
    out_lo = np.empty(n)
    out_hi = np.empty(n)
    out_p = np.empty((len(thresholds), n))
    out_alive = np.empty(n)
    out_spend = np.empty(n)
    totals = np.zeros((n_draws, n_groups_total))

    def work(item: tuple[int, int]) -> dict[int, np.ndarray]:
        """One chunk: per-customer summaries written in place; returns its per-draw group sums."""
        s, e = item
        idx = order[s:e]
        gb, gs = g_bg[idx[0]], g_gg[idx[0]]
        params = tuple(bg.values[k][:, gb] for k in family.params)  # (draws,) each
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
            tab = family.table(
                params, px[:, 0], pT[:, 0], horizon=horizon, period_length=L, discount_rate=discount_rate
            )
        tab *= weight
        if margin != 1.0:
            tab *= margin
        clv = np.repeat(tab, np.diff(starts), axis=0)  # (customers, draws); rows sorted by pattern
        k0 = int(np.searchsorted(xi, 0.0, side="right"))  # x = 0 first: D = 1 and x zbar = 0 there
        clv[:k0] *= gam[None, :]  # E[M] = (gamma + x zbar) p / (p x + q - 1)
        clv[k0:] *= gam[None, :] + si[k0:, None]
        spend_mean = (weight * gam).mean(1)[pat] + si * weight.mean(1)[pat]
        alive_mean = np.ones(len(idx))
        j0 = k0 if family.alive_at_zero else 0  # customers from j0 on need P(alive)
        if j0 < len(idx):
            alive = family.alive(params, px, pT, pat[j0:], xi[j0:], tx[idx[j0:]])
            alive_mean[j0:] = alive.mean(1)
            clv[j0:] *= alive
            del alive
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
            out_lo[idx], out_hi[idx] = hdi_inplace(clv, hdi_prob)
        return part

    def add(part: dict[int, np.ndarray]) -> None:  # in chunk order, whatever the threads did: same bits
        for k, v in part.items():
            totals[:, k] += v

    n_threads = n_threads or min(2, len(items) or 1)
    if progress is None:
        progress = n * n_draws > 50_000_000
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, unit="customer", desc="posterior CLV")
    if n_threads <= 1:
        for it in items:
            add(work(it))
            if bar is not None:
                bar.update(it[1] - it[0])
    else:
        with ThreadPoolExecutor(n_threads) as ex:
            for it, part in zip(items, ex.map(work, items), strict=True):  # map yields in submission order
                add(part)
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
    settings = CLVSettings(
        horizon=int(horizon), period=period, time_unit=data_unit, period_length=L, discount_rate=float(discount_rate),
        margin=float(margin), hdi_prob=float(hdi_prob), n_draws=int(n_draws), thresholds=tuple(thresholds),
        purchase_segment=bg.segment, spend_segment=sp.segment, purchase_model=family.name,
        dropout_scale=dict(dropout_scale) if isinstance(dropout_scale, Mapping) else dropout_scale,
    )  # fmt: skip
    return PosteriorCLV(cust, group_totals, group_counts, settings)
