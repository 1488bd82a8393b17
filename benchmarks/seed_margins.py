"""Margins of the suite's sampler assertions over many seeds: how often a fit a test calls clean
would warn on another machine's floating-point path (whose chains are, in effect, other seeds).

    python benchmarks/seed_margins.py readme --seeds 1-20      # the README's CDNOW example
    python benchmarks/seed_margins.py behaviour --seeds 1-20   # notebook 07's by-behaviour fit, quick mode

Each line of output is one fit: seed, divergences, max R-hat, min bulk ESS, seconds. The summary
gives the share of fits that would warn (any divergence, R-hat >= 1.01, ESS < 400) and the
largest R-hat / smallest ESS seen; ``--out`` writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_fit(seed: int, draws: int, **kw):  # type: ignore[no-untyped-def]
    from clvlab.data import load_cdnow
    from clvlab.features import calibration_holdout
    from clvlab.models.bgnbd import BGNBD

    tx = load_cdnow(sample=True)
    rfm = calibration_holdout(tx, "1997-09-30", "1998-06-30", time_unit="W")
    return BGNBD(pooling="partial", segment="cohort").fit(rfm, seed=seed, draws=draws, progressbar=False, **kw)


def _readme_weekly_fit(seed: int, draws: int, **kw):  # type: ignore[no-untyped-def]
    """The README example with weekly acquisition cohorts (12 segments, as the main job)."""
    from clvlab.data import load_cdnow
    from clvlab.features import calibration_holdout
    from clvlab.models.bgnbd import BGNBD

    tx = load_cdnow(sample=True)
    rfm = calibration_holdout(tx, "1997-09-30", "1998-06-30", time_unit="W", cohort_freq="W")
    return BGNBD(pooling="partial", segment="cohort").fit(rfm, seed=seed, draws=draws, progressbar=False, **kw)


def _behaviour_fit(seed: int, draws: int, **kw):  # type: ignore[no-untyped-def]
    from clvlab.config import load_config
    from clvlab.models.bgnbd import BGNBD
    from clvlab.study import Study

    study = Study(load_config(ROOT / "models/configs/cdnow.yaml", quick=True), cache=False, log=lambda s: None,
                  progress=False)  # fmt: skip
    rfm = study.features().rfm
    return BGNBD(pooling="partial", segment="behaviour").fit(rfm, seed=seed, draws=draws, progressbar=False, **kw)


FITS = {"readme": _readme_fit, "readme_weekly": _readme_weekly_fit, "behaviour": _behaviour_fit}


def _seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fit", choices=sorted(FITS))
    parser.add_argument("--seeds", default="1-20")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--target-accept", type=float, default=None, help="default: the sampler's rule")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    for seed in _seeds(args.seeds):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kw = {} if args.target_accept is None else {"target_accept": args.target_accept}
            m = FITS[args.fit](seed, args.draws, **kw)
        c = m.convergence_
        row = dict(seed=seed, divergences=int(c["divergences"]), max_r_hat=float(c["max_r_hat"]),
                   min_ess_bulk=float(c["min_ess_bulk"]), seconds=round(time.perf_counter() - t0, 1),
                   target_accept=m.fit_info_.get("target_accept"))  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    warn = [r for r in rows if r["divergences"] or r["max_r_hat"] >= 1.01 or r["min_ess_bulk"] < 400]
    print(f"{args.fit}: {len(rows)} fits, {len(warn)} would warn ({[r['seed'] for r in warn]}); "
          f"divergences {sum(r['divergences'] for r in rows)} in all; max R-hat {max(r['max_r_hat'] for r in rows):.4f}; "
          f"min bulk ESS {min(r['min_ess_bulk'] for r in rows):.0f}")
    if args.out:
        Path(args.out).write_text(json.dumps(dict(fit=args.fit, draws=args.draws, target_accept=args.target_accept,
                                                  rows=rows), indent=1) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
