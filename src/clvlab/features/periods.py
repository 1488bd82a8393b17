"""Calendar periods in SQL: period starts, whole-period differences and cohort labels.

One place for the calendar rules the features share (pandas ``Period`` semantics):
``"D"`` days; ``"W"`` weeks Monday-Sunday (pandas ``W`` = ``W-SUN``, DuckDB
``date_trunc('week')``, ISO weeks); ``"M"`` calendar months; ``"Q"`` quarters; ``"Y"`` years.
"""

from __future__ import annotations

from clvlab.choices import COHORT_FREQS, TIME_UNITS
from clvlab.errors import ClvlabInputError
from clvlab.features.dialect import Dialect

WHOLE_PERIOD_UNITS = TIME_UNITS
_TRUNC = {"D": "day", "W": "week", "M": "month", "Q": "quarter", "Y": "year"}


def _check(freq: str, allowed: tuple[str, ...], name: str) -> None:
    if freq not in allowed:
        raise ClvlabInputError([f"{name}={freq!r}: expected one of {list(allowed)}"], what="argument")


def check_cohort_freq(freq: str, name: str = "cohort_freq") -> None:
    """Raise :class:`~clvlab.errors.ClvlabInputError` unless ``freq`` is one of
    :data:`~clvlab.choices.COHORT_FREQS`; ``name`` is the argument the message names."""
    _check(freq, COHORT_FREQS, name)


def period_start_sql(expr: str, freq: str) -> str:
    """SQL DATE: first day of the calendar period holding ``expr``."""
    _check(freq, COHORT_FREQS, "freq")
    if freq == "D":
        return expr
    return f"CAST(date_trunc('{_TRUNC[freq]}', {expr}) AS DATE)"


def period_diff_sql(start: str, end: str, freq: str, dialect: Dialect) -> str:
    """SQL DOUBLE: whole periods between two period starts (exact integers), as
    pandas ``(Period(end) - Period(start)).n``."""
    _check(freq, WHOLE_PERIOD_UNITS, "time_unit")
    if freq == "M":
        return f"CAST({dialect.months_between(start, end)} AS DOUBLE)"
    days = f"CAST({dialect.days_between(start, end)} AS DOUBLE)"
    return days if freq == "D" else f"({days} / CAST(7 AS DOUBLE))"


def cohort_label_sql(expr: str, freq: str, dialect: Dialect) -> str:
    """SQL STRING label of the period holding ``expr``: ``1997-01-01`` (D), ``1997-W01``
    (ISO week, W), ``1997-01`` (M), ``1997-Q1`` (Q), ``1997`` (Y); labels sort in time order."""
    _check(freq, COHORT_FREQS, "cohort freq")
    return dialect.period_label(expr, freq)
