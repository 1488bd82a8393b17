"""`make bench`: run every benchmark, each in its own process, and print where the results are.

    python benchmarks/run_all.py                 # everything (about 2 hours on 2 cores)
    python benchmarks/run_all.py rfm clv         # a subset
    BENCH_ARGS_BGNBD="--skip-1m-nuts" python benchmarks/run_all.py bgnbd

Each benchmark writes benchmarks/results/<name>.json with its measurements and the ratios to
the baselines (lifetimes, pymc-marketing) measured in the same run; benchmarks/RESULTS.md is
rendered from them last (benchmarks/results_md.py).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("rfm", "bgnbd", "purchase", "clv", "scale")


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        extra = shlex.split(os.environ.get(f"BENCH_ARGS_{name.upper()}", ""))
        cmd = [sys.executable, str(HERE / f"bench_{name}.py"), *extra]
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd)
        print(
            f"== {name}: exit {rc} after {time.perf_counter() - t0:.0f} s; results in "
            f"{HERE / 'results' / (name + '.json')}",
            flush=True,
        )
        if rc:
            failed.append(name)
    sys.path.insert(0, str(HERE))
    from results_md import write_results_md

    print(f"== RESULTS.md: {write_results_md()}", flush=True)
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
