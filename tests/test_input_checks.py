"""Bad input on the newer surfaces: a clear error naming the argument, column or value, or the
right answer; never a raw traceback or a silent number (issue: reliability, second round)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from test_acquisition import _fixed

from clvlab.clv import new_customer_value
from clvlab.clv.budget import allocate_budget
from clvlab.clv.cac import cac_by_segment
from clvlab.config import load_config
from clvlab.errors import ClvlabInputError, column_list


# ----------------------------------------------------------------------------------- configs
@pytest.mark.parametrize("acq, text", [
    ({"cac": {"mass": "5"}}, "acquisition.cac.mass: expected a number, got the text '5'"),
    ({"cac": {"mass": True}}, "acquisition.cac.mass: expected a number, got True"),
    ({"cac": {"mass": 1e-300}}, "acquisition.cac.mass: Input should be greater than or equal to 1e-06"),
    ({"cac": {"mass": 5.0}, "budget": float("inf")}, "acquisition.budget: Input should be a finite number"),
    ({"cac": {"mass": 5.0}, "saturation": {"mass": "9"}}, "acquisition.saturation.mass: expected a number"),
    ({"cac": {"mass": 5.0}, "saturation": [1, 2]}, "acquisition.saturation: Input should be a valid dictionary"),
])  # fmt: skip
def test_config_numbers_are_numbers_and_finite(acq, text):
    with pytest.raises(ClvlabInputError) as exc:
        load_config({"name": "x", "acquisition": acq})
    assert text in str(exc.value).replace("0.000001", "1e-06")


def test_config_segment_cols_as_a_string_is_refused_by_name():
    with pytest.raises(ClvlabInputError, match=r"config.data.segment_cols: Input should be a valid list"):
        load_config({"name": "x", "data": {"segment_cols": "channel"}})


@pytest.mark.parametrize("call", ["load_transactions", "cohorts", "lapse_table"])
def test_segment_cols_as_a_string_is_not_split_into_letters(call):
    from clvlab.data import load_transactions
    from clvlab.features import cohorts
    from clvlab.features.lapse import lapse_table

    tx = pd.DataFrame({"customer_id": ["a", "a", "b"], "date": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-01-05"]),
                       "amount": [1.0, 2.0, 3.0], "channel": ["x", "x", "y"]})  # fmt: skip
    fn = {"load_transactions": lambda: load_transactions(tx, segment_cols="channel"),
          "cohorts": lambda: cohorts(tx, segment_cols="channel"),
          "lapse_table": lambda: lapse_table(tx, "2020-03-01", lapse_after=4, segment_cols="channel")}[call]  # fmt: skip
    with pytest.raises(
        ClvlabInputError, match=r"segment_cols='channel': expected a list of column names, e\.g\. \['channel'\]"
    ):
        fn()
    assert column_list(("a", "b"), "x") == ("a", "b")


# ----------------------------------------------------------------------------------- CAC and budget
def test_cac_twice_for_a_channel_text_and_booleans_are_named():
    table = pd.DataFrame({"channel": ["a", "a", "b", "c"], "cac": [10.0, 12.0, 5.0, 7.0]})
    with pytest.raises(ClvlabInputError) as exc:
        cac_by_segment(table, "channel", ["a", "b", "c"])
    assert "channel 'a' has 2 CAC rows: expected one" in str(exc.value)
    with pytest.raises(ClvlabInputError) as exc:
        cac_by_segment({"a": True, "b": "5", "c": 1e-300}, "channel", ["a", "b", "c"])
    msg = str(exc.value)
    assert all(f"CAC of channel {g!r} is {v}" in msg for g, v in (("a", "True"), ("b", "'5'"), ("c", "1e-300"))), msg
    np.testing.assert_array_equal(cac_by_segment({"a": 3, "b": np.float32(2.5)}, "channel", ["a", "b"]), [3.0, 2.5])


def test_saturation_that_is_not_a_mapping_is_named():
    bg, gg, first = _fixed(["a", "b"])
    ncv = new_customer_value(bg, gg, first, segment="channel", time_unit="W")
    with pytest.raises(
        ClvlabInputError, match=r"saturation=\[100, 200\]: expected a mapping \{channel: most customers\}"
    ):
        allocate_budget(ncv, {"a": 5.0, "b": 6.0}, 1000.0, saturation=[100, 200])
    with pytest.raises(ClvlabInputError, match="saturation of channel 'a' is True"):
        allocate_budget(ncv, {"a": 5.0, "b": 6.0}, 1000.0, saturation={"a": True})


# ----------------------------------------------------------------------------------- new-customer value
@pytest.mark.parametrize("which, name, value", [("bg", "r", np.nan), ("bg", "r", -0.2), ("gg", "p", -1.0),
                                               ("gg", "gamma", np.inf), ("bg", "alpha", np.inf)])  # fmt: skip
def test_new_customer_value_checks_the_parameters_as_clv_does(which, name, value):
    bg, gg, first = _fixed(["a", "b"])
    draws = bg if which == "bg" else gg
    bad = draws.with_values(**{name: np.where(np.arange(draws.n_draws)[:, None] == 3, value, draws.values[name])})
    args = (bad, gg) if which == "bg" else (bg, bad)
    with pytest.raises(ClvlabInputError, match=rf"parameter {name}: 2 value\(s\) not finite and > 0"):
        new_customer_value(*args, first, segment="channel", time_unit="W")


@pytest.mark.slow
def test_a_channel_without_repeat_buyers_gets_its_spend_from_the_population():
    """A channel of one customer with no repeat purchase is not among the spend model's segments;
    its new-customer value uses a population draw of the spend parameters (as CLV does), said."""
    from clvlab.data.simulate import DEFAULT_SEGMENTS, simulate
    from clvlab.features import calibration_holdout
    from clvlab.models.gamma_gamma import GammaGamma

    sim = simulate(DEFAULT_SEGMENTS, n_customers=400, seed=3)
    tx = sim.transactions
    lone = pd.DataFrame({"customer_id": ["lone"], "date": [tx["date"].min()], "amount": [20.0], "channel": ["pop-up"]})
    tx = pd.concat([tx, lone], ignore_index=True)
    rfm = calibration_holdout(tx, "2021-01-01", "2021-07-01", time_unit="W", segment_cols=["channel"])
    rep = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
    assert "pop-up" not in set(rep["channel"])
    gg = GammaGamma(pooling="partial", segment="channel").fit(rep, method="map", progressbar=False)
    bg, _, _ = _fixed([*DEFAULT_SEGMENTS, "pop-up"], n_draws=1)
    first = (
        tx.sort_values("date").groupby("customer_id", as_index=False).first().rename(columns={"amount": "first_amount"})
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ncv = new_customer_value(bg, gg, first, segment="channel", time_unit="W")
    assert any("'pop-up'" in str(w.message) and "population" in str(w.message) for w in caught)
    value = ncv.summary().set_index("channel")["value_mean"]
    assert np.isfinite(value).all() and value["pop-up"] > 0


# ----------------------------------------------------------------------------------- predictions and CLV
@pytest.fixture(scope="module")
def small_fits(cdnow_sample_tx):
    from clvlab.features import calibration_holdout
    from clvlab.models.mbgnbd import MBGNBD
    from clvlab.models.pareto_nbd import ParetoNBD

    rfm = calibration_holdout(cdnow_sample_tx, "1997-09-30", "1998-06-30", time_unit="W")
    return rfm, {m.model_name: m.fit(rfm, method="map", progressbar=False) for m in (MBGNBD(), ParetoNBD())}


@pytest.mark.parametrize("model", ["mbgnbd", "pareto_nbd"])
@pytest.mark.parametrize("t", [-5, np.nan, np.inf, True, "3"])
def test_a_window_that_is_not_a_length_of_time_is_refused(small_fits, model, t):
    fit = small_fits[1][model]
    for call in (lambda: fit.expected_purchases(t), lambda: fit.p_no_purchase(t), lambda: fit.prob_purchases(1, t),
                 lambda: fit.expected_purchases_new([1.0, t])):  # fmt: skip
        with pytest.raises(ClvlabInputError, match="expected finite lengths of time >= 0"):
            call()
    assert float(fit.expected_purchases(0).max()) == 0.0
    assert float(fit.p_no_purchase(0).min()) == pytest.approx(1.0, rel=1e-12)  # a zero window: no purchase


def test_discount_rate_of_100_percent_a_period_is_valid_and_halves_one_period(small_fits):
    """lifetimes' and pymc-marketing's known-value CLV tests use discount_rate=1.0: one period's
    value is half the undiscounted one. Negative, NaN and infinite rates stay errors."""
    from test_clv import GG_POST, _pooled_bgnbd

    from clvlab.clv import customer_lifetime_value

    data, bg = small_fits[0].head(200), _pooled_bgnbd("W")
    kw = dict(horizon=1, period="W", margin=1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        full = customer_lifetime_value(bg, GG_POST, data, discount_rate=1.0, **kw).customers["clv_mean"]
    assert any("discount_rate=1.0 per period is high" in str(w.message) for w in caught)
    none = customer_lifetime_value(bg, GG_POST, data, discount_rate=0.0, **kw).customers["clv_mean"]
    assert (none > 0).all()
    np.testing.assert_allclose(full.to_numpy(), 0.5 * none.to_numpy(), rtol=1e-12)
    for bad in (-0.1, np.nan, np.inf):
        with pytest.raises(ClvlabInputError, match="discount_rate=.*expected a finite rate per period >= 0"):
            customer_lifetime_value(bg, GG_POST, data, discount_rate=bad, **kw)


# ----------------------------------------------------------------------------------- segments and KPIs
def test_kmeans_with_as_many_segments_as_customers_is_named():
    from clvlab.features.clusters import BehaviouralSegments

    three = pd.DataFrame({"frequency": [0.0, 1.0, 2.0], "gap": [0.0, 3.0, 1.0]}, index=["a", "b", "c"])
    for seg in (BehaviouralSegments(k=3), BehaviouralSegments(k_range=(2, 3))):
        with pytest.raises(ClvlabInputError, match="k up to 3 but only 3 distinct customer"):
            seg.fit(three)
    assert BehaviouralSegments(k=2, stability_replicates=2).fit(three).k_ == 2


def _kpi_tx(**cols) -> pd.DataFrame:
    base = {"customer_id": ["a", "a", "b", "c"], "date": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-01-05",
            "2020-01-07"]), "amount": [1.0, 2.0, 3.0, 4.0], "channel": ["x", "x", "y", "y"]}  # fmt: skip
    return pd.DataFrame({**base, **cols})


@pytest.mark.parametrize("cols, text", [
    ({"channel": ["x", "x", np.nan, "y"]}, "column 'channel' (segment) is missing/empty in 1 row(s)"),
    ({"channel": [1.0, 1.0, np.nan, 2.0]}, "column 'channel' (segment) is missing/empty in 1 row(s)"),
    ({"channel": ["x", "x", " ", "y"]}, "column 'channel' (segment) is missing/empty in 1 row(s)"),
    ({"amount": [1e308, 1e308, 1.0, 2.0]}, "the amounts sum to inf (they overflow a double"),
    ({"amount": [np.inf, 1.0, 1.0, 1.0]}, "column 'amount' is infinite in 1 row(s)"),
])  # fmt: skip
def test_kpis_refuse_missing_channels_and_amounts_that_overflow(cols, text):
    from clvlab.features.kpis import channel_kpis

    with pytest.raises(ClvlabInputError) as exc:
        channel_kpis(_kpi_tx(**cols), "2020-12-31")
    assert text in str(exc.value)
    ok = channel_kpis(_kpi_tx(), "2020-12-31")
    assert ok["channel"].tolist() == ["x", "y"] and ok["revenue"].tolist() == [3.0, 7.0]


# ----------------------------------------------------------------------------------- the comparison
@pytest.fixture(scope="module")
def comparison_inputs(cdnow_sample_tx, small_fits):
    from clvlab.comparison import Candidate

    rfm, fits = small_fits
    return rfm, cdnow_sample_tx, [Candidate.of(fits["mbgnbd"])]


def test_compare_models_refuses_zero_draws_other_customers_and_a_log_that_does_not_match(comparison_inputs):
    from clvlab.comparison import Candidate, compare_models

    rfm, tx, cands = comparison_inputs
    kw = dict(calibration_end="1997-09-30", time_unit="W")
    with pytest.raises(ClvlabInputError, match=r"draws_per_chain=0: expected a whole number >= 1"):
        compare_models(cands, rfm, tx, draws_per_chain=0, **kw)
    with pytest.raises(ClvlabInputError, match=r"fitted on 2,357 customers, rfm has 2,000 \(0 of them not in its fit"):
        compare_models(cands, rfm.head(2000), tx, **kw)
    with pytest.raises(
        ClvlabInputError,
        match=r"calibration_end=1997-06-30: the log gives 1,732 repeat purchase days before it and 2,106 in the holdout, the RFM table 2,457 \(frequency\)",
    ):
        compare_models(cands, rfm, tx, calibration_end="1997-06-30", time_unit="W")
    with pytest.raises(ClvlabInputError, match=r"transactions: 357 customer\(s\) of rfm are not in the log"):
        compare_models(cands, rfm, tx[tx["customer_id"].isin(rfm["customer_id"].head(2000))], **kw)
    assert isinstance(cands[0], Candidate)
