"""Churn comparison: AUC/Brier against brute force, tables, and the CDNOW calibration/holdout check."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from clvlab.errors import ClvlabInputError
from clvlab.evaluate import (
    brier_score,
    calibration_curve,
    churn_comparison,
    holdout_churn_labels,
    roc_auc,
    roc_curve,
    roc_table,
)

CAL, HOLD = pd.Timestamp("1997-09-30"), pd.Timestamp("1998-06-30")


def brute_force_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_pairwise_count(seed):
    rng = np.random.default_rng(seed)
    n = 150
    y = rng.binomial(1, 0.3, n)
    s = np.round(rng.normal(y * 0.8, 1.0), 1)  # rounding makes many ties
    assert len(np.unique(s)) < n
    assert roc_auc(y, s) == pytest.approx(brute_force_auc(y, s), abs=1e-12)
    # area under the ROC points (trapezoid, ties as diagonal segments) is the same number
    roc = roc_curve(y, s)
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(roc_auc(y, s), abs=1e-12)
    assert roc["fpr"].iloc[-1] == 1.0 and roc["tpr"].iloc[-1] == 1.0


def test_auc_edge_cases():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert np.isnan(roc_auc([1, 1, 1], [0.1, 0.2, 0.3]))
    with pytest.raises(ClvlabInputError, match="labels"):
        roc_auc([0, 2, 1], [0.1, 0.2, 0.3])


def test_brier_score():
    y = np.array([0, 1, 1, 0])
    p = np.array([0.1, 0.9, 0.4, 0.0])
    assert brier_score(y, p) == pytest.approx((0.01 + 0.01 + 0.36 + 0.0) / 4)
    assert brier_score(y, np.full(4, 0.5)) == 0.25
    with pytest.raises(ClvlabInputError, match=r"\[0, 1\]"):
        brier_score(y, p + 0.5)


def _toy(n=400, seed=0):
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"c{i}" for i in range(n)], name="customer_id")
    p_true = rng.uniform(0.05, 0.95, n)
    labels = pd.Series(rng.binomial(1, p_true), index=ids)
    scores = {"good": pd.Series(p_true, index=ids), "noise": pd.Series(rng.uniform(size=n), index=ids)[::-1]}
    segments = pd.Series(np.where(np.arange(n) % 3 == 0, "x", "y"), index=ids)
    return labels, scores, segments


def test_churn_comparison_table():
    labels, scores, segments = _toy()
    out = churn_comparison(labels, scores, segments)
    assert list(out.columns) == ["score", "segment", "n", "n_churned", "churn_rate", "mean_score", "auc", "brier"]
    assert len(out) == 2 * 3 and set(out["segment"]) == {"all", "x", "y"}
    t = out.set_index(["score", "segment"])
    # alignment by customer_id (the noise score was given in reverse order)
    assert t.loc[("noise", "all"), "auc"] == pytest.approx(roc_auc(labels, scores["noise"].reindex(labels.index)))
    assert t.loc[("good", "all"), "auc"] > 0.7 > t.loc[("noise", "all"), "auc"]
    assert t.loc[("good", "all"), "brier"] < t.loc[("noise", "all"), "brier"]
    x = segments == "x"
    assert t.loc[("good", "x"), "n"] == x.sum()
    assert t.loc[("good", "x"), "brier"] == pytest.approx(brier_score(labels[x], scores["good"][x]))
    assert t.loc[("good", "all"), "n"] == t.loc[("good", "x"), "n"] + t.loc[("good", "y"), "n"]


def test_calibration_curve_and_roc_table():
    labels, scores, _ = _toy(4000, seed=1)
    cal = calibration_curve(labels, scores, n_bins=5)
    good = cal[cal["score"] == "good"]
    assert len(good) == 5 and good["n"].sum() == 4000
    assert (np.diff(good["mean_predicted"]) > 0).all()
    # the true probabilities are calibrated: observed within 3 se of predicted in every bin
    assert (np.abs(good["observed_rate"] - good["mean_predicted"]) < 3 * good["se"] + 1e-9).all()
    noise = cal[cal["score"] == "noise"]
    assert np.ptp(noise["observed_rate"]) < 0.1  # a random score has a flat reliability curve
    uni = calibration_curve(labels, scores["good"].rename("g"), n_bins=4, strategy="uniform")
    assert set(uni["score"]) == {"g"} and (uni["p_high"] <= 1).all()
    roc = roc_table(labels, scores)
    assert set(roc["score"]) == {"good", "noise"}


def test_bad_input_reports_every_problem():
    labels, scores, segments = _toy(50)
    bad = {
        "short": scores["good"].iloc[:40],
        "nan": scores["good"].where(np.arange(50) != 3),
        "range": scores["good"] * 3,
    }
    with pytest.raises(ClvlabInputError) as err:
        churn_comparison(labels, bad, segments.iloc[:45])
    text = str(err.value)
    assert len(err.value.problems) == 4
    assert "'short': no value for 10" in text and "'nan': 1 NaN" in text and "'range'" in text
    assert "segment: no segment for 5" in text
    with pytest.raises(ClvlabInputError, match="before all data"):
        holdout_churn_labels(pd.DataFrame({"customer_id": ["a"], "date": [CAL + pd.Timedelta(days=1)]}), CAL, HOLD)


# ----------------------------------------------------------------------------- CDNOW


@pytest.fixture(scope="module")
def cdnow_sample(cdnow_sample_tx) -> pd.DataFrame:
    """The CDNOW 1/10 sample via clvlab.data.load_cdnow (shared session fixture in conftest)."""
    return cdnow_sample_tx


def test_holdout_labels_by_hand(cdnow_sample):
    labels = holdout_churn_labels(cdnow_sample, CAL, HOLD)
    assert len(labels) == 2357  # every sample customer bought first in Q1 1997
    tx = cdnow_sample
    in_hold = tx[(tx["date"] > CAL) & (tx["date"] <= HOLD)].groupby("customer_id").size()
    expected = (~labels.index.isin(in_hold.index)).astype(int)
    np.testing.assert_array_equal(labels.to_numpy(), expected)


def test_cdnow_churn_scores(cdnow_sample):
    """BG/NBD 1 - P(alive) (lifetimes, test-only oracle) vs the Cox lapse probability on the paper's split."""
    lifetimes = pytest.importorskip("lifetimes")
    from clvlab.features.lapse import lapse_table, suggest_lapse_threshold
    from clvlab.models.survival import CoxChurnModel

    tx = cdnow_sample
    labels = holdout_churn_labels(tx, CAL, HOLD)
    cal = tx[tx["date"] <= CAL].groupby("customer_id")["date"]
    first, last = cal.min(), cal.max()
    x, t_x, T = (cal.nunique() - 1).astype(float), (last - first).dt.days / 7, (CAL - first).dt.days / 7
    bg = lifetimes.BetaGeoFitter().fit(x, t_x, T)
    assert bg.params_["r"] == pytest.approx(0.243, abs=2e-3)  # the published fit: we use the paper's data
    p_alive = pd.Series(bg.conditional_probability_alive(x, t_x, T), index=x.index)

    L = suggest_lapse_threshold(tx, 0.9, "W", cutoff=CAL).lapse_after
    table = lapse_table(tx, CAL, L, "W")
    cox = CoxChurnModel(log1p=["first_amount", "early_monetary"], segment="cohort").fit(table)
    p_lapse = cox.predict_lapse_probability(table, horizon=(HOLD - CAL).days / 7)

    segments = table.set_index("customer_id")["cohort"]
    out = churn_comparison(labels, {"bgnbd": 1 - p_alive, "cox": p_lapse}, segments).set_index(["score", "segment"])
    assert len(out) == 2 * 4
    cox_all, bg_all = out.loc[("cox", "all")], out.loc[("bgnbd", "all")]
    assert cox_all["auc"] > 0.65
    assert cox_all["brier"] < 0.25  # better than a coin; the churn base rate is 0.71
    # 1 - P(alive) is 0 for every zero-repeat customer (BG/NBD allows no dropout before the first
    # repeat), and those are the customers most likely not to buy in the holdout: it ranks backwards.
    assert (p_alive[x == 0] == 1).all()
    assert labels[x[x == 0].index].mean() > labels[x[x > 0].index].mean() + 0.2
    assert bg_all["auc"] < 0.5


def test_churn_figures():
    from matplotlib.figure import Figure

    from clvlab.plots.survival import plot_calibration_curves, plot_roc_curves

    labels, scores, _ = _toy(300)
    cmp_ = churn_comparison(labels, scores)
    fig = plot_roc_curves(roc_table(labels, scores), cmp_)
    assert isinstance(fig, Figure)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0] == f"good (AUC {cmp_.loc[0, 'auc']:.3f})"
    fig = plot_calibration_curves(calibration_curve(labels, scores, n_bins=4), cmp_)
    assert len(fig.axes[0].containers) == 2  # one errorbar series per score
