"""The pipeline (clvlab.study) and the run writer (clvlab.runs): typed results, config-driven
constants, caching of fits, quick mode, units carried by the models, and `clvlab score`.

Fits here are MAP (seconds) on the CDNOW 1/10 sample; the NUTS run is tests/test_cli.py's.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clvlab.cli import main
from clvlab.config import load_config
from clvlab.errors import ClvlabInputError
from clvlab.models.bgnbd import BGNBD
from clvlab.models.gamma_gamma import GammaGamma
from clvlab.study import STAGES, CLVResult, PurchaseResult, Study, fit_cache_key

MAP_CONFIG = {
    "name": "map_sample",
    "seed": 7,
    "data": {"source": "cdnow_sample"},
    "features": {
        "calibration_end": "1997-09-30",
        "observation_end": "1998-06-30",
        "time_unit": "W",
        "segment": "cohort",
        "cohort_freq": "M",
    },
    "purchase": {"method": "map", "pooling": "partial"},
    "gamma_gamma": {"method": "map", "pooling": "partial"},
    "clv": {
        "horizon": 6,
        "period": "M",
        "discount_rate": 0.02,
        "margin": 0.25,
        "thresholds": [20.0, 50.0],
        "sensitivity_discount_rates": [0.0, 0.02],
        "sensitivity_margins": [0.5, 1.0],
    },
    "survival": {"lapse_after": 20, "test_fraction": 0.25, "penalizer": 0.05},
}


def _study(tmp_path, log=None, **changes) -> Study:
    cfg = {**MAP_CONFIG, **changes}
    return Study(cfg, root=tmp_path, log=log or (lambda s: None), progress=False)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    lines: list[str] = []
    study = _study(root, log=lines.append)
    return root, study, study.run(), lines


def test_run_returns_typed_results_from_the_config(first_run):
    root, study, res, _ = first_run
    assert isinstance(res.purchase, PurchaseResult) and isinstance(res.clv, CLVResult)
    assert set(STAGES) | {"total"} <= set(res.timings)
    # constants come from the config, not from the stages
    assert res.clv.posterior.settings.horizon == 6 and res.clv.posterior.settings.margin == 0.25
    assert [c for c in res.clv.customers.columns if c.startswith("p_clv_gt_")] == ["p_clv_gt_20", "p_clv_gt_50"]
    assert sorted(res.clv.sensitivity["discount_rate"].unique()) == [0.0, 0.02]
    assert res.churn.lapse_after == 20.0 and "config" in res.churn.lapse_explanation
    assert res.purchase.model.time_unit_ == "W" and res.spend.model.time_unit_ == "W"
    assert res.clv.posterior.settings.time_unit == "W" and res.clv.posterior.settings.period == "M"
    # MAP: one draw, so the posterior predictive holdout total is one replicate (NUTS: tests/test_cli.py)
    mean, lo, hi = res.purchase.holdout_total(0.94)
    assert lo == mean == hi and mean == res.purchase.holdout_draws.sum().item()


def test_second_run_reuses_every_fit_and_gives_identical_numbers(first_run):
    root, _, res, lines = first_run
    again_lines: list[str] = []
    again = _study(root, log=again_lines.append).run()
    assert again.purchase.cached and again.spend.cached and not res.purchase.cached
    assert any("cached fit reused" in line for line in again_lines)
    pd.testing.assert_frame_equal(again.clv.customers, res.clv.customers)
    pd.testing.assert_frame_equal(again.clv.by_segment["cohort"], res.clv.by_segment["cohort"])
    pd.testing.assert_frame_equal(again.churn.comparison, res.churn.comparison)


def test_force_refits_and_a_changed_section_refits_only_its_model(tmp_path):
    first = _study(tmp_path)
    assert not first.purchase().cached and not first.spend().cached
    forced = Study(dict(MAP_CONFIG), root=tmp_path, force=True, log=lambda s: None, progress=False)
    assert not forced.purchase().cached and not forced.spend().cached
    changed = _study(tmp_path, purchase={**MAP_CONFIG["purchase"], "pooling": "pooled"})
    assert not changed.purchase().cached  # its section changed
    assert changed.spend().cached  # the spend model's section and data did not
    assert _study(tmp_path, seed=8).purchase().cached is False  # the seed is part of the key


def test_cache_key_depends_on_settings_seed_and_data():
    base = fit_cache_key("bgnbd", {"pooling": "partial"}, 1, "abc")
    assert base == fit_cache_key("bgnbd", {"pooling": "partial"}, 1, "abc")
    assert (
        len(
            {
                base,
                fit_cache_key("bgnbd", {"pooling": "pooled"}, 1, "abc"),
                fit_cache_key("bgnbd", {"pooling": "partial"}, 2, "abc"),
                fit_cache_key("bgnbd", {"pooling": "partial"}, 1, "abd"),
            }
        )
        == 4
    )


def test_loaded_model_keeps_its_data_and_time_unit(first_run):
    root, study, res, _ = first_run
    loaded = BGNBD.load(study.run_dir / "bgnbd")
    assert loaded.time_unit_ == "W" and loaded.data_ is not None
    np.testing.assert_array_equal(loaded.p_alive().values, res.purchase.model.p_alive().values)
    gg = GammaGamma.load(study.run_dir / "gamma_gamma")
    np.testing.assert_array_equal(gg.expected_spend().values, res.spend.model.expected_spend().values)


def test_clv_takes_the_unit_from_the_model_when_data_come_from_csv(first_run, tmp_path):
    from clvlab.clv import customer_lifetime_value

    root, study, res, _ = first_run
    path = tmp_path / "rfm.csv"
    res.features.rfm.to_csv(path, index=False)
    rfm = pd.read_csv(path, dtype={"customer_id": str, "cohort": str})
    assert "time_unit" not in rfm.attrs
    bg, gg = BGNBD.load(study.run_dir / "bgnbd"), GammaGamma.load(study.run_dir / "gamma_gamma")
    c = res.config.clv
    got = customer_lifetime_value(
        bg,
        gg,
        rfm,
        horizon=c.horizon,
        period=c.period,
        discount_rate=c.discount_rate,
        margin=c.margin,
        segment="cohort",
    )
    np.testing.assert_allclose(
        got.customers["clv_mean"].to_numpy(), res.clv.customers["clv_mean"].to_numpy(), rtol=1e-12
    )


def test_score_command_scores_from_a_saved_run(first_run, tmp_path, capsys):
    from clvlab.runs import _write_metadata, write_artifacts

    root, study, res, _ = first_run
    write_artifacts(study, res)
    _write_metadata(study, res)
    meta = json.loads((study.run_dir / "metadata.json").read_text())
    assert meta["config"]["clv"]["horizon"] == 6 and meta["quick"] is False and "purchase" in meta["timings"]
    rfm_csv = tmp_path / "rfm.csv"
    res.features.rfm.head(300).to_csv(rfm_csv, index=False)
    out = tmp_path / "scores.csv"
    assert main(["score", "--run", str(study.run_dir), "--input", str(rfm_csv), "--out", str(out)]) == 0
    assert "scored 300 customers" in capsys.readouterr().out
    scores = pd.read_csv(out, dtype={"customer_id": str})
    assert len(scores) == 300 and scores["customer_id"].tolist() == res.features.rfm["customer_id"].head(300).tolist()
    for col in ("p_alive_mean", "expected_purchases_mean", "clv_mean", "clv_hdi_low", "clv_hdi_high", "p_clv_gt_20"):
        assert col in scores.columns, col
    first = res.clv.customers.set_index("customer_id").loc[scores["customer_id"], "clv_mean"].to_numpy()
    np.testing.assert_allclose(scores["clv_mean"].to_numpy(), first, rtol=1e-9)
    pa = res.purchase.p_alive.loc[scores["customer_id"]].to_numpy()
    np.testing.assert_allclose(scores["p_alive_mean"].to_numpy(), pa, rtol=1e-9)
    assert (scores["p_alive_hdi_low"] <= scores["p_alive_mean"] + 1e-12).all()


@pytest.mark.parametrize("argv, expected", [
    (["score", "--run", "nowhere", "--input", "missing.parquet", "--out", "x.csv"], "no such file"),
    (["run", "--config", "no/such/config.yaml"], "no such config file"),
    (["fit", "bgnbd", "--input", "rfm.pq", "--out", "x"], "no such file"),
])  # fmt: skip
def test_cli_bad_input_exits_2_with_one_message(argv, expected, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_cli_refuses_unknown_suffixes(tmp_path, capsys):
    xlsx = tmp_path / "rfm.xlsx"
    xlsx.write_text("x")
    assert main(["fit", "gg", "--input", str(xlsx), "--out", str(tmp_path / "m")]) == 2
    assert "unsupported suffix '.xlsx'" in capsys.readouterr().err
    pq = tmp_path / "rfm.pq"  # read as Parquet (not as CSV), and refused when it is not one
    pq.write_text("x")
    assert main(["fit", "gg", "--input", str(pq), "--out", str(tmp_path / "m")]) == 2
    assert "not a readable table" in capsys.readouterr().err
    tx = tmp_path / "tx.csv"
    tx.write_text("customer_id,date,amount\n1,2020-01-01,5\n")
    assert (
        main(
            [
                "rfm",
                "--input",
                str(tx),
                "--calibration-end",
                "2020-06-30",
                "--observation-end",
                "2020-12-31",
                "--out",
                str(tmp_path / "rfm.xlsx"),
            ]
        )
        == 2
    )
    assert "unsupported suffix '.xlsx'" in capsys.readouterr().err


def test_quick_mode_changes_data_draws_and_folder():
    cfg = load_config({"name": "cdnow", "quick": True, "data": {"source": "cdnow"},
                       "purchase": {"draws": 3000, "chains": 2, "tune": 900}}).resolved()  # fmt: skip
    assert cfg.name == "cdnow_quick" and cfg.data.source == "cdnow_sample"
    # the data is cut, not the chains: full-length chains on the sample (QuickConfig's docstring)
    assert (cfg.purchase.chains, cfg.purchase.draws, cfg.purchase.tune) == (4, 1000, None)
    assert (cfg.gamma_gamma.chains, cfg.gamma_gamma.draws) == (4, 1000)
    own = load_config({"name": "c", "quick": True,
                       "quick_settings": {"chains": 2, "draws": 300, "tune": 200}}).resolved()  # fmt: skip
    assert (own.purchase.chains, own.purchase.draws, own.purchase.tune) == (2, 300, 200)
    full = load_config({"name": "cdnow", "quick": False}).resolved()
    assert full.name == "cdnow" and full.purchase.draws == 1000


def test_config_reports_every_wrong_value_before_any_work():
    bad = {
        "name": "x",
        "clv": {"discount_rate": "1%", "margin": "high", "horizon": "year", "time_unit": "M"},
        "data": {"segment_cols": "channel"},
        "features": {"calibration_end": "soon"},
        "purchase": {"draws": 0, "chains": True, "target_accept": 1.5},
        "survival": {"lapse_after": -1},
    }
    with pytest.raises(ClvlabInputError) as err:
        load_config(bad)
    msg = str(err.value)
    for key in (
        "clv.discount_rate",
        "clv.margin",
        "clv.horizon",
        "data.segment_cols",
        "features.calibration_end",
        "purchase.draws",
        "purchase.chains",
        "purchase.target_accept",
        "survival.lapse_after",
    ):
        assert f"config.{key}" in msg, key
    assert "renamed to clv.period" in msg
    assert len(err.value.problems) == 10
    with pytest.raises(ClvlabInputError, match="must be after calibration_end"):
        load_config({"name": "x", "features": {"calibration_end": "1998-09-30", "observation_end": "1998-06-30"}})
    with pytest.raises(ClvlabInputError, match="config.name"):
        load_config({"name": "../escape"})


def test_two_identical_runs_give_bit_identical_tables_and_hashes(first_run, tmp_path):
    """Same config, same seed, fresh folders: the same data hashes and the same bits in every table."""
    from clvlab.versions import data_hash

    _, _, res, _ = first_run
    again = Study(dict(MAP_CONFIG), root=tmp_path, cache=False, log=lambda s: None, progress=False).run()
    assert again.data.hash == res.data.hash and again.features.hash == res.features.hash
    assert data_hash(again.spend.fit_data) == data_hash(res.spend.fit_data)
    for name in ("customers", "sensitivity"):
        assert data_hash(getattr(again.clv, name)) == data_hash(getattr(res.clv, name)), name
    for col, table in res.clv.by_segment.items():  # per-draw totals: summed in chunk order, not thread order
        assert data_hash(again.clv.by_segment[col]) == data_hash(table), col
    assert data_hash(again.churn.lapse_table) == data_hash(res.churn.lapse_table)
    pd.testing.assert_frame_equal(again.churn.comparison, res.churn.comparison, check_exact=True)
