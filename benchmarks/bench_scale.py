"""Scale benchmark: 10k, 100k and 1M simulated customers in 20 segments, clvlab against the
strongest baselines, side by side in one run; results merged into benchmarks/results/scale.json.

    .venv/bin/python benchmarks/bench_scale.py [--sizes 10000 100000 1000000] [--budget-s 900]

Per size, one simulated business (20 segments whose BG/NBD and Gamma-Gamma parameters are drawn
around common means; weekly RFM at day resolution, days / 7) and, each in a fresh process (wall
time and peak RSS are that process's; a run past ``--budget-s`` is killed and reported as not
finished within the budget, never left out):

- clvlab: hierarchical BG/NBD partially pooled by segment, NUTS (nutpie) 4 x 1000; the pooled
  BG/NBD, NUTS 4 x 1000 (the like-for-like row for pymc-marketing); its MAP (partial); the
  Gamma-Gamma partially pooled by segment, NUTS 4 x 1000 on the repeat buyers;
  ``--numpyro`` adds the partial BG/NBD on numpyro (JAX, CPU here; ``--device gpu`` on a GPU).
- pymc-marketing ``BetaGeoModel`` on the pooled data (it has no segment hierarchy) with its
  fastest sampler (``nuts_sampler="nutpie"``), the same 4 x 1000 after 1000 warm-up, and its MAP;
- lifetimes ``BetaGeoFitter`` (MLE) on the pooled data.

ESS/s is the smallest bulk ESS of (r, alpha, a, b) over the whole wall time (compile included).
benchmarks/results_md.py renders the table into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results" / "scale.json"
PARAMS = ("r", "alpha", "a", "b")
SEGMENTS = 20
TASKS = ("clvlab_nuts_partial", "clvlab_nuts_pooled", "clvlab_map_partial", "clvlab_gg_partial",
         "clvlab_numpyro_partial", "pymc_marketing_nutpie", "pymc_marketing_map", "lifetimes_mle")


def rfm_path(n: int) -> Path:
    return DATA / f"scale_rfm_{n}.parquet"


def prepare(n: int, seed: int = 0) -> Path:
    """The simulated weekly RFM table of ``n`` customers in 20 segments (made once, reused)."""
    path = rfm_path(n)
    if path.exists():
        return path
    from clvlab.data.simulate import SegmentParams, simulate
    from clvlab.features import rfm_summary
    from clvlab.io import atomic_path

    rng = np.random.default_rng(seed)
    names = [f"seg{i:02d}" for i in range(SEGMENTS)]
    jitter = lambda mean: float(np.exp(rng.normal(np.log(mean), 0.3)))  # noqa: E731
    segs = {g: SegmentParams(r=jitter(0.4), alpha=jitter(5.0), a=jitter(0.8), b=jitter(2.5), p=jitter(6.0),
                             q=jitter(4.0), gamma=jitter(15.0)) for g in names}  # fmt: skip
    sizes = np.maximum((rng.dirichlet(np.full(SEGMENTS, 2.0)) * n).astype(int), 30)
    sim = simulate(segs, n_customers=dict(zip(names, map(int, sizes), strict=True)), seed=seed, segment_col="segment")
    rfm = rfm_summary(sim.transactions, sim.observation_end, "W", segment_cols=["segment"])
    DATA.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        rfm.to_parquet(tmp, index=False)
    return path


def _min_ess(idata: Any, names: tuple[str, ...]) -> float:
    import arviz as az

    ess = az.ess(idata, var_names=list(names), method="bulk")
    ess = ess["posterior"] if "posterior" in getattr(ess, "children", {}) else ess
    return float(min(float(np.min(ess[k])) for k in names))


# ---- one measured task, in its own process ---------------------------------------------------
def worker(task: str, path: str, chains: int, draws: int, device: str) -> dict[str, Any]:
    import pandas as pd

    rfm = pd.read_parquet(path)
    rfm.attrs["time_unit"] = "W"
    pooled = rfm[["customer_id", "frequency", "recency", "T"]]
    # imports before the clock: wall time is the fit's, not the libraries' start-up
    from lifetimes import BetaGeoFitter
    from pymc_marketing.clv import BetaGeoModel

    from clvlab.models.bgnbd import BGNBD
    from clvlab.models.gamma_gamma import GammaGamma

    out: dict[str, Any] = {"n_customers": len(rfm), "loadavg_1min_before": os.getloadavg()[0]}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if task.startswith("clvlab_"):
            if task == "clvlab_gg_partial":
                rep = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
                m = GammaGamma(pooling="partial", segment="segment").fit(rep, chains=chains, draws=draws, seed=1,
                                                                         progressbar=False)  # fmt: skip
                out.update(n_repeaters=len(rep), n_patterns=getattr(m, "n_patterns_", None),
                           centered={k: len(v) for k, v in m.centered_.items()}, compile_s=m.fit_info_.get("compile_s"),
                           centering_s=m.fit_info_.get("centering_s"))  # fmt: skip
                names = tuple(v for v in ("p", "q", "gamma") if v in m.posterior_)
            else:
                kwargs: dict[str, Any] = {"chains": chains, "draws": draws, "seed": 1, "progressbar": False}
                if task == "clvlab_map_partial":
                    kwargs = {"method": "map", "progressbar": False}
                if task == "clvlab_numpyro_partial":
                    kwargs.update(sampler="numpyro", device=device)
                est = BGNBD(pooling="pooled") if task == "clvlab_nuts_pooled" else BGNBD(pooling="partial",
                                                                                          segment="segment")  # fmt: skip
                m = est.fit(pooled if task == "clvlab_nuts_pooled" else rfm, **kwargs)
                out.update(n_patterns=m.n_patterns_, compile_s=m.fit_info_.get("compile_s"),
                           device=m.fit_info_.get("device"))  # fmt: skip
                names = PARAMS
            wall = time.perf_counter() - t0
            out["nutpie_adaptation"] = m.fit_info_.get("nutpie_adaptation")
            if "n_steps" in getattr(m.idata_.get("sample_stats"), "data_vars", {}):
                out["steps_per_draw"] = float(m.idata_["sample_stats"]["n_steps"].mean())
            if m.convergence_ is not None:
                c = m.convergence_
                d = m.diagnostics_  # clvlab's own diagnostics table, as in the other benchmarks
                out.update(min_ess_bulk=float(d.loc[d["parameter"].isin(names), "ess_bulk"].min()), max_r_hat=c["max_r_hat"],
                           divergences=c["divergences"])  # fmt: skip
        elif task.startswith("pymc_marketing_"):
            model = BetaGeoModel()
            if task == "pymc_marketing_map":
                model.fit(data=pooled, method="map", progressbar=False)
                wall = time.perf_counter() - t0
            else:
                idata = model.fit(data=pooled, method="mcmc", nuts_sampler="nutpie", progressbar=False,
                                  random_seed=1, draws=draws, tune=1000, chains=chains)  # fmt: skip
                wall = time.perf_counter() - t0
                out["min_ess_bulk"] = _min_ess(idata, PARAMS)
        elif task == "lifetimes_mle":
            BetaGeoFitter().fit(pooled["frequency"], pooled["recency"], pooled["T"])
            wall = time.perf_counter() - t0
        else:
            raise SystemExit(f"unknown task {task!r}")
    out["wall_s"] = wall
    if "min_ess_bulk" in out:
        out["ess_per_s"] = out["min_ess_bulk"] / wall
    out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return out


def run_task(task: str, path: Path, chains: int, draws: int, budget_s: float, device: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", task, str(path), str(chains), str(draws), device]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget_s)
    except subprocess.TimeoutExpired:
        return {"finished": False, "reason": f"did not finish within the {budget_s:.0f} s budget"}
    if proc.returncode != 0:
        return {"finished": False, "reason": f"exit {proc.returncode}", "stderr_tail": proc.stderr[-1500:]}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(finished=True, process_wall_s=time.perf_counter() - t0)
    return res


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--tasks", nargs="+", default=[t for t in TASKS if t != "clvlab_numpyro_partial"], choices=TASKS)
    ap.add_argument("--numpyro", action="store_true", help="add the partial BG/NBD on numpyro (JAX)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "gpu"], help="numpyro's JAX device")
    ap.add_argument("--budget-s", type=float, default=900.0, help="wall-clock budget of one baseline run")
    ap.add_argument("--clvlab-budget-s", type=float, default=4 * 3600.0, help="wall-clock budget of a clvlab run")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=RESULTS, help="results file (RESULTS.md is rendered from the default)")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        task, path, chains, draws, device = args.worker
        print(json.dumps(worker(task, path, int(chains), int(draws), device)))
        return {}

    from clvlab.io import write_json
    from clvlab.versions import package_versions

    tasks = list(args.tasks) + (["clvlab_numpyro_partial"] if args.numpyro else [])
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["environment"] = dict(machine=platform.machine(), cpus=os.cpu_count(), python=platform.python_version(),
                                  versions=package_versions(), loadavg_1min_before=os.getloadavg()[0])  # fmt: skip
    results["settings"] = dict(chains=args.chains, draws=args.draws, budget_s=args.budget_s, segments=SEGMENTS,
                               clvlab_budget_s=args.clvlab_budget_s, device=args.device)  # fmt: skip
    sizes = results.setdefault("sizes", {})
    for n in args.sizes:
        t0 = time.perf_counter()
        path = prepare(n)
        row = sizes.setdefault(str(n), {})
        row["prepare_s"] = time.perf_counter() - t0
        for task in tasks:
            # clvlab's own runs get a long budget of their own: a missed target is a number, not a timeout
            budget = args.budget_s if not task.startswith("clvlab_") else args.clvlab_budget_s
            res = run_task(task, path, args.chains, args.draws, budget, args.device)
            row[task] = res
            shown = (f"{res['wall_s']:.1f} s" + (f", ESS/s {res['ess_per_s']:.2f}" if "ess_per_s" in res else "")
                     if res["finished"] else res["reason"])  # fmt: skip
            print(f"{n:>9,} {task:<26} {shown}", flush=True)
            results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            write_json(args.out, results)
    if args.out == RESULTS:
        from results_md import write_results_md

        print(f"wrote {write_results_md()}")
    return results


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
