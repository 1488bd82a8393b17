"""What a newly acquired customer is worth per channel, CLV/CAC on that basis, and payback.

:func:`~clvlab.clv.customer_lifetime_value` values customers already acquired over the next
horizon: the **residual value of the existing base**. Buying a customer through a channel
yields a **new customer's value** instead, counted from the first order (day zero). Per
posterior draw and segment g::

    V_g = m [ F_g + E[M]_g sum_{k=1..H} (E[X_g(kL)] - E[X_g((k-1)L)]) (1+d)^-k ]

- E[X_g(t)]: the purchase model's expected repeat purchases of a new customer by time t
  (FHL 2005 eq. 9 for BG/NBD; each model's ``expected_purchases_new``), at segment g's
  population parameters;
- E[M]_g = p_g gamma_g / (q_g - 1): the Gamma-Gamma population mean spend per repeat purchase
  (a new customer has no spend history, so the population mean, not a customer's posterior);
- F_g: the expected first-order spend. The spend model is fitted on repeat purchases only, so
  F_g comes from the segment's observed first orders: their mean under the Bayesian bootstrap
  (Rubin 1981: one Dirichlet(1, ..., 1) weighting of the customers per draw), which carries
  the sampling uncertainty of a finite segment into every draw;
- L one period in the data's time unit, H periods, d the discount rate per period, m the margin.
  The first order falls at acquisition (period 0, undiscounted).

Payback: the first period k whose cumulative discounted margin reaches the CAC (0 when the
first order's margin covers it; beyond the horizon: never, counted as such).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..choices import MODEL_LABELS
from ..errors import ClvlabInputError
from ..stats import HDI_PROB, hdi_sorted
from ..units import unit_days
from .cac import CAC, cac_by_segment
from .draws import GG_PARAMS, ParamDraws, param_draws
from .engine import _check_params, _check_settings, _resolve_time_unit, _spend_draws
from .families import family_of
from .math import clv_period_length, discount_factors

__all__ = [
    "AcquisitionSettings",
    "NewCustomerValue",
    "clv_cac",
    "clv_cac_draws",
    "new_customer_value",
    "payback_periods",
]

BOOTSTRAP_CHUNK = 4_000_000
"""Draws x customers of one Bayesian-bootstrap block (memory stays bounded for large segments)."""


@dataclass(frozen=True)
class AcquisitionSettings:
    """How a :class:`NewCustomerValue` was computed (all in the result, so a table says what it shows)."""

    segment: str
    horizon: int
    period: str
    period_length: float
    time_unit: str | None
    discount_rate: float
    margin: float
    purchase_model: str
    hdi_prob: float
    seed: int


@dataclass(frozen=True)
class NewCustomerValue:
    """Value of one newly acquired customer per segment, per posterior draw (module docstring).

    Attributes
    ----------
    value : DataArray
        (draw, segment): margin x (first order + spend per repeat x discounted repeat purchases).
    cumulative : DataArray
        (draw, segment, period): cumulative discounted margin by the end of period 0..H
        (period 0 = the first order); ``value`` is its last period.
    first_order : DataArray
        (draw, segment): expected first-order spend F (Bayesian bootstrap of the segment's first orders).
    repeat_spend : DataArray
        (draw, segment): E[M], the spend model's population mean spend per repeat purchase.
    repeat_purchases : DataArray
        (draw, segment): discounted expected repeat purchases over the horizon.
    customers : Series
        First orders per segment (the bootstrap's sample sizes).
    settings : AcquisitionSettings
    """

    value: xr.DataArray
    cumulative: xr.DataArray
    first_order: xr.DataArray
    repeat_spend: xr.DataArray
    repeat_purchases: xr.DataArray
    customers: pd.Series
    settings: AcquisitionSettings

    @property
    def segments(self) -> list[str]:
        """Segment labels, in the arrays' order."""
        return [str(s) for s in self.value[self.settings.segment].values]

    def summary(self) -> pd.DataFrame:
        """Per segment: customers, the three factors' means and the value's mean, sd and HDI.

        Returns
        -------
        DataFrame
            Columns ``segment`` (named after the segment column), customers, first_order_mean,
            repeat_spend_mean, repeat_purchases_mean, value_mean, value_sd, value_hdi_low,
            value_hdi_high.
        """
        v = self.value.values
        lo, hi = hdi_sorted(np.sort(v, axis=0), self.settings.hdi_prob, axis=0)
        return pd.DataFrame({
            self.settings.segment: self.segments, "customers": self.customers.reindex(self.segments).to_numpy(),
            "first_order_mean": self.first_order.mean("draw").values,
            "repeat_spend_mean": self.repeat_spend.mean("draw").values,
            "repeat_purchases_mean": self.repeat_purchases.mean("draw").values,
            "value_mean": v.mean(0), "value_sd": v.std(0, ddof=1) if v.shape[0] > 1 else 0.0,
            "value_hdi_low": lo, "value_hdi_high": hi,
        })  # fmt: skip


def _first_orders(first_orders: pd.DataFrame, segment: str) -> dict[str, np.ndarray]:
    """First-order amounts per segment label, every problem reported at once."""
    if not isinstance(first_orders, pd.DataFrame):
        raise ClvlabInputError(f"first_orders is {type(first_orders).__name__}: expected a DataFrame", what="argument")
    missing = [c for c in (segment, "first_amount") if c not in first_orders.columns]
    if missing:
        raise ClvlabInputError(
            f"missing column(s) {missing} (one row per customer: its segment and first_amount, e.g. "
            "clvlab.features.cohorts(...).customers)", what="first orders")  # fmt: skip
    amount = pd.to_numeric(first_orders["first_amount"], errors="coerce")
    problems = []
    bad = first_orders.index[~np.isfinite(amount.to_numpy(float)) | (amount.to_numpy(float) < 0)]
    if len(bad):
        problems.append(f"first_amount: {len(bad)} row(s) not a finite amount >= 0, e.g. rows {list(bad[:5])}")
    seg = first_orders[segment]
    if seg.isna().any():
        problems.append(f"column {segment!r}: {int(seg.isna().sum())} row(s) without a segment, e.g. rows "
                        f"{list(first_orders.index[seg.isna()][:5])}")  # fmt: skip
    if not len(first_orders):
        problems.append("no rows")
    if problems:
        raise ClvlabInputError(problems, what="first orders")
    labels = seg.astype(str).to_numpy()
    values = amount.to_numpy(float)
    return {g: values[labels == g] for g in sorted(set(labels))}


def _bootstrap_means(rng: np.random.Generator, x: np.ndarray, n_draws: int) -> np.ndarray:
    """Bayesian-bootstrap means of ``x``, (n_draws,): Dirichlet(1, ..., 1) weights as normalised
    Exp(1) variates, in blocks of at most :data:`BOOTSTRAP_CHUNK` elements."""
    out = np.empty(n_draws)
    step = max(1, BOOTSTRAP_CHUNK // max(len(x), 1))
    for s in range(0, n_draws, step):
        w = rng.standard_exponential((min(step, n_draws - s), len(x)))
        out[s : s + len(w)] = (w @ x) / w.sum(1)
    return out


def _column(draws: ParamDraws, labels: list[str], segment: str, what: str) -> np.ndarray:
    """Column of each label in ``draws`` (0 for a pooled model); the model must be pooled or by ``segment``."""
    if draws.segment is None:
        return np.zeros(len(labels), dtype=np.int64)
    if draws.segment != segment:
        raise ClvlabInputError(
            f"the {what} model is by {draws.segment!r}, not {segment!r}: a new customer's value per {segment!r} "
            f"needs a model pooled or segmented by {segment!r}", what="argument")  # fmt: skip
    lookup = {s: i for i, s in enumerate(draws.segments)}
    unknown = [g for g in labels if g not in lookup]
    if unknown:
        raise ClvlabInputError(f"segment(s) {unknown[:10]} of the first orders are not among the {what} model's "
                               f"segments {draws.segments[:20]}", what="argument")  # fmt: skip
    return np.array([lookup[g] for g in labels], dtype=np.int64)


def new_customer_value(
    purchase: Any,
    spend: Any,
    first_orders: pd.DataFrame,
    *,
    segment: str = "channel",
    horizon: int = 12,
    period: str = "M",
    discount_rate: float = 0.01,
    margin: float = 1.0,
    model: str | None = None,
    time_unit: str | None = None,
    period_length: float | None = None,
    max_draws: int | None = None,
    hdi_prob: float = HDI_PROB,
    seed: int = 0,
) -> NewCustomerValue:
    """Posterior value of one newly acquired customer per segment (module docstring).

    Parameters
    ----------
    purchase, spend : estimator, posterior, mapping or ParamDraws
        Fitted purchase model (BG/NBD, MBG/NBD or Pareto/NBD) and Gamma-Gamma model, pooled or
        segmented by ``segment`` (see :func:`clvlab.clv.param_draws`).
    first_orders : DataFrame
        One row per acquired customer: ``segment`` and ``first_amount`` (the first purchase day's
        spend), e.g. ``clvlab.features.cohorts(...).customers``; its segments are the ones valued.
    segment : str
        The channel (segment) column.
    horizon : int
        Number of periods after acquisition.
    period : {"D", "W", "M"}
        Unit of one period.
    discount_rate : float
        Discount rate per period.
    margin : float
        Margin applied to spend.
    model : str, optional
        The purchase model of ``purchase`` (default: its ``model_name``).
    time_unit : {"D", "W", "M"}, optional
        Unit of the purchase model's time axis (default: the model's ``time_unit_``).
    period_length : float, optional
        One period in the data's time unit, overriding the conversion.
    max_draws : int, optional
        Thin both posteriors evenly to at most this many paired draws.
    hdi_prob : float
        Credible mass of the HDIs.
    seed : int
        Seed of the Bayesian bootstrap of the first orders.

    Returns
    -------
    NewCustomerValue
    """
    family = family_of(purchase, model)
    horizon = _check_settings(horizon, discount_rate, margin, [], hdi_prob, max_draws, period_length)
    unit_days(period, "period")
    data_unit = _resolve_time_unit(purchase, time_unit, first_orders if isinstance(first_orders, pd.DataFrame)
                                   else pd.DataFrame())  # fmt: skip
    if period_length is None:
        if data_unit is None:
            raise ClvlabInputError("the purchase model's time unit is unknown: pass time_unit= or period_length=",
                                   what="argument")  # fmt: skip
        L = clv_period_length(period, data_unit)
    else:
        L = float(period_length)
    orders = _first_orders(first_orders, segment)
    labels = list(orders)
    bg = param_draws(purchase, family.params, model=family.name)
    # a channel without a repeat buyer has no spend of its own: its spend is a population draw
    sp = spend if isinstance(spend, ParamDraws) else _spend_draws(spend, first_orders)
    col_bg = _column(bg, labels, segment, MODEL_LABELS[family.name])
    col_gg = _column(sp, labels, segment, "Gamma-Gamma")
    n_draws = min(bg.n_draws, sp.n_draws, max_draws or 10**12)
    bg = bg.thin(np.linspace(0, bg.n_draws - 1, n_draws).round().astype(int))
    sp = sp.thin(np.linspace(0, sp.n_draws - 1, n_draws).round().astype(int))
    p, q, gam = (sp.values[k][:, col_gg] for k in GG_PARAMS)  # (draws, segments)
    if np.any(q <= 1.0):
        bad = [labels[j] for j in np.flatnonzero((q <= 1.0).any(0))]
        raise ClvlabInputError(f"Gamma-Gamma q <= 1 in some draws of segment(s) {bad}: the population mean spend "
                               "p gamma / (q - 1) is infinite there", what="spend model")  # fmt: skip
    _check_params(bg, sp)  # finite and > 0: the checks customer_lifetime_value makes
    repeat_spend = p * gam / (q - 1.0)
    t = L * np.arange(horizon + 1, dtype=float)
    params = [bg.values[k][:, col_bg][:, :, None] for k in family.params]  # (draws, segments, 1)
    ex = np.asarray(family.purchases_new(*params, t[None, None, :]), dtype=float)  # (draws, segments, H+1)
    disc = np.diff(ex, axis=2) * discount_factors(horizon, discount_rate)[None, None, :]
    rng = np.random.default_rng(seed)
    first = np.stack([_bootstrap_means(rng, orders[g], n_draws) for g in labels], axis=1)
    cum = margin * (first[:, :, None] + repeat_spend[:, :, None] * np.concatenate(
        [np.zeros((n_draws, len(labels), 1)), np.cumsum(disc, axis=2)], axis=2))  # fmt: skip
    coords = {"draw": np.arange(n_draws), segment: labels}

    def da(v: np.ndarray, name: str) -> xr.DataArray:
        return xr.DataArray(v, dims=("draw", segment), coords=coords, name=name)

    settings = AcquisitionSettings(segment=segment, horizon=horizon, period=period, period_length=L,
                                   time_unit=data_unit, discount_rate=float(discount_rate), margin=float(margin),
                                   purchase_model=family.name, hdi_prob=float(hdi_prob), seed=int(seed))  # fmt: skip
    return NewCustomerValue(
        value=da(cum[:, :, -1], "new_customer_value"),
        cumulative=xr.DataArray(cum, dims=("draw", segment, "period"),
                                coords={**coords, "period": np.arange(horizon + 1)}, name="cumulative_value"),
        first_order=da(first, "first_order_spend"), repeat_spend=da(repeat_spend, "repeat_spend"),
        repeat_purchases=da(disc.sum(2), "discounted_repeat_purchases"),
        customers=pd.Series({g: len(orders[g]) for g in labels}, name="customers"), settings=settings,
    )  # fmt: skip


def payback_periods(cumulative: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """First period whose cumulative discounted margin reaches the CAC, per draw and segment.

    Parameters
    ----------
    cumulative : ndarray
        (draw, segment, period), :attr:`NewCustomerValue.cumulative`.
    cost : ndarray
        (segment,) CAC.

    Returns
    -------
    ndarray
        (draw, segment) periods as floats; inf where the horizon ends first.
    """
    reached = cumulative >= np.asarray(cost, dtype=float)[None, :, None]
    return np.where(reached.any(2), reached.argmax(2), np.inf).astype(float)


def clv_cac_draws(ncv: NewCustomerValue, cac: CAC) -> xr.DataArray:
    """Per-draw new-customer value / CAC per segment.

    Parameters
    ----------
    ncv : NewCustomerValue
    cac : Mapping, Series or DataFrame
        Acquisition cost per customer: {segment: cost}, a Series, or a table with columns
        ``segment`` (the segment column's name) and ``cac``.

    Returns
    -------
    DataArray
        Dims (draw, segment), named ``clv_cac``.
    """
    seg = ncv.settings.segment
    cost = cac_by_segment(cac, seg, ncv.segments, priced_without_customers="the first orders")
    return (ncv.value / xr.DataArray(cost.to_numpy(), dims=[seg], coords={seg: ncv.segments})).rename("clv_cac")


def clv_cac(ncv: NewCustomerValue, cac: CAC) -> pd.DataFrame:
    """A new customer's value against its acquisition cost, per segment, with the uncertainty.

    Per draw: ratio = V / CAC, payback = the first period whose cumulative discounted margin
    reaches the CAC (module docstring), rank of the ratio (1 = best).

    Parameters
    ----------
    ncv : NewCustomerValue
    cac : Mapping, Series or DataFrame
        See :func:`clv_cac_draws`.

    Returns
    -------
    DataFrame
        Columns ``segment`` (named after the segment column), customers, cac, value_mean,
        value_hdi_low/high, ratio_mean, ratio_sd, ratio_hdi_low/high, p_ratio_gt_1,
        payback_median, payback_low, payback_high (periods; the equal-tailed ``hdi_prob``
        interval; inf = not within the horizon), p_payback (within the horizon), p_rank_1,
        expected_rank; sorted by expected rank.
    """
    seg, prob = ncv.settings.segment, ncv.settings.hdi_prob
    cost = cac_by_segment(cac, seg, ncv.segments, priced_without_customers="the first orders").to_numpy()
    v = ncv.value.values / cost[None, :]  # clv_cac_draws, without checking the table twice
    payback = payback_periods(ncv.cumulative.values, cost)
    ranks = (-v).argsort(axis=1).argsort(axis=1) + 1
    lo, hi = hdi_sorted(np.sort(v, axis=0), prob, axis=0)
    vlo, vhi = hdi_sorted(np.sort(ncv.value.values, axis=0), prob, axis=0)
    tail = (1.0 - prob) / 2.0
    out = pd.DataFrame({
        seg: ncv.segments, "customers": ncv.customers.reindex(ncv.segments).to_numpy(), "cac": cost,
        "value_mean": ncv.value.values.mean(0), "value_hdi_low": vlo, "value_hdi_high": vhi,
        "ratio_mean": v.mean(0), "ratio_sd": v.std(0, ddof=1) if v.shape[0] > 1 else 0.0,
        "ratio_hdi_low": lo, "ratio_hdi_high": hi, "p_ratio_gt_1": (v > 1.0).mean(0),
        "payback_median": np.quantile(payback, 0.5, axis=0, method="inverted_cdf"),
        "payback_low": np.quantile(payback, tail, axis=0, method="inverted_cdf"),
        "payback_high": np.quantile(payback, 1.0 - tail, axis=0, method="inverted_cdf"),
        "p_payback": np.isfinite(payback).mean(0), "p_rank_1": (ranks == 1).mean(0), "expected_rank": ranks.mean(0),
    })  # fmt: skip
    return out.sort_values("expected_rank").reset_index(drop=True)
