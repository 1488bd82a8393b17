"""Posterior customer lifetime value: per customer, per segment / channel, CLV/CAC, sensitivity.

CLV over H periods of ``period`` with per-period discount d and margin m (design.md)::

    CLV = m * E[M] * sum_{k=1..H} (E[Y(k L)] - E[Y((k-1) L)]) / (1+d)^k

for every posterior draw, L being one period in the data's ``time_unit``.

Modules, one concern each:

``clvlab.clv.math``
    fixed-parameter math: period length, discounting, B(x, T) and its 2F1 recurrence table, 1/D.
``clvlab.clv.draws``
    parameter draws from fitted models / posteriors / fixed values (:class:`ParamDraws`).
``clvlab.clv.engine``
    the chunked engine :func:`customer_lifetime_value`.
``clvlab.clv.result``
    its result :class:`PosteriorCLV` and :class:`CLVSettings`.
``clvlab.clv.cac``
    acquisition costs per channel, read and checked once for every CLV/CAC analysis.
``clvlab.clv.analyses``
    CLV/CAC of the existing base's residual value, sensitivity, retention what-if, lifecycle stage.
``clvlab.clv.acquisition``
    a newly acquired customer's value per channel (:func:`new_customer_value`), CLV/CAC and
    payback on that basis (:func:`clv_cac`).
"""

from __future__ import annotations

from .acquisition import AcquisitionSettings, NewCustomerValue, clv_cac, clv_cac_draws, new_customer_value
from .analyses import STAGES as STAGES  # importable as before, not in __all__
from .analyses import TIERS as TIERS
from .analyses import cac_ratio, cac_ratio_draws, lifecycle_stage, retention_whatif, sensitivity
from .draws import BGNBD_PARAMS, GG_PARAMS, ParamDraws, param_draws, scale_dropout
from .engine import customer_lifetime_value
from .math import clv_at_params, clv_period_length, discount_factors, discounted_purchases
from .result import CLVSettings, PosteriorCLV

__all__ = [
    "AcquisitionSettings",
    "BGNBD_PARAMS",
    "CLVSettings",
    "GG_PARAMS",
    "NewCustomerValue",
    "PosteriorCLV",
    "ParamDraws",
    "cac_ratio",
    "cac_ratio_draws",
    "clv_at_params",
    "clv_cac",
    "clv_cac_draws",
    "clv_period_length",
    "customer_lifetime_value",
    "discount_factors",
    "discounted_purchases",
    "lifecycle_stage",
    "new_customer_value",
    "param_draws",
    "retention_whatif",
    "scale_dropout",
    "sensitivity",
]
