"""The vendored CDNOW data set (Fader, Hardie & Lee 2005) as a validated transaction table.

Files live in ``data/raw/cdnow/`` of the repository (see its README.md). The folder is
found by walking up from this module to the first ancestor that holds
``data/raw/cdnow``; the environment variable ``CLVLAB_DATA_DIR`` overrides that: it
may name the ``data`` folder (holding ``raw/cdnow``) or the CDNOW folder itself.

``load_cdnow`` returns the table only; ``load_cdnow_with_report`` returns
``(table, ValidationReport)``. Columns: ``customer_id`` (the master file's zero-padded
id as str, e.g. ``"00004"``, also for the 1/10 sample, so sample ids are a subset of
master ids), ``date``, ``amount`` (= dollar_value, summed per customer-day) and
``n_cds`` (number of CDs, summed likewise).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from clvlab.data.transactions import ValidationReport, load_transactions
from clvlab.errors import ClvlabInputError

DATA_DIR_ENV = "CLVLAB_DATA_DIR"
MASTER_FILE = "CDNOW_master.txt"
SAMPLE_FILE = "CDNOW_sample.txt"

__all__ = ["DATA_DIR_ENV", "cdnow_dir", "load_cdnow", "load_cdnow_with_report", "read_cdnow_raw"]


def cdnow_dir() -> Path:
    """The folder holding ``CDNOW_master.txt`` and ``CDNOW_sample.txt``."""
    tried: list[str] = []
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        base = Path(env).expanduser()
        for cand in (base / "raw" / "cdnow", base / "cdnow", base):
            if (cand / MASTER_FILE).is_file():
                return cand
            tried.append(str(cand))
        raise FileNotFoundError(
            f"{DATA_DIR_ENV}={env!r} does not hold {MASTER_FILE} (looked in: {', '.join(tried)}); "
            "point it at the data/ folder containing raw/cdnow/ or at the CDNOW folder itself"
        )
    for parent in Path(__file__).resolve().parents:
        cand = parent / "data" / "raw" / "cdnow"
        if (cand / MASTER_FILE).is_file():
            return cand
        tried.append(str(cand))
    raise FileNotFoundError(
        "CDNOW data not found: no ancestor of the clvlab package holds data/raw/cdnow/"
        f"{MASTER_FILE} (an installed, non-editable clvlab has none). Set {DATA_DIR_ENV} to the "
        "repository's data/ folder (or to the folder holding the CDNOW files)."
    )


def read_cdnow_raw(sample: bool = False) -> pd.DataFrame:
    """The raw file as read, one row per line: customer_id (str), [sample_id,] date (str YYYYMMDD),
    n_cds (int), dollar_value (float). No aggregation, no validation."""
    folder = cdnow_dir()
    if sample:
        path, names, header = folder / SAMPLE_FILE, ["customer_id", "sample_id", "date", "n_cds", "dollar_value"], None
    else:
        path, names, header = folder / MASTER_FILE, ["customer_id", "date", "n_cds", "dollar_value"], 0
    dtypes = {"customer_id": str, "sample_id": str, "date": str, "n_cds": "int64", "dollar_value": "float64"}
    return pd.read_csv(
        path,
        sep=r"\s+",
        header=header,
        names=names,
        dtype={k: v for k, v in dtypes.items() if k in names},
    )


def load_cdnow_with_report(
    sample: bool = False, *, aggregate_same_day: bool = True, pseudonymise: bool = False, salt: str | None = None
) -> tuple[pd.DataFrame, ValidationReport]:
    """CDNOW (master, or the 1/10 sample with ``sample=True``) validated like any log,
    with the :class:`ValidationReport` of the merge. ``pseudonymise`` / ``salt``: as
    :func:`~clvlab.data.load_transactions` (ids replaced by a salted HMAC)."""
    raw = read_cdnow_raw(sample)
    frame = raw[["customer_id", "date", "dollar_value", "n_cds"]]
    table, report = load_transactions(
        frame,
        amount_col="dollar_value",
        date_format="%Y%m%d",
        aggregate_same_day=aggregate_same_day,
        sum_cols=("n_cds",),
        pseudonymise=pseudonymise,
        salt=salt,
    )
    report.source = str(cdnow_dir() / (SAMPLE_FILE if sample else MASTER_FILE))
    if report.n_input_rows != len(raw):  # defensive: validation never drops rows
        raise ClvlabInputError(f"CDNOW rows lost: {len(raw)} read, {report.n_input_rows} validated")
    return table, report


def load_cdnow(sample: bool = False, *, aggregate_same_day: bool = True) -> pd.DataFrame:
    """CDNOW as the validated transaction table (see module docstring)."""
    return load_cdnow_with_report(sample, aggregate_same_day=aggregate_same_day)[0]
