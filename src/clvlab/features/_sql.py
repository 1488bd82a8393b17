"""Shared plumbing of the features package: any transaction source -> a DuckDB relation.

Every feature function accepts the validated pandas table, a Parquet/CSV path (or a
Parquet glob) with the same columns, or a ``duckdb.DuckDBPyRelation``. A path is scanned
by DuckDB directly, so a 20M-row Parquet log never enters pandas; a relation is queried
on its own connection (``relation.query``). Every query reads the source through the
view name :data:`SOURCE`.

Connections made here honour ``CLVLAB_DUCKDB_THREADS`` and ``CLVLAB_DUCKDB_MEMORY_LIMIT``
(e.g. ``"2"`` and ``"3GB"``); unset, DuckDB's defaults apply.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import duckdb
import pandas as pd

from clvlab.errors import ClvlabInputError

logger = logging.getLogger("clvlab.features")

Transactions = Union[pd.DataFrame, str, os.PathLike, duckdb.DuckDBPyRelation]
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


def as_relation(transactions: Transactions) -> duckdb.DuckDBPyRelation:
    """Wrap a DataFrame / Parquet or CSV path / relation as a DuckDB relation (no copy of a file)."""
    if isinstance(transactions, duckdb.DuckDBPyRelation):
        return transactions
    if isinstance(transactions, pd.DataFrame):
        return connect().from_df(transactions)
    if isinstance(transactions, (str, os.PathLike)):
        path = str(transactions)
        lower = path.lower()
        if lower.endswith(_PARQUET):
            if not any(c in path for c in "*?[") and not Path(path).is_file():
                raise ClvlabInputError([f"no such Parquet file: {path}"], what="transactions")
            return connect().read_parquet(path)
        if lower.endswith(_CSV):
            if not Path(path).is_file():
                raise ClvlabInputError([f"no such CSV file: {path}"], what="transactions")
            return connect().read_csv(path, dtype={"customer_id": "VARCHAR"})
        raise ClvlabInputError(
            [f"{path}: expected a .parquet/.pq or .csv file (or a Parquet glob)"], what="transactions"
        )
    raise ClvlabInputError(
        [f"transactions of type {type(transactions).__name__}: expected a pandas DataFrame, "
         "a Parquet/CSV path or a duckdb relation"],
        what="transactions",
    )


def query(rel: duckdb.DuckDBPyRelation, sql: str) -> duckdb.DuckDBPyRelation:
    """Run ``sql`` (reading the source as :data:`SOURCE`) on the relation's connection."""
    return rel.query(SOURCE, sql)


def ident(name: str) -> str:
    """Quote a column name as a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


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
    rel: duckdb.DuckDBPyRelation, segment_cols: Sequence[str] = (), *, observation_end: str | None = None
) -> dict[str, int]:
    """Check the columns and values every feature needs, in one pass; raise one
    ClvlabInputError listing every problem. Returns row counts (total, after end).
    """
    problems: list[str] = []
    cols = list(rel.columns)
    types = dict(zip(cols, (str(t) for t in rel.types)))
    for col in (*REQUIRED, *segment_cols):
        if col not in cols:
            problems.append(f"column {col!r} missing (columns present: {cols})")
    if problems:
        raise ClvlabInputError(problems, what="transactions")
    date_type = types["date"].upper()
    if not (date_type.startswith("DATE") or date_type.startswith("TIMESTAMP") or date_type == "VARCHAR"):
        problems.append(f"column 'date' has type {types['date']}: expected a date or timestamp")
    if not any(k in types["amount"].upper() for k in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL", "NUMERIC")):
        problems.append(f"column 'amount' has type {types['amount']}: expected a number")
    if problems:
        raise ClvlabInputError(problems, what="transactions")
    after = f"count(*) FILTER (WHERE TRY_CAST(date AS DATE) > {observation_end})" if observation_end else "0"
    counts_sql = f"""
        SELECT count(*) AS n_rows,
               count(*) FILTER (WHERE customer_id IS NULL) AS null_id,
               count(*) FILTER (WHERE date IS NULL) AS null_date,
               count(*) FILTER (WHERE date IS NOT NULL AND TRY_CAST(date AS DATE) IS NULL) AS bad_date,
               count(*) FILTER (WHERE amount IS NULL OR isnan(CAST(amount AS DOUBLE))) AS null_amount,
               count(*) FILTER (WHERE CAST(amount AS DOUBLE) < 0) AS neg_amount,
               {after} AS after_end
        FROM {SOURCE}"""
    row = query(rel, counts_sql).fetchall()[0]
    n = dict(zip(["n_rows", "null_id", "null_date", "bad_date", "null_amount", "neg_amount", "after_end"], row))
    checks = [
        ("null_id", "customer_id IS NULL", "column 'customer_id' is null in {k} row(s){ex}: expected an id"),
        ("null_date", "date IS NULL", "column 'date' is null in {k} row(s){ex}: expected a date"),
        ("bad_date", "date IS NOT NULL AND TRY_CAST(date AS DATE) IS NULL",
         "column 'date' is not a date in {k} row(s){ex}: expected YYYY-MM-DD"),
        ("null_amount", "amount IS NULL OR isnan(CAST(amount AS DOUBLE))",
         "column 'amount' is null/NaN in {k} row(s){ex}: expected a number >= 0"),
        ("neg_amount", "CAST(amount AS DOUBLE) < 0", "column 'amount' is negative in {k} row(s){ex}: expected >= 0"),
    ]
    for key, cond, msg in checks:
        if n[key]:
            rows = query(rel, f"SELECT customer_id, date, amount FROM {SOURCE} WHERE {cond} LIMIT 3").fetchall()
            problems.append(msg.format(k=n[key], ex=f" (e.g. customer_id, date, amount = {rows})"))
    if problems:
        raise ClvlabInputError(problems, what="transactions")
    return {"n_rows": int(n["n_rows"]), "after_end": int(n["after_end"])}


def to_frame(rel: duckdb.DuckDBPyRelation, date_cols: Sequence[str] = ()) -> pd.DataFrame:
    """Fetch a result as pandas with dates as datetime64[ns] and a fresh RangeIndex."""
    df = rel.df()
    for col in date_cols:
        df[col] = pd.to_datetime(df[col]).astype("datetime64[ns]")
    return df.reset_index(drop=True)
