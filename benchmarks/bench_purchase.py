"""MBG/NBD and Pareto/NBD speed and the classic MLE rows; results in benchmarks/results/purchase.json (atomic).

Parts (run all, or some with --parts):
  partial   full CDNOW (23,570 customers, weeks = days/7, calibration to 1997-09-30), 12
            acquisition-week cohorts, partial pooling, NUTS 4 x 1000: wall time including
            compilation (target < 60 s each on 2 cores), with BG/NBD fitted first the same way as
            the machine's yardstick (wall_ratio_to_bgnbd)
  compare   the same data pooled: ESS/s of clvlab (nutpie) vs pymc-marketing's
            ModifiedBetaGeoModel / ParetoNBDModel with their fastest sampler (nuts_sampler="nutpie"),
            in the same run, same warm-up (ParetoNBDModel only with --baselines pareto_nbd: it did not
            finish in 20 min here)
  mle       the classic rows: lifetimes' ModifiedBetaGeoFitter / ParetoNBDFitter (dev-only oracles)
            against clvlab's flat-prior MAP (the pipeline's MLE rows) on the same data: parameters,
            log-likelihood and holdout MAE at each fit's parameters

    python benchmarks/bench_purchase.py --parts partial compare mle
    python benchmarks/bench_purchase.py --parts compare --models pareto_nbd --baselines pareto_nbd \
        --compare-customers 2357                   # Pareto/NBD ratio on a tenth of the customers
    python benchmarks/bench_purchase.py --quick      # 2 x 200 draws, smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bench_bgnbd import CAL_END, cdnow_rfm

from clvlab.data.cdnow import load_cdnow
from clvlab.features import calibration_holdout
from clvlab.io import write_json
from clvlab.models import mbgnbd_math, pareto_nbd_math, purchase_model_class
from clvlab.versions import package_versions

RESULTS = Path(__file__).resolve().parent / "results" / "purchase.json"
MODELS = {"mbgnbd": ("r", "alpha", "a", "b"), "pareto_nbd": ("r", "alpha", "s", "beta")}
REFERENCE = ("bgnbd", ("r", "alpha", "a", "b"))
"""Fitted first in the partial part, the same way: the machine's speed in the same run (timings
vary about 2x between machines), so the other models' walls read as ratios to it."""
MATH = {"mbgnbd": mbgnbd_math, "pareto_nbd": pareto_nbd_math}


def _min_ess(model: Any, names: tuple[str, ...]) -> float:
    d = model.diagnostics_
    return float(d.loc[d["parameter"].isin(names), "ess_bulk"].min())


def bench_partial(draws: int, tune: int | None, chains: int, models: list[str]) -> dict[str, Any]:
    rfm = cdnow_rfm()
    out: dict[str, Any] = {"n_customers": len(rfm), "segments": int(rfm["cohort_week"].nunique())}
    for name in [REFERENCE[0], *models]:
        params = MODELS.get(name, REFERENCE[1])
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            m = purchase_model_class(name)(pooling="partial", segment="cohort_week").fit(
                rfm, chains=chains, draws=draws, tune=tune, seed=1, progressbar=False
            )
        wall = time.perf_counter() - t0
        out[name] = dict(wall_s=wall, compile_s=m.fit_info_.compile_s, n_patterns=m.n_patterns_,
                         min_ess_bulk=_min_ess(m, params), ess_per_s=_min_ess(m, params) / wall,
                         convergence=m.convergence_, warnings=[str(x.message) for x in w], chains=chains, draws=draws,
                         target_s=60.0, meets_target=wall < 60.0, loadavg_1min_after=os.getloadavg()[0],
                         wall_ratio_to_bgnbd=wall / out[REFERENCE[0]]["wall_s"] if name != REFERENCE[0] else 1.0)  # fmt: skip
        print(f"partial[{name}]: {wall:.1f}s wall (compile {m.fit_info_.compile_s:.1f}s), {m.n_patterns_} patterns, "
              f"min ESS {_min_ess(m, params):.0f}, max R-hat {m.convergence_.max_r_hat:.4f}, "
              f"divergences {m.convergence_.divergences}", flush=True)  # fmt: skip
    return out


def bench_compare(
    draws: int, tune: int | None, chains: int, models: list[str], baselines: list[str], n_customers: int | None = None
) -> dict[str, Any]:
    import arviz as az

    rfm = cdnow_rfm()
    data = rfm[["customer_id", "frequency", "recency", "T"]].copy()
    if n_customers is not None:  # a seeded random subset: a size a slow baseline can finish
        data = data.sample(n=n_customers, random_state=1).sort_index()
    tune = tune or 1000  # the same warm-up for both, like for like
    out: dict[str, Any] = {"n_customers": len(data), "chains": chains, "draws": draws, "tune": tune}
    for name in models:
        params = MODELS[name]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = purchase_model_class(name)(pooling="pooled").fit(data, chains=chains, draws=draws, tune=tune, seed=1,
                                                                    progressbar=False)  # fmt: skip
        wall = time.perf_counter() - t0
        res: dict[str, Any] = {"clvlab": dict(wall_s=wall, min_ess_bulk=_min_ess(ours, params),
                                              ess_per_s=_min_ess(ours, params) / wall,
                                              means={k: float(ours.posterior_[k].mean()) for k in params})}  # fmt: skip
        if name not in baselines:
            res["pymc_marketing_nutpie"] = {"skipped": "not in --baselines"}
            out[name] = res
            print(f"compare[{name}]: clvlab {wall:.1f}s ESS/s {res['clvlab']['ess_per_s']:.1f} (baseline skipped)")
            continue
        try:
            from pymc_marketing.clv import ModifiedBetaGeoModel, ParetoNBDModel

            cls = ModifiedBetaGeoModel if name == "mbgnbd" else ParetoNBDModel
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                idata = cls().fit(data=data, method="mcmc", nuts_sampler="nutpie", progressbar=False, random_seed=1,
                                  draws=draws, tune=tune, chains=chains)  # fmt: skip
            wall_p = time.perf_counter() - t0
            ess = az.ess(idata, var_names=list(params), method="bulk")
            ess = ess["posterior"] if "posterior" in getattr(ess, "children", {}) else ess
            min_ess = float(min(float(ess[k].min()) for k in params))
            res["pymc_marketing_nutpie"] = dict(wall_s=wall_p, min_ess_bulk=min_ess, ess_per_s=min_ess / wall_p,
                                                means={k: float(idata["posterior"][k].mean()) for k in params})  # fmt: skip
            res["ess_per_s_ratio"] = res["clvlab"]["ess_per_s"] / res["pymc_marketing_nutpie"]["ess_per_s"]
            print(
                f"compare[{name}]: clvlab {wall:.1f}s ESS/s {res['clvlab']['ess_per_s']:.1f}; pymc-marketing (nutpie) "
                f"{wall_p:.1f}s ESS/s {min_ess / wall_p:.1f}; ratio {res['ess_per_s_ratio']:.1f}x",
                flush=True,
            )
        except Exception as e:  # noqa: BLE001 (a baseline failure must not lose our numbers)
            res["pymc_marketing_nutpie"] = {"error": repr(e)}
            print(f"compare[{name}]: pymc-marketing failed: {e!r}", flush=True)
        out[name] = res
    return out


def bench_mle() -> dict[str, Any]:
    """lifetimes' MLE against clvlab's flat-prior MAP on the full CDNOW calibration, and each fit's holdout MAE."""
    rfm = calibration_holdout(load_cdnow(), CAL_END, "1998-06-30", time_unit="W")
    x, tx, T, y = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T", "frequency_holdout"))
    dur = float(rfm["duration_holdout"].iloc[0])
    out: dict[str, Any] = {"n_customers": len(rfm)}
    for name, params in MODELS.items():
        cls = purchase_model_class(name)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = cls(pooling="pooled", priors={k: {"scale": 10.0} for k in cls.link_params}).fit(
                rfm, method="map", progressbar=False
            )
        ours = {k: float(m.posterior_[k].values.ravel()[0]) for k in params}
        res: dict[str, Any] = {"clvlab_map": dict(wall_s=time.perf_counter() - t0, params=ours)}
        try:
            from lifetimes import ModifiedBetaGeoFitter, ParetoNBDFitter

            t0 = time.perf_counter()
            f = (ModifiedBetaGeoFitter() if name == "mbgnbd" else ParetoNBDFitter()).fit(x, tx, T)
            keys = {"r": "r", "alpha": "alpha", "a": "a", "b": "b", "s": "s", "beta": "beta"}
            res["lifetimes"] = dict(
                wall_s=time.perf_counter() - t0, params={k: float(f.params_[keys[k]]) for k in params}
            )
        except Exception as e:  # noqa: BLE001
            res["lifetimes"] = {"error": repr(e)}
        for who in ("clvlab_map", "lifetimes"):
            p = res[who].get("params")
            if p:
                vals = [p[k] for k in params]
                res[who]["loglik"] = float(MATH[name].loglik(*vals, x, tx, T).sum())
                pred = MATH[name].conditional_expected_purchases(*vals, x, tx, T, dur)
                res[who]["holdout_mae"] = float(np.abs(pred - y).mean())
                res[who]["holdout_total"] = float(pred.sum())
        res["actual_holdout_total"] = float(y.sum())
        print(f"mle[{name}]: clvlab {res['clvlab_map']}; lifetimes {res['lifetimes']}", flush=True)
        out[name] = res
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["partial", "compare", "mle"], choices=["partial", "compare", "mle"])
    ap.add_argument("--quick", action="store_true", help="small runs (smoke test)")
    ap.add_argument("--tune", type=int, default=None)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument(
        "--baselines",
        nargs="+",
        default=["mbgnbd"],
        choices=list(MODELS),
        help="models also fitted with pymc-marketing (nutpie); its ParetoNBDModel did not finish "
        "4 x (1000 + 1000) on full CDNOW in 20 min here, so it is opt-in",
    )
    ap.add_argument(
        "--compare-customers",
        type=int,
        default=None,
        help="the compare part on a seeded random subset of this many customers (results under "
        "compare_<n>): pymc-marketing's ParetoNBDModel finishes there",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    draws, tune, chains = (200, 200, 2) if args.quick else (1000, args.tune, 4)
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    section = results.setdefault("quick" if args.quick else "full", {})
    section["environment"] = dict(machine=platform.machine(), cpus=os.cpu_count(), python=platform.python_version(),
                                  versions=package_versions(), loadavg_1min_before=os.getloadavg()[0])  # fmt: skip
    n_cmp = args.compare_customers
    compare_key = "compare" if n_cmp is None else f"compare_{n_cmp}"
    for part, key, fn in (
        ("partial", "partial", lambda: bench_partial(draws, tune, chains, args.models)),
        ("compare", compare_key, lambda: bench_compare(draws, tune, chains, args.models, args.baselines, n_cmp)),
        ("mle", "mle", bench_mle),
    ):  # fmt: skip
        if part in args.parts:
            section[key] = {**section.get(key, {}), **fn()}  # a subset of models keeps the others' results
            write_json(args.out, results)
    section["finished_at"] = pd.Timestamp.now(tz="UTC").isoformat()
    write_json(args.out, results)
    return results


if __name__ == "__main__":
    main()
