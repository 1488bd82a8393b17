"""Margins of the suite's sampler assertions over many seeds: how often a fit a test calls clean
would warn on another machine's floating-point path (whose chains are, in effect, other seeds).

    python benchmarks/seed_margins.py readme --seeds 1-20      # the README's CDNOW example
    python benchmarks/seed_margins.py behaviour --seeds 1-20   # notebook 07's by-behaviour fit, quick mode
    python benchmarks/seed_margins.py main --seeds 1-20        # make run's headline fit (full CDNOW)
    python benchmarks/seed_margins.py recovery_pareto_nbd --draws 400 --seeds 1-20  # the recovery test's fit

Each line of output is one fit: seed, divergences, max R-hat, min bulk ESS, seconds. The summary
gives the share of fits that would warn (any divergence, R-hat >= 1.01, ESS < 400) and the
largest R-hat / smallest ESS seen; ``--out`` writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import functools
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


@functools.cache
def _study(quick: bool):  # type: ignore[no-untyped-def]
    """The main job's study (``quick``: the quick run's); its features are built once per process."""
    from clvlab.config import load_config
    from clvlab.study import Study

    return Study(load_config(ROOT / "models/configs/cdnow.yaml", quick=quick), cache=False, log=lambda s: None,
                 progress=False)  # fmt: skip


def _behaviour_rfm():  # type: ignore[no-untyped-def]
    """The quick run's RFM table with its behavioural segments."""
    return _study(True).features().rfm


def _main_fit(seed: int, draws: int, **kw):  # type: ignore[no-untyped-def]
    """The headline purchase fit of ``make run``: the config's model, pooling, segment and sampler."""
    from clvlab.models import purchase_model_class
    from clvlab.study import fit_options

    study = _study(False)
    m, f = study.config.purchase, study.config.features
    model = purchase_model_class(m.model)(pooling=m.pooling, segment=f.segment, parameterization=m.parameterization)
    opts = fit_options(m) | dict(draws=draws) | kw
    return model.fit(study.features().rfm, seed=seed, progressbar=False, time_unit=f.time_unit, **opts)


def _behaviour_fit(seed: int, draws: int, **kw):  # type: ignore[no-untyped-def]
    from clvlab.models.bgnbd import BGNBD

    return BGNBD(pooling="partial", segment="behaviour").fit(_behaviour_rfm(), seed=seed, draws=draws,
                                                             progressbar=False, **kw)  # fmt: skip


def _recovery(family: str):  # type: ignore[no-untyped-def]
    """The suite's parameter-recovery fit (tests/test_purchase_models.py) at a given seed and length."""

    def fit(seed: int, draws: int, chains: int = 2, tune: int | None = None, **kw):  # type: ignore[no-untyped-def]
        import sys

        sys.path.insert(0, str(ROOT / "tests"))
        from test_purchase_models import _recovery_fit

        from clvlab.models.mbgnbd import MBGNBD
        from clvlab.models.pareto_nbd import ParetoNBD

        cls = ParetoNBD if family == "pareto_nbd" else MBGNBD
        m, hit, total = _recovery_fit(cls, seed, chains=chains, draws=draws, tune=tune or draws)
        return m, dict(covered=int(hit), intervals=int(total))

    return fit


FITS = {"readme": _readme_fit, "readme_weekly": _readme_weekly_fit, "behaviour": _behaviour_fit, "main": _main_fit,
        "recovery_pareto_nbd": _recovery("pareto_nbd"), "recovery_mbgnbd": _recovery("mbgnbd")}  # fmt: skip


def _seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fit", choices=sorted(FITS))
    parser.add_argument("--seeds", default="1-20")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=None, help="default: the fit's own")
    parser.add_argument("--tune", type=int, default=None, help="default: the fit's own")
    parser.add_argument("--target-accept", type=float, default=None, help="default: the sampler's rule")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    for seed in _seeds(args.seeds):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kw = {k: v for k, v in dict(target_accept=args.target_accept, chains=args.chains, tune=args.tune).items()
                  if v is not None}  # fmt: skip
            m = FITS[args.fit](seed, args.draws, **kw)
        m, extra = m if isinstance(m, tuple) else (m, {})
        c = m.convergence_
        row = dict(seed=seed, divergences=c.divergences, max_r_hat=c.max_r_hat, worst_r_hat=c.worst_r_hat,
                   min_ess_bulk=c.min_ess_bulk, seconds=round(time.perf_counter() - t0, 1),
                   target_accept=m.fit_info_.target_accept, **extra)  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    warn = [r for r in rows if r["divergences"] or r["max_r_hat"] >= 1.01 or r["min_ess_bulk"] < 400]
    print(
        f"{args.fit}: {len(rows)} fits, {len(warn)} would warn ({[r['seed'] for r in warn]}); "
        f"divergences {sum(r['divergences'] for r in rows)} in all; max R-hat {max(r['max_r_hat'] for r in rows):.4f}; "
        f"min bulk ESS {min(r['min_ess_bulk'] for r in rows):.0f}"
    )
    if "covered" in rows[0]:
        share = [r["covered"] / r["intervals"] for r in rows]
        print(f"90% intervals covering the truth: mean {sum(share) / len(share):.3f}, lowest {min(share):.3f}")
    if args.out:
        Path(args.out).write_text(json.dumps(dict(fit=args.fit, draws=args.draws, target_accept=args.target_accept,
                                                  rows=rows), indent=1) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
