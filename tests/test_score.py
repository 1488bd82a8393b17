"""`clvlab score` from a transaction log (clvlab.scoring): the run's own feature rules, customers
of segments the run did not fit, and bad input. The run is the session's `clvlab run --quick` of
the main config (weekly cohorts of the CDNOW sample)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from clvlab.cli import main
from clvlab.scoring import SEGMENT_IN_FIT, score_transactions

CALIBRATION_END = "1997-09-30"
NEW = pd.DataFrame({"customer_id": ["new1", "new1", "new2", "new3"],
                    "date": pd.to_datetime(["1997-10-02", "1997-11-20", "1997-10-15", "1997-12-01"]),
                    "amount": [20.0, 35.0, 50.0, 10.0]})  # fmt: skip


N_LOG = 400
"""Customers in the scored log (the first ids of the sample: a customer's scores depend on its own rows only)."""


@pytest.fixture(scope="module")
def log_tx(cdnow_sample_tx):
    ids = sorted(cdnow_sample_tx["customer_id"].unique())[:N_LOG]
    return cdnow_sample_tx.loc[cdnow_sample_tx["customer_id"].isin(ids), ["customer_id", "date", "amount"]]


@pytest.fixture(scope="module")
def log_csv(log_tx, tmp_path_factory):
    path = tmp_path_factory.mktemp("score") / "tx.csv"
    log_tx.to_csv(path, index=False)
    return path


def test_a_log_scored_at_the_calibration_end_gives_the_runs_own_values(quick_run, log_csv, log_tx, tmp_path, capsys):
    run_dir = quick_run[0]
    out = tmp_path / "scores.parquet"
    assert main(["score", "--run", str(run_dir), str(log_csv), "--as-of", CALIBRATION_END, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    later = int((log_tx["date"] > pd.Timestamp(CALIBRATION_END)).sum())
    assert f"scored {N_LOG} customers as of {CALIBRATION_END} (the run's rules: time unit W, cohorts by W" in printed
    assert f"left out {later:,} purchase day(s) after {CALIBRATION_END}" in printed and "did not fit" not in printed
    got = pd.read_parquet(out).set_index("customer_id")
    assert got[SEGMENT_IN_FIT].all()
    ref = pd.read_parquet(run_dir / "clv_customers.parquet").set_index("customer_id").loc[got.index]
    for col in ("clv_mean", "clv_sd", "clv_hdi_low", "clv_hdi_high", "p_alive_mean"):
        np.testing.assert_allclose(got[col].to_numpy(), ref[col].to_numpy(), rtol=1e-12, err_msg=col)
    rfm = pd.read_parquet(run_dir / "rfm.parquet").set_index("customer_id").loc[got.index]
    for col in ("cohort", "frequency", "recency", "T"):  # the run's rules, weekly cohorts
        np.testing.assert_array_equal(got[col].to_numpy(), rfm[col].to_numpy(), err_msg=col)
    # a mean of amounts read back from text: equal to the last bit or two
    np.testing.assert_allclose(got["monetary_value"].to_numpy(), rfm["monetary_value"].to_numpy(), rtol=1e-14)


def test_customers_acquired_after_the_fitted_cohorts_are_valued_by_a_population_draw(quick_run, log_csv, tmp_path):
    run_dir = quick_run[0]
    both = tmp_path / "tx_new.csv"
    pd.concat(
        [pd.read_csv(log_csv, dtype={"customer_id": str}), NEW.assign(date=NEW["date"].dt.strftime("%Y-%m-%d"))]
    ).to_csv(both, index=False)
    s = score_transactions(run_dir, both, as_of="1998-01-31")
    old = score_transactions(run_dir, log_csv, as_of="1998-01-31")
    c = s.customers.set_index("customer_id")
    new_ids = ["new1", "new2", "new3"]
    assert s.n_new_segment_customers == 3 and s.as_of == pd.Timestamp("1998-01-31")
    assert s.new_segments["bgnbd"] == ["1997-W40", "1997-W42", "1997-W49"] == c.loc[new_ids, "cohort"].tolist()
    assert set(s.new_segments["gamma_gamma"]) >= set(s.new_segments["bgnbd"])
    assert c.loc[new_ids, SEGMENT_IN_FIT].eq(False).all() and c.drop(new_ids)[SEGMENT_IN_FIT].all()
    # the customers of fitted segments are valued exactly as without the newcomers
    pd.testing.assert_frame_equal(c.drop(new_ids), old.customers.set_index("customer_id"))
    new = c.loc[new_ids]
    assert np.isfinite(new.filter(like="clv_").to_numpy()).all() and (new["clv_mean"] > 0).all()
    assert ((new["p_alive_hdi_low"] <= new["p_alive_mean"]) & (new["p_alive_mean"] <= 1)).all()
    assert new.loc["new1", "frequency"] == 1 and new.loc["new1", "monetary_value"] == 35.0
    again = score_transactions(run_dir, both, as_of="1998-01-31")  # the population draws come from the run's seed
    pd.testing.assert_frame_equal(again.customers, s.customers)
    text = "\n".join(s.describe())
    assert f"3 of {N_LOG + 3} customers are in 3 segment(s) the run did not fit (cohort: 1997-W40, 1997-W42" in text


def test_the_log_defaults_to_its_last_day(quick_run, log_csv):
    s = score_transactions(quick_run[0], log_csv)
    assert s.as_of == pd.Timestamp("1998-06-30") and not s.excluded.get("transactions_after_observation_end")
    assert s.customers["T"].max() > pd.read_parquet(quick_run[0] / "rfm.parquet")["T"].max()


def _behaviour_run(run_dir, tmp_path):
    """A copy of the run whose record says its models are segmented by behaviour."""
    copy = tmp_path / "run_by_behaviour"
    shutil.copytree(run_dir, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    meta["config"]["features"]["segment"] = "behaviour"
    (copy / "metadata.json").write_text(json.dumps(meta))
    return copy


@pytest.mark.parametrize("case, expected", [
    ("neither", "give a transaction log (a path after the options) or an RFM table (--input), not neither"),
    ("both", "not both"),
    ("as_of_with_rfm", "['--as-of'] apply to a transaction log, not to an RFM table"),
    ("as_of_text", "--as-of 'soon': not a date"),
    ("as_of_early", "--as-of 1990-01-01 is before the log's first purchase (1997-01-01)"),
    ("no_amount", "'amount'"),
    ("other_amount_col", "'spend'"),
    ("behaviour", "segmented by the behavioural clusters"),
    ("missing_log", "transaction log nowhere.csv: no such file"),
])  # fmt: skip
def test_bad_score_input_is_named(case, expected, quick_run, log_csv, tmp_path, capsys):
    run_dir, out = str(quick_run[0]), str(tmp_path / "s.csv")
    no_amount = tmp_path / "no_amount.csv"
    pd.read_csv(log_csv, dtype=str).drop(columns="amount").to_csv(no_amount, index=False)
    argv = {
        "neither": ["--run", run_dir],
        "both": ["--run", run_dir, str(log_csv), "--input", str(log_csv)],
        "as_of_with_rfm": ["--run", run_dir, "--input", str(log_csv), "--as-of", CALIBRATION_END],
        "as_of_text": ["--run", run_dir, str(log_csv), "--as-of", "soon"],
        "as_of_early": ["--run", run_dir, str(log_csv), "--as-of", "1990-01-01"],
        "no_amount": ["--run", run_dir, str(no_amount)],
        "other_amount_col": ["--run", run_dir, str(log_csv), "--amount-col", "spend"],
        "behaviour": ["--run", str(_behaviour_run(quick_run[0], tmp_path)), str(log_csv)]
        if case == "behaviour"
        else [],
        "missing_log": ["--run", run_dir, "nowhere.csv"],
    }[case]
    assert main(["score", *argv, "--out", out]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err, err
    assert not (tmp_path / "s.csv").exists()
