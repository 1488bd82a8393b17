"""The report of a real run (`clvlab run --quick` on the main config), opened in headless
Chromium: every image loads, no console error, and the first screen shows the run's numbers —
the same numbers as the tables in the run folder."""

from __future__ import annotations

import pandas as pd
import pytest
from browser_util import check_report_in_browser, require_browser, screenshot_path

from clvlab.report import format_compact, format_number


@pytest.mark.slow
def test_run_report_in_a_real_browser(quick_run, tmp_path):
    require_browser()
    run_dir, report_dir, _, _ = quick_run
    rfm = pd.read_parquet(run_dir / "rfm.parquet")
    total = pd.read_csv(run_dir / "clv_by_all.csv").iloc[0]
    churn = pd.read_csv(run_dir / "churn_comparison.csv")
    auc = churn[churn["segment"] == "all"]["auc"].max()
    by_cohort = pd.read_csv(run_dir / "clv_by_cohort.csv", dtype={"cohort": str}).sort_values("mean_mean")
    best, worst = by_cohort.iloc[-1], by_cohort.iloc[0]
    expected = [
        format_number(len(rfm)),                                  # customers
        f"actual {format_number(rfm['frequency_holdout'].sum())}",  # holdout repeat purchases
        format_compact(total["total_mean"], "$"),                 # total CLV over the horizon
        f"{format_compact(total['total_hdi_low'], '$')} – {format_compact(total['total_hdi_high'], '$')}",
        f"{auc:.3f}",                                             # best churn AUC
        f"{best['cohort']}: ${best['mean_mean']:,.2f}", f"{worst['cohort']}: ${worst['mean_mean']:,.2f}",
        "BG/NBD sampler", "Gamma-Gamma sampler", "Run details",
    ]  # fmt: skip
    for name in ("index.html", "report_standalone.html"):
        shot = screenshot_path(tmp_path, f"run_report_{name.split('.')[0]}.png")
        result = check_report_in_browser(report_dir / name, expected, shot)
        assert not result["problems"], result["problems"]
        assert len(result["images"]) == len(list(report_dir.glob("*.png"))) >= 14 and all(
            w > 0 for w in (i["naturalWidth"] for i in result["images"])
        )
        assert shot.stat().st_size > 20_000
