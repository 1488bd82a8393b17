"""Shared fixtures: the vendored CDNOW data as validated transaction tables (read once per session)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from clvlab.data import load_cdnow  # noqa: E402


@pytest.fixture(scope="session")
def cdnow_sample_tx() -> pd.DataFrame:
    """CDNOW 1/10 sample (2,357 customers), one row per customer-day. Do not mutate: copy first."""
    return load_cdnow(sample=True)


@pytest.fixture(scope="session")
def cdnow_tx() -> pd.DataFrame:
    """Full CDNOW master (23,570 customers), one row per customer-day. Do not mutate: copy first."""
    return load_cdnow(sample=False)
