"""Descriptive KPIs analysts start from, in DuckDB SQL: per-channel KPIs, the cohort retention
matrix, and value concentration.

Definitions (one purchase = one customer-day, as everywhere in clvlab; only purchase days up to
``observation_end`` count):

- ``customers``: customers acquired (first purchase) in the segment; ``revenue``: their total
  spend; ``orders``: their purchase days; ``aov`` = revenue / orders; ``orders_per_customer``;
- ``repeat_rate``: share of the segment's customers with a second purchase day;
- ``retention_<d>d``: among customers acquired at least d days before ``observation_end`` (so
  each had d days to come back), the share with a repeat purchase within d days of the first
  (``eligible_<d>d`` counts them; NaN when none is eligible);
- the retention matrix: for each acquisition cohort (``cohort_freq``) and period k = 0, 1, ...
  after the cohort's period (``period``), the share of the cohort's customers with a purchase in
  that period; k = 0 counts repeat purchases only (everyone buys in period 0); cells whose
  period ends after ``observation_end`` are NaN (not yet observed in full);
- stage migration (:func:`stage_migration`): each customer's stage at two snapshot dates from
  the log alone — "new" (first purchase less than ``new_days`` before the snapshot), else
  "active" (last purchase less than ``active_days`` before), "at risk" (less than
  ``lapsed_days``), "lapsed" — and the from x to transition counts ("not acquired" for the
  customers whose first purchase falls between the snapshots);
- value concentration (:func:`value_concentration`): the Lorenz curve of a per-customer value
  (revenue, CLV) and the share of the total held by the top 10 / 20 / 30% of customers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from clvlab.errors import ClvlabInputError
from clvlab.features._sql import Source, Transactions, check_source, open_source, sql_date
from clvlab.features.cohorts import days_cte
from clvlab.features.periods import cohort_label_sql, period_start_sql

__all__ = [
    "RETENTION_DAYS",
    "STAGES",
    "TOP_SHARES",
    "channel_kpis",
    "retention_matrix",
    "stage_migration",
    "value_concentration",
]

RETENTION_DAYS = (90, 180)
STAGES = ("new", "active", "at risk", "lapsed")
TOP_SHARES = (0.1, 0.2, 0.3)
_MONTHS = {"M": 1, "Q": 3, "Y": 12}


def _days_sql(src: Source, end: str, segment: str | None) -> str:
    """CTEs ``days`` (cohorts.days_cte) and ``firsts``: first purchase day and its segment ``seg``."""
    seg = src.dialect.arg_min("s0", "day") if segment else "'all'"
    return f"""{days_cte(src, f"WHERE CAST(date AS DATE) <= {end}", [segment] if segment else [])},
        firsts AS (SELECT customer_id, min(day) AS first_day, {seg} AS seg FROM days GROUP BY customer_id)"""


def channel_kpis(transactions: Transactions, observation_end: Any, *, segment: str | None = "channel",
                 retention_days: Sequence[int] = RETENTION_DAYS, engine: str | None = None) -> pd.DataFrame:  # fmt: skip
    """Per-segment KPIs of the customers acquired up to ``observation_end`` (module docstring).

    Parameters
    ----------
    transactions : DataFrame, path, duckdb relation or pyspark DataFrame
        Transaction log with ``customer_id``, ``date``, ``amount`` and the ``segment`` column.
    observation_end : date-like
        Last day counted.
    segment : str or None
        Segment column (its value on the customer's first purchase day); None: one row for all.
    retention_days : sequence of int
        Windows d of the ``retention_<d>d`` columns.
    engine : {"duckdb", "spark"}, optional
        The engine of the per-customer query (:func:`clvlab.features._sql.open_source`).

    Returns
    -------
    DataFrame
        One row per segment: ``segment`` (named after the column, or "segment" = "all"),
        customers, revenue, orders, aov, orders_per_customer, repeat_rate, and per window
        eligible_<d>d and retention_<d>d; sorted by segment.
    """
    bad = [d for d in retention_days if not (isinstance(d, int | np.integer) and d > 0)]
    if bad:
        raise ClvlabInputError(f"retention_days {bad}: expected whole numbers of days > 0", what="argument")
    end = sql_date(observation_end, "observation_end")
    src = open_source(transactions, engine)
    check_source(src, [segment] if segment else [], observation_end=end, require_labels=True)
    d = src.dialect
    sql = f"""
        WITH {_days_sql(src, end, segment)}
        SELECT customer_id, CAST(min(f.seg) AS STRING) AS seg, min(f.first_day) AS first_day,
               {d.ordered_sum("days.amount", "days.day")} AS revenue, count(*) AS orders,
               min(days.day) FILTER (WHERE days.day > f.first_day) AS second_day
        FROM days JOIN firsts f USING (customer_id) GROUP BY customer_id ORDER BY customer_id"""
    per = src.frame(sql, date_cols=("first_day", "second_day"))
    # per segment in pandas, from the customers in id order: the same float sums on every engine
    end_ts = pd.Timestamp(observation_end)
    per["repeaters"] = per["orders"] >= 2
    for w in retention_days:
        per[f"eligible_{int(w)}d"] = per["first_day"] <= end_ts - pd.Timedelta(days=int(w))
        per[f"retained_{int(w)}d"] = per[f"eligible_{int(w)}d"] & (
            per["second_day"] <= per["first_day"] + pd.Timedelta(days=int(w))
        )
    counts = ["repeaters", *(f"{k}_{int(w)}d" for w in retention_days for k in ("eligible", "retained"))]
    out = (per.groupby("seg", sort=True, dropna=False)
           .agg(customers=("customer_id", "size"), revenue=("revenue", "sum"), orders=("orders", "sum"),
                **{c: (c, "sum") for c in counts})
           .reset_index())  # fmt: skip
    out["aov"] = out["revenue"] / out["orders"]
    out["orders_per_customer"] = out["orders"] / out["customers"]
    out["repeat_rate"] = out["repeaters"] / out["customers"]
    cols = [segment or "segment", "customers", "revenue", "orders", "aov", "orders_per_customer", "repeat_rate"]
    out = out.rename(columns={"seg": segment or "segment"})
    for w in retention_days:  # (d is the dialect above)
        e = out[f"eligible_{int(w)}d"]
        out[f"retention_{int(w)}d"] = np.where(e > 0, out[f"retained_{int(w)}d"] / e.where(e > 0, 1), np.nan)
        cols += [f"eligible_{int(w)}d", f"retention_{int(w)}d"]
    return out[cols].reset_index(drop=True)


def retention_matrix(transactions: Transactions, observation_end: Any, *, cohort_freq: str = "M",
                     period: str = "M", engine: str | None = None) -> pd.DataFrame:  # fmt: skip
    """Share of each acquisition cohort's customers buying in period k after acquisition.

    Parameters
    ----------
    transactions : DataFrame, path, duckdb relation or pyspark DataFrame
    observation_end : date-like
        Last day counted; periods ending after it are NaN.
    cohort_freq : {"M", "Q", "Y"}
        Acquisition cohort period.
    period : {"M", "Q", "Y"}
        Unit of the periods after acquisition (calendar periods since the cohort's start; period 0
        holds the cohort's start).
    engine : {"duckdb", "spark"}, optional
        The engine of the queries (:func:`clvlab.features._sql.open_source`).

    Returns
    -------
    DataFrame
        Index ``cohort`` (labels in time order), columns ``customers`` then 0, 1, ...: the shares
        (period 0: a repeat purchase in the acquisition period).
    """
    problems = [f"{n}={v!r}: expected one of {sorted(_MONTHS)}" for n, v in (("cohort_freq", cohort_freq),
                                                                             ("period", period)) if v not in _MONTHS]  # fmt: skip
    if problems:
        raise ClvlabInputError(problems, what="argument")
    end = sql_date(observation_end, "observation_end")
    src = open_source(transactions, engine)
    check_source(src, observation_end=end)
    d = src.dialect

    def periods_after(first: str, day: str) -> str:  # whole `period`s from the cohort's start (exact)
        months = d.months_between(period_start_sql(period_start_sql(first, cohort_freq), period),
                                  period_start_sql(day, period))  # fmt: skip
        return f"CAST(floor({months} / {_MONTHS[period]}) AS BIGINT)"

    sql = f"""
        WITH {_days_sql(src, end, None)},
        tagged AS (
            SELECT customer_id, days.day, f.first_day, {cohort_label_sql("f.first_day", cohort_freq, d)} AS cohort,
                   {periods_after("f.first_day", "days.day")} AS k
            FROM days JOIN firsts f USING (customer_id)
        )
        SELECT cohort, k, count(DISTINCT customer_id) FILTER (WHERE day > first_day) AS active
        FROM tagged GROUP BY cohort, k ORDER BY cohort, k"""
    active = src.frame(sql)
    sizes_sql = f"""
        WITH {_days_sql(src, end, None)}
        SELECT {cohort_label_sql("first_day", cohort_freq, d)} AS cohort, count(*) AS customers,
               max({periods_after("first_day", end)}) AS last_k
        FROM firsts GROUP BY {cohort_label_sql("first_day", cohort_freq, d)} ORDER BY cohort"""
    sizes = src.frame(sizes_sql).set_index("cohort")
    # the last period of a cohort is complete only if it ends on or before observation_end
    end_ts = pd.Timestamp(observation_end)
    complete_last = (end_ts + pd.offsets.Day(1)) == (end_ts + pd.offsets.Day(1)).to_period(period).start_time
    n_k = int(sizes["last_k"].max()) + 1 if len(sizes) else 0
    mat = pd.DataFrame(np.nan, index=sizes.index, columns=range(n_k))
    for cohort, row in sizes.iterrows():
        last = int(row["last_k"]) if complete_last else int(row["last_k"]) - 1
        mat.loc[cohort, :last] = 0.0 if last >= 0 else np.nan
    for _, r in active.iterrows():
        k = int(r["k"])
        if k in mat.columns and not np.isnan(mat.loc[r["cohort"], k]):
            mat.loc[r["cohort"], k] = r["active"] / sizes.loc[r["cohort"], "customers"]
    mat.insert(0, "customers", sizes["customers"].astype(int))
    mat.index.name = "cohort"
    return mat


def value_concentration(values: pd.Series | np.ndarray, shares: Sequence[float] = TOP_SHARES,
                        points: int = 101) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """The Lorenz curve of a per-customer value and the share held by the top customers.

    Parameters
    ----------
    values : Series or ndarray
        One non-negative value per customer (revenue, CLV).
    shares : sequence of float
        Top fractions of customers for the table (0.1 = the top 10%).
    points : int
        Points of the curve.

    Returns
    -------
    (DataFrame, DataFrame)
        The curve: customer_share (0..1, customers sorted by value ascending) and value_share;
        the table: top_customers (the fraction), value_share, and ``gini`` (one value, repeated).
    """
    v = np.asarray(values, dtype=float)
    problems = []
    if v.ndim != 1 or not len(v):
        problems.append("values: expected a non-empty 1-D array, one value per customer")
    elif not np.all(np.isfinite(v)) or np.any(v < 0):
        problems.append(f"values: {int((~np.isfinite(v) | (v < 0)).sum())} value(s) not finite and >= 0")
    elif v.sum() <= 0:
        problems.append("values: the total is 0 (no concentration to measure)")
    bad = [s for s in shares if not 0 < s <= 1]
    if bad:
        problems.append(f"shares {bad}: expected fractions in (0, 1]")
    if problems:
        raise ClvlabInputError(problems, what="value concentration")
    s = np.sort(v)
    cum = np.concatenate([[0.0], np.cumsum(s)]) / s.sum()
    n = len(s)
    x = np.linspace(0.0, 1.0, points)
    curve = pd.DataFrame({"customer_share": x, "value_share": np.interp(x * n, np.arange(n + 1), cum)})
    gini = 1.0 - 2.0 * np.trapezoid(cum, dx=1.0 / n)
    top = [1.0 - np.interp((1.0 - f) * n, np.arange(n + 1), cum) for f in shares]
    table = pd.DataFrame({"top_customers": list(shares), "value_share": top, "gini": gini})
    return curve, table


def stage_migration(transactions: Transactions, snapshot_from: Any, snapshot_to: Any, *, new_days: int = 60,
                    active_days: int = 90, lapsed_days: int = 180, engine: str | None = None) -> pd.DataFrame:  # fmt: skip
    """Transition counts between customers' recency stages at two snapshots (module docstring).

    Parameters
    ----------
    transactions : DataFrame, path, duckdb relation or pyspark DataFrame
    snapshot_from, snapshot_to : date-like
        The two snapshot days (purchases on a snapshot day count for it); ``snapshot_from`` first.
    new_days, active_days, lapsed_days : int
        Stage boundaries in days (``active_days`` < ``lapsed_days``).
    engine : {"duckdb", "spark"}, optional
        The engine of the query (:func:`clvlab.features._sql.open_source`).

    Returns
    -------
    DataFrame
        Index: stage at ``snapshot_from`` ("not acquired" first, then :data:`STAGES`); columns:
        :data:`STAGES` at ``snapshot_to`` (every customer acquired by then is counted once).
    """
    problems = [f"{n}={v!r}: expected whole days > 0" for n, v in (("new_days", new_days), ("active_days", active_days),
                ("lapsed_days", lapsed_days)) if not (isinstance(v, int | np.integer) and v > 0)]  # fmt: skip
    if not problems and active_days >= lapsed_days:
        problems.append(f"active_days={active_days} must be below lapsed_days={lapsed_days}")
    a, b = sql_date(snapshot_from, "snapshot_from"), sql_date(snapshot_to, "snapshot_to")
    if pd.Timestamp(snapshot_from) >= pd.Timestamp(snapshot_to):
        problems.append(f"snapshot_from {snapshot_from} must be before snapshot_to {snapshot_to}")
    if problems:
        raise ClvlabInputError(problems, what="argument")
    src = open_source(transactions, engine)
    check_source(src, observation_end=b)
    days_between = src.dialect.days_between

    def stage(snap: str) -> str:
        return f"""(SELECT customer_id, CASE
                       WHEN {days_between("min(day)", snap)} < {int(new_days)} THEN 'new'
                       WHEN {days_between("max(day)", snap)} < {int(active_days)} THEN 'active'
                       WHEN {days_between("max(day)", snap)} < {int(lapsed_days)} THEN 'at risk'
                       ELSE 'lapsed' END AS stage
                   FROM days WHERE day <= {snap} GROUP BY customer_id)"""

    sql = f"""
        WITH days AS (SELECT DISTINCT CAST(customer_id AS STRING) AS customer_id, CAST(date AS DATE) AS day
                      FROM {src.table} WHERE CAST(date AS DATE) <= {b})
        SELECT coalesce(f.stage, 'not acquired') AS stage_from, t.stage AS stage_to, count(*) AS customers
        FROM {stage(b)} t LEFT JOIN {stage(a)} f USING (customer_id) GROUP BY ALL"""
    counts = src.frame(sql)
    out = counts.pivot_table(index="stage_from", columns="stage_to", values="customers", aggfunc="sum", fill_value=0)
    out = out.reindex(index=["not acquired", *STAGES], columns=list(STAGES), fill_value=0).astype(int)
    out.index.name, out.columns.name = f"stage on {pd.Timestamp(snapshot_from).date()}", \
        f"stage on {pd.Timestamp(snapshot_to).date()}"  # fmt: skip
    return out
