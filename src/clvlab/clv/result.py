"""The result of the posterior-CLV engine: per-customer summaries, per-draw group totals, settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..choices import ALL_SEGMENTS
from ..errors import ClvlabInputError
from ..stats import hdi_sorted

__all__ = ["CLVSettings", "PosteriorCLV"]


@dataclass(frozen=True)
class CLVSettings:
    """The settings a :class:`PosteriorCLV` was computed with.

    Parameters
    ----------
    horizon : int
        Number of CLV periods.
    period : str
        Unit of one CLV period ("D", "W", "M").
    time_unit : str or None
        Unit of the data's recency / T (None when only ``period_length`` was given).
    period_length : float
        One period in the data's time unit.
    discount_rate : float
        Discount rate per period.
    margin : float
        Margin applied to spend.
    hdi_prob : float
        Credible mass of the reported HDIs.
    n_draws : int
        Posterior draws used (paired across the two models).
    thresholds : tuple of float
        The c of the per-customer P(CLV > c) columns.
    purchase_segment : str or None
        Segment column of the purchase-model draws (None: pooled).
    spend_segment : str or None
        Segment column of the Gamma-Gamma draws (None: pooled).
    dropout_scale : float, Mapping or None
        Retention what-if applied (see :func:`clvlab.clv.scale_dropout`).
    purchase_model : str
        The purchase model ("bgnbd", "mbgnbd" or "pareto_nbd").
    """

    horizon: int
    period: str
    time_unit: str | None
    period_length: float
    discount_rate: float
    margin: float
    hdi_prob: float
    n_draws: int
    thresholds: tuple[float, ...]
    purchase_segment: str | None
    spend_segment: str | None
    dropout_scale: float | Mapping[str, float] | None
    purchase_model: str = "bgnbd"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the settings (JSON-friendly: thresholds as a list).

        Returns
        -------
        dict
        """
        out = dataclasses.asdict(self)
        out["thresholds"] = list(self.thresholds)
        if isinstance(self.dropout_scale, Mapping):
            out["dropout_scale"] = dict(self.dropout_scale)
        return out


@dataclass
class PosteriorCLV:
    """Posterior CLV reduced to summaries.

    Parameters
    ----------
    customers : DataFrame
        One row per customer (input order): ``customer_id``, the segment columns,
        ``clv_mean``, ``clv_sd``, ``clv_hdi_low/high``, ``p_clv_gt_<threshold>``,
        ``p_alive_mean``, ``spend_mean`` (E[M]).
    group_totals : dict of str to DataArray
        ``group_totals[col]``: DataArray (draw, col) of per-draw total CLV of each group of
        column ``col``; ``group_totals[ALL_SEGMENTS]`` ("all") is the whole base.
    group_counts : dict of str to Series
        Customers per group, same keys.
    settings : CLVSettings
        What the result was computed with.
    """

    customers: pd.DataFrame
    group_totals: dict[str, xr.DataArray]
    group_counts: dict[str, pd.Series]
    settings: CLVSettings

    def group_means(self, segment: str) -> xr.DataArray:
        """Per-draw mean CLV per customer in each group of ``segment``.

        Parameters
        ----------
        segment : str
            A grouping of the result: ``"all"`` or a segment column.

        Returns
        -------
        DataArray
            Dims (draw, ``segment``).
        """
        if segment not in self.group_totals:
            raise ClvlabInputError(
                f"the CLV result has no grouping {segment!r} (has {list(self.group_totals)}): "
                f"pass segment={segment!r} to customer_lifetime_value",
                what="argument",
            )
        tot = self.group_totals[segment]
        n = self.group_counts[segment].reindex(tot[segment].values).to_numpy(float)
        return tot / xr.DataArray(n, dims=[segment], coords={segment: tot[segment]})

    def summary(self, segment: str = ALL_SEGMENTS, hdi_prob: float | None = None) -> pd.DataFrame:
        """Tidy table per group, from the per-draw group totals.

        Parameters
        ----------
        segment : str
            ``"all"`` (the whole base) or a segment column of the result.
        hdi_prob : float, optional
            Credible mass (default: ``settings.hdi_prob``).

        Returns
        -------
        DataFrame
            One row per group: ``segment``, ``n_customers``, and for total and
            mean-per-customer CLV: ``*_mean``, ``*_sd``, ``*_hdi_low/high``, ``*_q05/q50/q95``.
        """
        hdi_prob = hdi_prob or self.settings.hdi_prob
        means = self.group_means(segment)  # checks that the grouping exists
        rows = []
        for what, da in (("total", self.group_totals[segment]), ("mean", means)):
            v = np.sort(da.transpose(segment, "draw").values, axis=1)
            lo, hi = hdi_sorted(v, hdi_prob)
            q = np.quantile(v, [0.05, 0.5, 0.95], axis=1)
            rows.append(
                pd.DataFrame(
                    {
                        segment: da[segment].values,
                        f"{what}_mean": v.mean(1),
                        f"{what}_sd": v.std(1, ddof=1) if v.shape[1] > 1 else np.zeros(v.shape[0]),
                        f"{what}_hdi_low": lo,
                        f"{what}_hdi_high": hi,
                        f"{what}_q05": q[0],
                        f"{what}_q50": q[1],
                        f"{what}_q95": q[2],
                    }
                ).set_index(segment)
            )
        out = pd.concat(rows, axis=1)
        out.insert(0, "n_customers", self.group_counts[segment].reindex(out.index).to_numpy())
        return out.reset_index()
