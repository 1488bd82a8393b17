"""Parquet inputs checked from their footers before any query, so that DuckDB and Spark read a
folder of part files the same way or both refuse it with the same message.

A lake folder written by several jobs drifts: a part without the channel column, a part whose
amount is text, a truncated part, a stray file. Left to the engines, DuckDB and Spark answer
differently (Spark fills a missing column with NULL, DuckDB fails on it; each has its own raw
error for a corrupt footer). :func:`check_parquet_input` reads only the footers (no rows) and
lists every problem at once, naming the part files.
"""

from __future__ import annotations

import glob
from collections import defaultdict
from pathlib import Path

from clvlab.errors import ClvlabInputError

__all__ = ["NANOS_FIX", "check_parquet_input", "hive_partitioned", "is_glob", "parquet_part_files"]

NANOS_FIX = "write the files with microsecond timestamps (pandas: to_parquet(..., coerce_timestamps='us'))"
"""What to do about nanosecond timestamps, which Spark cannot read."""
SHOW = 3
"""Part files named per problem (then a count)."""


def is_glob(path: str) -> bool:
    """Whether ``path`` is a glob pattern."""
    return any(c in path for c in "*?[")


def parquet_part_files(path: str) -> list[Path]:
    """The Parquet files a local path stands for: the file, a glob's matches, or a folder's
    ``*.parquet`` files at any depth (Hive partition folders included), sorted.

    Files and folders whose name starts with ``_`` or ``.`` are left out, as both engines do
    (``_SUCCESS``, ``.crc``)."""
    p = Path(path)
    if is_glob(path):
        found = [Path(f) for f in glob.glob(path, recursive=True) if Path(f).is_file()]
    elif p.is_dir():
        found = [f for f in p.rglob("*.parquet") if f.is_file()]
        found = [f for f in found if not any(part.startswith(("_", ".")) for part in f.relative_to(p).parts)]
    else:
        found = [p] if p.is_file() else []
    return sorted(found)


def _examples(files: list[str]) -> str:
    more = f" and {len(files) - SHOW} more" if len(files) > SHOW else ""
    return ", ".join(files[:SHOW]) + more


def _kind(field_type) -> str:
    """The type as the engines read it: dictionary-encoded values as their values, string /
    large_string alike, dates and timestamps of any unit alike (both engines read a mix of them,
    and the date column is cast to DATE), a time zone kept apart."""
    import pyarrow as pa

    t = field_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_large_string(t) or pa.types.is_string(t):
        return "string"
    if pa.types.is_timestamp(t) and t.tz:
        return f"timestamp[tz={t.tz}]"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "date or timestamp"
    return str(t)


def hive_partitioned(path: str, files: list[Path]) -> bool:
    """Whether a folder's part files sit in ``key=value`` folders (Hive partitioning)."""
    p = Path(path)
    return p.is_dir() and any("=" in part for f in files for part in f.relative_to(p).parts[:-1])


def check_parquet_input(path: str, *, engine: str) -> list[Path]:
    """Check a local Parquet file, folder of part files or glob from the footers.

    Parameters
    ----------
    path : str
        The file, folder or glob.
    engine : {"duckdb", "spark"}
        Spark cannot read nanosecond timestamps (named per column).

    Returns
    -------
    list of Path
        The part files.

    Raises
    ------
    ClvlabInputError
        Listing every problem: nothing there, no part files, unreadable parts, a column missing
        from some parts, a column whose type differs between parts.
    """
    import pyarrow.parquet as pq

    p = Path(path)
    files = parquet_part_files(path)
    if not files:
        if is_glob(path):
            msg = f"no Parquet file matches {path}"
        elif p.is_dir():
            other = sorted(f.name for f in p.rglob("*") if f.is_file())
            msg = f"folder {path} holds no .parquet part files" + (
                f" (it holds {len(other)} other file(s), e.g. {_examples(other)})" if other else " (it is empty)"
            )
        else:
            msg = f"no such Parquet file or folder: {path}"
        raise ClvlabInputError([msg], what="transactions")
    base = p if p.is_dir() else None
    name = (lambda f: str(f.relative_to(base))) if base is not None else str
    problems, schemas = [], {}
    for f in files:
        try:
            schemas[f] = pq.read_schema(f)
        except Exception as exc:  # pyarrow: ArrowInvalid (no magic bytes, truncated footer), OSError
            problems.append(f"part {name(f)}: not a readable Parquet file ({str(exc).splitlines()[0][:160]})")
    columns: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for f, schema in schemas.items():
        for field in schema:
            columns[field.name][_kind(field.type)].append(name(f))
            if engine == "spark" and str(getattr(field.type, "unit", "")) == "ns":
                problems.append(f"part {name(f)}: column {field.name!r} holds nanosecond timestamps, which Spark "
                                f"cannot read; {NANOS_FIX}")  # fmt: skip
    for col, kinds in columns.items():
        having = sorted({f for fs in kinds.values() for f in fs})
        if len(having) < len(schemas):
            lacking = sorted(set(map(name, schemas)) - set(having))
            problems.append(f"column {col!r} is missing from {len(lacking)} of {len(schemas)} part files "
                            f"({_examples(lacking)}): every part must have the same columns")  # fmt: skip
        if len(kinds) > 1:
            spread = "; ".join(f"{k} in {len(fs)} ({_examples(sorted(fs))})" for k, fs in sorted(kinds.items()))
            problems.append(f"column {col!r} has different types across the part files: {spread}; write every part "
                            "with one type")  # fmt: skip
    if problems:
        raise ClvlabInputError(problems, what="transactions")
    return files
