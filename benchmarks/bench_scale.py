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
  the partial BG/NBD on numpyro (JAX: on the CPU, one host device per chain; ``--device gpu`` on
  a GPU machine), stopped after ``--numpyro-budget-s``.
- pymc-marketing ``BetaGeoModel`` on the pooled data (it has no segment hierarchy) with its
  fastest sampler (``nuts_sampler="nutpie"``), the same 4 x 1000 after 1000 warm-up, and its MAP;
- lifetimes ``BetaGeoFitter`` (MLE) on the pooled data;
- posterior CLV of every customer (12 monthly periods, 1% discount, all 4 x 1000 draws) on the
  posteriors the fits saved: clvlab on the partial fits (BG/NBD and Gamma-Gamma by segment) and on
  the pooled ones (``clvlab_gg_pooled`` is the pooled spend fit), and pymc-marketing's
  ``expected_customer_lifetime_value`` on the same pooled draws, its address space capped at
  ``--mm-limit-gb`` (it builds dense chain x draw x customer arrays).

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
TASKS = (
    "clvlab_nuts_partial",
    "clvlab_nuts_pooled",
    "clvlab_map_partial",
    "clvlab_gg_partial",
    "clvlab_gg_pooled",
    "pymc_marketing_nutpie",
    "pymc_marketing_map",
    "lifetimes_mle",
    "clvlab_clv_partial",
    "clvlab_clv_pooled",
    "pymc_marketing_clv",
    "clvlab_numpyro_partial",
)
# posterior CLV runs on the posteriors the fits above saved (clvlab's for both libraries: the cost of
# evaluating CLV does not depend on which sampler drew them): task -> (purchase fit, spend fit)
CLV_INPUTS = {
    "clvlab_clv_partial": ("clvlab_nuts_partial", "clvlab_gg_partial"),
    "clvlab_clv_pooled": ("clvlab_nuts_pooled", "clvlab_gg_pooled"),
    "pymc_marketing_clv": ("clvlab_nuts_pooled", "clvlab_gg_pooled"),
}
SAVES = {fit for fits in CLV_INPUTS.values() for fit in fits}
"""The fits that keep their posterior for the CLV tasks."""


def rfm_path(n: int) -> Path:
    return DATA / f"scale_rfm_{n}.parquet"


def posterior_path(rfm: str | Path, task: str) -> Path:
    """Where fit ``task`` on the RFM table ``rfm`` keeps its posterior for the CLV tasks."""
    rfm = Path(rfm)
    return rfm.with_name(f"{rfm.stem.replace('scale_rfm', 'scale_post')}_{task}.nc")


def _save_posterior(m: Any, rfm: str | Path, task: str, names: tuple[str, ...]) -> None:
    from clvlab.io import atomic_path

    with atomic_path(posterior_path(rfm, task)) as tmp:
        m.posterior_[list(names)].to_netcdf(tmp, engine="h5netcdf")


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
def clv_worker(task: str, rfm: Any, path: str) -> dict[str, Any]:
    """Posterior CLV of every customer (12 monthly periods, 1% discount) on the saved posteriors;
    pymc-marketing on the pooled ones (it has no segments)."""
    import xarray as xr
    from bench_clv import time_clvlab_clv, time_pymc_marketing_clv

    bg, gg = (xr.load_dataset(posterior_path(path, fit), engine="h5netcdf") for fit in CLV_INPUTS[task])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if task == "pymc_marketing_clv":
            bg, gg = (d.squeeze("segment", drop=True) if "segment" in d.dims else d for d in (bg, gg))  # pooled: one
            out = time_pymc_marketing_clv(rfm, bg, gg)
        else:
            out = time_clvlab_clv(rfm, bg, gg, ["segment"] if task == "clvlab_clv_partial" else [])
    out["wall_s"] = out.pop("seconds")
    return out


def worker(task: str, path: str, chains: int, draws: int, device: str) -> dict[str, Any]:
    import pandas as pd

    rfm = pd.read_parquet(path)
    rfm.attrs["time_unit"] = "W"
    if task in CLV_INPUTS:
        return clv_worker(task, rfm, path)
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
            if task in ("clvlab_gg_partial", "clvlab_gg_pooled"):
                rep = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
                est = (GammaGamma(pooling="partial", segment="segment") if task == "clvlab_gg_partial"
                       else GammaGamma(pooling="pooled"))  # fmt: skip
                m = est.fit(rep, chains=chains, draws=draws, seed=1, progressbar=False)
                out.update(n_repeaters=len(rep), n_patterns=getattr(m, "n_patterns_", None),
                           centered={k: len(v) for k, v in m.centered_.items()}, compile_s=m.fit_info_.compile_s,
                           centering_s=m.fit_info_.centering_s)  # fmt: skip
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
                out.update(n_patterns=m.n_patterns_, compile_s=m.fit_info_.compile_s,
                           device=m.fit_info_.device)  # fmt: skip
                names = PARAMS
            wall = time.perf_counter() - t0
            out["nutpie_adaptation"] = m.fit_info_.nutpie_adaptation
            if "n_steps" in getattr(m.idata_.get("sample_stats"), "data_vars", {}):
                out["steps_per_draw"] = float(m.idata_["sample_stats"]["n_steps"].mean())
            if m.convergence_ is not None:
                c = m.convergence_
                d = m.diagnostics_  # clvlab's own diagnostics table, as in the other benchmarks
                out.update(min_ess_bulk=float(d.loc[d["parameter"].isin(names), "ess_bulk"].min()), max_r_hat=c["max_r_hat"],
                           divergences=c["divergences"])  # fmt: skip
            if task in SAVES:
                _save_posterior(m, path, task, names)
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


def run_task(
    task: str, path: Path, chains: int, draws: int, budget_s: float, device: str, limit_gb: float | None = None
) -> dict[str, Any]:
    """Run one task in a fresh process, stopped after ``budget_s``; ``limit_gb`` caps its address
    space (RLIMIT_AS), so a run that would exhaust the machine's memory fails as out of memory."""
    cmd = [sys.executable, __file__, "--worker", task, str(path), str(chains), str(draws), device]

    def cap() -> None:
        if limit_gb:
            resource.setrlimit(resource.RLIMIT_AS, (int(limit_gb * 1024**3),) * 2)

    env = dict(os.environ)
    if task == "clvlab_numpyro_partial" and device == "cpu":
        # numpyro's documented CPU set-up: one JAX host device per chain, so chains run in parallel
        # (with one device they run one after another)
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={chains}".strip()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget_s, preexec_fn=cap, env=env)
    except subprocess.TimeoutExpired:
        return {"finished": False, "reason": f"did not finish within the {budget_s:.0f} s budget"}
    if proc.returncode != 0:
        tail = proc.stderr[-1500:]
        oom = any(s in tail for s in ("MemoryError", "Unable to allocate", "ArrayMemoryError", "std::bad_alloc"))
        reason = (
            f"out of memory (address space capped at {limit_gb:g} GB)"
            if oom and limit_gb
            else f"exit {proc.returncode}"
        )
        return {"finished": False, "reason": reason, "stderr_tail": tail}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(finished=True, process_wall_s=time.perf_counter() - t0)
    return res


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--device", default="cpu", choices=["cpu", "gpu"], help="numpyro's JAX device")
    ap.add_argument("--budget-s", type=float, default=900.0, help="wall-clock budget of one baseline run")
    ap.add_argument(
        "--numpyro-budget-s",
        type=float,
        default=900.0,
        help="wall-clock budget of a numpyro run (on CPU it is the slow path: JAX's CPU kernels)",
    )
    ap.add_argument("--clvlab-budget-s", type=float, default=4 * 3600.0, help="wall-clock budget of a clvlab run")
    ap.add_argument(
        "--mm-limit-gb",
        type=float,
        default=20.0,
        help="address-space cap of pymc-marketing's posterior CLV run (it builds dense draw x customer arrays)",
    )
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

    tasks = list(args.tasks)
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["environment"] = dict(machine=platform.machine(), cpus=os.cpu_count(), python=platform.python_version(),
                                  versions=package_versions(), loadavg_1min_before=os.getloadavg()[0])  # fmt: skip
    results["settings"] = dict(chains=args.chains, draws=args.draws, budget_s=args.budget_s, segments=SEGMENTS,
                               clvlab_budget_s=args.clvlab_budget_s, device=args.device, mm_limit_gb=args.mm_limit_gb,
                               numpyro_budget_s=args.numpyro_budget_s)  # fmt: skip
    sizes = results.setdefault("sizes", {})
    gave_up: dict[str, str] = {}  # task -> why it stopped at a smaller size (a larger one is not started)
    for n in sorted(args.sizes):
        t0 = time.perf_counter()
        path = prepare(n)
        row = sizes.setdefault(str(n), {})
        row["prepare_s"] = time.perf_counter() - t0
        for task in tasks:
            # clvlab's own runs get a long budget of their own: a missed target is a number, not a timeout
            budget = args.budget_s if not task.startswith("clvlab_") else args.clvlab_budget_s
            if task == "clvlab_numpyro_partial":
                budget = args.numpyro_budget_s
            if task in SAVES:  # a CLV task reads this run's posterior, never an older one
                posterior_path(path, task).unlink(missing_ok=True)
            missing = [f for f in CLV_INPUTS.get(task, ()) if not posterior_path(path, f).exists()]
            if task in gave_up:
                res = {"finished": False, "reason": f"not started: {gave_up[task]}"}
            elif missing:
                res = {"finished": False, "reason": f"needs the posterior of {' and '.join(missing)} (run it first)"}
            else:
                limit = args.mm_limit_gb if task == "pymc_marketing_clv" else None
                res = run_task(task, path, args.chains, args.draws, budget, args.device, limit_gb=limit)
            row[task] = res
            if not res["finished"] and task not in gave_up and ("budget" in res["reason"] or "memory" in res["reason"]):
                gave_up[task] = f"{res['reason']} at {n:,} customers"
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
