"""One validator for RFM tables, used by every Bayesian model and the CLV engine.

:func:`check_rfm` checks what every consumer of an RFM row needs (columns present, numbers
finite and >= 0, integer frequency, recency <= T, recency 0 without repeats, T > 0, unique
ids, segment values present) and raises one :class:`~clvlab.errors.ClvlabInputError` listing
every problem with example rows. What only one model needs on top (BG/NBD: some repeat
purchase; Gamma-Gamma: repeat customers with spend > 0) stays in that model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from clvlab.errors import ClvlabInputError

__all__ = ["check_rfm", "examples", "RECENCY_TOLERANCE"]

RECENCY_TOLERANCE = 1e-9
"""recency may exceed T by this much (relative and absolute) before it counts as an error:
both are days divided by a unit length, so equal days can differ in the last bits."""


def examples(index: pd.Index, mask: np.ndarray, k: int = 5) -> str:
    """'rows [..] (+n more)' for the rows of ``index`` where ``mask`` holds (error messages)."""
    rows = list(index[np.asarray(mask)][:k])
    more = int(np.sum(mask)) - len(rows)
    return f"rows {rows}" + (f" (+{more} more)" if more > 0 else "")


def check_rfm(
    data: pd.DataFrame,
    *,
    columns: Sequence[str] = ("frequency", "recency", "T"),
    segment: str | Sequence[str] | None = None,
    numeric: Sequence[str] = (),
    rules: Callable[[pd.DataFrame], list[str]] | None = None,
    what: str = "RFM data",
) -> pd.DataFrame:
    """Check an RFM table and return a clean copy of the columns a consumer needs.

    Parameters
    ----------
    data : DataFrame
        One row per customer with ``customer_id`` and the RFM columns.
    columns : sequence of str
        RFM columns required, a subset of frequency, recency, T, monetary_value (the rules for
        recency and T apply when both are present).
    segment : str or sequence of str, optional
        Segment column(s): must be present and not missing; returned as str.
    numeric : sequence of str
        Further numeric columns (covariates): finite numbers, any sign.
    rules : callable, optional
        A consumer's own checks (e.g. a model's fit rules): called on the table with its numbers
        cast to float, returns problem messages that are reported with the others.
    what : str
        Name of the input in the error message.

    Returns
    -------
    DataFrame
        ``customer_id`` (str), the RFM and numeric columns as float, the segment columns as
        str, in that order, with a fresh RangeIndex (row numbers of ``data``'s order).

    Raises
    ------
    ClvlabInputError
        Listing every problem: missing columns, non-numeric dtypes, NaN / inf, negative values,
        fractional frequency, recency > T, recency > 0 without repeats, T <= 0, duplicate ids,
        missing segment values.
    """
    if not isinstance(data, pd.DataFrame):
        raise ClvlabInputError(f"expected a pandas DataFrame (RFM table), got {type(data).__name__}", what=what)
    segs = [segment] if isinstance(segment, str) else [s for s in (segment or ()) if s]
    rfm_cols, extra = list(columns), list(numeric)
    needed = list(dict.fromkeys(["customer_id", *rfm_cols, *extra, *segs]))
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise ClvlabInputError([f"missing column {c!r} (columns: {list(data.columns)})" for c in missing], what=what)
    df = data[needed].copy().reset_index(drop=True)
    num = list(dict.fromkeys([*rfm_cols, *extra]))
    problems = [f"column {c!r}: expected numbers, got dtype {df[c].dtype}"
                for c in num if not pd.api.types.is_numeric_dtype(df[c])]  # fmt: skip
    if problems:
        raise ClvlabInputError(problems, what=what)
    for c in num:
        df[c] = df[c].astype(float)
    for c in ["customer_id", *num]:
        nan = df[c].isna().to_numpy()
        if nan.any():
            problems.append(f"column {c!r}: {int(nan.sum())} missing value(s) (NaN), {examples(df.index, nan)}")
    for c in num:
        inf = np.isinf(df[c].to_numpy())
        if inf.any():
            problems.append(f"column {c!r}: {int(inf.sum())} infinite value(s), {examples(df.index, inf)}")
    for c in rfm_cols:
        neg = (df[c] < 0).to_numpy()
        if neg.any():
            kind = "spend value(s)" if c == "monetary_value" else "value(s)"
            problems.append(f"column {c!r}: {int(neg.sum())} negative {kind}, expected >= 0, {examples(df.index, neg)}")
    if "frequency" in df:
        x = df["frequency"].to_numpy()
        frac = np.isfinite(x) & (x != np.round(x))
        if frac.any():
            problems.append(f"column 'frequency': non-integer counts, {examples(df.index, frac)}")
    if "recency" in df and "T" in df:
        tx, T = df["recency"].to_numpy(), df["T"].to_numpy()
        over = tx > T * (1 + RECENCY_TOLERANCE) + RECENCY_TOLERANCE
        if over.any():
            problems.append(f"column 'recency': recency > T in {int(over.sum())} row(s), expected recency <= T, "
                            f"{examples(df.index, over)}")  # fmt: skip
        if "frequency" in df:
            zero_pos = (df["frequency"].to_numpy() == 0) & (tx > 0)
            if zero_pos.any():
                problems.append("column 'recency': > 0 while frequency == 0 (recency must be 0 without repeat "
                                f"purchases), {examples(df.index, zero_pos)}")  # fmt: skip
    if "T" in df:
        not_pos = (df["T"] <= 0).to_numpy()
        if not_pos.any():
            problems.append(f"column 'T': T must be > 0 (customer observed for no time), {examples(df.index, not_pos)}")
    dup = df["customer_id"].duplicated(keep=False).to_numpy()
    if dup.any():
        problems.append(f"column 'customer_id': duplicated ids, {examples(df.index, dup)}")
    for s in segs:
        miss = (df[s].isna() | (df[s].astype(str).str.strip() == "")).to_numpy()
        if miss.any():
            problems.append(f"column {s!r}: {int(miss.sum())} missing segment value(s), {examples(df.index, miss)}")
    if rules is not None:
        problems += rules(df)
    if problems:
        raise ClvlabInputError(problems, what=what)
    df["customer_id"] = df["customer_id"].astype(str)
    for s in segs:
        df[s] = df[s].astype(str)
    return df
