"""Tables for people: number formatting, pivots and HTML tables for the run report.

Rules (:func:`format_value`, applied cell by cell by :func:`format_table`):

* missing values (None, NaN, NaT) are shown as an en dash, ``"–"``;
* integers get thousands separators (``23,570``); so do floats of magnitude >= 1,000, which
  are rounded to whole numbers (``1,234,568``);
* other floats keep about 4 significant digits (``0.2458``, ``12.35``) and are never in
  e-notation between 1e-3 and 1e15; smaller magnitudes (p-values) use ``1.2e-05``. In a
  table, a float column whose values span less than three decades gets one number of
  decimals for all its cells (4 significant digits at its median), so decimals line up;
  an integer-valued float column is shown as integers;
* timestamps at midnight are shown as dates (``1997-09-30``), other timestamps to the
  minute; this holds for datetime columns and for timestamps inside object columns;
* booleans read ``yes`` / ``no``.

Numeric columns (numeric dtype, or only numbers in an object column) are right-aligned.
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

__all__ = [
    "MISSING",
    "TEMPLATES",
    "describe_table",
    "format_compact",
    "format_number",
    "format_table",
    "format_value",
    "markdown_table",
    "pivot_table",
    "table_data",
]

MISSING = "\u2013"
"""How a missing value is shown (an en dash)."""

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("clvlab.report", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)
"""The one Jinja environment of the report's templates (tables and the page)."""


def _is_missing(v: Any) -> bool:
    if v is None or v is pd.NaT:
        return True
    if isinstance(v, float | np.floating):
        return bool(np.isnan(v))
    if isinstance(v, np.datetime64 | np.timedelta64):
        return bool(np.isnat(v))
    try:
        return bool(pd.isna(v)) if np.ndim(v) == 0 else False
    except (TypeError, ValueError):
        return False


def format_number(value: Any, digits: int = 4) -> str:
    """A number for people: thousands separators, ~``digits`` significant digits, no e-notation in [1e-3, 1e15).

    Parameters
    ----------
    value : int or float
    digits : int
        Significant digits of numbers below ``10 ** (digits - 1)``; larger numbers are
        rounded to whole numbers.

    Returns
    -------
    str

    Examples
    --------
    >>> format_number(23570), format_number(2.357e4), format_number(0.245784), format_number(float("nan"))
    ('23,570', '23,570', '0.2458', '–')
    """
    if _is_missing(value):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    v = float(value)
    if math.isinf(v):
        return "\u221e" if v > 0 else "\u2212\u221e"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1e15:
        return f"{v:.3e}"
    if a >= 10 ** (digits - 1):
        return f"{v:,.0f}"
    if a >= 1e-3:
        text = f"{v:,.{digits}g}"
        if "e" in text:  # cannot happen in this range; belt and braces
            text = f"{v:,.{max(digits - 1 - math.floor(math.log10(a)), 0)}f}"
        return text
    return f"{v:.2g}"  # below 1e-3 (e.g. p-values): 1.2e-05


def format_compact(value: Any, prefix: str = "", digits: int = 3) -> str:
    """A large number in short form for headline cards: ``1.23M``, ``$45.6k``, ``987``.

    Parameters
    ----------
    value : int or float
    prefix : str
        Put before the number, after the sign (e.g. a currency symbol).
    digits : int
        Significant digits.

    Examples
    --------
    >>> format_compact(1234567, "$"), format_compact(-45600), format_compact(987.4)
    ('$1.23M', '-45.6k', '987')
    """
    if _is_missing(value):
        return MISSING
    v = float(value)
    sign = "-" if v < 0 else ""
    a = abs(v)
    for factor, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= factor * (1 - 0.5 * 10 ** (-digits)):
            return f"{sign}{prefix}{a / factor:.{digits}g}{suffix}"
    return f"{sign}{prefix}{format_number(a, digits)}"


def _format_time(v: Any) -> str:
    ts = pd.Timestamp(v)
    if ts is pd.NaT:
        return MISSING
    if ts == ts.normalize():
        return ts.date().isoformat()
    return ts.strftime("%Y-%m-%d %H:%M")


def format_value(value: Any, digits: int = 4) -> str:
    """One cell as text: numbers by :func:`format_number`, timestamps as dates, missing as ``"–"``."""
    if _is_missing(value):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, numbers.Number):
        return format_number(value, digits)
    if isinstance(value, pd.Timestamp | np.datetime64 | _dt.datetime):
        return _format_time(value)
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, pd.Timedelta | np.timedelta64 | _dt.timedelta):
        return str(pd.Timedelta(value))
    if isinstance(value, pd.Period):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(format_value(v, digits) for v in value) if value else MISSING
    return str(value)


def _column_decimals(values: np.ndarray, digits: int) -> int | None:
    """One number of decimals for a float column, or None to format value by value.

    Integer-valued columns get 0; columns whose magnitudes (ignoring zeros and values below
    1e-3) span less than 3 decades get enough decimals for ``digits`` significant digits at
    their median magnitude and at least 2 at their smallest (so decimals line up);
    wider-ranging columns are formatted value by value.
    """
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return None
    if np.all(v == np.round(v)) and np.all(np.abs(v) < 1e15):
        return 0
    a = np.abs(v[np.abs(v) >= 1e-3])
    if len(a) == 0 or a.max() / a.min() >= 1e3:
        return None
    dec = digits - 1 - math.floor(math.log10(float(np.median(a))))
    dec = max(dec, 1 - math.floor(math.log10(float(a.min()))))
    return int(min(max(dec, 0), 6))


def _format_fixed(v: Any, decimals: int, digits: int) -> str:
    if _is_missing(v):
        return MISSING
    a = abs(float(v))
    if math.isinf(a) or (0 < a < 1e-3) or a >= 1e15:
        return format_number(v, digits)
    return f"{float(v):,.{decimals}f}"


def _is_numeric_column(s: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(s):
        return False
    if pd.api.types.is_numeric_dtype(s):
        return True
    if s.dtype == object:
        vals = s.dropna()
        return len(vals) > 0 and all(isinstance(v, numbers.Number) and not isinstance(v, bool | np.bool_) for v in vals)
    return False


def _meaningful_index(df: pd.DataFrame) -> bool:
    """An index worth showing: named, or not integers (labels, dates); a positional one is not."""
    idx = df.index
    if any(n is not None for n in idx.names):
        return True
    if isinstance(idx, pd.MultiIndex):
        return True
    return not pd.api.types.is_integer_dtype(idx.dtype)


def pivot_table(df: pd.DataFrame, pivot: Sequence[str], *, missing_label: str | None = None) -> pd.DataFrame:
    """Long to wide: ``pivot=(row, column, value)`` -> one row per ``row``, one column per ``column``.

    Parameters
    ----------
    df : DataFrame
        A tidy long table, e.g. a posterior summary with columns ``parameter``, ``segment``,
        ``mean``, ``sd``, ``hdi_low``, ...
    pivot : (str, str, str)
        ``(row, column, value)``: e.g. ``("segment", "parameter", "mean")`` gives a
        segment x parameter table of posterior means. Rows and columns keep the order of
        first appearance; a (row, column) pair present more than once keeps its first value;
        absent pairs are missing (shown as "–").
    missing_label : str, optional
        Label of rows whose ``row`` value is missing or empty (e.g. population-level
        parameters without a segment); default ``"(population)"`` when ``row`` is
        ``"segment"``, else ``"(none)"``.

    Returns
    -------
    DataFrame
        Indexed by ``row`` (shown as the first column by :func:`format_table`).
    """
    if len(pivot) != 3:
        raise ValueError(f"pivot={pivot!r}: expected (row, column, value)")
    row, col, val = pivot
    missing = [c for c in (row, col, val) if c not in df.columns]
    if missing:
        raise ValueError(f"pivot={tuple(pivot)!r}: column(s) {missing} not in the table (columns: {list(df.columns)})")
    label = missing_label or ("(population)" if row == "segment" else "(none)")
    d = df[[row, col, val]].copy()
    keys = d[row].astype(object).where(d[row].notna() & (d[row].astype(str).str.strip() != ""), label)
    d[row] = keys.astype(str)
    d[col] = d[col].astype(str)
    d = d.drop_duplicates([row, col], keep="first")
    wide = d.pivot(index=row, columns=col, values=val)
    wide = wide.reindex(index=list(dict.fromkeys(d[row])), columns=list(dict.fromkeys(d[col])))
    wide.columns.name = None
    wide.index.name = row
    return wide


def describe_table(df: pd.DataFrame) -> pd.DataFrame:
    """A readable summary of numeric columns: one row per column, n / mean / sd / quantiles.

    Parameters
    ----------
    df : DataFrame
        Either data (summarised with ``describe()``), or the result of ``describe()``
        (statistics as rows) or of ``describe().T`` (statistics as columns).

    Returns
    -------
    DataFrame
        Index ``column``; columns ``n``, ``mean``, ``sd``, ``min``, ``25%``, ``median``,
        ``75%``, ``max`` (those present). Non-numeric rows (e.g. a ``first_purchase``
        timestamp row of ``describe().T``) are dropped.
    """
    stats = {"count", "mean", "std", "min", "25%", "50%", "75%", "max"}
    if stats & set(map(str, df.index)) and len(stats & set(map(str, df.index))) >= 3:
        desc = df.T
    elif len(stats & set(map(str, df.columns))) >= 3:
        desc = df
    else:
        num = df.select_dtypes("number")
        desc = num.describe().T
    rows = []
    for name, r in desc.iterrows():
        vals = r.dropna()
        if all(isinstance(v, numbers.Number) and not isinstance(v, bool | np.bool_) for v in vals):
            rows.append(name)
    out = desc.loc[rows].apply(pd.to_numeric, errors="coerce")
    out = out.rename(columns={"count": "n", "std": "sd", "50%": "median"})
    order = [c for c in ("n", "mean", "sd", "min", "25%", "median", "75%", "max") if c in out.columns]
    out = out[order + [c for c in out.columns if c not in order]]
    if "n" in out.columns and out["n"].notna().all():
        out["n"] = out["n"].round().astype("int64")
    out.index = out.index.astype(str)
    out.index.name = "column"
    return out


def table_data(
    df: pd.DataFrame | pd.Series,
    *,
    max_rows: int | None = None,
    index: bool | None = None,
    pivot: Sequence[str] | None = None,
    digits: int = 4,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
) -> dict[str, Any]:
    """The cells of a table as text, ready for the template (see :func:`format_table`).

    Returns
    -------
    dict
        ``columns`` (list of ``{"name", "numeric"}``), ``rows`` (list of lists of
        ``{"text", "numeric"}``), ``n_rows`` (rows before truncation), ``n_hidden``.
    """
    if isinstance(df, pd.Series):
        df = df.to_frame()
    if pivot is not None:
        df = pivot_table(df, pivot)
    if isinstance(df.columns, pd.MultiIndex):
        df = df.copy(deep=False)
        df.columns = [" ".join(str(p) for p in c if str(p) != "") for c in df.columns]
    show_index = _meaningful_index(df) if index is None else bool(index)
    if show_index:
        names = [str(n) if n is not None else "" for n in df.index.names]
        levels = pd.DataFrame({f"__index_{i}": df.index.get_level_values(i) for i in range(df.index.nlevels)})
        df = pd.concat([levels, df.reset_index(drop=True)], axis=1)
        df.columns = names + list(df.columns[len(names) :])
    n_rows = len(df)
    if max_rows is not None and n_rows > max_rows:
        df = df.iloc[:max_rows]
    cols = [str(c) for c in df.columns]
    numeric = [_is_numeric_column(df.iloc[:, j]) for j in range(df.shape[1])]
    columns = [{"name": c, "numeric": n} for c, n in zip(cols, numeric, strict=True)]
    rows = []
    for j in range(df.shape[1]):
        s = df.iloc[:, j]
        fmt = (formats or {}).get(cols[j])
        if fmt is not None:
            texts = [MISSING if _is_missing(v) else fmt(v) for v in s.tolist()]
        elif pd.api.types.is_datetime64_any_dtype(s):
            texts = [_format_time(v) if not _is_missing(v) else MISSING for v in s]
        elif pd.api.types.is_float_dtype(s) and (dec := _column_decimals(s.to_numpy(dtype=float), digits)) is not None:
            texts = [_format_fixed(v, dec, digits) for v in s.tolist()]
        else:
            texts = [format_value(v, digits) for v in s.tolist()]
        rows.append(texts)
    body = [[{"text": rows[j][i], "numeric": numeric[j]} for j in range(len(cols))] for i in range(len(df))]
    return {"columns": columns, "rows": body, "n_rows": n_rows, "n_hidden": max(n_rows - len(df), 0)}


def format_table(
    df: pd.DataFrame | pd.Series,
    *,
    caption: str = "",
    max_rows: int | None = None,
    index: bool | None = None,
    pivot: Sequence[str] | None = None,
    digits: int = 4,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
) -> Markup:
    """An HTML table for people (escaped; numbers formatted; numeric columns right-aligned).

    Parameters
    ----------
    df : DataFrame or Series
    caption : str
        Shown above the table.
    max_rows : int, optional
        Show at most this many rows and say how many more there are.
    index : bool, optional
        None (default): show the index as the first column(s) only when it means something
        (named, or labels / dates such as after a pivot or ``describe().T``); a positional
        integer index is dropped. True: always show it; False: never.
    pivot : (row, column, value), optional
        Reshape a long table first, see :func:`pivot_table`; e.g.
        ``("segment", "parameter", "mean")``.
    digits : int
        Significant digits of floats (see :func:`format_number`).
    formats : mapping of column name to callable, optional
        Per-column formatters (value -> str) replacing the default for those columns,
        e.g. ``{"share": "{:.0%}".format}``; missing values stay "–".

    Returns
    -------
    markupsafe.Markup
        ``<table class="tbl">...</table>`` (wrapped in a scrollable ``div``).
    """
    data = table_data(df, max_rows=max_rows, index=index, pivot=pivot, digits=digits, formats=formats)
    return Markup(TEMPLATES.get_template("table.html.j2").render(table=data, caption=caption))


def markdown_table(df: pd.DataFrame | pd.Series, *, index: bool | None = None, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table, cells formatted as :func:`format_table` formats them
    (numeric columns right-aligned; ``|`` in a cell escaped).

    Parameters
    ----------
    df : DataFrame or Series
    index : bool, optional
        As for :func:`format_table`.
    digits : int
        Significant digits of floats.

    Returns
    -------
    str
    """
    data = table_data(df, index=index, digits=digits)

    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(cell(c["name"]) for c in data["columns"]) + " |"
    rule = "|" + "|".join("---:" if c["numeric"] else ":---" for c in data["columns"]) + "|"
    body = ["| " + " | ".join(cell(v["text"]) for v in row) + " |" for row in data["rows"]]
    return "\n".join([head, rule, *body]) + "\n"
