"""The choice lists of settings, in one light module (no PyMC import): used by the run config,
the command line and the models alike, so a new option is added in one place."""

from __future__ import annotations

POOLINGS: tuple[str, ...] = ("pooled", "unpooled", "partial")
"""How segments share parameters: one set for all, independent sets, or a hierarchy."""
METHODS: tuple[str, ...] = ("nuts", "map")
SAMPLERS: tuple[str, ...] = ("nutpie", "numpyro", "pymc")
PARAMETERIZATIONS: tuple[str, ...] = ("auto", "noncentered", "centered")
"""Partial pooling: how segment parameters are sampled (BG/NBD: "auto" picks per segment)."""
TIME_UNITS: tuple[str, ...] = ("D", "W", "M")
"""Units of time for the data (recency, T) and for CLV periods."""
COHORT_FREQS: tuple[str, ...] = ("D", "W", "M", "Q", "Y")
"""Calendar periods of acquisition cohorts (days, weeks, months, quarters, years)."""
UNIT_NAMES: dict[str, str] = {"D": "day", "W": "week", "M": "month", "Q": "quarter", "Y": "year"}
"""How tables, figures and messages name a unit of time (or a calendar period); see :func:`unit_name`."""


def unit_name(unit: str, plural: bool = False) -> str:
    """A unit of time in words: ``unit_name("W") == "week"``, ``unit_name("W", plural=True) == "weeks"``;
    a code it does not know is returned as given."""
    name = UNIT_NAMES.get(str(unit))
    return str(unit) if name is None else name + ("s" if plural else "")


ALL_SEGMENTS = "all"
"""The label of the whole customer base: the one segment of a model without a segment column,
and the "all customers" row of every per-segment table."""
PURCHASE_MODELS: tuple[str, ...] = ("bgnbd", "mbgnbd", "pareto_nbd")
"""The purchase models the pipeline fits and values (``model_name``; :func:`clvlab.models.purchase_model_class`)."""
BASELINE_MODELS: tuple[str, ...] = ("nbd",)
"""Comparison-only purchase models (no dropout: no CLV)."""
MODEL_LABELS: dict[str, str] = {
    "bgnbd": "BG/NBD",
    "mbgnbd": "MBG/NBD",
    "pareto_nbd": "Pareto/NBD",
    "nbd": "NBD (no dropout)",
    "gamma_gamma": "Gamma-Gamma",
}
"""How tables, figures and messages name each model (the purchase models and the spend model)."""
BEHAVIOUR_COLUMN = "behaviour"
"""The customer-table column of the behavioural segments (:mod:`clvlab.features.clusters`)."""
BEHAVIOUR_FEATURE_NAMES: tuple[str, ...] = ("frequency", "gap", "monetary_value", "first_amount", "early_purchases")
"""The behaviour features segments can be clustered on (:data:`clvlab.features.behaviour.BEHAVIOUR_FEATURES`)."""

MIN_CAC = 1e-6
"""Smallest acquisition cost per customer taken as a cost (in the log's currency): below it a
CLV/CAC ratio is not a number anyone can act on, and its draws overflow."""
