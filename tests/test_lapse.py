"""Lapse table: exact hand-made example, no look-ahead, threshold suggestion, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvlab.errors import ClvlabInputError
from clvlab.features.cohorts import interpurchase_times
from clvlab.features.lapse import lapse_table, suggest_lapse_threshold

DAY0 = pd.Timestamp("2020-01-01")
CUTOFF = DAY0 + pd.Timedelta(days=60)  # 2020-03-01


def _log(rows: list[tuple[str, int, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "date": [DAY0 + pd.Timedelta(days=r[1]) for r in rows],
            "amount": [float(r[2]) for r in rows],
            "channel": [r[3] for r in rows],
        }
    )


# L = 2 weeks (14 days), early window E = 1 week (7 days), cut-off on day 60.
FIVE = _log(
    [
        # A: gaps 5, 5, 14 (= L: not a lapse), 14, 8; last purchase 46 + 14 = 60 = cutoff -> lapse AT the cutoff.
        ("A", 0, 10, "web"),
        ("A", 5, 20, "web"),
        ("A", 10, 30, "web"),
        ("A", 24, 10, "web"),
        ("A", 38, 10, "web"),
        ("A", 46, 10, "web"),
        # B: gap 0 -> 20 > 14: first lapse on day 14; the return on days 20, 30, 50 does not undo it (absorbing),
        # but B is active at the cutoff (50 + 14 > 60): lapsed_now = 0.
        ("B", 0, 5, "store"),
        ("B", 20, 15, "store"),
        ("B", 30, 25, "store"),
        ("B", 50, 5, "store"),
        # C: two rows on day 0 (one purchase, $8); last purchase 50 + 14 = 64 > 60 -> censored at day 60.
        ("C", 0, 3, "web"),
        ("C", 0, 5, "web"),
        ("C", 14, 8, "web"),
        ("C", 28, 8, "web"),
        ("C", 42, 8, "web"),
        ("C", 50, 8, "web"),
        # D: first purchase day 55: early window (55, 62] not complete at the cutoff -> dropped by default.
        ("D", 55, 12, "store"),
        # E: first purchase in February; early purchases 37 and 42; lapse on 42 + 14 = 56; day 65 is after the cutoff.
        ("E", 35, 40, "store"),
        ("E", 37, 10, "store"),
        ("E", 42, 30, "store"),
        ("E", 65, 99, "store"),
    ]
)


def _expected() -> pd.DataFrame:
    d = lambda n: DAY0 + pd.Timedelta(days=n)  # noqa: E731
    return pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "E"],
            "first_purchase": [d(0), d(0), d(0), d(35)],
            "lapse_date": [d(60), d(14), pd.NaT, d(56)],
            "duration": [60 / 7, 2.0, 60 / 7, 3.0],
            "event": [1, 1, 0, 1],
            "age": [60 / 7, 60 / 7, 60 / 7, 25 / 7],
            "lapsed_now": [1, 0, 0, 1],
            "first_amount": [10.0, 5.0, 8.0, 40.0],
            "early_frequency": [1.0, 0.0, 0.0, 2.0],
            "early_recency": [5 / 7, 0.0, 0.0, 1.0],
            "early_monetary": [20.0, 0.0, 0.0, 20.0],
            "early_complete": [True, True, True, True],
            "channel": ["web", "store", "web", "store"],
            "cohort": ["2020-01", "2020-01", "2020-01", "2020-02"],
        }
    )


def test_five_customer_log_exact_table():
    got = lapse_table(FIVE, CUTOFF, lapse_after=2, time_unit="W", segment_cols=["channel"], early_window=1)
    pd.testing.assert_frame_equal(got, _expected(), check_dtype=False, rtol=1e-12)
    assert got["event"].dtype == np.int64
    assert got.attrs["n_dropped_incomplete_early"] == 1
    # The same table in days (L = 14 days): durations scale by 7, events unchanged.
    in_days = lapse_table(FIVE, CUTOFF, lapse_after=14, time_unit="D", segment_cols=["channel"], early_window=7)
    np.testing.assert_allclose(in_days["duration"], got["duration"] * 7)
    assert in_days["event"].tolist() == got["event"].tolist()


def test_incomplete_early_window_kept_on_request():
    got = lapse_table(FIVE, CUTOFF, 2, "W", segment_cols=["channel"], early_window=1, incomplete_early="keep")
    d = got.set_index("customer_id").loc["D"]
    assert not d["early_complete"] and d["event"] == 0
    assert d["duration"] == pytest.approx(5 / 7)
    assert d["first_amount"] == 12.0  # known at t0
    assert np.isnan(d["early_frequency"]) and np.isnan(d["early_monetary"]) and np.isnan(d["early_recency"])
    assert got.attrs["n_dropped_incomplete_early"] == 0


def test_post_cutoff_transactions_do_not_leak():
    base = lapse_table(FIVE, CUTOFF, 2, "W", segment_cols=["channel"], early_window=1)
    rng = np.random.default_rng(1)
    later = _log(
        [
            (c, int(day), float(rng.gamma(2, 10)), "web" if c in "AC" else "store")
            for c in ["A", "B", "C", "D", "E", "NEW1", "NEW2"]
            for day in rng.integers(61, 200, size=3)
        ]
    )
    # Including a purchase the day after the cutoff for C, whose lapse would otherwise be decided on day 64.
    later = pd.concat([later, _log([("C", 61, 1.0, "web")])])
    extended = pd.concat([FIVE, later], ignore_index=True).sample(frac=1.0, random_state=3)
    got = lapse_table(extended, CUTOFF, 2, "W", segment_cols=["channel"], early_window=1)
    pd.testing.assert_frame_equal(got, base)


def test_covariates_use_only_the_early_window():
    base = lapse_table(FIVE, CUTOFF, 2, "W", segment_cols=["channel"], early_window=1)
    # Change everything after each customer's early window but before the cutoff (amounts and an extra day).
    t0 = FIVE.groupby("customer_id")["date"].transform("min")
    late = FIVE["date"] > t0 + pd.Timedelta(days=7)
    changed = FIVE.copy()
    changed.loc[late, "amount"] *= 100
    changed = pd.concat([changed, _log([("A", 40, 500.0, "web")])], ignore_index=True)
    got = lapse_table(changed, CUTOFF, 2, "W", segment_cols=["channel"], early_window=1)
    cov = ["first_amount", "early_frequency", "early_recency", "early_monetary", "channel", "cohort"]
    pd.testing.assert_frame_equal(got[cov], base[cov])
    # ...while a change inside the early window does move them.
    inside = pd.concat([FIVE, _log([("B", 3, 50.0, "store")])], ignore_index=True)
    b = lapse_table(inside, CUTOFF, 2, "W", segment_cols=["channel"], early_window=1).set_index("customer_id").loc["B"]
    assert (b["early_frequency"], b["early_monetary"]) == (1.0, 50.0)


def test_cutoff_moves_censoring_consistently():
    # At cutoff day 30, A's last purchase so far is day 24 (24 + 14 > 30): censored at 30 days.
    got = lapse_table(FIVE, DAY0 + pd.Timedelta(days=30), 14, "D", early_window=7).set_index("customer_id")
    assert got.loc["A", "event"] == 0 and got.loc["A", "duration"] == 30.0
    assert got.loc["B", "event"] == 1 and got.loc["B", "duration"] == 14.0
    assert "E" not in got.index  # first purchase after the cutoff


def test_suggest_lapse_threshold():
    gaps = interpurchase_times(FIVE, observation_end=CUTOFF)["gap_days"]
    # A: 5 5 14 14 8; B: 20 10 20; C: 14 14 14 8; E: 2 5 (day 65 excluded)
    assert sorted(gaps.tolist()) == sorted([5, 5, 14, 14, 8, 20, 10, 20, 14, 14, 14, 8, 2, 5])
    res = suggest_lapse_threshold(FIVE, quantile=0.9, time_unit="D", cutoff=CUTOFF)
    assert res.lapse_after == np.ceil(np.quantile(gaps, 0.9))
    assert "90%" in res.explanation and "14 observed gaps" in res.explanation
    value, text = suggest_lapse_threshold(FIVE, 0.5, "W")
    assert value == 2.0 and isinstance(text, str)  # median of all 15 gaps (day 65 counts) = 14 days = 2 weeks


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"cutoff": "2019-06-01"}, "before all data"),
        ({"lapse_after": 0}, "lapse_after=0"),
        ({"lapse_after": -3.0}, "lapse_after=-3.0"),
        ({"lapse_after": float("nan")}, "lapse_after=nan"),
        ({"early_window": 3}, "early_window=3 >= lapse_after=2"),
        ({"early_window": 2}, "early_window=2 >= lapse_after=2"),
        ({"time_unit": "Y"}, "time_unit='Y'"),
    ],
)
def test_bad_arguments(kwargs, needle):
    args = {"cutoff": CUTOFF, "lapse_after": 2, "time_unit": "W"} | kwargs
    with pytest.raises(ClvlabInputError, match="lapse_table input") as err:
        lapse_table(FIVE, **args)
    assert any(needle in p for p in err.value.problems), err.value.problems


def test_bad_columns_reported_together():
    bad = FIVE.assign(region=np.nan).drop(columns="amount")
    with pytest.raises(ClvlabInputError) as err:
        lapse_table(bad, CUTOFF, lapse_after=0, segment_cols=["region", "channel"])
    text = str(err.value)
    assert "column 'amount' missing" in text
    assert "'region': all values are NaN" in text
    assert "lapse_after=0" in text
    assert len(err.value.problems) == 3
    with pytest.raises(ClvlabInputError) as err:
        lapse_table(FIVE, CUTOFF, lapse_after=0, cohort_freq="fortnight")
    assert err.value.problems == [
        "cohort_freq='fortnight': expected one of ['D', 'W', 'M', 'Q', 'Y']",
        "lapse_after=0: expected a finite number of W units > 0",
    ], err.value.problems


def test_segment_missing_on_first_purchase_is_reported():
    bad = FIVE.copy()
    bad.loc[(bad["customer_id"] == "B") & (bad["date"] == DAY0), "channel"] = None
    with pytest.raises(ClvlabInputError, match="customer_id 'B'"):
        lapse_table(bad, CUTOFF, 2, segment_cols=["channel"], early_window=1)


def test_no_complete_customer_is_an_error():
    with pytest.raises(ClvlabInputError, match="no customer has a complete early window"):
        lapse_table(FIVE, DAY0 + pd.Timedelta(days=3), 2, "W", early_window=1)


def test_parquet_source_gives_the_same_table(tmp_path):
    path = tmp_path / "five.parquet"
    FIVE.to_parquet(path, index=False)
    got = lapse_table(str(path), CUTOFF, 2, "W", segment_cols=["channel"], early_window=1)
    pd.testing.assert_frame_equal(got, _expected(), check_dtype=False, rtol=1e-12)
