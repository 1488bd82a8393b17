"""The `clvlab` command line: rfm on a real log, clear errors with exit code 2, config checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clvlab.cli import main
from clvlab.config import load_config
from clvlab.errors import ClvlabInputError
from clvlab.features import calibration_holdout


def test_rfm_command_writes_table_and_prints_summary(cdnow_sample_tx, tmp_path, capsys):
    log = tmp_path / "tx.csv"
    cdnow_sample_tx.rename(columns={"customer_id": "cust", "amount": "spend"}).to_csv(log, index=False)
    out = tmp_path / "rfm.parquet"
    rc = main(
        [
            "rfm",
            "--input",
            str(log),
            "--customer-col",
            "cust",
            "--amount-col",
            "spend",
            "--calibration-end",
            "1997-09-30",
            "--observation-end",
            "1998-06-30",
            "--time-unit",
            "W",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "2,357" in printed and "1997-01-01 .. 1998-06-30" in printed
    got = pd.read_parquet(out)
    expected = calibration_holdout(cdnow_sample_tx, "1997-09-30", "1998-06-30", time_unit="W")
    pd.testing.assert_frame_equal(
        got[["customer_id", "frequency", "recency", "T"]], expected[["customer_id", "frequency", "recency", "T"]]
    )
    assert not list(tmp_path.glob(".*.tmp")), "atomic write left a temporary file"


def test_rfm_command_bad_input_exits_2_naming_column(tmp_path, capsys):
    log = tmp_path / "tx.csv"
    log.write_text("customer_id,date,amount\n1,2020-01-01,5\n2,not-a-date,-3\n")
    rc = main(
        [
            "rfm",
            "--input",
            str(log),
            "--calibration-end",
            "2020-06-30",
            "--observation-end",
            "2020-12-31",
            "--out",
            str(tmp_path / "rfm.parquet"),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "date" in err and "amount" in err
    assert not (tmp_path / "rfm.parquet").exists()


def test_config_rejects_unknown_keys_and_bad_choices():
    with pytest.raises(ClvlabInputError) as exc:
        load_config({"name": "x", "purchase": {"pooling": "sometimes", "chain": 2, "model": "bgnbd2"}, "extra": 1,
                     "bgnbd": {}})  # fmt: skip
    msg = str(exc.value)
    assert "chain" in msg and "sometimes" in msg and "extra" in msg and "bgnbd2" in msg
    assert "config.bgnbd: unknown key: renamed to purchase" in msg


def test_shipped_configs_load():
    for name in ("cdnow",):
        cfg = load_config(Path(__file__).resolve().parents[1] / f"models/configs/{name}.yaml")
        assert cfg.name == name and cfg.features.time_unit == "W" and cfg.clv.period == "M"


@pytest.mark.slow
def test_quick_run_end_to_end(quick_run):
    """`clvlab run --quick` on the main config writes the run folder, tables, figures and report."""
    import json

    run_dir, report_dir, _, log = quick_run
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert set(meta["timings"]) >= {"data", "features", "purchase", "spend", "clv", "churn", "report", "total"}
    # quick mode: recorded, the CDNOW sample, the quick sampler settings, its own run folder
    assert meta["quick"] is True and meta["config"]["name"] == "cdnow_quick"
    assert meta["config"]["data"]["source"] == "cdnow_sample" and meta["config"]["purchase"]["draws"] == 1000
    compared = {f"{m}_{k}": False for m in ("mbgnbd", "pareto_nbd") for k in ("pooled", "mle")}
    assert meta["cached_fits"] == {"bgnbd": False, "bgnbd_pooled": False, "bgnbd_unpooled": False, "gamma_gamma": False,
                                   "bgnbd_mle": False, "nbd_pooled": False, **compared}  # fmt: skip
    assert meta["data"]["customers"] == 2357 and len(meta["data"]["hash"]) == 64
    assert (run_dir / "bgnbd/posterior.nc").exists() and (run_dir / "gamma_gamma/posterior.nc").exists()
    clv = pd.read_parquet(run_dir / "clv_customers.parquet")
    assert len(clv) == 2357 and (clv["clv_mean"] >= 0).all()
    churn = pd.read_csv(run_dir / "churn_comparison.csv")
    overall = churn[churn["segment"] == "all"].set_index("score")["auc"]
    # P(no purchase in holdout) must beat chance clearly; 1 - P(alive) is known to rank backwards here
    assert overall["BG/NBD P(no purchase in holdout)"] > 0.7
    # behavioural segments: k chosen from the configured range, every customer labelled, CLV by segment
    sel = pd.read_csv(run_dir / "behaviour_selection.csv")
    assert list(sel["k"]) == list(range(3, 9)) and sel["chosen"].sum() == 1
    prof = pd.read_csv(run_dir / "behaviour_profile.csv")
    assert prof["customers"].sum() == 2357 and len(prof) == int(sel.loc[sel["chosen"], "k"].iloc[0])
    assert prof["clv_share"].sum() == pytest.approx(1.0) and prof["clv_mean"].is_monotonic_increasing
    assert set(clv["behaviour"]) == set(prof["behaviour"])
    for name in ("behaviour_k_selection", "behaviour_centres", "clv_by_behaviour"):
        assert (report_dir / f"{name}.png").stat().st_size > 10_000
    assert "Behavioural segments" in (report_dir / "index.html").read_text()
    for name in ("bgnbd_p_alive_heatmap", "churn_roc", "clv_by_cohort", "km_by_segment"):
        assert (report_dir / f"{name}.png").stat().st_size > 10_000 and (report_dir / f"{name}.svg").exists()
    assert "BG/NBD" in (report_dir / "index.html").read_text()
    assert (report_dir / "report_standalone.html").stat().st_size > (report_dir / "index.html").stat().st_size
    assert "stage timings:" in log
    assert "sampler diagnostics" not in log  # quick mode samples clean (no ConvergenceWarning)


@pytest.mark.slow
def test_rerun_is_up_to_date_and_a_changed_setting_reuses_every_fit(quick_run):
    """Unchanged: nothing is recomputed. A changed CLV margin: every fit comes from the cache and
    CLV (linear in the margin) scales exactly."""
    import contextlib
    import io
    import json

    run_dir, _, cfg, _ = quick_run
    before = pd.read_parquet(run_dir / "clv_by_all.parquet")
    stamp = (run_dir / "clv_by_all.parquet").stat().st_mtime_ns
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["run", "--config", str(cfg), "--quick"]) == 0
    assert "nothing changed since the last run" in out.getvalue()
    assert (run_dir / "clv_by_all.parquet").stat().st_mtime_ns == stamp

    text = cfg.read_text()
    assert "margin: 0.3" in text
    changed = cfg.with_name("cdnow_margin.yaml")
    # the models pool by cohort: a different behavioural segmentation must not touch their fits
    assert "k_range: [3, 8]" in text
    changed.write_text(text.replace("margin: 0.3", "margin: 0.6").replace("k_range: [3, 8]", "k_range: [4, 5]"))
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["run", "--config", str(changed), "--quick"]) == 0
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert set(meta["cached_fits"].values()) == {True}, meta["cached_fits"]
    assert out.getvalue().count("cached fit reused") == len(meta["cached_fits"]) == 10
    after = pd.read_parquet(run_dir / "clv_by_all.parquet")
    np.testing.assert_allclose(after["total_mean"], 2.0 * before["total_mean"], rtol=1e-12)
    assert set(pd.read_csv(run_dir / "behaviour_selection.csv")["k"]) == {4, 5}
