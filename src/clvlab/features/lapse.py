"""Lapse (churn) table for survival models of non-contractual customers.

A non-contractual customer never announces churn, so churn is *defined* from the
purchase log: the customer **lapses** when no purchase follows within ``L`` time units
of a purchase (design.md, "Survival churn").  Each customer becomes one survival
record (duration, event) plus covariates known early in the customer's life.

Definitions (times in ``time_unit``; days divided by ``unit_days(time_unit)``):

* Only purchases on or before ``cutoff`` are used.  Several purchases of a customer on
  one day are one purchase (spend summed).  ``t_0 < t_1 < ... < t_k`` are a customer's
  purchase days up to the cut-off, ``t_0`` the first purchase.
* Purchase ``t_i`` is followed by a lapse when no purchase falls in ``(t_i, t_i + L]``
  *and* that whole interval is observed, i.e. ``t_{i+1} - t_i > L`` (with
  ``t_{k+1} = +inf``) and ``t_i + L <= cutoff``.  A gap of exactly ``L`` is not a lapse;
  a last purchase with ``t_k + L == cutoff`` is a lapse at the cut-off.
* The event is the **first** lapse (absorbing): ``lapse_time = t_i + L`` for the first
  such ``i``; a customer who comes back after a lapse stays lapsed at that first time.
  ``event = 1`` and ``duration = lapse_time - t_0``.
* Otherwise the customer is censored: ``event = 0`` and ``duration = cutoff - t_0``.
* State at the cut-off (for prediction there): ``age = cutoff - t_0`` and
  ``lapsed_now = 1`` when ``t_k + L <= cutoff`` (no purchase in the last ``L``).  A
  customer who lapsed and came back has ``event = 1`` but ``lapsed_now = 0``.

Covariates are measured on a fixed early window ``(t_0, t_0 + E]`` (``E = early_window``):
``first_amount`` (spend on the first purchase day), ``early_frequency`` (repeat purchase
days in the window), ``early_recency`` (last purchase in the window minus ``t_0``),
``early_monetary`` (mean spend of those repeat purchases, 0 if none), plus segment
columns (value on the first purchase day) and ``cohort`` (period of ``t_0``).
``E < L`` is required (default ``E = L / 2``): the earliest possible lapse is ``t_0 + L``,
so every covariate is known strictly before any event can happen and never contains
post-lapse purchases.  (With ``E = L`` a customer with no repeat purchase in the window
lapses at the very moment the window closes: the covariate would *be* the event.)

Customers whose early window is not complete at the cut-off (``t_0 + E > cutoff``) have
covariates that would mean something different (a shorter window); by default they are
dropped (``incomplete_early="drop"``, their number is in ``table.attrs``).  With
``incomplete_early="keep"`` they stay, with NaN early covariates and
``early_complete = False``, for descriptive use (Kaplan-Meier) only.

Computed in DuckDB SQL (window functions over customer-days) through the features
package's plumbing, so the source may be the validated DataFrame, a Parquet/CSV path or
a DuckDB relation; only the per-customer result enters pandas.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from ..errors import ClvlabInputError, column_list
from ..units import unit_days
from ._sql import Source, Transactions, check_source, open_source, sql_date
from .cohorts import days_cte, interpurchase_times
from .dialect import num
from .periods import check_cohort_freq, cohort_label_sql

EARLY_COLUMNS: tuple[str, ...] = ("first_amount", "early_frequency", "early_recency", "early_monetary")
"""Numeric covariates produced by :func:`lapse_table` (all known by ``t_0 + E``)."""


class LapseThreshold(NamedTuple):
    """A suggested lapse threshold ``lapse_after`` (time units) and why (printed by the CLI)."""

    lapse_after: float
    explanation: str


def _is_positive(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _check_arguments(
    cutoff: Any, lapse_after: Any, early_window: Any, time_unit: str, cohort_freq: str, incomplete_early: str
) -> tuple[list[str], str | None, float | None]:
    """Every argument problem, the cutoff as a SQL literal and the early window (default L / 2)."""
    problems: list[str] = []
    cutoff_sql = None
    try:
        cutoff_sql = sql_date(cutoff, "cutoff")
    except ClvlabInputError as err:
        problems.extend(err.problems)
    try:
        unit_days(time_unit)
    except ClvlabInputError as err:
        problems.extend(err.problems)
    try:
        check_cohort_freq(cohort_freq)
    except ClvlabInputError as err:
        problems.extend(err.problems)
    if not _is_positive(lapse_after):
        problems.append(f"lapse_after={lapse_after!r}: expected a finite number of {time_unit} units > 0")
    if early_window is None:
        early_window = lapse_after / 2 if _is_positive(lapse_after) else None
    elif not _is_positive(early_window):
        problems.append(f"early_window={early_window!r}: expected a finite number of {time_unit} units > 0")
    if _is_positive(early_window) and _is_positive(lapse_after) and early_window >= lapse_after:
        problems.append(
            f"early_window={early_window} >= lapse_after={lapse_after}: covariates would not be known before "
            "the first possible lapse (t0 + lapse_after); use early_window < lapse_after"
        )
    if incomplete_early not in ("drop", "keep"):
        problems.append(f"incomplete_early={incomplete_early!r}: expected 'drop' or 'keep'")
    return problems, cutoff_sql, early_window


def _customer_sql(
    src: Source, cutoff: str, lapse_days: float, early_days: float, segment_cols: Sequence[str], cohort_freq: str
) -> str:
    """Per customer: first/last day, first lapse start, early RFM, segment on the first day, cohort."""
    d = src.dialect
    seg_out = "".join(
        f", min(s{i}) FILTER (WHERE day = first_day) AS {d.ident(c)}"
        f", count(*) FILTER (WHERE day = first_day AND s{i} IS NULL) AS _missing{i}"
        for i, c in enumerate(segment_cols)
    )
    in_early = f"{d.days_between('first_day', 'day')} <= {num(early_days)}"
    return f"""
        WITH {days_cte(src, f"WHERE CAST(date AS DATE) <= {cutoff}", segment_cols)},
        seq AS (
            SELECT *, min(day) OVER (PARTITION BY customer_id) AS first_day,
                      lead(day) OVER (PARTITION BY customer_id ORDER BY day) AS next_day
            FROM days
        )
        SELECT customer_id,
               min(first_day) AS first_purchase,
               max(day) AS last_purchase,
               -- first purchase followed by a fully observed gap of more than L days
               min(day) FILTER (WHERE coalesce({d.days_between("day", "next_day")} > {num(lapse_days)},
                                               {d.days_between("day", cutoff)} >= {num(lapse_days)})) AS lapse_from,
               min(amount) FILTER (WHERE day = first_day) AS first_amount,
               CAST(count(*) FILTER (WHERE day > first_day AND {in_early}) AS DOUBLE) AS early_frequency,
               max(day) FILTER (WHERE {in_early}) AS last_early,
               coalesce({d.ordered_avg("amount", "day", f"day > first_day AND {in_early}")},
                        CAST(0 AS DOUBLE)) AS early_monetary,
               {cohort_label_sql("min(first_day)", cohort_freq, d)} AS cohort
               {seg_out}
        FROM seq GROUP BY customer_id ORDER BY customer_id"""


def lapse_table(
    transactions: Transactions,
    cutoff: str | pd.Timestamp,
    lapse_after: float,
    time_unit: str = "W",
    *,
    segment_cols: Sequence[str] = (),
    early_window: float | None = None,
    cohort_freq: str = "M",
    incomplete_early: Literal["drop", "keep"] = "drop",
    engine: str | None = None,
) -> pd.DataFrame:
    """One survival record per customer: time from first purchase to first lapse (see module doc).

    Parameters
    ----------
    transactions : validated transactions (``customer_id``, ``date``, ``amount`` [, segments]),
        as a DataFrame, Parquet/CSV path or DuckDB relation.
    cutoff : last day observed (inclusive); later purchases are ignored.
    lapse_after : ``L`` in ``time_unit``: no purchase within ``L`` after a purchase = lapse.
    early_window : ``E`` in ``time_unit`` for the early covariates; default ``L / 2``; must be ``< L``.
    cohort_freq : calendar period of ``cohort`` (D, W, M, Q, Y; labels as :func:`cohorts`).
    incomplete_early : what to do with customers with ``t_0 + E > cutoff`` ("drop" or "keep").
    engine : "duckdb" (default) or "spark" (:func:`clvlab.features._sql.open_source`).

    Returns
    -------
    DataFrame with ``customer_id``, ``first_purchase``, ``lapse_date`` (NaT if censored),
    ``duration``, ``event`` (0/1), ``age``, ``lapsed_now`` (0/1), ``first_amount``,
    ``early_frequency``, ``early_recency``, ``early_monetary``, ``early_complete``,
    segment columns, ``cohort``.  ``attrs`` hold ``cutoff``, ``lapse_after``,
    ``early_window``, ``time_unit``, ``n_dropped_incomplete_early``.
    """
    segment_cols = list(column_list(segment_cols, "segment_cols"))
    problems, cutoff_sql, early_window = _check_arguments(
        cutoff, lapse_after, early_window, time_unit, cohort_freq, incomplete_early
    )
    src = None
    try:
        src = open_source(transactions, engine)
    except ClvlabInputError as err:
        problems.extend(err.problems)
    if src is not None:
        present = [c for c in segment_cols if c in src.columns]
        counts = ", ".join(["min(TRY_CAST(date AS DATE))", *(f"count({src.dialect.ident(c)})" for c in present)])
        first_day, *n_present = src.rows(f"SELECT {counts} FROM {src.table}")[0]
        problems += [
            f"covariate column {c!r}: all values are NaN/missing; drop it from segment_cols"
            for c, k in zip(present, n_present)
            if k == 0
        ]
        if cutoff_sql is not None and first_day is not None and pd.Timestamp(cutoff) < pd.Timestamp(first_day):
            problems.append(
                f"cutoff={pd.Timestamp(cutoff).date()} is before all data (first purchase {first_day}): "
                "nothing is observed"
            )
        try:
            check_source(src, segment_cols)
        except ClvlabInputError as err:
            problems.extend(err.problems)
    if problems:
        raise ClvlabInputError(problems, what="lapse_table input")

    days = unit_days(time_unit)
    cutoff = pd.Timestamp(cutoff)
    L, E = float(lapse_after) * days, float(early_window) * days
    out = src.frame(
        _customer_sql(src, cutoff_sql, L, E, segment_cols, cohort_freq),
        date_cols=("first_purchase", "last_purchase", "lapse_from", "last_early"),
    )
    missing = [
        f"covariate column {c!r}: missing on the first purchase day of {int((out[f'_missing{i}'] > 0).sum())} "
        f"customer(s), e.g. customer_id {', '.join(map(repr, out.loc[out[f'_missing{i}'] > 0, 'customer_id'].head(3)))}; "
        "expected a segment label"
        for i, c in enumerate(segment_cols)
        if (out[f"_missing{i}"] > 0).any()
    ]
    if missing:
        raise ClvlabInputError(missing, what="lapse_table input")

    to_units = lambda delta: delta.dt.total_seconds() / 86400.0 / days  # noqa: E731
    out["lapse_date"] = out["lapse_from"] + pd.Timedelta(days=L)
    out["event"] = out["lapse_date"].notna().astype("int64")
    out["duration"] = to_units(out["lapse_date"].fillna(cutoff) - out["first_purchase"])
    out["age"] = to_units(cutoff - out["first_purchase"])
    out["lapsed_now"] = (out["last_purchase"] + pd.Timedelta(days=L) <= cutoff).astype("int64")
    out["early_recency"] = to_units(out["last_early"] - out["first_purchase"])
    out["early_complete"] = out["first_purchase"] + pd.Timedelta(days=E) <= cutoff
    for c in segment_cols:
        out[c] = out[c].astype(str)

    n_incomplete = int((~out["early_complete"]).sum())
    if incomplete_early == "drop":
        out = out[out["early_complete"]]
    else:
        out.loc[~out["early_complete"], list(EARLY_COLUMNS[1:])] = np.nan
    if out.empty:
        raise ClvlabInputError(
            [
                f"no customer has a complete early window of {early_window} {time_unit} before cutoff="
                f"{cutoff.date()} ({n_incomplete} dropped); use a later cutoff or a shorter early_window"
            ],
            what="lapse_table input",
        )
    cols = [
        "customer_id",
        "first_purchase",
        "lapse_date",
        "duration",
        "event",
        "age",
        "lapsed_now",
        *EARLY_COLUMNS,
        "early_complete",
        *segment_cols,
        "cohort",
    ]
    out = out[cols].reset_index(drop=True)
    out.attrs.update(
        cutoff=cutoff,
        lapse_after=float(lapse_after),
        early_window=float(early_window),
        time_unit=time_unit,
        n_dropped_incomplete_early=n_incomplete if incomplete_early == "drop" else 0,
    )
    return out


def suggest_lapse_threshold(
    transactions: Transactions,
    quantile: float = 0.9,
    time_unit: str = "W",
    *,
    cutoff: str | pd.Timestamp | None = None,
    engine: str | None = None,
) -> LapseThreshold:
    """Default ``L``: the ``quantile`` of observed inter-purchase times, rounded up to a whole unit.

    Gaps come from :func:`clvlab.features.cohorts.interpurchase_times`.  Pass ``cutoff``
    to use only purchases up to it (no look-ahead when the table is cut there).  Observed
    gaps are right-truncated by the end of the data (long gaps are less likely to be
    seen), so the quantile is biased low; the explanation says so.
    """
    if not (_is_positive(quantile) and quantile < 1):
        raise ClvlabInputError([f"quantile={quantile!r}: expected a number in (0, 1)"], what="argument")
    days = unit_days(time_unit)
    gaps = interpurchase_times(transactions, observation_end=cutoff, engine=engine)
    if len(gaps) == 0:
        raise ClvlabInputError(
            ["transactions: no customer has a repeat purchase, so no inter-purchase time to choose L from"],
            what="transactions",
        )
    g = gaps["gap_days"].to_numpy(float) / days
    q = float(np.quantile(g, quantile))
    value = float(max(math.ceil(q - 1e-9), 1))
    explanation = (
        f"lapse_after = {value:g} {time_unit}: {quantile:.0%} of the {len(g):,} observed gaps between "
        f"consecutive purchase days (from {gaps['customer_id'].nunique():,} repeat customers; median "
        f"{np.median(g):.1f} {time_unit}) are <= {q:.2f} {time_unit}, rounded up to a whole {time_unit}. "
        f"A customer with no purchase for longer than this is counted as lapsed. Gaps near the end of the "
        f"data are cut short, so this is a lower bound on the true quantile; raise the quantile for a "
        f"stricter definition of churn."
    )
    return LapseThreshold(value, explanation)
