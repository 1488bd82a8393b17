"""The typed results of the pipeline's stages (:class:`clvlab.study.Study`), one frozen
dataclass per stage, and :class:`StudyResults`, all of them with the config that produced them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .config import RunConfig

__all__ = ["BehaviourResult", "CLVResult", "ChurnResult", "CompareResult", "DataResult", "FeaturesResult",
           "PurchaseResult", "SpendResult", "StudyResults"]  # fmt: skip


@dataclass(frozen=True)
class DataResult:
    """The validated transaction log (one row per customer-day) and what validation did."""

    transactions: pd.DataFrame
    validation: Any  # clvlab.data.ValidationReport
    hash: str


@dataclass(frozen=True)
class BehaviourResult:
    """Behavioural segments: the fitted clustering and its early-behaviour inputs (the profile
    with CLV is the clv stage's ``behaviour_profile``)."""

    segments: Any  # clvlab.features.BehaviouralSegments (k_, selection_, centres_, labels_, ...)
    early: pd.DataFrame  # clvlab.features.early_behaviour: first order, early purchases, revenue


@dataclass(frozen=True)
class FeaturesResult:
    """Customer features of the calibration period, with the holdout columns."""

    rfm: pd.DataFrame  # one row per customer: RFM, holdout, cohort, segments, RFM scores
    cohort_sizes: pd.DataFrame
    interpurchase: pd.DataFrame
    rfm_segments: pd.DataFrame  # customers per RFM-score segment
    hash: str  # of ``rfm``
    kpis: pd.DataFrame | None = None  # per-channel KPIs (when the config has acquisition.cac)
    retention: pd.DataFrame | None = None  # monthly cohort x month retention matrix (likewise)
    migration: pd.DataFrame | None = None  # recency-stage transitions over the last 3 months of calibration
    behaviour: BehaviourResult | None = None  # behavioural segments (when the config has features.behaviour)

    @property
    def n_repeaters(self) -> int:
        return int((self.rfm["frequency"] > 0).sum())


@dataclass(frozen=True)
class PurchaseResult:
    """The purchase model, the other poolings (shrinkage plot) and its holdout predictions."""

    model: Any  # the config's purchase model (BGNBD, MBGNBD or ParetoNBD)
    pooling_fits: dict[str, Any]  # pooling -> the same model class, incl. ``model`` (only with compare_pooling)
    holdout_duration: float  # in features.time_unit
    holdout_check: pd.DataFrame  # evaluate.holdout_check: predicted vs actual by frequency / segment
    holdout_draws: xr.DataArray  # posterior predictive holdout counts (chain, draw, customer_id)
    p_alive: pd.Series  # posterior mean, by customer_id
    p_no_purchase: pd.Series  # posterior mean P(no purchase in the holdout), by customer_id
    summary: pd.DataFrame  # posterior summary of the segment and population parameters
    cached: bool

    def holdout_total(self, prob: float) -> tuple[float, float, float]:
        """Posterior predictive total of holdout repeat purchases: (mean, HDI low, HDI high)."""
        from .stats import hdi

        totals = self.holdout_draws.sum("customer_id").values.ravel()
        lo, hi = hdi(totals, prob)
        return float(totals.mean()), lo, hi


@dataclass(frozen=True)
class SpendResult:
    """The spend model, fitted on the repeat customers with spend > 0."""

    model: Any  # GammaGamma
    fit_data: pd.DataFrame
    excluded: pd.DataFrame  # repeat customers with zero mean spend (left out of the fit; still valued)
    independence: pd.DataFrame  # correlation of frequency and spend, by segment
    spend_replicates: np.ndarray  # posterior predictive mean spend (draws, customers) for the PPC
    summary: pd.DataFrame  # posterior summary of the segment and population parameters
    cached: bool


@dataclass(frozen=True)
class CLVResult:
    """Posterior CLV over the horizon and the analyses built on it."""

    posterior: Any  # clv.PosteriorCLV
    customers: pd.DataFrame  # CRM export: CLV summaries, P(alive), lifecycle stage, value tier
    by_segment: dict[str, pd.DataFrame]  # ALL_SEGMENTS and each segment column -> summary table
    stage_tier: pd.DataFrame  # customers by lifecycle stage x value tier
    sensitivity: pd.DataFrame  # whole-base totals over discount rate x margin
    cac: pd.DataFrame | None  # a new customer's value / CAC and payback per channel (config with a CAC table)
    new_customer: Any  # clv.NewCustomerValue per channel, or None (no CAC table)
    residual_cac: pd.DataFrame | None  # residual CLV of the customers already acquired / CAC, per channel
    budget: Any  # clv.budget.BudgetAllocation, or None (no acquisition.budget)
    behaviour_profile: pd.DataFrame | None = None  # BehaviouralSegments.profile with CLV (features.behaviour)


@dataclass(frozen=True)
class ChurnResult:
    """Survival view of churn, and every churn score checked against the holdout."""

    lapse_after: float  # in features.time_unit
    lapse_explanation: str  # how lapse_after was chosen
    lapse_table: pd.DataFrame
    km: Any  # KaplanMeierBySegment
    cox: Any  # CoxChurnModel (all customers)
    concordance: float  # held-out concordance of a Cox model fitted on the other customers
    hazard_ratios: pd.DataFrame
    ph_check: pd.DataFrame
    labels: pd.Series  # 1 = no purchase in the holdout
    scores: dict[str, pd.Series]  # score name -> P(churn) by customer_id
    comparison: pd.DataFrame  # AUC / Brier by score and segment
    calibration: pd.DataFrame
    roc: pd.DataFrame


@dataclass(frozen=True)
class CompareResult:
    """The purchase models scored against each other (None tables: the stage is off)."""

    comparison: Any  # clvlab.comparison.ModelComparison, or None when ``compare.models`` is empty
    fits: dict[str, Any]  # label -> fitted model
    cached: dict[str, bool]  # label -> fit reused from the cache


@dataclass(frozen=True)
class StudyResults:
    """Every stage's result, the config that produced them and the stage timings (seconds)."""

    config: RunConfig
    data: DataResult
    features: FeaturesResult
    purchase: PurchaseResult
    spend: SpendResult
    clv: CLVResult
    churn: ChurnResult
    compare: CompareResult
    timings: dict[str, float] = field(default_factory=dict)
