"""Acquisition cohorts and inter-purchase times, in DuckDB SQL.

A customer's acquisition cohort is the calendar period (``freq``: D, W, M, Q or Y; labels
from :func:`clvlab.features.periods.cohort_label_sql`, e.g. ``1997-01`` or ``1997-W01``)
of the first purchase day. Inter-purchase times are the gaps in days between a customer's
consecutive purchase days (same-day transactions are one purchase).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import pandas as pd

from clvlab.features._sql import SOURCE, Transactions, as_relation, check_source, ident, query, sql_date, to_frame
from clvlab.features.periods import cohort_label_sql, period_start_sql

__all__ = ["Cohorts", "cohorts", "interpurchase_times"]


class Cohorts(NamedTuple):
    """``customers``: customer_id, first_purchase, cohort, first_amount (the first purchase day's
    spend) (+ segment columns at first purchase).
    ``sizes``: cohort, cohort_start, [segment columns,] n_customers, share, first_purchase_amount
    (total spend on the cohort's first purchase days), sorted by cohort."""

    customers: pd.DataFrame
    sizes: pd.DataFrame


def _where_end(observation_end: Any) -> tuple[str, str | None]:
    if observation_end is None:
        return "", None
    end = sql_date(observation_end, "observation_end")
    return f"WHERE CAST(date AS DATE) <= {end}", end


def cohorts(
    transactions: Transactions,
    freq: str = "M",
    *,
    segment_cols: Sequence[str] = (),
    observation_end: Any = None,
) -> Cohorts:
    """Acquisition cohort of every customer and the cohort sizes (optionally by segment)."""
    where, end = _where_end(observation_end)
    label = cohort_label_sql("first_day", freq)
    start = period_start_sql("first_day", freq)
    rel = as_relation(transactions)
    segment_cols = tuple(segment_cols)
    check_source(rel, segment_cols, observation_end=end)
    segs = "".join(f", arg_min_null(s{i}, day) AS {ident(c)}" for i, c in enumerate(segment_cols))
    day_segs = "".join(f", min({ident(c)}) AS s{i}" for i, c in enumerate(segment_cols))
    customers_sql = f"""
        WITH days AS (
            SELECT customer_id, CAST(date AS DATE) AS day, sum(CAST(amount AS DOUBLE) ORDER BY amount) AS amount{day_segs}
            FROM {SOURCE} {where} GROUP BY ALL
        ),
        firsts AS (
            SELECT customer_id, min(day) AS first_day, arg_min(amount, day) AS first_amount{segs}
            FROM days GROUP BY customer_id
        )
        SELECT CAST(customer_id AS VARCHAR) AS customer_id, CAST(first_day AS TIMESTAMP) AS first_purchase,
               {label} AS cohort, CAST({start} AS TIMESTAMP) AS cohort_start,
               first_amount{''.join(', ' + ident(c) for c in segment_cols)}
        FROM firsts ORDER BY customer_id"""
    customers = to_frame(query(rel, customers_sql), date_cols=("first_purchase", "cohort_start"))
    keys = ["cohort", "cohort_start", *segment_cols]
    sizes = (
        customers.groupby(keys, sort=True, dropna=False)
        .agg(n_customers=("customer_id", "size"), first_purchase_amount=("first_amount", "sum"))
        .reset_index()
    )
    sizes.insert(len(keys) + 1, "share", sizes["n_customers"] / max(len(customers), 1))
    customers = customers[["customer_id", "first_purchase", "cohort", "first_amount", *segment_cols]]
    return Cohorts(customers=customers, sizes=sizes)


def interpurchase_times(transactions: Transactions, *, observation_end: Any = None) -> pd.DataFrame:
    """One row per repeat purchase: customer_id, purchase_number (1 = first repeat),
    previous_date, date and gap_days (days since the previous purchase day, >= 1).
    Customers without a repeat purchase contribute no rows."""
    where, end = _where_end(observation_end)
    rel = as_relation(transactions)
    check_source(rel, observation_end=end)
    sql = f"""
        WITH days AS (
            SELECT DISTINCT customer_id, CAST(date AS DATE) AS day FROM {SOURCE} {where}
        ),
        lagged AS (
            SELECT customer_id, day,
                   lag(day) OVER w AS previous_day,
                   row_number() OVER w - 1 AS purchase_number
            FROM days WINDOW w AS (PARTITION BY customer_id ORDER BY day)
        )
        SELECT CAST(customer_id AS VARCHAR) AS customer_id, purchase_number,
               CAST(previous_day AS TIMESTAMP) AS previous_date, CAST(day AS TIMESTAMP) AS date,
               date_diff('day', previous_day, day) AS gap_days
        FROM lagged WHERE previous_day IS NOT NULL
        ORDER BY customer_id, purchase_number"""
    return to_frame(query(rel, sql), date_cols=("previous_date", "date"))
