"""Behaviour features per customer, for behavioural segments (:mod:`clvlab.features.clusters`).

Two kinds of per-customer behaviour, both from the calibration period only:

* **RFM** from the calibration table (:func:`clvlab.features.calibration_holdout`):
  ``frequency`` (repeat purchases), ``gap`` (time since the last purchase, ``T - recency``, in
  the table's time unit) and ``monetary_value`` (mean spend per repeat purchase; 0 without one).
* **Early behaviour** (DuckDB, :func:`early_behaviour`): ``first_amount`` (the first purchase
  day's spend) and ``early_purchases`` (repeat purchase days within ``early_days`` days of the
  first). A customer acquired less than ``early_days`` before the calibration end has a shorter
  window (``early_window_days``); the count is over what was seen, not scaled up.

:func:`behaviour_matrix` turns them into the clustering inputs: each feature as ``log(1 + value)``
(all are >= 0 and right-skewed), one column per feature in :data:`BEHAVIOUR_FEATURES` order.
Standardising is the clustering step's own (its scaler is fitted state).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from clvlab.choices import BEHAVIOUR_FEATURE_NAMES
from clvlab.errors import ClvlabInputError
from clvlab.features._sql import Transactions, check_source, open_source, sql_date
from clvlab.features.cohorts import days_cte, firsts_cte

__all__ = ["BEHAVIOUR_FEATURES", "DEFAULT_FEATURES", "EARLY_DAYS", "behaviour_matrix", "early_behaviour"]

#: Every behaviour feature and what it measures (clustered as log(1 + value)).
BEHAVIOUR_FEATURES: dict[str, str] = {
    "frequency": "repeat purchases in calibration",
    "gap": "time since the last purchase (T - recency)",
    "monetary_value": "mean spend per repeat purchase (0: none)",
    "first_amount": "spend on the first purchase day",
    "early_purchases": "repeat purchase days within early_days of the first",
}
assert tuple(BEHAVIOUR_FEATURES) == BEHAVIOUR_FEATURE_NAMES
DEFAULT_FEATURES: tuple[str, ...] = BEHAVIOUR_FEATURE_NAMES
EARLY_DAYS = 90


def early_behaviour(transactions: Transactions, calibration_end: Any, *, early_days: int = EARLY_DAYS,
                    engine: str | None = None) -> pd.DataFrame:  # fmt: skip
    """Early behaviour and calibration revenue of every customer seen by ``calibration_end``.

    Parameters
    ----------
    transactions : DataFrame, path, duckdb relation or pyspark DataFrame
        The validated transaction log (customer_id, date, amount).
    calibration_end : date
        Last day of the calibration period; later transactions are not read.
    early_days : int
        Length of the early window after the first purchase day, in days (> 0).

    Returns
    -------
    DataFrame
        One row per customer, sorted by customer_id: ``first_amount``, ``early_purchases``
        (repeat purchase days in (first, first + early_days]), ``early_window_days``
        (min(early_days, days from the first purchase to calibration_end)) and ``revenue``
        (all calibration spend, the first day included).
    """
    if isinstance(early_days, bool) or not isinstance(early_days, (int, np.integer)) or early_days < 1:
        raise ClvlabInputError([f"early_days={early_days!r}: expected a whole number of days >= 1"], what="argument")
    end = sql_date(calibration_end, "calibration_end")
    src = open_source(transactions, engine)
    check_source(src, observation_end=end)
    d = src.dialect
    sql = f"""
        WITH {days_cte(src, f"WHERE CAST(date AS DATE) <= {end}")},
        {firsts_cte(src)}
        SELECT customer_id, min(f.first_amount) AS first_amount,
               count(*) FILTER (WHERE days.day > f.first_day AND days.day <= {d.add_days("f.first_day", early_days)})
                   AS early_purchases,
               least(CAST({int(early_days)} AS BIGINT), {d.days_between("min(f.first_day)", end)}) AS early_window_days,
               {d.ordered_sum("days.amount", "days.day")} AS revenue
        FROM days JOIN firsts f USING (customer_id)
        GROUP BY customer_id ORDER BY customer_id"""
    out = src.frame(sql)
    out["early_purchases"] = out["early_purchases"].astype("int64")
    out["early_window_days"] = out["early_window_days"].astype("int64")
    return out


def behaviour_matrix(rfm: pd.DataFrame, early: pd.DataFrame | None = None,
                     features: Sequence[str] = DEFAULT_FEATURES) -> pd.DataFrame:  # fmt: skip
    """The clustering inputs: ``log(1 + feature)`` per customer.

    Parameters
    ----------
    rfm : DataFrame
        Calibration table: customer_id, frequency, recency, T, monetary_value.
    early : DataFrame, optional
        :func:`early_behaviour` of the same customers; needed for first_amount / early_purchases.
    features : sequence of str
        Names from :data:`BEHAVIOUR_FEATURES` (at least one, no repeats).

    Returns
    -------
    DataFrame
        Index ``customer_id`` (rfm's order), one float column per feature.
    """
    problems = _check_features(features)
    needs_early = [f for f in features if f in ("first_amount", "early_purchases")]
    missing = [c for c in ("customer_id", "frequency", "recency", "T", "monetary_value") if c not in rfm.columns]
    if missing:
        problems.append(f"rfm: columns {missing} missing (columns present: {list(rfm.columns)})")
    if needs_early and early is None:
        problems.append(f"features {needs_early} need the early-behaviour table (early=early_behaviour(...))")
    if problems:
        raise ClvlabInputError(problems, what="behaviour features")
    table = rfm.set_index("customer_id")
    raw = pd.DataFrame(index=table.index)
    raw["frequency"] = table["frequency"]
    raw["gap"] = (table["T"] - table["recency"]).clip(lower=0.0)
    raw["monetary_value"] = table["monetary_value"]
    if early is not None and needs_early:
        e = early.set_index("customer_id")
        absent = table.index.difference(e.index)
        if len(absent):
            raise ClvlabInputError([f"early-behaviour table lacks {len(absent):,} customer(s) of rfm "
                                    f"(e.g. {list(absent[:3])})"], what="behaviour features")  # fmt: skip
        for name in needs_early:
            raw[name] = e.loc[table.index, name].to_numpy(dtype=float)
    raw = raw[list(features)].astype(float)
    bad = raw.columns[(~np.isfinite(raw) | (raw < 0)).any()].tolist()
    if bad:
        rows = raw.index[(~np.isfinite(raw[bad]) | (raw[bad] < 0)).any(axis=1)]
        raise ClvlabInputError([f"features {bad}: not finite or negative for {len(rows):,} customer(s) "
                                f"(e.g. {list(rows[:3])}); expected numbers >= 0"], what="behaviour features")  # fmt: skip
    return np.log1p(raw)


def _check_features(features: Sequence[str]) -> list[str]:
    problems = []
    if isinstance(features, str) or not len(features):
        problems.append(f"features={features!r}: expected a non-empty list of {list(BEHAVIOUR_FEATURES)}")
        return problems
    unknown = [f for f in features if f not in BEHAVIOUR_FEATURES]
    if unknown:
        problems.append(f"features {unknown} unknown: expected names from {list(BEHAVIOUR_FEATURES)}")
    if len(set(features)) != len(features):
        problems.append(f"features={list(features)}: a name repeats")
    return problems
