"""RFM summary and calibration/holdout split in DuckDB SQL (design.md, "Data contracts").

A *purchase* is a customer-day: several transactions of one customer on one day are one
purchase with their spend summed (re-aggregated here, so validated input is unchanged).
With ``first`` / ``last`` the customer's first / last purchase day up to the end of the
(calibration) period ``end`` and ``u = unit_days(time_unit)`` (D = 1, W = 7, M = 365.25/12):

    frequency      = number of purchases after the first            (repeat purchases, x)
    recency        = (last - first) in days / u                     (t_x)
    T              = (end - first) in days / u
    monetary_value = mean spend of the repeat purchases, 0 if none  (zbar, Gamma-Gamma)

This is the FHL (2005) convention that reproduces the published CDNOW numbers; it equals
``lifetimes.utils.summary_data_from_transaction_data(freq="D", freq_multiplier=u)``.

``whole_periods=True`` counts in whole calendar periods instead, exactly as lifetimes does
with ``freq=time_unit`` (pandas ``Period`` semantics; only "D", "W", "M"): every purchase day
is mapped to its calendar period (W: the Monday-Sunday week, M: the calendar month); a
*purchase* is then a period with at least one purchase day (spend summed over the period), so

    frequency = number of distinct purchase periods after the first one,
    recency   = period(last) - period(first),   T = period(end) - period(first)

in whole periods (integers). Two purchase days in one week thus count once (frequency can
be lower than at day resolution), and a first purchase on a Sunday is one week old on the
Monday. It shrinks the number of distinct (x, t_x, T) patterns the likelihood must visit, at
a price: the continuous-time BG/NBD then sees rounded times, and on simulated data (1M
customers, benchmarks/results/bgnbd.json) its estimates moved by ~+35% (alpha) and ~+10% (r)
against 0-5% at day resolution. Use it for quick looks, not for the estimates you report.

Segment columns take their value on the customer's first purchase day (NULL stays NULL);
same-day rows that disagree (not possible in validated input) give the smallest value.

The holdout columns of :func:`calibration_holdout` follow the same rule over the days in
``(calibration_end, observation_end]``, periods formed from holdout days only:
``frequency_holdout`` = number of holdout purchases (days or periods), ``monetary_value_holdout``
= their mean spend (0 if none), ``duration_holdout`` = (observation_end - calibration_end) in
days / u, or in whole periods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from clvlab.errors import ClvlabInputError
from clvlab.features._sql import Source, Transactions, check_source, logger, open_source, sql_date
from clvlab.features.dialect import Dialect, num
from clvlab.features.periods import (
    WHOLE_PERIOD_UNITS,
    cohort_label_sql,
    period_diff_sql,
    period_start_sql,
)
from clvlab.units import unit_days

__all__ = ["RFM_COLUMNS", "HOLDOUT_COLUMNS", "rfm_summary", "calibration_holdout"]

RFM_COLUMNS = ("customer_id", "frequency", "recency", "T", "monetary_value")
HOLDOUT_COLUMNS = ("frequency_holdout", "monetary_value_holdout", "duration_holdout")


def _diff(start: str, end: str, time_unit: str, whole_periods: bool, d: Dialect) -> str:
    """SQL DOUBLE: time from ``start`` to ``end`` in units (days / u, or whole periods)."""
    if whole_periods:
        return period_diff_sql(start, end, time_unit, d)
    return f"(CAST({d.days_between(start, end)} AS DOUBLE) / {num(unit_days(time_unit))})"


def _summary_sql(
    src: Source,
    cal_end: str,
    obs_end: str,
    time_unit: str,
    segment_cols: Sequence[str],
    whole_periods: bool,
    calibration_start: str | None,
    holdout: bool,
    cohort_freq: str,
) -> str:
    d = src.dialect
    segs = [f"s{i}" for i in range(len(segment_cols))]
    raw_segs = "".join(f", {d.ident(c)} AS {s}" for c, s in zip(segment_cols, segs))
    day_segs = "".join(f", min({s}) AS {s}" for s in segs)  # same-day rows: deterministic pick
    first_segs = "".join(f", {d.arg_min(s, 'day')} AS {s}" for s in segs)  # value at first purchase day
    if whole_periods:
        purchases = f"""
        SELECT cid, {period_start_sql("day", time_unit)} AS p, day > {cal_end} AS hold,
               min(day) AS day, {d.ordered_sum("amount", "day")} AS amount{first_segs}
        FROM days GROUP BY cid, {period_start_sql("day", time_unit)}, day > {cal_end}"""
        end_p = period_start_sql(cal_end, time_unit)
        obs_p = period_start_sql(obs_end, time_unit)
    else:
        purchases = (
            f"SELECT cid, day AS p, day > {cal_end} AS hold, day, amount{''.join(', ' + s for s in segs)} FROM days"
        )
        end_p, obs_p = cal_end, obs_end
    having = f"HAVING min(day) >= {calibration_start}" if calibration_start else ""
    hold_cols = (
        f""",
           CAST(coalesce(n_hold, 0) AS DOUBLE) AS frequency_holdout,
           coalesce(m_hold, CAST(0 AS DOUBLE)) AS monetary_value_holdout,
           {_diff(end_p, obs_p, time_unit, whole_periods, d)} AS duration_holdout"""
        if holdout
        else ""
    )
    out_segs = "".join(f", {s} AS {d.ident(c)}" for c, s in zip(segment_cols, segs))
    return f"""
    WITH raw AS (
        SELECT customer_id AS cid, CAST(date AS DATE) AS day, CAST(amount AS DOUBLE) AS amount{raw_segs}
        FROM {src.table} WHERE CAST(date AS DATE) <= {obs_end}
    ),
    days AS (
        SELECT cid, day, {d.ordered_sum("amount", "amount")} AS amount{day_segs} FROM raw GROUP BY cid, day
    ),
    purchases AS ({purchases}),
    cust AS (
        SELECT cid, min(day) AS first_day, min(p) AS first_p, max(p) AS last_p, count(*) AS n{first_segs}
        FROM purchases WHERE NOT hold GROUP BY cid {having}
    ),
    rep AS (
        SELECT cid,
               {d.ordered_avg("amount", "day", "NOT hold AND p > first_p")} AS m_cal,
               count(*) FILTER (WHERE hold) AS n_hold,
               {d.ordered_avg("amount", "day", "hold")} AS m_hold
        FROM purchases JOIN cust USING (cid) GROUP BY cid
    )
    SELECT CAST(cid AS STRING) AS customer_id,
           CAST(n - 1 AS DOUBLE) AS frequency,
           {_diff("first_p", "last_p", time_unit, whole_periods, d)} AS recency,
           {_diff("first_p", end_p, time_unit, whole_periods, d)} AS {d.ident("T")},
           coalesce(m_cal, CAST(0 AS DOUBLE)) AS monetary_value{hold_cols}{out_segs},
           first_day AS first_purchase,
           {cohort_label_sql("first_day", cohort_freq, d)} AS cohort
    FROM cust JOIN rep USING (cid)
    ORDER BY customer_id
    """


def _check_args(time_unit: str, whole_periods: bool, segment_cols: Sequence[str]) -> list[str]:
    unit_days(time_unit)  # raises for an unknown unit
    problems = []
    if whole_periods and time_unit not in WHOLE_PERIOD_UNITS:
        problems.append(f"whole_periods=True with time_unit={time_unit!r}: expected one of {list(WHOLE_PERIOD_UNITS)}")
    if isinstance(segment_cols, str):
        problems.append(f"segment_cols={segment_cols!r}: expected a sequence of column names, e.g. ({segment_cols!r},)")
    return problems


def _run(
    transactions: Transactions,
    *,
    calibration_end: Any,
    observation_end: Any,
    time_unit: str,
    segment_cols: Sequence[str],
    whole_periods: bool,
    calibration_start: Any,
    holdout: bool,
    cohort_freq: str,
    engine: str | None,
) -> pd.DataFrame:
    problems = _check_args(time_unit, whole_periods, segment_cols)
    cal_end = sql_date(calibration_end, "calibration_end" if holdout else "observation_end")
    obs_end = sql_date(observation_end, "observation_end")
    start = sql_date(calibration_start, "calibration_start") if calibration_start is not None else None
    if pd.Timestamp(observation_end) < pd.Timestamp(calibration_end):
        problems.append(f"observation_end={observation_end!r} is before calibration_end={calibration_end!r}")
    if start is not None and pd.Timestamp(calibration_start) > pd.Timestamp(calibration_end):
        problems.append(f"calibration_start={calibration_start!r} is after the calibration end {calibration_end!r}")
    if problems:
        raise ClvlabInputError(problems, what="argument")
    segment_cols = tuple(segment_cols)
    src = open_source(transactions, engine)
    counts = check_source(src, segment_cols, observation_end=obs_end)

    # customers left out, by their first purchase day: one scan of the log for every count
    rules = {"customers_after_observation_end": f"first > {obs_end}" if counts["after_end"] else None,
             "customers_first_purchase_in_holdout": f"first > {cal_end} AND first <= {obs_end}" if holdout else None,
             "customers_before_calibration_start": f"first < {start} AND first <= {cal_end}" if start is not None
             else None}  # fmt: skip
    rules = {k: v for k, v in rules.items() if v is not None}
    excluded = {"transactions_after_observation_end": counts["after_end"]}
    if rules:
        row = src.rows(
            "SELECT "
            + ", ".join(f"count(*) FILTER (WHERE {cond})" for cond in rules.values())
            + f" FROM (SELECT customer_id, min(CAST(date AS DATE)) AS first FROM {src.table} GROUP BY customer_id)"
        )[0]
        excluded.update(zip(rules, row))
    excluded = {k: int(v) for k, v in excluded.items()}
    if any(excluded.values()):
        logger.warning("features: excluded %s", ", ".join(f"{k}={v}" for k, v in excluded.items() if v))

    sql = _summary_sql(src, cal_end, obs_end, time_unit, segment_cols, whole_periods, start, holdout, cohort_freq)
    df = src.frame(sql, date_cols=("first_purchase",))
    df.attrs.update(
        time_unit=time_unit,
        whole_periods=whole_periods,
        calibration_end=str(pd.Timestamp(calibration_end).date()),
        observation_end=str(pd.Timestamp(observation_end).date()),
        excluded=excluded,
    )
    return df


def rfm_summary(
    transactions: Transactions,
    observation_end: Any,
    time_unit: str = "W",
    *,
    segment_cols: Sequence[str] = (),
    whole_periods: bool = False,
    calibration_start: Any = None,
    cohort_freq: str = "M",
    engine: str | None = None,
) -> pd.DataFrame:
    """One RFM row per customer from purchases up to ``observation_end`` (inclusive).

    Columns: customer_id, frequency, recency, T, monetary_value (definitions in the module
    docstring), the ``segment_cols`` (value on the first purchase day), first_purchase and
    cohort (label of the first purchase's ``cohort_freq`` period, see
    :func:`clvlab.features.periods.cohort_label_sql`). Sorted by customer_id.

    Transactions after ``observation_end`` are left out; how many (rows, and customers with
    nothing before the end) is logged and kept in ``df.attrs["excluded"]``. With
    ``calibration_start``, customers whose first purchase precedes it are dropped (their
    acquisition lies outside the window, so T would be wrong), and counted there too.

    Parameters
    ----------
    transactions : DataFrame, path, DuckDB relation or Spark DataFrame
        The transaction log (customer_id, date, amount and the segment columns), as
        :func:`clvlab.data.load_transactions` returns it, or a CSV / Parquet file or folder of it.
    observation_end : date-like
        Last day counted (inclusive); T is measured to it.
    time_unit : {"D", "W", "M"}
        Unit of recency and T (days divided by 1, 7 or 365.25/12).
    segment_cols : sequence of str
        Columns carried per customer (their value on the first purchase day).
    whole_periods : bool
        Floor durations to whole units (as lifetimes' ``freq="W"``) instead of fractions.
    calibration_start : date-like, optional
        Customers first seen before it are left out (and counted in ``attrs["excluded"]``).
    cohort_freq : {"D", "W", "M", "Q", "Y"}
        Period of the ``cohort`` label (the first purchase's week, month, ...).
    engine : {"duckdb", "spark"}, optional
        Default: Spark for a Spark DataFrame, else DuckDB.

    Returns
    -------
    DataFrame
        One row per customer; ``attrs`` hold the time unit, the end date and the exclusions.
    """
    return _run(
        transactions,
        calibration_end=observation_end,
        observation_end=observation_end,
        time_unit=time_unit,
        segment_cols=segment_cols,
        whole_periods=whole_periods,
        calibration_start=calibration_start,
        holdout=False,
        cohort_freq=cohort_freq,
        engine=engine,
    )


def calibration_holdout(
    transactions: Transactions,
    calibration_end: Any,
    observation_end: Any,
    time_unit: str = "W",
    *,
    segment_cols: Sequence[str] = (),
    whole_periods: bool = False,
    calibration_start: Any = None,
    cohort_freq: str = "M",
    engine: str | None = None,
) -> pd.DataFrame:
    """Calibration RFM (as :func:`rfm_summary` at ``calibration_end``) for customers whose
    first purchase is on or before ``calibration_end``, plus frequency_holdout,
    monetary_value_holdout and duration_holdout over ``(calibration_end, observation_end]``.

    Equals ``lifetimes.utils.calibration_and_holdout_data(freq="D", freq_multiplier=u)`` on
    one-row-per-customer-day input (tests/test_features_oracle.py). Customers first seen in the
    holdout are counted in ``df.attrs["excluded"]["customers_first_purchase_in_holdout"]``.

    Parameters
    ----------
    calibration_end : date-like
        Last day of the calibration period (inclusive): the RFM columns are measured to it.
    observation_end : date-like
        Last day of the holdout (inclusive); ``duration_holdout`` is the span between the two.
    transactions, time_unit, segment_cols, whole_periods, calibration_start, cohort_freq, engine
        As in :func:`rfm_summary`.

    Returns
    -------
    DataFrame
        The calibration RFM columns plus ``frequency_holdout``, ``monetary_value_holdout`` and
        ``duration_holdout``, one row per customer acquired by ``calibration_end``.
    """
    return _run(
        transactions,
        calibration_end=calibration_end,
        observation_end=observation_end,
        time_unit=time_unit,
        segment_cols=segment_cols,
        whole_periods=whole_periods,
        calibration_start=calibration_start,
        holdout=True,
        cohort_freq=cohort_freq,
        engine=engine,
    )
