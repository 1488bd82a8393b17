"""The run report in a real browser: headless Chromium (Debian's chromium + chromium-driver) via selenium.

Skips with the reason when selenium, chromium or chromedriver is missing -- except when
``CI=true``, where it fails (CI must run it; .ci/run installs the browser). Screenshots go to
the test's tmp folder, or to ``$CLVLAB_SCREENSHOT_DIR`` to keep them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser_util import BrowserUnavailable, browser_paths, check_report_in_browser, require_browser, screenshot_path

from clvlab.features import calibration_holdout, rfm_scores
from clvlab.features.cohorts import cohorts, interpurchase_times
from clvlab.plots.rfm import plot_cohort_sizes, plot_interpurchase_times, plot_rfm_segments
from clvlab.report import STANDALONE_NAME, Badge, Headline, Report, describe_table

HEADLINE_TEXTS = ["2,357", "$22.1k", "94% HDI $20.9k \u2013 $23.4k", "1,507 predicted"]


def build_report(directory: Path, tx: pd.DataFrame) -> Report:
    """A realistic report from the public API: cards, badges, tables, three figures, footer."""
    rfm = calibration_holdout(tx, "1997-09-30", "1998-06-30", time_unit="W", cohort_freq="M")
    rep = Report(
        title="clvlab run: cdnow_sample",
        directory=directory,
        subtitle="CDNOW_sample.txt \u00b7 calibration 1997-01-01 to 1997-09-30 \u00b7 seed 1",
    )
    rep.set_headline(
        [
            Headline("Customers", "2,357", detail="1,050 repeat buyers in calibration (to 1997-09-30)"),
            Headline(
                "Holdout repeat purchases (39 weeks)",
                "1,507 predicted",
                interval="94% HDI 1,420 \u2013 1,601",
                detail="actual 1,882 (\u221219.9%)",
            ),
            Headline(
                "Total CLV, next 12 months",
                "$22.1k",
                interval="94% HDI $20.9k \u2013 $23.4k",
                detail="margin 30%, discount 1.0% a month",
            ),
            Headline("Churn ROC AUC (holdout)", "0.750", detail="BG/NBD P(no purchase); Cox P(lapse) 0.672"),
        ]
    )
    rep.add_badge(
        Badge(
            "BG/NBD sampler",
            "pass",
            "max R-hat 1.002 (r[1997-02]), min bulk ESS 2,595 (a[1997-01]), "
            "0 divergences, min BFMI 0.95; 4 x 1,000 draws",
        )
    )
    rep.add_badge(Badge("Gamma-Gamma sampler", "warn", "min tail ESS 380 (q[1997-03]) < 400; 0 divergences"))
    rep.add_text(
        "Data",
        "6,696 purchase days of 2,357 customers after validation (several transactions of a "
        "customer on one day count as one purchase).",
    )
    _, vr = _validation(tx)
    rep.add_table("Data", vr.to_frame(readable=True), caption="Validation report")
    rep.add_table(
        "Customers", describe_table(rfm.describe().T), caption="RFM summary of the calibration period (weeks)"
    )
    rep.add_figure("Customers", plot_rfm_segments(rfm_scores(rfm)), "rfm_segments", caption="RFM-score segments")
    sizes = cohorts(tx, "W", observation_end="1997-09-30").sizes
    rep.add_figure("Customers", plot_cohort_sizes(sizes, freq="W"), "cohort_sizes", caption="Acquisition cohorts")
    rep.add_figure(
        "Customers",
        plot_interpurchase_times(interpurchase_times(tx)),
        "interpurchase_times",
        caption="Days between consecutive purchases",
    )
    rng = np.random.default_rng(0)
    summary = pd.DataFrame([(p, s, m * (1 + 0.1 * rng.standard_normal())) for p, m in
                            (("r", 0.24), ("alpha", 4.4), ("a", 0.79), ("b", 2.4)) for s in ("1997-01", "1997-02", "1997-03")],
                           columns=["parameter", "segment", "mean"])  # fmt: skip
    rep.add_note("Purchase model (BG/NBD)", "MAP-shaped example numbers: this report is a browser-test fixture.")
    rep.add_table(
        "Purchase model (BG/NBD)",
        summary,
        pivot=("segment", "parameter", "mean"),
        caption="Segment parameters: posterior mean",
    )
    rep.set_footer(
        config_yaml="name: cdnow_sample\nseed: 1\nfeatures:\n  time_unit: W\n",
        data_hash="sha256:" + "ab" * 32,
        versions={"clvlab": "0.1.0", "pymc": "5.x", "pandas": pd.__version__},
        timings={"data": 0.4, "features": 1.2, "bgnbd": 30.5, "total": 32.1},
    )
    return rep


def _validation(tx: pd.DataFrame):
    from clvlab.data import load_transactions

    return load_transactions(tx[["customer_id", "date", "amount"]])


@pytest.fixture(scope="module")
def browser():
    return require_browser()


@pytest.mark.slow
@pytest.mark.parametrize("self_contained", [False, True], ids=["linked", "self_contained"])
def test_report_renders_in_chromium(browser, tmp_path, cdnow_sample_tx, self_contained):
    rep = build_report(tmp_path / "report", cdnow_sample_tx)
    path = rep.write(self_contained=self_contained)
    assert path.name == (STANDALONE_NAME if self_contained else "index.html")
    if self_contained:  # the standalone file must work on its own: move it away from the figures
        lone = tmp_path / "mail" / path.name
        lone.parent.mkdir()
        path.rename(lone)
        path = lone
    name = f"report_first_screen_{'standalone' if self_contained else 'linked'}.png"
    shot = screenshot_path(tmp_path, name)
    full = shot.with_name(shot.stem + "_full.png")
    result = check_report_in_browser(path, HEADLINE_TEXTS + ["BG/NBD sampler", "PASS", "WARN"], shot,
                                     full_page_path=full)  # fmt: skip
    assert result["problems"] == []
    assert len(result["images"]) == 3 and all(i["naturalWidth"] > 0 for i in result["images"])
    assert all(i["src"].startswith("data:image/png;base64,") == self_contained for i in result["images"])
    assert result["console_errors"] == []
    assert [t["href"] for t in result["toc"]] == [f"#{s}" for s in result["sections"]] + ["#run-details"]
    assert result["scripts"] == 0
    assert shot.stat().st_size > 10_000 and full.stat().st_size > shot.stat().st_size


@pytest.mark.slow
def test_browser_check_reports_broken_images(browser, tmp_path, cdnow_sample_tx):
    rep = build_report(tmp_path / "report", cdnow_sample_tx)
    index = rep.write()
    (tmp_path / "report" / "cohort_sizes.png").unlink()
    result = check_report_in_browser(index, ["not on this page"], strict=False)
    assert any("cohort_sizes.png" in p for p in result["problems"])
    assert any("not on this page" in p for p in result["problems"])
    assert result["console_errors"]  # the failed load is a SEVERE console entry
    with pytest.raises(AssertionError, match="image not loaded"):
        check_report_in_browser(index)


def test_missing_browser_skips_locally_and_fails_on_ci(monkeypatch, tmp_path):
    monkeypatch.setenv("CLVLAB_CHROMEDRIVER", str(tmp_path / "no-such-chromedriver"))
    with pytest.raises(BrowserUnavailable, match="chromedriver"):
        browser_paths()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="chromium-driver"):
        require_browser()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser test"):
        require_browser()
