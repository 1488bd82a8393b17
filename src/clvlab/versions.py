"""Package versions and data fingerprints recorded with every run (reproducibility)."""

from __future__ import annotations

import hashlib
import platform
from importlib import metadata

import pandas as pd

TRACKED_PACKAGES = (
    "clvlab",
    "pymc",
    "pytensor",
    "arviz",
    "nutpie",
    "numpy",
    "scipy",
    "pandas",
    "duckdb",
    "lifelines",
    "matplotlib",
    "xarray",
)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def data_hash(df: pd.DataFrame) -> str:
    """SHA-256 of a table's content (values, column names and order; index ignored)."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()
