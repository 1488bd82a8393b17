"""Transaction logs in (CSV / Parquet / DataFrame) -> the validated transaction table.

The validated table (design.md, "Data contracts") has columns ``customer_id`` (str),
``date`` (datetime64[ns] at midnight), ``amount`` (float64 >= 0), then the segment
columns (str, by their own names) and any ``sum_cols``; one row per customer-day.

Rules, decided here once for every caller:

* Validation collects **every** problem and raises one :class:`ClvlabInputError`;
  each message names the column and shows example rows. Row numbers are *data rows,
  1-based, header excluded* for CSV/Parquet files and *index labels* for DataFrames.
* Timestamps with a time of day are normalised to the day (time-zone aware stamps
  keep their wall-clock day).
* Several rows of one customer on one day are one purchase: spend (and ``sum_cols``)
  summed (``aggregate_same_day=True``, the BTYD convention). Exact duplicate rows are
  *not* treated as entry errors: they are summed like any same-day rows, and counted
  in ``ValidationReport.n_exact_duplicates`` so the user can see them.
  ``n_same_day_merged`` counts every row folded into another one (input rows minus
  output rows), exact duplicates included. With ``aggregate_same_day=False`` every
  row is kept as its own purchase.
* A customer's segment is the value on their first purchase (earliest timestamp,
  ties by input order); customers whose segment changes later are counted per column
  in ``ValidationReport.n_segment_changed``.
* Zero amounts are valid (CDNOW has some) and counted (``n_zero_amount``, output rows).
* Customer ids and segment values become str with surrounding whitespace stripped
  (integral float ids such as ``42.0`` become ``"42"``); CSV cells are read as text,
  so leading zeros survive and ``"NA"`` is a valid id, not a missing value.
* Columns other than the named ones are not carried into the output.
* Nothing is dropped silently: invalid rows make the call fail, merged rows are counted.
"""

from __future__ import annotations

import hmac
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clvlab.errors import ClvlabInputError, column_list

SALT_ENV = "CLVLAB_SALT"
PSEUDONYM_HEX_CHARS = 16
_N_EXAMPLES = 5
_NS_PER_DAY = 86_400 * 10**9

__all__ = [
    "SALT_ENV",
    "ValidationReport",
    "load_transactions",
    "pseudonymise_ids",
    "resolve_salt",
]


@dataclass
class ValidationReport:
    """What validation and same-day aggregation did to a transaction log.

    ``n_same_day_merged`` = rows folded into another row of the same customer-day
    (``n_input_rows - n_output_rows``; includes the exact duplicates).
    ``n_zero_amount`` counts output rows (purchases) with zero spend.
    ``n_segment_changed`` maps each segment column to the number of customers whose
    value differs across their rows (the value at first purchase is kept).
    The pseudonymisation salt is never stored here.
    """

    n_input_rows: int
    n_exact_duplicates: int
    n_same_day_merged: int
    n_output_rows: int
    n_customers: int
    date_min: pd.Timestamp | None
    date_max: pd.Timestamp | None
    n_zero_amount: int
    segment_cols: tuple[str, ...] = ()
    pseudonymised: bool = False
    aggregate_same_day: bool = True
    n_segment_changed: dict[str, int] = field(default_factory=dict)
    source: str = "DataFrame"

    def to_frame(self, readable: bool = False) -> pd.DataFrame:
        """The report as a two-column table.

        Parameters
        ----------
        readable : bool, default False
            False: columns ``item`` (the field names, e.g. ``n_same_day_merged``) and
            ``value`` (raw values; dates as ISO strings), for saving and ``str()``.
            True: columns ``check`` and ``value`` for people, e.g. ("Input rows",
            "69,659"), ("Rows merged into a same-day purchase", "2,795"), ("Dates",
            "1997-01-01 to 1998-06-30"); every value a string (counts with thousands
            separators, "yes" / "no", "none"), in the order a reader checks them.

        Returns
        -------
        DataFrame
        """
        if readable:
            return self._readable_frame()
        rows = []
        for key, value in asdict(self).items():
            if key == "n_segment_changed":
                for col, n in value.items():
                    rows.append((f"n_segment_changed[{col}]", n))
                continue
            if key == "segment_cols":
                value = ", ".join(value) if value else "-"
            if isinstance(value, pd.Timestamp):
                value = value.date().isoformat()
            rows.append((key, value))
        return pd.DataFrame(rows, columns=["item", "value"])

    def _readable_frame(self) -> pd.DataFrame:
        def n(v: int) -> str:
            return f"{int(v):,}"

        def day(ts: pd.Timestamp | None) -> str:
            return "\u2013" if ts is None or pd.isna(ts) else pd.Timestamp(ts).date().isoformat()

        share = f" ({self.n_same_day_merged / self.n_input_rows:.1%} of input rows)" if self.n_input_rows else ""
        rows = [
            ("Source", self.source if self.source == "DataFrame" else Path(str(self.source)).name),
            ("Input rows", n(self.n_input_rows)),
            (
                "Rows merged into a same-day purchase" if self.aggregate_same_day else "Rows merged",
                n(self.n_same_day_merged) + (share if self.n_same_day_merged else ""),
            ),
            ("Exact duplicate rows (counted in the merged rows)", n(self.n_exact_duplicates)),
            ("Purchases (output rows)", n(self.n_output_rows)),
            ("Customers", n(self.n_customers)),
            ("Dates", f"{day(self.date_min)} to {day(self.date_max)}"),
            ("Purchases with zero spend", n(self.n_zero_amount)),
            ("Segment columns", ", ".join(self.segment_cols) if self.segment_cols else "none"),
        ]
        for col, k in self.n_segment_changed.items():
            rows.append((f"Customers whose {col} changed (first value kept)", n(k)))
        rows += [
            ("Same-day rows summed into one purchase", "yes" if self.aggregate_same_day else "no"),
            ("Customer ids pseudonymised", "yes" if self.pseudonymised else "no"),
        ]
        return pd.DataFrame(rows, columns=["check", "value"])

    def __str__(self) -> str:
        frame = self.to_frame()
        width = int(frame["item"].str.len().max())
        lines = [f"{item:<{width}}  {value}" for item, value in frame.itertuples(index=False)]
        return "Transaction validation report\n" + "\n".join(lines)


# --------------------------------------------------------------------------- privacy


def resolve_salt(salt: str | None) -> str:
    """The salt to use: the argument, else the ``CLVLAB_SALT`` environment variable."""
    if salt is None:
        salt = os.environ.get(SALT_ENV)
    if salt is None or salt == "":
        raise ClvlabInputError(
            f"pseudonymise=True needs a salt: pass salt=... or set the environment variable "
            f"{SALT_ENV} (keep it secret and stable, or ids will not match across runs)",
            what="argument",
        )
    return salt


def pseudonymise_ids(ids: pd.Series, salt: str) -> pd.Series:
    """Replace ids by HMAC-SHA256(key=salt, msg=str(id)), hex, truncated to 16 chars.

    Deterministic for a given salt; a different salt gives unrelated pseudonyms.
    Raises if two distinct ids collide (astronomically unlikely at 64 bits).
    """
    if not isinstance(salt, str) or salt == "":
        raise ClvlabInputError("salt must be a non-empty string", what="argument")
    key = salt.encode("utf-8")
    codes, uniques = pd.factorize(ids.astype(str))
    hashed = np.array(
        [hmac.digest(key, u.encode("utf-8"), "sha256").hex()[:PSEUDONYM_HEX_CHARS] for u in uniques],
        dtype=object,
    )
    if len(set(hashed)) != len(uniques):  # pragma: no cover - 2**-64 per pair
        raise RuntimeError("pseudonym collision: use a different salt")
    return pd.Series(hashed[codes], index=ids.index, name=ids.name, dtype=object)


# --------------------------------------------------------------------------- reading


def _read_source(source: Any) -> tuple[pd.DataFrame, str, bool]:
    """Return (raw frame, description, is_file). Files are read with string-typed CSV cells."""
    if isinstance(source, pd.DataFrame):
        return source.copy(), "DataFrame", False
    if not isinstance(source, (str, os.PathLike)):
        raise ClvlabInputError(
            f"source must be a path to a .csv/.parquet file or a pandas DataFrame, got {type(source).__name__}",
            what="transactions",
        )
    path = Path(source)
    if not path.exists():
        raise ClvlabInputError(f"file not found: {path}", what="transactions")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path), str(path), True
        except (OSError, ValueError) as exc:  # pyarrow: 0-byte or corrupt file
            raise ClvlabInputError(f"file {path} is not a readable Parquet file ({exc})", what="transactions") from None
    if ".csv" in suffixes[-2:]:
        if path.stat().st_size == 0:
            raise ClvlabInputError(f"file {path} is empty (no header, no rows)", what="transactions")
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        except pd.errors.EmptyDataError:
            raise ClvlabInputError(f"file {path} is empty (no header, no rows)", what="transactions") from None
        return frame, str(path), True
    raise ClvlabInputError(
        f"cannot tell the format of {path}: expected a .csv (optionally compressed, e.g. .csv.gz) or .parquet suffix",
        what="transactions",
    )


# --------------------------------------------------------------------------- validation helpers


def _is_text(values: pd.Series) -> bool:
    return values.dtype == object or pd.api.types.is_string_dtype(values.dtype)


def _on_uniques(values: pd.Series, fn: Any) -> pd.Series:
    """Apply ``fn`` (Series -> Series) to the distinct non-missing values only, then broadcast.

    Transaction logs repeat ids, dates and segment labels a lot, so this turns per-row
    Python string work into per-distinct-value work. Missing values map to NaN/NaT.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = fn(pd.Series(uniques, dtype=values.dtype if len(uniques) == 0 else None)).to_numpy()
    out = pd.api.extensions.take(mapped, codes, allow_fill=True)
    return pd.Series(out, index=values.index)


def _is_blank(values: pd.Series) -> pd.Series:
    """Missing: NaN/None/NaT, or a string that is empty after stripping."""
    if not _is_text(values):
        return values.isna()
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    empty = pd.Series(uniques, dtype=object).astype(str).str.strip().eq("").to_numpy()
    blank = codes < 0
    blank[~blank] = empty[codes[~blank]]
    return pd.Series(blank, index=values.index)


def _examples(mask: pd.Series, values: pd.Series, row_label: Callable[[int], str]) -> str:
    idx = np.flatnonzero(mask.to_numpy())[:_N_EXAMPLES]
    shown = ", ".join(f"{row_label(int(i))} ({values.iloc[i]!r})" for i in idx)
    more = ", ..." if mask.sum() > len(idx) else ""
    return shown + more


def _id_to_str(values: pd.Series) -> pd.Series:
    """Customer ids / segments as stripped str; integral floats (NaN-holding int columns) lose '.0'."""
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna()
        if len(finite) and np.all(np.mod(finite.to_numpy(), 1) == 0):
            values = values.astype("Int64")
    return _on_uniques(values, lambda u: u.astype(str).str.strip()).astype(object)


def _lexical_rank(uniques: Any) -> np.ndarray:
    """Rank of each distinct id in string order (so output sorts like ``sort_values``)."""
    order = np.argsort(np.asarray(uniques, dtype=str), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def _wall_clock(parsed: pd.Series) -> pd.Series:
    """Naive datetime64[ns] keeping each stamp's wall-clock time (time-zone info dropped)."""
    if pd.api.types.is_datetime64_any_dtype(parsed.dtype):
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_localize(None)
        return parsed.astype("datetime64[ns]")

    # object dtype: mixed UTC offsets; convert value by value
    def naive(x: Any) -> pd.Timestamp:
        if x is None or x is pd.NaT or (isinstance(x, float) and np.isnan(x)):
            return pd.NaT
        ts = pd.Timestamp(x)
        return ts.tz_localize(None) if ts.tzinfo is not None else ts

    return pd.Series([naive(x) for x in parsed], index=parsed.index, dtype="datetime64[ns]")


SLASHED = r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})(?=$|[\sT])"
"""A slashed day/month date at the start of a value (01/02/1997, 1/2/97 14:00)."""


def _slashed_format(parts: pd.DataFrame, col: str) -> str:
    """The one reading of slashed dates that fits the whole column: month-first or day-first.

    ``parts``: the (first, second, year) fields of every slashed value. Refuses a column where
    neither reading fits every value, or where both fit and they differ (e.g. 01/02/1997 alone):
    never some rows one way and some the other.
    """
    first, second = parts[0].astype(int), parts[1].astype(int)
    shown = parts[0] + "/" + parts[1] + "/" + parts[2]
    year_fmt = "%Y" if parts[2].str.len().eq(4).all() else ("%y" if parts[2].str.len().eq(2).all() else None)
    problems = []
    if year_fmt is None:
        problems.append(f"column {col!r}: slashed dates mix 2- and 4-digit years; pass date_format= (e.g. '%d/%m/%Y')")
    month_first = bool(((first >= 1) & (first <= 12) & (second >= 1) & (second <= 31)).all())
    day_first = bool(((second >= 1) & (second <= 12) & (first >= 1) & (first <= 31)).all())
    if month_first and day_first and bool((first != second).any()):
        ex = shown[first != second].unique()[:3].tolist()
        problems.append(f"column {col!r}: slashed dates such as {ex} read both month-first and day-first; pass "
                        "date_format= ('%m/%d/%Y' or '%d/%m/%Y') to say which")  # fmt: skip
    elif not (month_first or day_first):
        mdy = shown[second > 12].unique()[:3].tolist()  # only month-first reads these
        dmy = shown[first > 12].unique()[:3].tolist()  # only day-first reads these
        problems.append(f"column {col!r}: slashed dates fit neither reading throughout: {mdy} are month-first, "
                        f"{dmy} day-first; pass date_format= or fix the file")  # fmt: skip
    if problems:
        raise ClvlabInputError(problems, what="transactions")
    return ("%m/%d/" if month_first else "%d/%m/") + year_fmt


def _parse_dates(values: pd.Series, date_format: str | None, col: str = "date") -> pd.Series:
    """Parse to naive datetime64[ns] (NaT where unparseable); time of day kept here.

    Without ``date_format`` one format is inferred for the column; slashed day/month dates are
    read one way for the whole column (:func:`_slashed_format`), never value by value.
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return _wall_clock(values)

    def parse(u: pd.Series) -> pd.Series:
        text = u.astype(str).str.strip()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # mixed offsets: handled in _wall_clock
            warnings.simplefilter("ignore", UserWarning)  # "could not infer format": retried below
            if date_format is not None:
                return _wall_clock(pd.to_datetime(text, format=date_format, errors="coerce"))
            parts = text.str.extract(SLASHED)
            slashed = parts[0].notna()
            parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
            if slashed.any():
                fmt = _slashed_format(parts[slashed], col)
                day = parts.loc[slashed, 0] + "/" + parts.loc[slashed, 1] + "/" + parts.loc[slashed, 2]
                parsed[slashed] = pd.to_datetime(day, format=fmt, errors="coerce")
            rest = ~slashed
            if rest.any():  # infer one format (fast), then retry the misses value by value
                other = _wall_clock(pd.to_datetime(text[rest], errors="coerce"))
                retry = other.isna()
                if retry.any():
                    other[retry] = _wall_clock(pd.to_datetime(text[rest][retry], format="mixed", errors="coerce"))
                parsed[rest] = other
        return parsed

    return _on_uniques(values, parse).astype("datetime64[ns]")


# --------------------------------------------------------------------------- main entry


def load_transactions(
    source: str | os.PathLike | pd.DataFrame,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    segment_cols: Sequence[str] = (),
    *,
    date_format: str | None = None,
    aggregate_same_day: bool = True,
    pseudonymise: bool = False,
    salt: str | None = None,
    sum_cols: Sequence[str] = (),
) -> tuple[pd.DataFrame, ValidationReport]:
    """Read and validate a transaction log; return (validated table, report).

    ``source``: a ``.csv`` / ``.parquet`` path (format by suffix) or a DataFrame.
    The three named columns are renamed to ``customer_id``, ``date``, ``amount``;
    ``segment_cols`` keep their names. ``sum_cols`` are further numeric columns
    (e.g. a quantity) validated like ``amount`` and summed per customer-day.
    ``date_format`` is a strftime pattern (e.g. ``"%Y%m%d"``); without it pandas
    infers each value's format. ``pseudonymise=True`` replaces ids by
    :func:`pseudonymise_ids` with ``salt`` or ``$CLVLAB_SALT``.

    Parameters
    ----------
    source : path or DataFrame
        A ``.csv`` or ``.parquet`` file, or a table already in memory.
    customer_col, date_col, amount_col : str
        The columns read as customer_id, date and amount.
    segment_cols : sequence of str
        Segment columns kept as they are (acquisition channel, region, ...).
    date_format : str, optional
        strftime pattern of the dates; None lets pandas infer each value's format.
    aggregate_same_day : bool
        Sum a customer's purchases of one day into one row (the RFM definitions count days).
    pseudonymise : bool
        Replace the ids by salted hashes (:func:`pseudonymise_ids`).
    salt : str, optional
        The salt; default ``$CLVLAB_SALT``.
    sum_cols : sequence of str
        Further numeric columns, checked like amount and summed per customer-day.

    Returns
    -------
    (DataFrame, ValidationReport)
        The validated log (customer_id, date, amount, the segment and sum columns) and what
        validation and same-day aggregation did (rows merged, zero amounts, segment changes).

    Raises
    ------
    ClvlabInputError
        One error listing every problem found (missing columns, blank ids, bad dates or
        amounts, with example rows).
    """
    segment_cols = column_list(segment_cols, "segment_cols")
    sum_cols = column_list(sum_cols, "sum_cols")
    if pseudonymise:
        salt = resolve_salt(salt)  # fail before any work

    arg_problems = []
    roles = {"customer_col": customer_col, "date_col": date_col, "amount_col": amount_col}
    named = list(roles.values()) + list(segment_cols) + list(sum_cols)
    dup_names = sorted({c for c in named if named.count(c) > 1})
    if dup_names:
        arg_problems.append(f"column(s) {dup_names} named for more than one role")
    reserved = {"customer_id", "date", "amount"}
    clash = sorted(reserved & set(segment_cols + sum_cols))
    if clash:
        arg_problems.append(f"segment/sum column(s) {clash} clash with the output names {sorted(reserved)}")
    if arg_problems:
        raise ClvlabInputError(arg_problems, what="argument")

    raw, source_desc, is_file = _read_source(source)
    problems: list[str] = []

    missing = [c for c in named if c not in raw.columns]
    if missing:
        problems.append(f"missing column(s) {missing}; columns present: {[str(c) for c in raw.columns]}")
    if len(raw) == 0:
        problems.append(f"{source_desc} has no data rows")
        raise ClvlabInputError(problems, what="transactions")

    if is_file:

        def row_label(pos: int) -> str:
            return f"data row {pos + 1}"

        numbering = "data rows numbered from 1, header excluded"
    else:
        index = raw.index

        def row_label(pos: int) -> str:
            label = index[pos]
            return f"index {label.item() if isinstance(label, np.generic) else label!r}"

        numbering = "rows named by DataFrame index label"
    raw = raw.reset_index(drop=True)

    def present(col: str) -> bool:
        return col in raw.columns

    def column_empty(col: str, blank: pd.Series) -> bool:
        if blank.all():
            problems.append(f"column {col!r} is empty (all {len(raw)} values missing)")
            return True
        return False

    parsed_dates: pd.Series | None = None  # set by the date checks below

    # customer id
    if present(customer_col):
        ids = raw[customer_col]
        blank = _is_blank(ids)
        if not column_empty(customer_col, blank) and blank.any():
            problems.append(
                f"column {customer_col!r} (customer id): {int(blank.sum())} missing/empty id(s), "
                f"e.g. {_examples(blank, ids, row_label)}"
            )

    # dates
    if present(date_col):
        dvals = raw[date_col]
        blank = _is_blank(dvals)
        if not column_empty(date_col, blank):
            if blank.any():
                problems.append(
                    f"column {date_col!r} (date): {int(blank.sum())} missing date(s), "
                    f"e.g. {_examples(blank, dvals, row_label)}"
                )
            parsed_dates = _parse_dates(dvals.where(~blank), date_format, date_col)
            bad = parsed_dates.isna() & ~blank
            if bad.any():
                fmt = f"format {date_format!r}" if date_format else "a recognisable date format"
                problems.append(
                    f"column {date_col!r} (date): {int(bad.sum())} unparseable date(s), expected {fmt}, "
                    f"e.g. {_examples(bad, dvals, row_label)}"
                )

    # amounts and other summed numeric columns
    numeric: dict[str, pd.Series] = {}
    for col, role in [(amount_col, "amount")] + [(c, "summed column") for c in sum_cols]:
        if not present(col):
            continue
        vals = raw[col]
        blank = _is_blank(vals)
        if column_empty(col, blank):
            continue
        if blank.any():
            problems.append(
                f"column {col!r} ({role}): {int(blank.sum())} missing (NaN/empty) value(s), "
                f"e.g. {_examples(blank, vals, row_label)}"
            )
        if pd.api.types.is_bool_dtype(vals.dtype):
            num = pd.Series(np.nan, index=vals.index)
        else:
            if pd.api.types.is_numeric_dtype(vals.dtype):
                num = pd.to_numeric(vals, errors="coerce").astype("float64")
            else:
                num = _on_uniques(
                    vals.where(~blank), lambda u: pd.to_numeric(u.astype(str).str.strip(), errors="coerce")
                ).astype("float64")
        nonnum = num.isna() & ~blank
        if nonnum.any():
            problems.append(
                f"column {col!r} ({role}): {int(nonnum.sum())} non-numeric value(s), "
                f"e.g. {_examples(nonnum, vals, row_label)}"
            )
        infinite = np.isinf(num)
        if infinite.any():
            problems.append(
                f"column {col!r} ({role}): {int(infinite.sum())} infinite value(s), "
                f"e.g. {_examples(infinite, vals, row_label)}"
            )
        negative = num < 0
        if negative.any():
            problems.append(
                f"column {col!r} ({role}): {int(negative.sum())} negative value(s), expected >= 0, "
                f"e.g. {_examples(negative, vals, row_label)}"
            )
        numeric[col] = num

    # segments
    for col in segment_cols:
        if not present(col):
            continue
        blank = _is_blank(raw[col])
        if not column_empty(col, blank) and blank.any():
            problems.append(
                f"column {col!r} (segment): {int(blank.sum())} missing segment value(s), "
                f"e.g. {_examples(blank, raw[col], row_label)}"
            )

    if problems:
        raise ClvlabInputError(problems + [f"({numbering})"], what=f"transactions in {source_desc}")

    # ---------------------------------------------------------------- build the table
    # Work on integer codes (factorised ids / segments, int64 nanoseconds): one lexsort,
    # then block reductions, instead of string sorts and groupbys (3M rows in seconds).
    ids = _id_to_str(raw[customer_col])
    cust_code, cust_uniq = pd.factorize(ids)
    assert parsed_dates is not None  # the date column passed validation
    ts = parsed_dates.to_numpy().view("int64")
    amount = numeric[amount_col].to_numpy()
    seg_codes, seg_uniq = {}, {}
    for col in segment_cols:
        seg_codes[col], seg_uniq[col] = pd.factorize(_id_to_str(raw[col]))
    sums = {}
    for col in sum_cols:
        num = numeric[col].to_numpy()
        sums[col] = num.astype("int64") if np.all(np.mod(num, 1) == 0) else num
    n_input = len(raw)
    n_exact_duplicates = int(
        pd.DataFrame(
            {
                "c": cust_code,
                "t": ts,
                "a": amount,
                **{f"s{i}": v for i, v in enumerate([*seg_codes.values(), *sums.values()])},
            }
        )
        .duplicated()
        .sum()
    )

    cust_rank = _lexical_rank(cust_uniq)[cust_code]
    perm = np.lexsort((np.arange(n_input), ts, cust_rank))  # by id, then time, then input order
    cust_rank, ts, amount = cust_rank[perm], ts[perm], amount[perm]
    cust_start = np.flatnonzero(np.r_[True, cust_rank[1:] != cust_rank[:-1]])
    cust_len = np.diff(np.r_[cust_start, n_input])
    n_segment_changed: dict[str, int] = {}
    for col in segment_cols:
        codes = seg_codes[col][perm]
        changed = np.maximum.reduceat(codes, cust_start) != np.minimum.reduceat(codes, cust_start)
        n_segment_changed[col] = int(changed.sum())
        seg_codes[col] = np.repeat(codes[cust_start], cust_len)  # value at first purchase
    day = (ts // _NS_PER_DAY) * _NS_PER_DAY

    if aggregate_same_day:
        keep = np.flatnonzero(np.r_[True, (cust_rank[1:] != cust_rank[:-1]) | (day[1:] != day[:-1])])
        with np.errstate(over="ignore"):
            amount = np.add.reduceat(amount, keep)
            sums = {col: np.add.reduceat(v[perm], keep) for col, v in sums.items()}
        overflow = {col: ~np.isfinite(v) for col, v in {amount_col: amount, **sums}.items()
                    if v.dtype.kind == "f" and not np.isfinite(v).all()}  # fmt: skip
        if overflow:  # finite rows whose same-day sum is not: never an inf in the table
            raise ClvlabInputError(
                [f"column {col!r}: the same-day sum of {int(bad.sum())} customer-day(s) overflows to infinity "
                 f"(e.g. customer {cust_uniq[cust_code[perm][keep][bad][0]]!r}); values this large are not amounts"
                 for col, bad in overflow.items()], what=f"transactions in {source_desc}")  # fmt: skip
    else:
        keep = np.arange(n_input)
        sums = {col: v[perm] for col, v in sums.items()}
    out = pd.DataFrame(
        {
            "customer_id": np.asarray(cust_uniq, dtype=object)[cust_code[perm][keep]],
            "date": day[keep].view("datetime64[ns]"),
            "amount": amount.astype("float64"),
            **{col: np.asarray(seg_uniq[col], dtype=object)[seg_codes[col][keep]] for col in segment_cols},
            **sums,
        }
    )

    if pseudonymise:
        out["customer_id"] = pseudonymise_ids(out["customer_id"], salt)  # type: ignore[arg-type]
        code, uniq = pd.factorize(out["customer_id"])
        order = np.lexsort((out["date"].to_numpy().view("int64"), _lexical_rank(uniq)[code]))
        out = out.iloc[order].reset_index(drop=True)

    report = ValidationReport(
        n_input_rows=n_input,
        n_exact_duplicates=n_exact_duplicates,
        n_same_day_merged=n_input - len(out),
        n_output_rows=len(out),
        n_customers=len(cust_uniq),
        date_min=out["date"].min(),
        date_max=out["date"].max(),
        n_zero_amount=int((out["amount"] == 0).sum()),
        segment_cols=segment_cols,
        pseudonymised=pseudonymise,
        aggregate_same_day=aggregate_same_day,
        n_segment_changed=n_segment_changed,
        source=source_desc,
    )
    return out, report
