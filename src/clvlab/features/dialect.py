"""The SQL the two feature engines disagree on, written once per engine.

Every feature query is one f-string shared by DuckDB and Spark SQL; the few forms the
dialects spell differently come from a :class:`Dialect` (``src.dialect`` of the source the
query reads). Everything else in the queries is the common subset: CTEs, joins with
``USING``, ``GROUP BY ALL``, aggregates with ``FILTER (WHERE ...)``, window functions,
``TRY_CAST``, ``isnan``, ``date_trunc``, ``CAST(... AS STRING)``, ``NULLS LAST``.

Floating-point sums are where two engines part silently: a parallel ``sum`` adds in
whatever order the partitions arrive. The features therefore sum spend in a fixed order
(:meth:`Dialect.ordered_sum` / :meth:`Dialect.ordered_avg`): DuckDB's ordered aggregates
and, in Spark, a left fold over the sorted values. Both add left to right from 0.0, so the
two engines give the same bits (tests/test_features_spark.py), run after run.
"""

from __future__ import annotations

from clvlab.errors import ClvlabInputError

__all__ = ["DUCKDB", "SPARK", "Dialect", "SparkDialect", "num"]


def num(value: float) -> str:
    """A number as a DOUBLE literal (Spark reads ``30.4375`` as a DECIMAL)."""
    return f"CAST({float(value)!r} AS DOUBLE)"


class Dialect:
    """DuckDB's spelling of the dialect-specific forms (the default engine)."""

    name = "duckdb"

    def ident(self, name: str) -> str:
        """A column name quoted as an identifier."""
        return '"' + name.replace('"', '""') + '"'

    def days_between(self, start: str, end: str) -> str:
        """Whole days from DATE ``start`` to DATE ``end`` (an integer)."""
        return f"date_diff('day', {start}, {end})"

    def months_between(self, start: str, end: str) -> str:
        """Calendar-month boundaries crossed from ``start`` to ``end`` (DuckDB's ``date_diff('month')``)."""
        return f"((year({end}) - year({start})) * 12 + (month({end}) - month({start})))"

    def add_days(self, day: str, n: int) -> str:
        """DATE ``day`` plus ``n`` whole days (a DATE)."""
        return f"({day} + {int(n)})"

    def arg_min(self, value: str, key: str) -> str:
        """``value`` at the smallest ``key`` of the group, NULL values kept (not skipped)."""
        return f"arg_min_null({value}, {key})"

    def ordered_sum(self, value: str, order: str, where: str | None = None) -> str:
        """Sum of DOUBLE ``value`` added in ``order`` from 0.0 (NULL for no rows)."""
        return f"sum({value} ORDER BY {order}){_filter(where)}"

    def ordered_avg(self, value: str, order: str, where: str | None = None) -> str:
        """:meth:`ordered_sum` divided by the row count (NULL for no rows)."""
        return f"avg({value} ORDER BY {order}){_filter(where)}"

    def period_label(self, expr: str, freq: str) -> str:
        """STRING label of the calendar period of DATE ``expr``: ``1997-01-01`` (D), ``1997-W01``
        (ISO week, W), ``1997-01`` (M), ``1997-Q1`` (Q), ``1997`` (Y)."""
        if freq == "Q":
            return f"(strftime({expr}, '%Y') || '-Q' || CAST(quarter({expr}) AS STRING))"
        return f"strftime({expr}, '{_FORMATS[freq][0]}')"


class SparkDialect(Dialect):
    """Spark SQL's spelling (Spark >= 3.4, ANSI mode or not)."""

    name = "spark"

    def ident(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def days_between(self, start: str, end: str) -> str:
        return f"CAST(datediff({end}, {start}) AS BIGINT)"

    def add_days(self, day: str, n: int) -> str:
        return f"date_add({day}, {int(n)})"

    def arg_min(self, value: str, key: str) -> str:
        return f"min_by({value}, {key})"  # keeps a NULL value at the minimum key, as arg_min_null

    def _sorted(self, value: str, order: str, where: str | None) -> tuple[str, str]:
        """The group's values sorted by ``order`` (an array) and how the fold reads one element."""
        if order == value:
            return f"array_sort(collect_list({value}){_filter(where)})", "_v"
        # structs sort by their first field; ties (equal keys) are broken by the value itself
        return f"array_sort(collect_list(struct({order} AS k, {value} AS v)){_filter(where)})", "_v.v"

    def ordered_sum(self, value: str, order: str, where: str | None = None) -> str:
        arr, elem = self._sorted(value, order, where)
        fold = f"aggregate({arr}, CAST(0 AS DOUBLE), (_acc, _v) -> _acc + {elem})"
        return fold if where is None else f"IF(size({arr}) = 0, NULL, {fold})"

    def ordered_avg(self, value: str, order: str, where: str | None = None) -> str:
        arr, elem = self._sorted(value, order, where)
        return f"try_divide(aggregate({arr}, CAST(0 AS DOUBLE), (_acc, _v) -> _acc + {elem}), size({arr}))"

    def period_label(self, expr: str, freq: str) -> str:
        if freq == "W":  # week-based patterns are not allowed in Spark's date_format
            return (f"(CAST(extract(YEAROFWEEK FROM {expr}) AS STRING) || '-W' || "
                    f"lpad(CAST(weekofyear({expr}) AS STRING), 2, '0'))")  # fmt: skip
        if freq == "Q":
            return f"(date_format({expr}, 'yyyy') || '-Q' || CAST(quarter({expr}) AS STRING))"
        return f"date_format({expr}, '{_FORMATS[freq][1]}')"


_FORMATS = {"D": ("%Y-%m-%d", "yyyy-MM-dd"), "W": ("%G-W%V", None), "M": ("%Y-%m", "yyyy-MM"), "Y": ("%Y", "yyyy")}


def _filter(where: str | None) -> str:
    return f" FILTER (WHERE {where})" if where else ""


DUCKDB = Dialect()
SPARK = SparkDialect()
ENGINES = ("duckdb", "spark")


def check_engine(engine: str) -> str:
    """``engine`` if it is one of :data:`ENGINES`; a ClvlabInputError naming it otherwise."""
    if engine not in ENGINES:
        raise ClvlabInputError([f"engine={engine!r}: expected one of {list(ENGINES)}"], what="argument")
    return engine
