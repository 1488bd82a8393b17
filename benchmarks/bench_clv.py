"""Benchmark of the posterior CLV engine (clvlab.clv) against pymc-marketing.

    .venv/bin/python benchmarks/bench_clv.py [--customers 1000000] [--draws 1000] [--mm-limit-gb 16]

1. Simulates (once; reused when present under ``benchmarks/data/``) a 4-channel customer
   base with :func:`clvlab.data.simulate.simulate` and its weekly RFM table
   (:func:`clvlab.features.rfm.rfm_summary`), plus a synthetic posterior: ``draws`` draws of
   the segment-level BG/NBD and Gamma-Gamma parameters (log-normal jitter around the
   simulation truth; the engine's cost does not depend on where the draws come from).
2. Runs :func:`clvlab.clv.customer_lifetime_value` (12 monthly periods, all per-customer
   summaries, per-channel totals) in a fresh subprocess and records wall time and that
   process's peak RSS (``ru_maxrss``). Targets: < 120 s and < 4 GB.
3. pymc-marketing 1.3 ``GammaGammaModel.expected_customer_lifetime_value`` (pooled models;
   it has no segments) on increasing customer counts, each in a subprocess whose address
   space is capped with ``resource.setrlimit(RLIMIT_AS)`` and with a wall-clock limit; it
   builds dense (chain, draw, customer) arrays, so memory grows with draws x customers.
   The largest size that finishes is reported with its time and peak RSS, and clvlab's
   engine is timed on the same pooled problem at that size for the ratio.

Writes ``benchmarks/results/clv.json`` atomically (clvlab.io.write_json).
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results" / "clv.json"
TARGET_S, TARGET_GB = 120.0, 4.0
SEGMENT_COL = "channel"


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def _cpu_s() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def prepare(n_customers: int, n_draws: int, seed: int = 0) -> tuple[Path, Path]:
    """Simulated RFM (Parquet) and posterior draws (NetCDF), reused when present."""
    import numpy as np
    import xarray as xr

    rfm_path = DATA / f"clv_rfm_{n_customers}.parquet"
    post_path = DATA / f"clv_post_{n_draws}.nc"
    DATA.mkdir(parents=True, exist_ok=True)
    from clvlab.data.simulate import simulate

    sim = None
    if not rfm_path.exists():
        from clvlab.features.rfm import rfm_summary
        from clvlab.io import atomic_path

        sim = simulate(n_customers=n_customers, seed=seed)
        rfm = rfm_summary(sim.transactions, sim.observation_end, "W", segment_cols=[SEGMENT_COL])
        with atomic_path(rfm_path) as tmp:
            rfm.to_parquet(tmp, index=False)
    if not post_path.exists():
        truth = (sim or simulate(n_customers=4, seed=seed)).truth
        rng = np.random.default_rng(seed)
        segs = [str(s) for s in truth.index]
        ds = xr.Dataset(
            {
                k: (("chain", "draw", "segment"),
                    truth[k].to_numpy()[None, None, :] * np.exp(0.05 * rng.standard_normal((1, n_draws, len(segs)))))
                for k in ("r", "alpha", "a", "b", "p", "q", "gamma")
            },
            coords={"segment": segs},
        )  # fmt: skip
        from clvlab.io import atomic_path

        with atomic_path(post_path) as tmp:
            ds.to_netcdf(tmp, engine="h5netcdf")
    return rfm_path, post_path


# ---- the measured calls (shared with bench_scale.py) -------------------------------------------
def time_clvlab_clv(rfm, bg, gg, segment: list[str]) -> dict:
    """clvlab's posterior CLV (12 monthly periods, 1% discount, per-customer summaries and the
    totals by ``segment``), timed; ``bg`` / ``gg``: anything :func:`clvlab.clv.param_draws` takes."""
    from clvlab import clv

    rss0, cpu0, load0 = _peak_rss_gb(), _cpu_s(), os.getloadavg()[0]
    t0 = time.perf_counter()
    res = clv.customer_lifetime_value(bg, gg, rfm, horizon=12, period="M", discount_rate=0.01,
                                      time_unit="W", segment=segment, threshold=100.0, progress=False)  # fmt: skip
    secs = time.perf_counter() - t0
    tot = res.summary("all")
    return dict(seconds=secs, cpu_s=_cpu_s() - cpu0, loadavg_1min_before=load0, peak_rss_gb=_peak_rss_gb(),
                rss_before_gb=rss0, n_customers=len(rfm), n_draws=res.settings.n_draws, total_clv_mean=float(tot["total_mean"].iloc[0]),
                mean_clv_per_customer=float(res.customers["clv_mean"].mean()))  # fmt: skip


def time_pymc_marketing_clv(rfm, bg_post, gg_post) -> dict:
    """pymc-marketing's ``GammaGammaModel.expected_customer_lifetime_value`` on the same problem,
    timed: ``bg_post`` holds r, alpha, a, b and ``gg_post`` p, q, gamma on (chain, draw) (pooled:
    pymc-marketing has no segments)."""
    import numpy as np
    import xarray as xr
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

    data = rfm[["customer_id", "frequency", "recency", "T", "monetary_value"]].copy()
    bgm = BetaGeoModel()
    bgm.build_model(data[["customer_id", "frequency", "recency", "T"]])
    bgm.fit_result = xr.DataTree.from_dict({"posterior": bg_post[["r", "alpha", "a", "b"]]})
    rep = data[data["frequency"] > 0]
    ggm = GammaGammaModel()
    ggm.build_model(rep[["customer_id", "frequency", "monetary_value"]])
    ggm.fit_result = xr.DataTree.from_dict({"posterior": gg_post[["p", "q", "gamma"]].rename(gamma="v")})
    rss0, cpu0, load0 = _peak_rss_gb(), _cpu_s(), os.getloadavg()[0]
    t0 = time.perf_counter()
    out = ggm.expected_customer_lifetime_value(bgm, data, future_t=12, discount_rate=0.01, time_unit="W")
    val = np.asarray(out.mean(("chain", "draw")).values)
    secs = time.perf_counter() - t0
    return dict(seconds=secs, cpu_s=_cpu_s() - cpu0, loadavg_1min_before=load0, peak_rss_gb=_peak_rss_gb(),
                rss_before_gb=rss0, n_customers=len(rfm), n_draws=int(bg_post.sizes["chain"] * bg_post.sizes["draw"]),
                mean_clv_per_customer=float(val.mean()))  # fmt: skip


# ---- workers (run in subprocesses) -----------------------------------------------------------
def worker_ours(rfm_path: str, post_path: str, n: int, pooled: bool) -> dict:
    import pandas as pd
    import xarray as xr

    from clvlab import clv

    rfm = pd.read_parquet(rfm_path).iloc[:n]
    post = xr.load_dataset(post_path, engine="h5netcdf")
    if pooled:
        post = post.isel(segment=[0])
        bg = clv.param_draws(post, clv.BGNBD_PARAMS)
        gg = clv.param_draws(post, clv.GG_PARAMS)
    else:
        bg = clv.param_draws(post, clv.BGNBD_PARAMS, segment=SEGMENT_COL)
        gg = clv.param_draws(post, clv.GG_PARAMS, segment=SEGMENT_COL)
    return time_clvlab_clv(rfm, bg, gg, [SEGMENT_COL])


def worker_pymc_marketing(rfm_path: str, post_path: str, n: int) -> dict:
    import pandas as pd
    import xarray as xr

    rfm = pd.read_parquet(rfm_path).iloc[:n]
    post = xr.load_dataset(post_path, engine="h5netcdf").isel(segment=0, drop=True)
    return time_pymc_marketing_clv(rfm, post, post)


def _run_worker(kind: str, rfm: Path, post: Path, n: int, *, limit_gb: float | None, timeout_s: float,
                pooled: bool = False) -> dict:  # fmt: skip
    cmd = [sys.executable, __file__, "--worker", kind, "--rfm", str(rfm), "--post", str(post), "--n", str(n)]
    if pooled:
        cmd.append("--pooled")

    def cap() -> None:
        if limit_gb:
            b = int(limit_gb * 1024**3)
            resource.setrlimit(resource.RLIMIT_AS, (b, b))

    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, preexec_fn=cap)
    except subprocess.TimeoutExpired:
        return dict(ok=False, reason=f"timeout after {timeout_s:.0f} s", n_customers=n)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        mem = any("MemoryError" in t or "Unable to allocate" in t or "cannot allocate" in t.lower() for t in tail)
        return dict(ok=False, reason=("out of memory (RLIMIT_AS)" if mem else f"exit {proc.returncode}"),
                    stderr_tail=tail, n_customers=n)  # fmt: skip
    res = json.loads(lines[-1][len("RESULT ") :])
    res.update(ok=True, process_wall_s=wall)
    return res


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--mm-sizes", default="1000,10000,30000")
    ap.add_argument(
        "--mm-probe",
        type=int,
        default=1_000_000,
        help="after the size ladder, one pymc-marketing run at this size under the memory cap (does it fit?)",
    )
    ap.add_argument("--mm-limit-gb", type=float, default=20.0, help="RLIMIT_AS for each pymc-marketing run")
    ap.add_argument("--mm-timeout", type=float, default=240.0, help="wall-clock limit per pymc-marketing size")
    ap.add_argument("--worker", choices=["ours", "pymc_marketing"], help=argparse.SUPPRESS)
    ap.add_argument("--rfm", help=argparse.SUPPRESS)
    ap.add_argument("--post", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--pooled", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        import warnings

        warnings.filterwarnings("ignore")
        fn = worker_ours if args.worker == "ours" else worker_pymc_marketing
        kw = dict(pooled=args.pooled) if args.worker == "ours" else {}
        print("RESULT " + json.dumps(fn(args.rfm, args.post, args.n, **kw)), flush=True)
        return {}

    t0 = time.perf_counter()
    rfm, post = prepare(args.customers, args.draws)
    prep_s = time.perf_counter() - t0
    print(f"data ready in {prep_s:.1f} s: {rfm.name}, {post.name}", flush=True)

    ours = _run_worker("ours", rfm, post, args.customers, limit_gb=None, timeout_s=1800)
    print(f"clvlab: {ours}", flush=True)

    mm_runs = []
    for n in [int(s) for s in args.mm_sizes.split(",") if int(s) <= args.customers]:
        r = _run_worker("pymc_marketing", rfm, post, n, limit_gb=args.mm_limit_gb, timeout_s=args.mm_timeout)
        print(f"pymc-marketing n={n}: {r}", flush=True)
        mm_runs.append(r)
        if not r["ok"]:
            break
    probe = None
    if args.mm_probe and args.mm_probe <= args.customers and all(r["n_customers"] < args.mm_probe for r in mm_runs):
        probe = _run_worker(
            "pymc_marketing", rfm, post, args.mm_probe, limit_gb=args.mm_limit_gb, timeout_s=args.mm_timeout
        )
        print(f"pymc-marketing probe n={args.mm_probe}: {probe}", flush=True)
    done = [r for r in mm_runs if r["ok"]]
    largest = done[-1] if done else None
    same = None
    if largest:
        same = _run_worker("ours", rfm, post, largest["n_customers"], limit_gb=None, timeout_s=1800, pooled=True)
        print(f"clvlab pooled at n={largest['n_customers']}: {same}", flush=True)

    result = dict(
        benchmark="posterior CLV (12 monthly periods, 1% discount)",
        machine=dict(platform=platform.platform(), cpu_count=os.cpu_count(), python=sys.version.split()[0]),
        n_customers=args.customers, n_draws=args.draws, periods=12,
        clvlab=ours, targets=dict(seconds=TARGET_S, peak_rss_gb=TARGET_GB),
        clvlab_meets_targets=bool(ours.get("ok") and ours["seconds"] < TARGET_S and ours["peak_rss_gb"] < TARGET_GB),
        note=("wall times on a shared 2-core machine: compare cpu_s and loadavg_1min_before; the engine uses "
              "2 threads, so on idle cores wall ~ cpu_s / 2"),
        pymc_marketing=dict(runs=mm_runs, probe=probe, address_space_limit_gb=args.mm_limit_gb, timeout_s=args.mm_timeout,
                            largest_ok=largest, clvlab_pooled_same_size=same,
                            speedup=(largest["seconds"] / same["seconds"]) if (largest and same and same.get("ok")) else None,
                            memory_ratio=(largest["peak_rss_gb"] / same["peak_rss_gb"]) if (largest and same and same.get("ok")) else None),
        prepare_s=prep_s,
    )  # fmt: skip
    from clvlab.io import write_json

    write_json(RESULTS, result)
    print(f"wrote {RESULTS}")
    return result


if __name__ == "__main__":
    main()
