"""Analyses on top of posterior CLV: residual CLV/CAC per channel, sensitivity, retention what-if, lifecycle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..choices import ALL_SEGMENTS
from ..errors import ClvlabInputError
from ..stats import HDI_PROB, hdi_sorted
from .cac import CAC, cac_by_segment
from .draws import param_draws
from .engine import _resolve_time_unit, customer_lifetime_value
from .families import family_of
from .result import PosteriorCLV

__all__ = ["STAGES", "TIERS", "cac_ratio", "cac_ratio_draws", "lifecycle_stage", "retention_whatif", "sensitivity"]

STAGES = ("new", "active", "at risk", "lapsed")
"""Lifecycle stages of :func:`lifecycle_stage`, in category order."""
TIERS = ("high", "medium", "low")
"""Value tiers of :func:`lifecycle_stage`, in category order."""


def cac_ratio_draws(result: PosteriorCLV, cac: CAC, segment: str = "channel") -> xr.DataArray:
    """Per-draw residual CLV/CAC per channel: the mean remaining CLV of the channel's customers
    already acquired / CAC. The existing base's value, not what buying a new customer yields
    (that is :func:`clvlab.clv.clv_cac`, on :func:`clvlab.clv.new_customer_value`).

    Parameters
    ----------
    result : PosteriorCLV
        Computed with ``segment`` among its groupings.
    cac : Mapping, Series or DataFrame
        Acquisition cost per customer by channel: {channel: cost}, a Series, or a table
        with columns ``segment`` and ``cac``.
    segment : str
        The channel column.

    Returns
    -------
    DataArray
        Dims (draw, ``segment``), named ``clv_cac``.
    """
    if segment not in result.group_totals:
        raise ClvlabInputError(
            f"the CLV result has no grouping {segment!r}: pass segment={segment!r} to customer_lifetime_value",
            what="argument",
        )
    means = result.group_means(segment)
    chans = [str(c) for c in means[segment].values]
    cac = cac_by_segment(cac, segment, chans)  # a channel with no customers in the result may be priced
    cost = xr.DataArray(cac.to_numpy(), dims=[segment], coords={segment: means[segment].values})
    return (means / cost).transpose("draw", segment).rename("clv_cac")


def cac_ratio(result: PosteriorCLV, cac: CAC, segment: str = "channel") -> pd.DataFrame:
    """Posterior of the residual CLV/CAC per channel (the existing base's remaining value per
    customer against CAC; :func:`cac_ratio_draws`), P(ratio > 1) and the ranking with uncertainty.
    For the value of a newly acquired customer against its CAC use :func:`clvlab.clv.clv_cac`.

    Per draw (:func:`cac_ratio_draws`): ratio = mean CLV per customer / CAC; rank 1 = best ratio.

    Parameters
    ----------
    result : PosteriorCLV
        Computed with ``segment`` among its groupings.
    cac : Mapping, Series or DataFrame
        Acquisition cost per customer by channel (see :func:`cac_ratio_draws`).
    segment : str
        The channel column.

    Returns
    -------
    DataFrame
        Columns ``segment`` (the channel), cac, clv_mean, ratio_mean, ratio_sd,
        ratio_hdi_low/high, p_ratio_gt_1, p_rank_1, expected_rank; sorted by expected rank.
    """
    ratio = cac_ratio_draws(result, cac, segment)
    means = result.group_means(segment)
    v = ratio.values
    ranks = (-v).argsort(axis=1).argsort(axis=1) + 1  # rank per draw, 1 = best
    lo, hi = hdi_sorted(np.sort(v, axis=0), result.settings.hdi_prob, axis=0)
    out = pd.DataFrame({
        segment: [str(c) for c in ratio[segment].values], "cac": (means / ratio).mean("draw").values,
        "clv_mean": means.mean("draw").values, "ratio_mean": v.mean(0),
        "ratio_sd": v.std(0, ddof=1) if v.shape[0] > 1 else 0.0, "ratio_hdi_low": lo, "ratio_hdi_high": hi,
        "p_ratio_gt_1": (v > 1.0).mean(0), "p_rank_1": (ranks == 1).mean(0), "expected_rank": ranks.mean(0),
    })  # fmt: skip
    return out.sort_values("expected_rank").reset_index(drop=True)


def sensitivity(
    purchase: Any, gg: Any, data: pd.DataFrame, *,
    discount_rates: Sequence[float] = (0.0, 0.005, 0.01, 0.02, 0.03),
    margins: Sequence[float] = (0.2, 0.3, 0.5, 1.0), segment: str | None = None, period: str = "M", **kwargs: Any,
) -> pd.DataFrame:  # fmt: skip
    """CLV over a grid of discount rates x margins, per group of ``segment`` (default: the whole base).

    One engine pass per discount rate (no per-customer summaries); CLV is linear in the
    margin, so margins rescale the per-draw totals exactly.

    Parameters
    ----------
    purchase, gg : estimator, posterior, mapping or ParamDraws
        As for :func:`customer_lifetime_value`.
    data : DataFrame
        The RFM table.
    discount_rates : sequence of float
        Discount rates per period.
    margins : sequence of float
        Margins.
    segment : str, optional
        Column to group by; None: the whole base (group "all").
    period : {"D", "W", "M"}
        Unit of one CLV period.
    **kwargs
        Passed to :func:`customer_lifetime_value` (horizon, time_unit, max_draws, ...).

    Returns
    -------
    DataFrame
        Columns discount_rate, margin, group, n_customers, total_mean, total_hdi_low/high,
        mean_mean, mean_hdi_low/high.
    """
    cols = [segment] if segment else []
    key = segment or ALL_SEGMENTS
    rows = []
    for d in discount_rates:
        res = customer_lifetime_value(purchase, gg, data, period=period, discount_rate=float(d), margin=1.0, segment=cols,
                                      customer_summaries=False, **kwargs)  # fmt: skip
        summ = res.summary(key)
        for m in margins:
            t = summ.copy()
            value_cols = [c for c in t.columns if c.startswith(("total_", "mean_"))]
            t[value_cols] = t[value_cols] * float(m)
            t = t.rename(columns={key: "group"})
            t.insert(0, "margin", float(m))
            t.insert(0, "discount_rate", float(d))
            rows.append(t)
    out = pd.concat(rows, ignore_index=True)
    keep = ["discount_rate", "margin", "group", "n_customers", "total_mean", "total_hdi_low", "total_hdi_high",
            "mean_mean", "mean_hdi_low", "mean_hdi_high"]  # fmt: skip
    return out[keep]


def retention_whatif(
    purchase: Any, gg: Any, data: pd.DataFrame, *, scales: Sequence[float] = (0.8, 0.9, 1.0, 1.1), period: str = "M",
    time_unit: str | None = None, **kwargs: Any,
) -> pd.DataFrame:  # fmt: skip
    """What-if: the mean dropout scaled by s (:func:`scale_dropout`), per purchase-model segment.

    Each segment's CLV depends only on its own parameters, so one engine pass per scale
    (applied to every segment) gives each segment's what-if. The uplift against s = 1 is
    computed draw by draw (same posterior draws), so its interval is the paired one.

    Parameters
    ----------
    purchase, gg : estimator, posterior, mapping or ParamDraws
        As for :func:`customer_lifetime_value`.
    data : DataFrame
        The RFM table.
    scales : sequence of float
        Dropout-mean scales s (see :func:`scale_dropout`).
    period : {"D", "W", "M"}
        Unit of one CLV period.
    time_unit : {"D", "W", "M"}, optional
        Unit of the data's recency / T (resolved as in :func:`customer_lifetime_value`).
    **kwargs
        Passed to :func:`customer_lifetime_value` (horizon, margin, max_draws, ...).

    Returns
    -------
    DataFrame
        Columns dropout_scale, segment, total_mean, total_hdi_low/high, uplift_mean,
        uplift_hdi_low/high, uplift_pct.
    """
    if getattr(purchase, "covariates", None):
        raise ClvlabInputError(
            "purchase models with covariates are not supported by the CLV engine yet", what="argument"
        )
    time_unit = _resolve_time_unit(purchase, time_unit, data)  # before the model becomes bare draws
    family = family_of(purchase, kwargs.pop("model", None))
    bg = param_draws(purchase, family.params, model=family.name)
    key = bg.segment or ALL_SEGMENTS
    cols = [key] if bg.segment else []
    hdi_prob = kwargs.get("hdi_prob", HDI_PROB)

    def totals(s: float) -> xr.DataArray:
        res = customer_lifetime_value(bg, gg, data, period=period, time_unit=time_unit, segment=cols,
                                      customer_summaries=False, dropout_scale=None if s == 1.0 else s, **kwargs)  # fmt: skip
        return res.group_totals[key]

    base = totals(1.0)
    rows = []
    for s in scales:
        tot = base if s == 1.0 else totals(float(s))
        up = (tot - base).transpose("draw", key).values
        tv = tot.transpose("draw", key).values
        tlo, thi = hdi_sorted(np.sort(tv, 0), hdi_prob, axis=0)
        ulo, uhi = hdi_sorted(np.sort(up, 0), hdi_prob, axis=0)
        for j, g in enumerate(tot[key].values):
            rows.append(dict(dropout_scale=float(s), segment=str(g), total_mean=tv[:, j].mean(), total_hdi_low=tlo[j],
                             total_hdi_high=thi[j], uplift_mean=up[:, j].mean(), uplift_hdi_low=ulo[j],
                             uplift_hdi_high=uhi[j], uplift_pct=100.0 * up[:, j].mean() / base.values[:, j].mean()))  # fmt: skip
    return pd.DataFrame(rows)


def lifecycle_stage(
    result: PosteriorCLV, data: pd.DataFrame, *, new_tenure: float = 8.0, active_p_alive: float = 0.7,
    lapsed_p_alive: float = 0.3, tier_quantiles: tuple[float, float] = (0.5, 0.8), path: str | None = None,
) -> pd.DataFrame:  # fmt: skip
    """CRM table: lifecycle stage and value tier per customer (optionally written to CSV/Parquet).

    stage: ``new`` if tenure T < ``new_tenure``; otherwise by posterior mean P(alive):
    ``active`` >= ``active_p_alive`` > ``at risk`` >= ``lapsed_p_alive`` > ``lapsed``.
    value_tier by posterior mean CLV: ``high`` above the ``tier_quantiles[1]`` quantile,
    ``medium`` above ``tier_quantiles[0]``, else ``low``.

    Parameters
    ----------
    result : PosteriorCLV
        Posterior CLV of ``data``.
    data : DataFrame
        The RFM table the result was computed from (same rows, same order).
    new_tenure : float
        Tenure (data time units) below which a customer is ``new``.
    active_p_alive, lapsed_p_alive : float
        P(alive) cut-offs of the stages.
    tier_quantiles : (float, float)
        CLV quantiles separating low / medium / high.
    path : str or path, optional
        Also write the table there (CSV or Parquet by suffix).

    Returns
    -------
    DataFrame
        ``result.customers`` plus ``tenure``, ``stage`` (categories :data:`STAGES`) and
        ``value_tier`` (categories :data:`TIERS`).
    """
    problems = []
    if not 0.0 <= lapsed_p_alive <= active_p_alive <= 1.0:
        problems.append(f"need 0 <= lapsed_p_alive ({lapsed_p_alive}) <= active_p_alive ({active_p_alive}) <= 1")
    if not 0.0 < tier_quantiles[0] < tier_quantiles[1] < 1.0:
        problems.append(f"tier_quantiles={tier_quantiles}: expected 0 < low < high < 1")
    if "T" not in data.columns or len(data) != len(result.customers):
        problems.append("data must be the RFM table the CLV result was computed from (same rows, column 'T')")
    elif not np.array_equal(
        data["customer_id"].astype(str).to_numpy(), result.customers["customer_id"].astype(str).to_numpy()
    ):
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
        from ..io import write_table

        write_table(out.assign(stage=out["stage"].astype(str), value_tier=out["value_tier"].astype(str)), path)
    return out
