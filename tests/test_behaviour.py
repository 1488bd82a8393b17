"""Behavioural segments: the DuckDB early-behaviour features against pandas counts, K-means with
k chosen by silhouette / stability recovering known clusters, the profile against brute force,
bad input, and the label as the segment of a hierarchical model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvlab.errors import ClvlabInputError
from clvlab.features import BehaviouralSegments, behaviour_matrix, calibration_holdout, early_behaviour


def _log() -> pd.DataFrame:
    rows = [  # customer, date, amount
        ("a", "2020-01-01", 10.0),
        ("a", "2020-01-01", 5.0),  # one purchase day: 15
        ("a", "2020-01-31", 20.0),
        ("a", "2020-03-31", 7.0),  # day 30 and day 90: both early
        ("a", "2020-04-01", 8.0),  # day 91: not early
        ("b", "2020-02-01", 40.0),  # one-off
        ("c", "2020-06-01", 12.0),
        ("c", "2020-06-10", 3.0),  # acquired 29 days before the end
        ("c", "2020-07-15", 99.0),  # after the calibration end: never read
        ("d", "2020-03-01", 0.0),
        ("d", "2020-03-02", 1.0),
    ]
    df = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    df["date"] = pd.to_datetime(df["date"])
    return df


def _brute_force(tx: pd.DataFrame, end: str, early_days: int) -> pd.DataFrame:
    tx = tx[tx["date"] <= pd.Timestamp(end)]
    days = tx.groupby(["customer_id", "date"], as_index=False)["amount"].sum()
    out = []
    for cid, g in days.groupby("customer_id"):
        g = g.sort_values("date")
        first = g["date"].iloc[0]
        since = (g["date"] - first).dt.days
        out.append(dict(customer_id=cid, first_amount=g["amount"].iloc[0],
                        early_purchases=int(((since > 0) & (since <= early_days)).sum()),
                        early_window_days=min(early_days, (pd.Timestamp(end) - first).days),
                        revenue=g["amount"].sum()))  # fmt: skip
    return pd.DataFrame(out)


def test_early_behaviour_equals_pandas_counts():
    tx = _log()
    got = early_behaviour(tx, "2020-06-30", early_days=90)
    pd.testing.assert_frame_equal(got, _brute_force(tx, "2020-06-30", 90), check_dtype=False)
    a = got.set_index("customer_id").loc["a"]
    assert a["first_amount"] == 15.0 and a["early_purchases"] == 2 and a["revenue"] == 50.0
    assert got.set_index("customer_id").loc["c", "early_window_days"] == 29  # a censored window, not scaled up
    shorter = early_behaviour(tx, "2020-06-30", early_days=30)
    pd.testing.assert_frame_equal(shorter, _brute_force(tx, "2020-06-30", 30), check_dtype=False)


def test_behaviour_matrix_is_log1p_of_the_features():
    tx = _log()
    rfm = calibration_holdout(tx, "2020-06-30", "2020-09-30", time_unit="D")
    early = early_behaviour(tx, "2020-06-30")
    m = behaviour_matrix(rfm, early)
    r = rfm.set_index("customer_id")
    np.testing.assert_allclose(m["frequency"], np.log1p(r["frequency"]))
    np.testing.assert_allclose(m["gap"], np.log1p(r["T"] - r["recency"]))
    np.testing.assert_allclose(m["monetary_value"], np.log1p(r["monetary_value"]))
    np.testing.assert_allclose(m["first_amount"], np.log1p(early.set_index("customer_id").loc[m.index, "first_amount"]))
    assert list(m.index) == list(rfm["customer_id"])
    only_rfm = behaviour_matrix(rfm, None, features=["frequency", "gap"])
    assert list(only_rfm.columns) == ["frequency", "gap"]


def test_behaviour_matrix_errors_name_every_problem():
    tx = _log()
    rfm = calibration_holdout(tx, "2020-06-30", "2020-09-30", time_unit="D")
    with pytest.raises(ClvlabInputError) as e:
        behaviour_matrix(rfm.drop(columns="T"), None, features=["frequency", "loyalty", "frequency", "first_amount"])
    msg = str(e.value)
    assert "'loyalty'" in msg and "repeats" in msg and "'T'" in msg and "early-behaviour table" in msg
    with pytest.raises(ClvlabInputError, match="lacks 1 customer"):
        behaviour_matrix(rfm, early_behaviour(tx, "2020-06-30").iloc[1:])
    with pytest.raises(ClvlabInputError, match="early_days=0"):
        early_behaviour(tx, "2020-06-30", early_days=0)


def _blobs(k: int = 4, n: int = 600, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """k well-separated Gaussian clusters (centres 8 sd apart) in 3 features, unequal sizes."""
    rng = np.random.default_rng(seed)
    sizes = rng.multinomial(n - 40 * k, np.full(k, 1 / k)) + 40
    centres = np.array([[0, 0, 0], [8, 0, 0], [0, 8, 0], [8, 8, 8], [0, 0, 8], [8, 0, 8]], float)[:k]
    x = np.vstack([c + rng.standard_normal((s, 3)) for c, s in zip(centres, sizes, strict=True)])
    truth = np.repeat(np.arange(k), sizes)
    idx = pd.Index([f"c{i:04d}" for i in range(len(x))], name="customer_id")
    return pd.DataFrame(x, index=idx, columns=["frequency", "monetary_value", "first_amount"]), truth


@pytest.mark.parametrize("k_true", [3, 4, 5])
def test_k_and_clusters_are_recovered(k_true):
    """Deterministic (seeded); with centres 8 sd apart a wrong k or a misassigned point would take
    a ~4 sd excursion, P < 1e-4 per point, so the chance this fails for a correct implementation
    over the 600 points is < 0.1."""
    from sklearn.metrics import adjusted_rand_score

    x, truth = _blobs(k_true)
    seg = BehaviouralSegments(k_range=(2, 7), stability_replicates=5, seed=1).fit(x)
    assert seg.k_ == k_true, seg.selection_
    assert seg.selection_.set_index("k").loc[k_true, "stability"] > 0.99
    assert adjusted_rand_score(truth, seg.labels_.to_numpy()) == 1.0
    assert list(seg.selection_["k"]) == list(range(2, 8)) and seg.selection_["chosen"].sum() == 1
    # every customer gets the label of its nearest centre, and predict agrees with fit
    pd.testing.assert_series_equal(seg.predict(x), seg.labels_)


def test_same_seed_same_segments_and_labels_run_from_least_to_most_engaged():
    x, _ = _blobs(4)
    a = BehaviouralSegments(k=4, stability_replicates=3, seed=5).fit(x)
    b = BehaviouralSegments(k=4, stability_replicates=3, seed=5).fit(x)
    pd.testing.assert_series_equal(a.labels_, b.labels_)
    pd.testing.assert_frame_equal(a.selection_, b.selection_)
    engagement = a.centres_.mean(axis=1)  # no gap feature here: the plain mean of the centre
    assert list(a.centres_.index) == ["B1", "B2", "B3", "B4"] and engagement.is_monotonic_increasing
    assert a.descriptions_["B4"].startswith("frequent")  # the (8, 8, 8) blob: high on every feature
    means = np.expm1(x).groupby(a.labels_).mean()
    pd.testing.assert_frame_equal(a.feature_means_, means.rename_axis("behaviour"), check_names=False)


def test_profile_equals_brute_force():
    rng = np.random.default_rng(0)
    n = 300
    rfm = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "frequency": rng.poisson(1.0, n).astype(float),
                        "T": rng.uniform(20, 40, n)})  # fmt: skip
    rfm["recency"] = rfm["T"] * rng.uniform(0, 1, n) * (rfm["frequency"] > 0)
    rfm["monetary_value"] = np.where(rfm["frequency"] > 0, rng.gamma(3, 10, n), 0.0)
    rfm["frequency_holdout"] = rng.poisson(0.5, n).astype(float)
    rfm["monetary_value_holdout"] = np.where(rfm["frequency_holdout"] > 0, rng.gamma(3, 10, n), 0.0)
    early = pd.DataFrame({"customer_id": rfm["customer_id"], "first_amount": rng.gamma(2, 20, n),
                          "early_purchases": rng.poisson(0.3, n), "revenue": rng.gamma(2, 50, n)})  # fmt: skip
    x = behaviour_matrix(rfm, early)
    seg = BehaviouralSegments(k=3, stability_replicates=2, seed=0).fit(x)
    prof = seg.profile(rfm, early).set_index("behaviour")
    lab = seg.labels_.reindex(rfm["customer_id"]).to_numpy()
    for s in seg.segments_:
        m = lab == s
        r = rfm[m]
        assert prof.loc[s, "customers"] == m.sum()
        assert prof.loc[s, "share"] == pytest.approx(m.mean())
        assert prof.loc[s, "repeat_rate"] == pytest.approx((r["frequency"] > 0).mean())
        assert prof.loc[s, "frequency"] == pytest.approx(r["frequency"].mean())
        assert prof.loc[s, "gap"] == pytest.approx((r["T"] - r["recency"]).mean())
        rep = r[r["frequency"] > 0]
        assert prof.loc[s, "monetary_value"] == pytest.approx(rep["monetary_value"].mean()) if len(rep) else True
        assert prof.loc[s, "revenue_share"] == pytest.approx(early["revenue"][m].sum() / early["revenue"].sum())
        hold = rfm["frequency_holdout"] * rfm["monetary_value_holdout"]
        assert prof.loc[s, "holdout_revenue_share"] == pytest.approx(hold[m].sum() / hold.sum())
    assert prof["share"].sum() == pytest.approx(1.0)


def test_bad_input_is_a_clear_error():
    x, _ = _blobs(3, n=200)
    with pytest.raises(ClvlabInputError, match=r"k=1"):
        BehaviouralSegments(k=1).fit(x)
    with pytest.raises(ClvlabInputError, match=r"k_range=\(5, 3\)"):
        BehaviouralSegments(k_range=(5, 3)).fit(x)
    few = pd.DataFrame({"frequency": [0.0, 0.0, 1.0, 1.0]}, index=list("abcd"))
    with pytest.raises(ClvlabInputError, match="only 2 distinct"):
        BehaviouralSegments(k=3).fit(few)
    bad = x.copy()
    bad.iloc[3, 0] = np.nan
    dup = x.copy()
    dup.index = [x.index[0]] * len(x)
    with pytest.raises(ClvlabInputError, match="not finite for 1 customer"):
        BehaviouralSegments(k=3).fit(bad)
    with pytest.raises(ClvlabInputError, match="repeats customers"):
        BehaviouralSegments(k=3).fit(dup)
    with pytest.raises(ClvlabInputError, match="subsample=1.5"):
        BehaviouralSegments(k=3, subsample=1.5).fit(x)
    seg = BehaviouralSegments(k=3, stability_replicates=1).fit(x)
    with pytest.raises(ClvlabInputError, match="the columns fit saw"):
        seg.predict(x[["monetary_value", "frequency", "first_amount"]])
    with pytest.raises(RuntimeError, match="not fitted"):
        BehaviouralSegments().predict(x)


def test_config_checks_the_behaviour_section():
    from clvlab.config import RunConfig, load_config

    base = {"name": "t", "features": {"segment": "behaviour"}}
    with pytest.raises(Exception, match="needs a features.behaviour section"):
        RunConfig.model_validate(base)
    with pytest.raises(ClvlabInputError, match=r"config.features.behaviour.k_range") as e:  # every problem at once
        load_config({"name": "t", "features": {"behaviour": {"k_range": [6, 3], "features": ["loyal"]}}})
    assert "'loyal'" in str(e.value) and "features.behaviour.features" in str(e.value)
    with pytest.raises(Exception, match="rename that column"):
        RunConfig.model_validate({"name": "t", "data": {"segment_cols": ["behaviour"]},
                                  "features": {"behaviour": {}}})  # fmt: skip
    ok = RunConfig.model_validate({"name": "t", "features": {"segment": "behaviour", "behaviour": {"k": 4}}})
    assert ok.features.behaviour.k == 4 and ok.features.behaviour.k_range == (2, 8)


@pytest.mark.slow
def test_behaviour_is_the_segment_of_every_hierarchical_model(tmp_path):
    """A Study with features.segment: behaviour on a simulated two-channel business: every purchase
    model and Gamma-Gamma pool across the K-means segments (MAP, for speed), CLV is summarised by
    them, and the segments separate value: the most engaged segment has the highest CLV per customer."""
    from clvlab.models import purchase_model_class
    from clvlab.study import Study

    cfg = {
        "name": "beh", "seed": 3,
        "data": {"source": "simulated", "segment_cols": ["channel"], "simulation": {"seed": 3, "channels": {
            "a": {"customers": 500, "r": 0.4, "alpha": 3.0, "a": 0.5, "b": 4.0},
            "b": {"customers": 500, "r": 0.2, "alpha": 6.0, "a": 1.2, "b": 2.0}}}},
        "features": {"calibration_end": "2020-12-31", "observation_end": "2021-06-29", "segment": "behaviour",
                     "cohort_freq": "M", "behaviour": {"k": 3, "stability_replicates": 2}},
        "purchase": {"method": "map"}, "gamma_gamma": {"method": "map"},
        "outputs": {"runs_dir": str(tmp_path / "runs"), "reports_dir": str(tmp_path / "reports")},
    }  # fmt: skip
    study = Study(cfg, log=lambda m: None, progress=False)
    feat = study.features()
    assert feat.behaviour.segments.k_ == 3 and set(feat.rfm["behaviour"]) == {"B1", "B2", "B3"}
    assert study.segment_columns() == ["behaviour", "channel"]
    rfm = feat.rfm
    for name in ("bgnbd", "mbgnbd", "pareto_nbd"):
        model = purchase_model_class(name)(pooling="partial", segment="behaviour").fit(rfm, method="map", seed=1)
        assert list(model.segments_) == ["B1", "B2", "B3"]
        assert np.isfinite(model.expected_purchases(10.0).values).all()
    # B1 (one-off buyers) has no repeat buyer: its spend is a draw from the population, and is said
    assert sorted(set(rfm["behaviour"]) - set(study.spend().model.segments_)) == ["B1"]
    with pytest.warns(UserWarning, match=r"\['B1'\] not in the fit .* new draw from the population"):
        clv = study.clv()
    by = clv.by_segment["behaviour"].set_index("behaviour")
    assert by["n_customers"].sum() == len(rfm)
    assert by["mean_mean"].idxmax() == "B3"
    assert study.spend().model.segments_ is not None
