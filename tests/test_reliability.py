"""Bad input never gives a number or a raw traceback: each case is a ClvlabInputError (or exit
code 2 and one message from the CLI) naming the argument / column and what was expected."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvlab import clv
from clvlab.cli import main
from clvlab.errors import ClvlabInputError
from clvlab.models.bgnbd import BGNBD
from clvlab.models.gamma_gamma import GammaGamma

RFM = pd.DataFrame({"customer_id": ["a", "b", "c"], "frequency": [0.0, 2.0, 5.0], "recency": [0.0, 5.0, 9.0],
                    "T": [10.0, 10.0, 12.0], "monetary_value": [0.0, 20.0, 35.0]})  # fmt: skip
BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def _clv(bg=BG, gg=GG, **kw):
    return clv.customer_lifetime_value(bg, gg, RFM, time_unit="W", **kw)


@pytest.mark.parametrize("kwargs, names", [
    ({"discount_rate": -0.5}, ["discount_rate=-0.5"]),
    ({"discount_rate": float("nan")}, ["discount_rate=nan"]),
    ({"discount_rate": -1.0}, ["discount_rate=-1.0"]),
    ({"margin": 30.0}, ["margin=30.0"]),
    ({"margin": 0.0}, ["margin=0.0"]),
    ({"horizon": 2.5}, ["horizon=2.5"]),
    ({"horizon": 0}, ["horizon=0"]),
    ({"horizon": True}, ["horizon=True"]),
    ({"threshold": [float("inf")]}, ["threshold="]),
    ({"hdi_prob": 1.5}, ["hdi_prob=1.5"]),
    ({"max_draws": 0}, ["max_draws=0"]),
    ({"period_length": -4.0}, ["period_length=-4.0"]),
    ({"discount_rate": -0.1, "margin": 2.0, "horizon": 1.5}, ["discount_rate", "margin", "horizon"]),
])  # fmt: skip
def test_clv_settings_out_of_range_are_errors(kwargs, names):
    with pytest.raises(ClvlabInputError) as err:
        _clv(**kwargs)
    assert len(err.value.problems) == len(names)  # every problem at once
    for name in names:
        assert any(name in problem for problem in err.value.problems), (name, err.value.problems)


def test_whole_number_horizon_given_as_float_is_the_same_horizon():
    a, b = _clv(horizon=12), _clv(horizon=12.0)
    np.testing.assert_array_equal(a.customers["clv_mean"], b.customers["clv_mean"])


@pytest.mark.parametrize("bg, gg, text", [
    ({**BG, "r": -1.0}, GG, "BG/NBD parameter r"),
    ({**BG, "alpha": float("nan")}, GG, "BG/NBD parameter alpha"),
    (BG, {**GG, "q": 0.5}, "expected q > 1"),
    (BG, {**GG, "q": 1.0}, "expected q > 1"),
    (BG, {**GG, "gamma": 0.0}, "Gamma-Gamma parameter gamma"),
])  # fmt: skip
def test_clv_rejects_parameters_outside_their_domain(bg, gg, text):
    with pytest.raises(ClvlabInputError, match=text):
        _clv(bg, gg)


def test_valid_fixed_parameters_still_give_positive_clv():
    res = _clv()
    assert np.all(res.customers["clv_mean"] > 0) and np.all(np.isfinite(res.customers["clv_mean"]))


@pytest.mark.parametrize("kwargs, name", [
    ({"draws": 0}, "draws=0"), ({"chains": 0}, "chains=0"), ({"tune": -1}, "tune=-1"),
    ({"chains": 2.5}, "chains=2.5"), ({"target_accept": 1.0}, "target_accept=1.0"), ({"seed": -3}, "seed=-3"),
])  # fmt: skip
@pytest.mark.parametrize("model", [BGNBD, GammaGamma])
def test_fit_arguments_are_checked_before_any_sampling(model, kwargs, name):
    data = RFM[RFM["frequency"] > 0] if model is GammaGamma else RFM
    with pytest.raises(ClvlabInputError, match=name.replace(".", r"\.")):
        model(pooling="pooled").fit(data, **kwargs)


def _rfm_args(path, out):
    return [
        "rfm",
        "--input",
        str(path),
        "--calibration-end",
        "2020-06-30",
        "--observation-end",
        "2020-12-31",
        "--out",
        str(out),
    ]


@pytest.mark.parametrize("content, expected", [
    (b"", "not a readable Parquet file"),
    (b"PAR1 not really parquet", "not a readable Parquet file"),
])  # fmt: skip
def test_cli_rfm_unreadable_parquet_exits_2(tmp_path, capsys, content, expected):
    path = tmp_path / "tx.parquet"
    path.write_bytes(content)
    assert main(_rfm_args(path, tmp_path / "rfm.csv")) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and not (tmp_path / "rfm.csv").exists()


def test_cli_rfm_with_no_customer_before_calibration_end_exits_2(tmp_path, capsys):
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,date,amount\n1,2021-01-01,5\n2,2021-02-01,7\n")
    assert main(_rfm_args(path, tmp_path / "rfm.csv")) == 2
    assert "no customer made a first purchase on or before --calibration-end" in capsys.readouterr().err


def test_cli_rfm_reads_gzipped_csv(tmp_path, capsys):
    import gzip

    path = tmp_path / "tx.csv.gz"
    path.write_bytes(gzip.compress(b"customer_id,date,amount\n1,2020-01-01,5\n1,2020-02-01,7\n2,2020-03-01,9\n"))
    assert main(_rfm_args(path, tmp_path / "rfm.csv")) == 0
    assert len(pd.read_csv(tmp_path / "rfm.csv")) == 2


@pytest.mark.parametrize("text", ["", "customer_id,frequency,recency,T\n"])
def test_cli_fit_empty_rfm_table_exits_2(tmp_path, capsys, text):
    path = tmp_path / "rfm.csv"
    path.write_text(text)
    assert main(["fit", "bgnbd", "--input", str(path), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "--input" in err and "Traceback" not in err


def _dates(dates, **kw):
    from clvlab.data import load_transactions

    df = pd.DataFrame({"customer_id": [f"c{i}" for i in range(len(dates))], "date": dates, "amount": 1.0})
    tx, _ = load_transactions(df, **kw)
    return tx.sort_values("customer_id")["date"].dt.strftime("%Y-%m-%d").tolist()


def test_slashed_dates_are_read_one_way_for_the_whole_column():
    # 13/02 is day-first only, so every row is day-first (not Jan 2 / Feb 13 / Feb 3)
    assert _dates(["01/02/1997", "13/02/1997", "02/03/1997"]) == ["1997-02-01", "1997-02-13", "1997-03-02"]
    assert _dates(["01/02/1997", "02/13/1997"]) == ["1997-01-02", "1997-02-13"]  # month-first only
    assert _dates(["01/01/1997", "02/02/1997"]) == ["1997-01-01", "1997-02-02"]  # both readings agree
    assert _dates(["01/02/1997", "02/03/1997"], date_format="%d/%m/%Y") == ["1997-02-01", "1997-03-02"]


@pytest.mark.parametrize("dates, text", [
    (["01/02/1997", "02/03/1997"], "read both month-first and day-first; pass date_format="),
    (["13/02/1997", "02/13/1997"], "fit neither reading throughout"),
    (["01/02/1997", "13/02/97"], "mix 2- and 4-digit years"),
])  # fmt: skip
def test_ambiguous_or_inconsistent_slashed_dates_are_refused(dates, text):
    with pytest.raises(ClvlabInputError, match=text):
        _dates(dates)


def test_pseudonymise_applies_to_the_builtin_cdnow_source(monkeypatch, cdnow_sample_tx):
    from clvlab.study import Study

    monkeypatch.setenv("CLVLAB_SALT", "test-salt")
    study = Study({"name": "p", "data": {"source": "cdnow_sample", "pseudonymise": True}}, log=lambda s: None)
    data = study.data()
    ids = set(data.transactions["customer_id"])
    assert data.validation.pseudonymised and len(ids) == 2357
    assert not ids & set(cdnow_sample_tx["customer_id"]) and all(len(i) == 16 for i in ids)
    assert set(study.features().rfm["customer_id"]) == ids  # the raw ids reach no table


def test_cli_rfm_pseudonymise(tmp_path, monkeypatch, capsys):
    log = tmp_path / "tx.csv"
    log.write_text("customer_id,date,amount\nalice,2020-01-01,5\nalice,2020-02-01,7\nbob,2020-03-01,9\n")
    out = tmp_path / "rfm.csv"
    monkeypatch.delenv("CLVLAB_SALT", raising=False)
    assert main([*_rfm_args(log, out), "--pseudonymise"]) == 2
    assert "salt" in capsys.readouterr().err and not out.exists()
    monkeypatch.setenv("CLVLAB_SALT", "s3cret")
    assert main([*_rfm_args(log, out), "--pseudonymise"]) == 0
    ids = pd.read_csv(out)["customer_id"].astype(str).tolist()
    assert len(ids) == 2 and not {"alice", "bob"} & set(ids)


def test_rfm_scores_refuses_recency_after_T():
    from clvlab.features import rfm_scores

    bad = RFM.assign(recency=[0.0, 11.0, 9.0])
    with pytest.raises(ClvlabInputError, match=r"recency > T in 1 row\(s\) \(e.g. index \[1\]\)"):
        rfm_scores(bad)


def test_same_day_sum_overflow_is_an_error_not_inf():
    from clvlab.data import load_transactions

    df = pd.DataFrame({"customer_id": ["a", "a", "b"], "date": ["2020-01-01", "2020-01-01", "2020-01-02"],
                       "amount": [1e308, 1e308, 5.0]})  # fmt: skip
    with pytest.raises(ClvlabInputError, match=r"same-day sum of 1 customer-day\(s\) overflows.*customer 'a'"):
        load_transactions(df)
    tx, _ = load_transactions(df.assign(amount=[1e307, 1e307, 5.0]))
    assert np.isfinite(tx["amount"]).all()


@pytest.mark.parametrize("model", [BGNBD, GammaGamma])
def test_fit_on_a_handful_of_customers_warns(model):
    data = RFM[RFM["frequency"] > 0] if model is GammaGamma else RFM
    with pytest.warns(UserWarning, match="posterior is mostly the prior"):
        model(pooling="pooled").fit(data, method="map")
