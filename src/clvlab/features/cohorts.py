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

from clvlab.errors import column_list
from clvlab.features._sql import Source, Transactions, check_source, open_source, sql_date
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


def days_cte(src: Source, where: str, segment_cols: Sequence[str] = ()) -> str:
    """CTE ``days``: one row per purchase (customer_id as STRING, day) with its spend summed in a
    fixed order and the smallest same-day value of each segment column as ``s0, s1, ...``."""
    d = src.dialect
    segs = "".join(f", min({d.ident(c)}) AS s{i}" for i, c in enumerate(segment_cols))
    return f"""days AS (
            SELECT CAST(customer_id AS STRING) AS customer_id, CAST(date AS DATE) AS day,
                   {d.ordered_sum("CAST(amount AS DOUBLE)", "CAST(amount AS DOUBLE)")} AS amount{segs}
            FROM {src.table} {where} GROUP BY CAST(customer_id AS STRING), CAST(date AS DATE)
        )"""


def firsts_cte(src: Source, segment_cols: Sequence[str] = ()) -> str:
    """CTE ``firsts`` over ``days``: each customer's first purchase day, its spend and segments."""
    d = src.dialect
    segs = "".join(f", {d.arg_min(f's{i}', 'day')} AS {d.ident(c)}" for i, c in enumerate(segment_cols))
    return f"""firsts AS (
            SELECT customer_id, min(day) AS first_day, {d.arg_min("amount", "day")} AS first_amount{segs}
            FROM days GROUP BY customer_id
        )"""


def cohorts(
    transactions: Transactions,
    freq: str = "M",
    *,
    segment_cols: Sequence[str] = (),
    observation_end: Any = None,
    engine: str | None = None,
) -> Cohorts:
    """Acquisition cohort of every customer and the cohort sizes (optionally by segment).

    ``engine``: "duckdb" (default) or "spark" (:func:`clvlab.features._sql.open_source`).
    """
    where, end = _where_end(observation_end)
    src = open_source(transactions, engine)
    d = src.dialect
    label = cohort_label_sql("first_day", freq, d)
    start = period_start_sql("first_day", freq)
    segment_cols = column_list(segment_cols, "segment_cols")
    check_source(src, segment_cols, observation_end=end)
    customers_sql = f"""
        WITH {days_cte(src, where, segment_cols)},
        {firsts_cte(src, segment_cols)}
        SELECT CAST(customer_id AS STRING) AS customer_id, first_day AS first_purchase,
               {label} AS cohort, {start} AS cohort_start,
               first_amount{"".join(", " + d.ident(c) for c in segment_cols)}
        FROM firsts ORDER BY customer_id"""
    customers = src.frame(customers_sql, date_cols=("first_purchase", "cohort_start"))
    keys = ["cohort", "cohort_start", *segment_cols]
    sizes = (
        customers.groupby(keys, sort=True, dropna=False)
        .agg(n_customers=("customer_id", "size"), first_purchase_amount=("first_amount", "sum"))
        .reset_index()
    )
    sizes.insert(len(keys) + 1, "share", sizes["n_customers"] / max(len(customers), 1))
    customers = customers[["customer_id", "first_purchase", "cohort", "first_amount", *segment_cols]]
    return Cohorts(customers=customers, sizes=sizes)


def interpurchase_times(transactions: Transactions, *, observation_end: Any = None,
                       engine: str | None = None) -> pd.DataFrame:  # fmt: skip
    """One row per repeat purchase: customer_id, purchase_number (1 = first repeat),
    previous_date, date and gap_days (days since the previous purchase day, >= 1).
    Customers without a repeat purchase contribute no rows. ``engine``: as :func:`cohorts`."""
    where, end = _where_end(observation_end)
    src = open_source(transactions, engine)
    check_source(src, observation_end=end)
    sql = f"""
        WITH days AS (
            SELECT DISTINCT customer_id, CAST(date AS DATE) AS day FROM {src.table} {where}
        ),
        lagged AS (
            SELECT customer_id, day,
                   lag(day) OVER w AS previous_day,
                   CAST(row_number() OVER w - 1 AS BIGINT) AS purchase_number
            FROM days WINDOW w AS (PARTITION BY customer_id ORDER BY day)
        )
        SELECT CAST(customer_id AS STRING) AS customer_id, purchase_number,
               previous_day AS previous_date, day AS date,
               {src.dialect.days_between("previous_day", "day")} AS gap_days
        FROM lagged WHERE previous_day IS NOT NULL
        ORDER BY customer_id, purchase_number"""
    return src.frame(sql, date_cols=("previous_date", "date"))
