"""CDNOW loader: published facts of the data set and agreement with the lifetimes summary."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clvlab.data import cdnow_dir, load_cdnow, load_cdnow_with_report, read_cdnow_raw

FIRST, LAST = pd.Timestamp("1997-01-01"), pd.Timestamp("1998-06-30")


def _check_contract(tx: pd.DataFrame) -> None:
    assert list(tx.columns) == ["customer_id", "date", "amount", "n_cds"]
    assert tx["customer_id"].map(type).eq(str).all()
    assert tx["date"].dtype == "datetime64[ns]"
    assert tx["amount"].dtype == "float64" and (tx["amount"] >= 0).all()
    assert not tx.duplicated(["customer_id", "date"]).any()  # one row per customer-day
    assert tx["date"].min() == FIRST and tx["date"].max() == LAST


def test_master_facts(cdnow_tx):
    _check_contract(cdnow_tx)
    assert cdnow_tx["customer_id"].nunique() == 23_570
    assert len(read_cdnow_raw(sample=False)) == 69_659
    # every customer's first purchase is in the first quarter of 1997 (the cohort definition)
    first = cdnow_tx.groupby("customer_id")["date"].min()
    assert first.max() <= pd.Timestamp("1997-03-31")


def test_sample_facts(cdnow_sample_tx, cdnow_tx):
    _check_contract(cdnow_sample_tx)
    assert cdnow_sample_tx["customer_id"].nunique() == 2_357
    assert len(read_cdnow_raw(sample=True)) == 6_919
    # the sample uses master ids: its customers' purchases are exactly theirs in the master file
    ids = set(cdnow_sample_tx["customer_id"])
    assert ids <= set(cdnow_tx["customer_id"])
    from_master = cdnow_tx[cdnow_tx["customer_id"].isin(ids)].reset_index(drop=True)
    pd.testing.assert_frame_equal(from_master, cdnow_sample_tx.reset_index(drop=True))


def test_report_counts_merges():
    raw = read_cdnow_raw(sample=True)
    tx, rep = load_cdnow_with_report(sample=True)
    assert rep.n_input_rows == 6_919 == len(raw)
    n_days = raw.groupby(["customer_id", "date"]).ngroups
    assert rep.n_output_rows == len(tx) == n_days
    assert rep.n_same_day_merged == 6_919 - n_days > 0
    assert rep.n_exact_duplicates == int(raw.drop(columns="sample_id").duplicated().sum())
    assert rep.n_customers == 2_357
    # spend and CDs are conserved by the same-day sum
    assert tx["amount"].sum() == pytest.approx(raw["dollar_value"].sum())
    assert tx["n_cds"].sum() == raw["n_cds"].sum()
    assert rep.n_zero_amount == int((tx["amount"] == 0).sum()) > 0


def test_without_aggregation_keeps_raw_rows():
    tx = load_cdnow(sample=True, aggregate_same_day=False)
    assert len(tx) == 6_919


def test_matches_lifetimes_published_summary(cdnow_sample_tx):
    """39-week calibration RFM (FHL 2005) built from our table equals lifetimes' bundled summary."""
    spec = importlib.util.find_spec("lifetimes")  # locate only: importing lifetimes is slow
    if spec is None or spec.origin is None:
        pytest.skip("lifetimes (dev oracle) not installed")
    summary = pd.read_csv(Path(spec.origin).parent / "datasets" / "cdnow_customers_summary.csv")
    sample_id = read_cdnow_raw(sample=True).drop_duplicates("customer_id").set_index("customer_id")["sample_id"]

    cal = cdnow_sample_tx[cdnow_sample_tx["date"] <= "1997-09-30"]
    g = cal.groupby("customer_id")["date"]
    ours = pd.DataFrame(
        {
            "frequency": g.size() - 1,
            "recency": (g.max() - g.min()).dt.days / 7,
            "T": (pd.Timestamp("1997-09-30") - g.min()).dt.days / 7,
        }
    )
    ours.index = sample_id.loc[ours.index].astype(int).to_numpy()
    ours = ours.sort_index()
    ref = summary.set_index("ID").sort_index()
    assert len(ours) == len(ref) == 2_357
    np.testing.assert_array_equal(ours.index, ref.index)
    np.testing.assert_array_equal(ours["frequency"], ref["frequency"])
    np.testing.assert_allclose(ours["recency"], ref["recency"], atol=0.006)
    np.testing.assert_allclose(ours["T"], ref["T"], atol=0.006)


def test_data_dir_env_override(monkeypatch, tmp_path):
    real = cdnow_dir()
    monkeypatch.setenv("CLVLAB_DATA_DIR", str(real.parent.parent))  # the data/ folder
    assert cdnow_dir() == real
    monkeypatch.setenv("CLVLAB_DATA_DIR", str(real))  # the CDNOW folder itself
    assert cdnow_dir() == real
    monkeypatch.setenv("CLVLAB_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="CLVLAB_DATA_DIR"):
        load_cdnow(sample=True)
