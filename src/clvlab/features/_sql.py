"""Shared plumbing of the features package: any transaction log -> a :class:`Source` to query.

Every feature function accepts the validated pandas table, a Parquet file / folder of part
files / glob or a CSV file with the same columns, a ``duckdb.DuckDBPyRelation``, or a
pyspark DataFrame, and an ``engine`` ("duckdb", the embedded default, or "spark"). A path is
scanned by the engine directly, so a 20M-row Parquet log never enters pandas; only the
per-customer result comes back. Every query reads the log through the view name
``src.table`` and spells the forms the engines disagree on with ``src.dialect``
(:mod:`clvlab.features.dialect`), so each feature is one query for both engines.

DuckDB connections made here honour ``CLVLAB_DUCKDB_THREADS`` and
``CLVLAB_DUCKDB_MEMORY_LIMIT`` (e.g. ``"2"`` and ``"3GB"``); unset, DuckDB's defaults apply.
Spark runs on the active SparkSession (:mod:`clvlab.features.spark`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from clvlab.errors import ClvlabInputError
from clvlab.features.dialect import DUCKDB, Dialect, check_engine
from clvlab.features.parquet_parts import check_parquet_input, hive_partitioned, is_glob

logger = logging.getLogger("clvlab.features")

Transactions = pd.DataFrame | str | os.PathLike | duckdb.DuckDBPyRelation | Any
"""A pandas table, a path, a DuckDB relation or a pyspark DataFrame (see :func:`open_source`)."""
SOURCE = "clvlab_tx"
REQUIRED = ("customer_id", "date", "amount")
_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".csv.gz", ".tsv")


def connect() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection with the environment's thread / memory settings."""
    config: dict[str, Any] = {}
    if threads := os.environ.get("CLVLAB_DUCKDB_THREADS"):
        config["threads"] = int(threads)
    if limit := os.environ.get("CLVLAB_DUCKDB_MEMORY_LIMIT"):
        config["memory_limit"] = limit
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET enable_progress_bar = false")
    return con


class Source:
    """A transaction log one engine can query: the view :attr:`table` and its dialect.

    Made by :func:`open_source`; the feature functions read it only through :meth:`rows`
    and :meth:`frame`, with SQL spelt by :attr:`dialect` where the engines differ.
    """

    dialect: Dialect = DUCKDB
    table: str = SOURCE

    @property
    def engine(self) -> str:
        """The engine's name ("duckdb" or "spark"), the dialect's."""
        return self.dialect.name

    @property
    def columns(self) -> list[str]:
        """Column names of the log."""
        raise NotImplementedError

    @property
    def types(self) -> dict[str, str]:
        """Column name -> upper-case SQL type name (``DATE``, ``VARCHAR``/``STRING``, ``DOUBLE``, ...)."""
        raise NotImplementedError

    def rows(self, sql: str) -> list[tuple]:
        """The rows of a (small) query result as tuples."""
        raise NotImplementedError

    def frame(self, sql: str, date_cols: Sequence[str] = ()) -> pd.DataFrame:
        """A query result as pandas, ``date_cols`` as datetime64[ns], a fresh RangeIndex."""
        df = self._fetch(sql)
        for col in date_cols:
            df[col] = pd.to_datetime(df[col]).astype("datetime64[ns]")
        return df.reset_index(drop=True)

    def _fetch(self, sql: str) -> pd.DataFrame:
        raise NotImplementedError


class DuckDBSource(Source):
    """A DuckDB relation (DataFrame, Parquet/CSV scan or the caller's relation) read as :data:`SOURCE`."""

    def __init__(self, relation: duckdb.DuckDBPyRelation):
        self.relation = relation

    @property
    def columns(self) -> list[str]:
        return list(self.relation.columns)

    @property
    def types(self) -> dict[str, str]:
        return {c: str(t).upper() for c, t in zip(self.relation.columns, self.relation.types)}

    def rows(self, sql: str) -> list[tuple]:
        return self.relation.query(SOURCE, sql).fetchall()

    def _fetch(self, sql: str) -> pd.DataFrame:
        return self.relation.query(SOURCE, sql).df()


def is_spark_frame(obj: Any) -> bool:
    """Is ``obj`` a Spark DataFrame (told by its class, without importing pyspark)."""
    return type(obj).__module__.startswith("pyspark.sql") and hasattr(obj, "sparkSession")


def open_source(transactions: Transactions, engine: str | None = None) -> Source:
    """The transaction log as a :class:`Source` of ``engine`` ("duckdb" or "spark").

    Parameters
    ----------
    transactions : DataFrame, path, duckdb relation, pyspark DataFrame or Source
        A validated pandas table, a Parquet file / folder of part files / glob or a CSV file,
        a DuckDB relation, or (Spark) a DataFrame of an existing SparkSession, e.g.
        ``spark.table("lake.transactions")``. A :class:`Source` is returned as it is.
    engine : {"duckdb", "spark"}, optional
        None: Spark for a pyspark DataFrame, DuckDB otherwise. Spark reads a pandas table or a
        path on the active SparkSession (:func:`clvlab.features.spark.spark_session` makes one).

    Returns
    -------
    Source
    """
    if isinstance(transactions, Source):
        if engine is not None and check_engine(engine) != transactions.engine:
            raise ClvlabInputError([f"engine={engine!r}: the source given is a {transactions.engine} source"],
                                   what="argument")  # fmt: skip
        return transactions
    engine = check_engine(engine) if engine is not None else ("spark" if is_spark_frame(transactions) else "duckdb")
    if engine == "spark":
        from clvlab.features.spark import SparkSource

        return SparkSource.open(transactions)
    if is_spark_frame(transactions):
        raise ClvlabInputError(["transactions is a pyspark DataFrame: use engine='spark' (or None)"], what="argument")
    return DuckDBSource(_duckdb_relation(transactions))


def parquet_files(path: str) -> str | None:
    """``path`` as a Parquet scan pattern: the file, the glob, or a folder's part files
    (``folder/**/*.parquet``); None when ``path`` is not Parquet."""
    if Path(path).is_dir():
        return str(Path(path) / "**" / "*.parquet")
    return path if path.lower().endswith(_PARQUET) else None


def _duckdb_relation(transactions: Any) -> duckdb.DuckDBPyRelation:
    """Wrap a DataFrame / Parquet or CSV path / relation as a DuckDB relation (no copy of a file)."""
    if isinstance(transactions, duckdb.DuckDBPyRelation):
        return transactions
    if isinstance(transactions, pd.DataFrame):
        return connect().from_df(transactions)
    if isinstance(transactions, (str, os.PathLike)):
        path = str(transactions)
        if (pattern := parquet_files(path)) is not None:
            files = check_parquet_input(path, engine="duckdb")  # footers: the same parts, columns, types as Spark
            return connect().read_parquet(pattern, hive_partitioning=hive_partitioned(path, files))
        if not path.lower().endswith(_CSV) and not Path(path).exists() and not is_glob(path):
            raise ClvlabInputError([f"no such Parquet or CSV file, or folder: {path}"], what="transactions")
        if path.lower().endswith(_CSV):
            if not Path(path).is_file():
                raise ClvlabInputError([f"no such CSV file: {path}"], what="transactions")
            return connect().read_csv(path, dtype={"customer_id": "VARCHAR"})
        raise ClvlabInputError(
            [f"{path}: expected a .parquet/.pq or .csv file, a folder of Parquet part files or a Parquet glob"],
            what="transactions",
        )
    raise ClvlabInputError(
        [
            f"transactions of type {type(transactions).__name__}: expected a pandas DataFrame, a Parquet/CSV "
            "path, a duckdb relation or (engine='spark') a pyspark DataFrame"
        ],
        what="transactions",
    )


def sql_date(value: Any, name: str) -> str:
    """A date argument as a SQL DATE literal (raises ClvlabInputError when unparsable)."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        ts = pd.NaT
    if ts is pd.NaT or pd.isna(ts):
        raise ClvlabInputError([f"{name}={value!r}: expected a date (e.g. '1997-09-30')"], what="argument")
    if ts != ts.normalize():
        raise ClvlabInputError(
            [f"{name}={value!r}: expected a whole day; transactions are counted per customer-day"],
            what="argument",
        )
    return f"DATE '{ts.date().isoformat()}'"


def check_source(
    src: Source, segment_cols: Sequence[str] = (), *, observation_end: str | None = None, require_labels: bool = False
) -> dict[str, int]:
    """Check the columns and values every feature needs, in one pass over ``src``; raise one
    ClvlabInputError listing every problem (amounts finite, >= 0 and with a finite total; with
    ``require_labels`` every segment value present). Returns row counts (total, after the end).
    """
    problems: list[str] = []
    cols, types, table = src.columns, src.types, src.table
    for col in (*REQUIRED, *segment_cols):
        if col not in cols:
            problems.append(f"column {col!r} missing (columns present: {cols})")
    if problems:
        raise ClvlabInputError(problems, what="transactions")
    date_type = types["date"]
    if not (date_type.startswith(("DATE", "TIMESTAMP")) or date_type in ("VARCHAR", "STRING")):
        problems.append(f"column 'date' has type {types['date']}: expected a date or timestamp")
    if not any(k in types["amount"] for k in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL", "NUMERIC")):
        problems.append(f"column 'amount' has type {types['amount']}: expected a number")
    if problems:
        raise ClvlabInputError(problems, what="transactions")
    after = f"count(*) FILTER (WHERE TRY_CAST(date AS DATE) > {observation_end})" if observation_end else "0"
    checks = [
        ("null_id", "customer_id IS NULL", "column 'customer_id' is null in {k} row(s){ex}: expected an id"),
        ("null_date", "date IS NULL", "column 'date' is null in {k} row(s){ex}: expected a date"),
        (
            "bad_date",
            "date IS NOT NULL AND TRY_CAST(date AS DATE) IS NULL",
            "column 'date' is not a date in {k} row(s){ex}: expected YYYY-MM-DD",
        ),
        (
            "null_amount",
            "amount IS NULL OR isnan(CAST(amount AS DOUBLE))",
            "column 'amount' is null/NaN in {k} row(s){ex}: expected a number >= 0",
        ),
        ("neg_amount", "CAST(amount AS DOUBLE) < 0", "column 'amount' is negative in {k} row(s){ex}: expected >= 0"),
        (
            "inf_amount",
            "abs(CAST(amount AS DOUBLE)) = CAST('Infinity' AS DOUBLE)",
            "column 'amount' is infinite in {k} row(s){ex}: expected a finite number",
        ),
    ]
    for i, col in enumerate(segment_cols if require_labels else ()):  # else a "None" / "nan" segment of its own
        q = src.dialect.ident(col)
        nan = f" OR isnan(CAST({q} AS DOUBLE))" if types[col].startswith(("DOUBLE", "FLOAT", "REAL")) else ""
        checks.append(
            (
                f"null_seg{i}",
                f"{q} IS NULL OR trim(CAST({q} AS STRING)) = ''{nan}",
                f"column {col!r} (segment) is missing/empty in {{k}} row(s){{ex}}: expected a label",
            )
        )
    counts = ", ".join(f"count(*) FILTER (WHERE {cond}) AS {key}" for key, cond, _ in checks)
    total = "sum(CAST(amount AS DOUBLE)) FILTER (WHERE NOT isnan(CAST(amount AS DOUBLE)))"
    row = src.rows(f"SELECT count(*) AS n_rows, {counts}, {after} AS after_end, {total} AS total FROM {table}")[0]
    n = dict(zip(["n_rows", *(key for key, _, _ in checks), "after_end", "total"], row))
    for key, cond, msg in checks:
        if n[key]:
            rows = src.rows(f"SELECT customer_id, date, amount FROM {table} WHERE {cond} LIMIT 3")
            problems.append(msg.format(k=n[key], ex=f" (e.g. customer_id, date, amount = {[tuple(r) for r in rows]})"))
    if not n["inf_amount"] and n["total"] is not None and not np.isfinite(float(n["total"])):
        problems.append(f"column 'amount': the amounts sum to {n['total']} (they overflow a double; largest "
                        f"{src.rows(f'SELECT max(CAST(amount AS DOUBLE)) FROM {table}')[0][0]:g}): expected amounts in "
                        "a currency unit whose totals are finite")  # fmt: skip
    if problems:
        raise ClvlabInputError(problems, what="transactions")
    return {"n_rows": int(n["n_rows"]), "after_end": int(n["after_end"])}
