"""``clvlab compare``: the purchase models of saved run folders, scored against each other.

:func:`run_candidates` collects every saved purchase-model fit of one or more run folders
(the config's model, its other poolings, the comparison stage's fits); the runs must share
their calibration customers (the same RFM table). :func:`compare_runs` scores them with
:func:`clvlab.comparison.compare_models` and :func:`write_comparison` writes CSV tables, a
Markdown summary (``comparison.md``) and the figures, all atomically.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .choices import BASELINE_MODELS, PURCHASE_MODELS
from .comparison import Candidate, ModelComparison, compare_models, headline_labels
from .config import RunConfig
from .errors import ClvlabInputError
from .io import write_table, write_text
from .run_folder import read_finished

__all__ = ["compare_runs", "run_candidates", "write_comparison"]


def _candidate(fit: Any) -> Candidate:
    """A loaded fit's candidate: a one-draw pooled fit with prior overrides is the MLE row (the
    pipeline's flat-prior MAP), any other one-draw fit a MAP."""
    c = Candidate.of(fit)
    return Candidate.of(fit, "mle") if c.point and fit.priors and c.pooling == "pooled" else c


def run_candidates(run_dirs: Sequence[str | Path]) -> tuple[list[Candidate], pd.DataFrame, RunConfig]:
    """Every saved purchase-model fit of ``run_dirs``, with the runs' shared RFM table and the first run's config.

    Parameters
    ----------
    run_dirs : sequence of path
        Run folders written by ``clvlab run``.

    Returns
    -------
    candidates : list of Candidate
        Labels are prefixed with the run name when there are several runs.
    rfm : DataFrame
    config : RunConfig

    Raises
    ------
    ClvlabInputError
        A folder that is not a finished run, runs on different customers, or no purchase fits.
    """
    from .models import purchase_model_class

    problems, runs = [], []
    for d in map(Path, run_dirs):
        try:
            meta = read_finished(d, what="--runs")
        except ClvlabInputError as exc:
            problems += exc.problems
            continue
        if not (d / "rfm.parquet").is_file():
            problems.append(f"--runs {d}: no rfm.parquet (not a run folder of `clvlab run`)")
            continue
        runs.append((d, meta))
    if problems:
        raise ClvlabInputError(problems, what="argument")
    hashes = {m["data"]["rfm_hash"] for _, m in runs}
    if len(hashes) > 1:
        raise ClvlabInputError([f"--runs: the runs were fitted on different customers (RFM hashes {sorted(hashes)}); "
                                "a comparison needs the same calibration table"], what="argument")  # fmt: skip
    rfm = pd.read_parquet(runs[0][0] / "rfm.parquet")
    several = len(runs) > 1
    candidates = []
    for d, meta in runs:
        for sub in sorted(p for p in d.iterdir() if (p / "metadata.json").is_file()):
            info = json.loads((sub / "metadata.json").read_text())
            if info.get("model") not in PURCHASE_MODELS + BASELINE_MODELS:
                continue
            fit = purchase_model_class(info["model"]).load(sub)
            c = _candidate(fit)
            candidates.append(Candidate(f"{meta['config']['name']}: {c.label}", fit, c.pooling) if several else c)
    if not candidates:
        raise ClvlabInputError([f"--runs {[str(d) for d, _ in runs]}: no saved purchase-model fits"], what="argument")
    seen: dict[str, int] = {}
    for i, c in enumerate(candidates):  # two fits with one label (e.g. two MAPs): number them
        seen[c.label] = seen.get(c.label, 0) + 1
        if seen[c.label] > 1:
            candidates[i] = Candidate(f"{c.label} #{seen[c.label]}", c.fit, c.pooling)
    return candidates, rfm, RunConfig.model_validate(runs[0][1]["config"])


def compare_runs(
    run_dirs: Sequence[str | Path], *, root: str | Path | None = None
) -> tuple[ModelComparison, RunConfig]:
    """Score every purchase-model fit of ``run_dirs`` on the runs' holdout.

    Parameters
    ----------
    run_dirs : sequence of path
        Run folders on the same customers.
    root : path, optional
        Folder relative data sources of the config are under (default: the working directory).

    Returns
    -------
    ModelComparison, RunConfig
    """
    from .study import Study

    candidates, rfm, cfg = run_candidates(run_dirs)
    tx = Study(cfg, cache=False, root=root, log=lambda s: None).data().transactions
    f = cfg.features
    cmp = compare_models(candidates, rfm, tx, calibration_end=f.calibration_end, time_unit=f.time_unit,
                         segment=f.segment, draws_per_chain=cfg.compare.draws_per_chain, hdi_prob=cfg.clv.hdi_prob,
                         seed=cfg.seed)  # fmt: skip
    return cmp, cfg


def write_comparison(cmp: ModelComparison, out: str | Path, *, time_unit: str = "W") -> Path:
    """Write the comparison into ``out``: every table as CSV, ``comparison.md`` (verdict, tables
    for people, figures) and the figures as PNG / SVG. Returns the path of ``comparison.md``."""
    from .plots import compare as pk
    from .report import markdown_table, save_figure
    from .run_report import comparison_tables

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("loo", "errors", "holdout", "conditional", "churn", "tracking"):
        write_table(getattr(cmp, name), out / f"{name}.csv")
    shown = headline_labels(cmp.tracking["label"])
    figures = {
        "loo": (pk.plot_loo(cmp.loo), "Leave-one-out fit"),
        "holdout_totals": (pk.plot_holdout_totals(cmp.holdout, cmp.hdi_prob), "Holdout totals"),
        "tracking": (pk.plot_tracking(cmp.tracking, cmp.hdi_prob, labels=shown, time_unit=time_unit), "Tracking"),
        "conditional": (pk.plot_conditional_expectations(cmp.conditional, cmp.hdi_prob, labels=shown),
                        "Conditional expectations"),
    }  # fmt: skip
    for name, (fig, _) in figures.items():
        save_figure(fig, out, name)
    tables = comparison_tables(cmp)
    md = ["# Purchase-model comparison", "", cmp.verdict, ""]
    for key, title in (("loo", "Leave-one-out fit (PSIS-LOO; higher elpd is better)"),
                       ("errors", "Holdout errors and totals"), ("churn", "Holdout churn scores")):  # fmt: skip
        md += [f"## {title}", "", markdown_table(tables[key], index=False), ""]
    md += [f"![{title}]({name}.png)\n" for name, (_, title) in figures.items()]
    return write_text(out / "comparison.md", "\n".join(md))
