"""The typed records of a fit (FitInfo, MapInfo, Convergence): thresholds, the one formatter, the
JSON round trip (and older saves' flat keys), and print_summary's header."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from clvlab.features import calibration_holdout
from clvlab.models.bgnbd import BGNBD
from clvlab.models.diagnostics import BFMI_MIN, ESS_MIN, RHAT_MAX, Convergence
from clvlab.models.fit_info import FitInfo, MapInfo

CLEAN = Convergence(max_r_hat=1.003, min_ess_bulk=1294.4, min_ess_tail=1510.0, divergences=0, bfmi=(0.95, 0.9),
                    chains=4, draws=1000, worst_r_hat="kappa_sigma", worst_ess_bulk="r[1997-W02]",
                    worst_ess_tail="a")  # fmt: skip


def test_convergence_problems_name_every_crossed_threshold():
    assert CLEAN.problems() == []
    bad = dataclasses.replace(CLEAN, max_r_hat=RHAT_MAX + 0.002, min_ess_bulk=ESS_MIN - 1, min_ess_tail=ESS_MIN - 50,
                              divergences=3, bfmi=(0.95, BFMI_MIN - 0.1))  # fmt: skip
    problems = bad.problems()
    assert len(problems) == 5
    assert problems[0].startswith("max R-hat 1.0120 > 1.01") and "3 divergent transitions" in problems
    assert problems[-1] == f"BFMI {BFMI_MIN - 0.1:.2f} < {BFMI_MIN} in 1 chain(s)"
    # the bounds themselves pass (R-hat must exceed, ESS fall below)
    assert dataclasses.replace(CLEAN, max_r_hat=RHAT_MAX, min_ess_bulk=ESS_MIN, min_ess_tail=ESS_MIN).problems() == []


def test_convergence_describe_is_the_one_line():
    assert CLEAN.describe() == ("max R-hat 1.003 (kappa_sigma), min bulk ESS 1,294 (r[1997-W02]), min tail ESS "
                                "1,510 (a), 0 divergences, min BFMI 0.90; 4 x 1,000 draws")  # fmt: skip
    unnamed = dataclasses.replace(CLEAN, worst_r_hat="", worst_ess_bulk="", worst_ess_tail="", bfmi=())
    assert unnamed.describe().startswith("max R-hat 1.003, min bulk ESS 1,294, min tail ESS 1,510,")
    assert math.isnan(unnamed.min_bfmi) and CLEAN.n_draws == 4000


def test_records_round_trip_through_json():
    back = Convergence.from_dict(json.loads(json.dumps(CLEAN.to_dict())))
    assert back == CLEAN and isinstance(back.bfmi, tuple)
    assert Convergence.from_dict(None) is None and FitInfo.from_dict({}) is None
    info = FitInfo(method="map", sampler=None, chains=4, draws=1000, tune=400, seed=3, target_accept=0.8,
                   mean_centred=False, nutpie_backend=None, device="cpu", n_rows=10, data_hash="ab" * 32, build_s=1.0,
                   compile_s=2.0, fit_s=3.0, centered={"r": ["s1"]},
                   map=MapInfo(converged=True, message="ok", n_eval=7, n_iter=5, logp=-12.5, compile_s=2.0,
                               optimise_s=0.5))  # fmt: skip
    assert FitInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info
    # a save of an older clvlab: the optimiser's report as flat map_* keys, and keys since dropped
    old = {k: v for k, v in info.to_dict().items() if k != "map"} | {
        "map_converged": True, "map_message": "ok", "map_n_eval": 7, "map_n_iter": 5, "map_logp": -12.5,
        "map_compile_s": 2.0, "map_optimise_s": 0.5, "retired_key": 1}  # fmt: skip
    assert FitInfo.from_dict(old) == info


def test_print_summary_has_a_header_in_the_manner_of_lifelines(cdnow_sample_tx, capsys, tmp_path):
    rfm = calibration_holdout(cdnow_sample_tx, "1997-09-30", "1998-06-30", time_unit="W", cohort_freq="M")
    m = BGNBD(pooling="partial", segment="cohort").fit(rfm, method="map", seed=2)
    m.print_summary()
    out = capsys.readouterr().out
    head, _, table = out.partition("\n---\n")
    lines = head.splitlines()
    assert lines[0] == "<clvlab.BGNBD: BG/NBD, partial across 3 segments of 'cohort'>"
    fields = dict(line.strip().split(" = ", 1) for line in lines[1:])
    assert list(fields) == ["model", "pooling", "data", "fit", "diagnostics"]
    assert fields["data"] == f"2,357 rows, time unit 'W', data hash {m.fit_info_.data_hash[:12]}"
    assert fields["fit"].startswith("MAP (L-BFGS-B, converged in ") and "seed 2" in fields["fit"]
    assert fields["diagnostics"] == "none (MAP fit)"
    assert table.split()[:6] == ["parameter", "segment", "mean", "sd", "hdi_low", "hdi_high"]
    # the records survive save / load as records
    loaded = BGNBD.load(m.save(tmp_path / "fit"))
    assert loaded.fit_info_ == m.fit_info_ and loaded.fit_info_.map.converged and loaded.convergence_ is None


@pytest.mark.filterwarnings("ignore::clvlab.errors.ConvergenceWarning")  # 2 x 200 draws: tail ESS < 400
def test_nuts_fit_records_its_sampler_and_worst_parameters(cdnow_sample_tx, tmp_path):
    rfm = calibration_holdout(cdnow_sample_tx, "1997-09-30", "1998-06-30", time_unit="W")
    m = BGNBD(pooling="pooled").fit(rfm, chains=2, draws=200, tune=200, seed=4, progressbar=False)
    c, table = m.convergence_, m.diagnostics_
    assert c.max_r_hat == table["r_hat"].max() and c.min_ess_bulk == table["ess_bulk"].min()
    assert c.worst_r_hat == table.loc[table["r_hat"].idxmax(), "parameter"]
    assert (c.chains, c.draws, len(c.bfmi)) == (2, 200, 2)
    assert m.fit_info_.describe().startswith("NUTS (nutpie, numba, low_rank), 2 chains x 200 draws after 200 warm-up, "
                                             "target_accept 0.8, seed 4; ")  # fmt: skip
    loaded = BGNBD.load(m.save(tmp_path / "fit"))
    assert loaded.convergence_ == c and loaded.fit_info_ == m.fit_info_
