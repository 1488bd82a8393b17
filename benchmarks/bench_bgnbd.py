"""BG/NBD speed benchmark; results merged into benchmarks/results/bgnbd.json (atomic write).

Parts (run all, or some with --parts):
  cdnow_partial  full CDNOW (23,570 customers, weekly = days/7, calibration to 1997-09-30),
                 12 acquisition-week cohorts as segments, partial pooling, NUTS 4 x 1000
                 (wall time including compilation; nutpie backends numba and/or jax)
  compare        the same data pooled: ESS/s of clvlab (nutpie) vs pymc-marketing BetaGeoModel
                 (its NUTS), and MAP time vs lifetimes BetaGeoFitter
                 (MAP: L-BFGS-B on a FAST_COMPILE pytensor logp+gradient, see models/base.py)
  cdnow_map      full CDNOW MAP only: pooled (vs lifetimes) and partial pooling by cohort (cheap)
  sim1m          1,000,000 simulated customers in 20 segments: MAP and NUTS (partial pooling)

    python benchmarks/bench_bgnbd.py --parts cdnow_partial compare
    python benchmarks/bench_bgnbd.py --quick              # small draws / 100k customers, smoke run
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

from clvlab.data.cdnow import load_cdnow
from clvlab.features import rfm_summary
from clvlab.io import write_json
from clvlab.models.bgnbd import BGNBD
from clvlab.versions import package_versions

RESULTS = Path(__file__).resolve().parent / "results" / "bgnbd.json"
CAL_END = "1997-09-30"
PARAMS = ("r", "alpha", "a", "b")


def _map_info(m) -> dict:  # type: ignore[no-untyped-def]
    """A MAP fit's costs, as the results files record them."""
    i = m.fit_info_
    return dict(build_s=i.build_s, map_compile_s=i.map.compile_s, map_optimise_s=i.map.optimise_s,
                map_n_eval=i.map.n_eval, map_converged=i.map.converged)  # fmt: skip


def cdnow_rfm(cohorts: int = 12) -> pd.DataFrame:
    """Full CDNOW RFM (weeks, days/7) with ``cohort_week`` = acquisition week 0..cohorts-1 (last one open-ended)."""
    rfm = rfm_summary(load_cdnow(), CAL_END, "W")
    days = (pd.to_datetime(rfm["first_purchase"]) - pd.Timestamp("1997-01-01")).dt.days
    rfm["cohort_week"] = [f"w{int(w):02d}" for w in np.minimum(days // 7, cohorts - 1)]
    return rfm


def _min_ess(model: BGNBD) -> float:
    d = model.diagnostics_
    return float(d.loc[d["parameter"].isin(PARAMS), "ess_bulk"].min())


def bench_cdnow_partial(draws: int, tune: int, chains: int, backends: list[str]) -> dict[str, Any]:
    rfm = cdnow_rfm()
    out: dict[str, Any] = {"n_customers": len(rfm), "segments": int(rfm["cohort_week"].nunique())}
    for backend in backends:
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            m = BGNBD(pooling="partial", segment="cohort_week").fit(
                rfm, chains=chains, draws=draws, tune=tune, seed=1, progressbar=False, nutpie_backend=backend
            )
        wall = time.perf_counter() - t0
        out[backend] = dict(
            wall_s=wall, compile_s=m.fit_info_.compile_s, n_patterns=m.n_patterns_, min_ess_bulk=_min_ess(m),
            ess_per_s=_min_ess(m) / wall, convergence=m.convergence_, warnings=[str(x.message) for x in w],
            chains=chains, draws=draws, tune=m.fit_info_.tune, target_s=60.0, meets_target=wall < 60.0,
            loadavg_1min_after=os.getloadavg()[0],  # other processes on the machine slow it down
        )  # fmt: skip
        print(f"cdnow_partial[{backend}]: {wall:.1f}s wall (compile {m.fit_info_.compile_s:.1f}s), "
              f"{m.n_patterns_} patterns, min ESS {_min_ess(m):.0f}, max R-hat {m.convergence_.max_r_hat:.4f}, "
              f"divergences {m.convergence_.divergences}")  # fmt: skip
    return out


def bench_compare(draws: int, tune: int, chains: int) -> dict[str, Any]:
    rfm = cdnow_rfm()
    data = rfm[["customer_id", "frequency", "recency", "T"]].copy()
    tune = tune or 1000  # the same warm-up for both samplers (pm.sample's default), like for like
    out: dict[str, Any] = {"n_customers": len(data), "chains": chains, "draws": draws, "tune": tune}

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = BGNBD(pooling="pooled").fit(data, chains=chains, draws=draws, tune=tune, seed=1, progressbar=False)
    wall = time.perf_counter() - t0
    out["clvlab_nuts"] = dict(wall_s=wall, compile_s=ours.fit_info_.compile_s, min_ess_bulk=_min_ess(ours),
                              ess_per_s=_min_ess(ours) / wall, n_patterns=ours.n_patterns_,
                              means={k: float(ours.posterior_[k].mean()) for k in PARAMS})  # fmt: skip
    print(f"compare clvlab NUTS: {wall:.1f}s, ESS/s {out['clvlab_nuts']['ess_per_s']:.1f}")

    try:
        import arviz as az
        from pymc_marketing.clv import BetaGeoModel

        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pmm = BetaGeoModel()
            idata = pmm.fit(data=data, method="mcmc", progressbar=False, random_seed=1,
                            draws=draws, tune=tune, chains=chains)  # fmt: skip
        wall_p = time.perf_counter() - t0
        ess = az.ess(idata, var_names=list(PARAMS), method="bulk")
        ess = ess["posterior"] if "posterior" in getattr(ess, "children", {}) else ess
        min_ess = float(min(float(ess[k].min()) for k in PARAMS))
        out["pymc_marketing_nuts"] = dict(
            wall_s=wall_p, min_ess_bulk=min_ess, ess_per_s=min_ess / wall_p,
            means={k: float(idata["posterior"][k].mean()) for k in PARAMS},
        )  # fmt: skip
        out["ess_per_s_ratio"] = out["clvlab_nuts"]["ess_per_s"] / out["pymc_marketing_nuts"]["ess_per_s"]
        print(
            f"compare pymc-marketing NUTS: {wall_p:.1f}s, ESS/s {min_ess / wall_p:.1f}; ratio {out['ess_per_s_ratio']:.1f}x"
        )
    except Exception as e:  # noqa: BLE001 (a baseline failure must not lose our numbers)
        out["pymc_marketing_nuts"] = {"error": repr(e)}
        print("pymc-marketing failed:", repr(e))

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp = BGNBD(pooling="pooled").fit(data, method="map", progressbar=False)
    out["clvlab_map"] = dict(wall_s=time.perf_counter() - t0, params={k: float(mp.posterior_[k].mean()) for k in PARAMS},
                             **_map_info(mp))  # fmt: skip
    out["lifetimes_map"] = lifetimes_mle(data)
    print(
        f"compare MAP: clvlab {out['clvlab_map']['wall_s']:.1f}s, lifetimes {out['lifetimes_map'].get('wall_s', float('nan')):.1f}s"
    )
    return out


def lifetimes_mle(data: pd.DataFrame) -> dict[str, Any]:
    """Baseline: lifetimes BetaGeoFitter MLE on the same RFM table (wall time and parameters)."""
    try:
        from lifetimes import BetaGeoFitter

        t0 = time.perf_counter()
        f = BetaGeoFitter().fit(data["frequency"], data["recency"], data["T"])
        return dict(wall_s=time.perf_counter() - t0, params={k: float(f.params_[k]) for k in PARAMS})
    except Exception as e:  # noqa: BLE001
        return {"error": repr(e)}


def bench_cdnow_map() -> dict[str, Any]:
    rfm = cdnow_rfm()
    out: dict[str, Any] = {"n_customers": len(rfm)}
    cases = {"pooled": (BGNBD(pooling="pooled"), rfm[["customer_id", "frequency", "recency", "T"]]),
             "partial": (BGNBD(pooling="partial", segment="cohort_week"), rfm)}  # fmt: skip
    for name, (est, data) in cases.items():
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(data, method="map", progressbar=False)
        out[name] = dict(wall_s=time.perf_counter() - t0, **_map_info(est),
                         params={k: est.posterior_[k].values.ravel().tolist() for k in PARAMS})  # fmt: skip
        print(f"cdnow_map[{name}]: {out[name]['wall_s']:.2f}s ({est.fit_info_.map.n_eval} evaluations)")
    out["lifetimes_pooled"] = lifetimes_mle(rfm)
    return out


def simulated_rfm(
    n: int, n_segments: int = 20, seed: int = 0, whole_periods: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    from clvlab.data.simulate import SegmentParams, simulate

    rng = np.random.default_rng(seed)
    names = [f"seg{i:02d}" for i in range(n_segments)]
    segs = {
        g: SegmentParams(
            r=float(np.exp(rng.normal(np.log(0.4), 0.3))),
            alpha=float(np.exp(rng.normal(np.log(5.0), 0.3))),
            a=float(np.exp(rng.normal(np.log(0.8), 0.3))),
            b=float(np.exp(rng.normal(np.log(2.5), 0.3))),
        )  # fmt: skip
        for g in names
    }
    w = rng.dirichlet(np.full(n_segments, 2.0))
    sizes = np.maximum((w * n).astype(int), 30)
    sim = simulate(segs, n_customers=dict(zip(names, map(int, sizes), strict=True)), seed=seed, segment_col="channel")
    rfm = rfm_summary(sim.transactions, sim.observation_end, "W", segment_cols=["channel"], whole_periods=whole_periods)
    return rfm, sim.truth


def bench_sim(n: int, draws: int, tune: int, chains: int, whole_periods: bool, skip_nuts: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    rfm, truth = simulated_rfm(n, whole_periods=whole_periods)
    out: dict[str, Any] = {"n_customers": len(rfm), "segments": int(rfm["channel"].nunique()),
                           "whole_periods": whole_periods, "simulate_rfm_s": time.perf_counter() - t0}  # fmt: skip
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp = BGNBD(pooling="partial", segment="channel").fit(rfm, method="map", progressbar=False)
    out["map"] = dict(wall_s=time.perf_counter() - t0, n_patterns=mp.n_patterns_, target_s=15.0,
                      **_map_info(mp))  # fmt: skip
    out["map"]["meets_target"] = out["map"]["wall_s"] < 15.0
    print(f"sim{n}: MAP {out['map']['wall_s']:.1f}s ({mp.n_patterns_} patterns)")
    if not skip_nuts:
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            m = BGNBD(pooling="partial", segment="channel").fit(
                rfm, chains=chains, draws=draws, tune=tune, seed=1, progressbar=False
            )
        wall = time.perf_counter() - t0
        err = {k: float(np.median(np.abs(m.posterior_[k].mean(("chain", "draw")).values / truth.loc[m.segments_, k].values - 1)))
               for k in PARAMS}  # fmt: skip
        out["nuts"] = dict(wall_s=wall, compile_s=m.fit_info_.compile_s, min_ess_bulk=_min_ess(m),
                           centering_s=m.fit_info_.centering_s,
                           n_centered={k: len(v) for k, v in (m.fit_info_.centered or {}).items()},
                           mean_steps_per_draw=float(m.idata_["sample_stats"]["n_steps"].mean()),
                           nutpie_adaptation=m.fit_info_.nutpie_adaptation, n_patterns=m.n_patterns_,
                           convergence=m.convergence_, median_rel_error_vs_truth=err, target_s=600.0,
                           meets_target=wall < 600.0, warnings=[str(x.message) for x in w])  # fmt: skip
        print(f"sim{n}: NUTS {wall:.1f}s, min ESS {_min_ess(m):.0f}, median |rel err| {err}")
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["cdnow_partial", "compare", "sim1m"],
                    choices=["cdnow_partial", "compare", "cdnow_map", "sim1m"])  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="small runs (smoke test)")
    ap.add_argument("--skip-1m", action="store_true", help="leave out the 1M-customer part")
    ap.add_argument("--skip-1m-nuts", action="store_true", help="1M part: MAP only")
    ap.add_argument("--backends", nargs="+", default=["numba"], choices=["numba", "jax"])
    ap.add_argument(
        "--whole-periods",
        action="store_true",
        help="1M part: whole weeks (fewer patterns, biased estimates) instead of days/7",
    )
    ap.add_argument("--tune", type=int, default=None, help="warm-up per chain (default: the sampler's, nutpie 400)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    draws, tune, chains = (200, 200, 2) if args.quick else (1000, args.tune, 4)
    n_sim = 100_000 if args.quick else 1_000_000
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    env = dict(
        machine=platform.machine(), cpus=os.cpu_count(), python=platform.python_version(), versions=package_versions()
    )
    key = "quick" if args.quick else "full"
    section = results.setdefault(key, {})
    section["environment"] = env
    if "cdnow_partial" in args.parts:
        section["cdnow_partial"] = bench_cdnow_partial(draws, tune, chains, args.backends)
        write_json(args.out, results)
    if "compare" in args.parts:
        section["compare_pooled"] = bench_compare(draws, tune, chains)
        write_json(args.out, results)
    if "cdnow_map" in args.parts:
        section["cdnow_map"] = bench_cdnow_map()
        write_json(args.out, results)
    if "sim1m" in args.parts and not args.skip_1m:
        section["sim1m"] = bench_sim(n_sim, draws, tune, chains, args.whole_periods, args.skip_1m_nuts)
        write_json(args.out, results)
    section["finished_at"] = pd.Timestamp.now(tz="UTC").isoformat()
    write_json(args.out, results)
    return results


if __name__ == "__main__":
    main()
