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


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """`clvlab run --quick` on the shipped main config (models/configs/cdnow.yaml), outputs in a
    temporary folder, run once per session. Returns (run_dir, report_dir, log of the run)."""
    import contextlib
    import io
    from pathlib import Path

    from clvlab.cli import main

    root = tmp_path_factory.mktemp("quick_run")
    cfg = Path(__file__).resolve().parents[1] / "models/configs/cdnow.yaml"
    text = (
        cfg.read_text()
        .replace("runs_dir: models/runs", f"runs_dir: {root}/runs")
        .replace("reports_dir: reports", f"reports_dir: {root}/reports")
    )
    assert str(root) in text, "cdnow.yaml's outputs section changed: update this fixture"
    (root / "cdnow.yaml").write_text(text)
    import warnings

    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = main(["run", "--config", str(root / "cdnow.yaml"), "--quick"])
    assert rc == 0, out.getvalue()[-3000:]
    log = out.getvalue() + "".join(f"\nwarning: {w.category.__name__}: {w.message}" for w in caught)
    return root / "runs/cdnow_quick", root / "reports/cdnow_quick", root / "cdnow.yaml", log
