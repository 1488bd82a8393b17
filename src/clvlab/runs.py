"""A run: :class:`~clvlab.study.Study` results -> artifacts in ``<runs_dir>/<name>/`` and a report.

:func:`run` runs the pipeline (:mod:`clvlab.study`) and writes what it found: tables
(Parquet, and CSV for small ones), the fitted models (cached there for the next run), the
CRM export, ``metadata.json`` (resolved config, quick flag, data hash, package versions,
stage timings, which fits came from the cache) and the HTML report (:mod:`clvlab.report`).
Every file is written atomically. Scoring from a saved run is :mod:`clvlab.scoring`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import yaml

from .config import RunConfig
from .errors import ClvlabInputError
from .io import write_json, write_table, write_text
from .run_folder import RECORD, config_changes, manifest, read_finished, staged, writer_lock
from .study import Study, StudyResults, run_key
from .versions import package_versions

__all__ = ["CSV_MAX_ROWS", "run", "write_artifacts"]

CSV_MAX_ROWS = 5000
"""Tables up to this many rows are also written as CSV (readable without Parquet tools)."""


def run(config: RunConfig, *, force: bool = False, root: str | Path | None = None) -> StudyResults | None:
    """Run every stage of ``config`` and write the run folder and the report.

    A run folder is up to date when its completion record (``metadata.json``) holds the same run
    key (resolved config, data hash, versions, hash of clvlab's code: :func:`clvlab.study.run_key`)
    and every file of the run folder and the report still has the hash the record lists: then
    nothing is recomputed (seconds: the data are read to hash them). Otherwise every stage runs,
    reusing each cached fit whose own key still matches, into fresh folders beside the run
    folder and the report that are swapped in whole when the run completes
    (:mod:`clvlab.run_folder`): a run killed at any moment leaves the previous run's folders as
    they were. One writer at a time: a second run on the same folder is refused.

    Parameters
    ----------
    config : RunConfig
        The run config (``quick`` is applied).
    force : bool
        Refit every model even when the run folder holds a matching cached fit.
    root : path, optional
        Folder that relative output paths are under (default: the working directory).

    Returns
    -------
    StudyResults or None
        None when the run folder was already up to date.

    Raises
    ------
    ClvlabInputError
        Another run is writing the same run folder or report; an output path is not a folder.
    """
    t0 = time.perf_counter()
    study = Study(config, force=force, root=root)
    _check_output_folders(study)
    study.log(f"run folder {study.run_dir}, report {study.report_dir}")
    with writer_lock(study.run_dir, study.report_dir):
        key = run_key(study.config, study.data().hash)
        previous, why_not = _previous_run(study)
        if previous is not None and previous.get("run_key") == key and not force:
            study.log(f"nothing changed since the last run ({previous.get('finished_at', '?')}): run folder and report "
                      f"are up to date ({time.perf_counter() - t0:.1f} s; --force to redo every stage)")  # fmt: skip
            return None
        _say_what_is_replaced(study, previous, why_not)
        with staged(study.run_dir, study.report_dir) as staging:
            study.stage(staging)
            try:
                results = study.run()
                write_artifacts(study, results)
                t1 = time.perf_counter()
                from .run_report import build_report

                build_report(study, results)
                results.timings["report"] = round(time.perf_counter() - t1, 2)
                results.timings["total"] = round(time.perf_counter() - t0, 2)
                _write_metadata(study, results, key)  # last: the completion record
            finally:
                study.stage(None)
    line = ", ".join(f"{k} {v:.1f} s" for k, v in results.timings.items() if k != "total")
    study.log(f"stage timings: {line}")
    study.log(f"done in {results.timings['total']:.1f} s; report {study.report_dir / 'index.html'}")
    return results


def _check_output_folders(study: Study) -> None:
    """Output paths that exist as files (or sit under one) are named before any work."""
    problems = []
    for label, folder in (("outputs.runs_dir", study.run_dir.parent), ("outputs.reports_dir", study.report_dir.parent)):
        for p in (folder, *folder.parents):
            if p.exists() and not p.is_dir():
                problems.append(f"{label}: {p} is a file, not a folder")
                break
    for label, folder in (("run folder", study.run_dir), ("report folder", study.report_dir)):
        if folder.exists() and not folder.is_dir():
            problems.append(f"{label} {folder} is a file, not a folder")
    if problems:
        raise ClvlabInputError(problems, what="config")


def _previous_run(study: Study) -> tuple[dict | None, str | None]:
    """The record of the finished run in the folder (None and why not, when there is none)."""
    if not study.run_dir.exists():
        return None, None
    try:
        return read_finished(study.run_dir, report_dir=study.report_dir), None
    except ClvlabInputError as exc:
        return None, "; ".join(exc.problems)


def _say_what_is_replaced(study: Study, previous: dict | None, why_not: str | None) -> None:
    if why_not is not None:
        study.log(f"the run folder does not hold a finished run ({why_not}): it is rebuilt")
        return
    if previous is None:
        return
    old_cfg = previous.get("config") or {}
    changes = config_changes(old_cfg, study.config.to_dict())
    source = previous.get("config_file")
    same_file = source is not None and source == _config_file(study)
    if changes:
        shown = "; ".join(changes[:6]) + (f"; and {len(changes) - 6} more" if len(changes) > 6 else "")
        origin = "" if same_file or source is None else f" (written from {source})"
        study.log(f"the run folder holds a finished run of another config{origin}: {shown}. It is replaced when this "
                  "run completes; give this config another `name` to keep both")  # fmt: skip


def _config_file(study: Study) -> str | None:
    src = getattr(study.config, "source_file", None)
    return str(Path(src).resolve()) if src else None


def _table(study: Study, df: pd.DataFrame, name: str) -> Path:
    path = write_table(df, study.out_dir / f"{name}.parquet")
    if len(df) <= CSV_MAX_ROWS:
        write_table(df, study.out_dir / f"{name}.csv")
    return path


def write_artifacts(study: Study, results: StudyResults) -> None:
    """Write every result table of ``results`` into ``study.out_dir`` (the models are already there)."""
    f, p, s, c, ch, cmp = (results.features, results.purchase, results.spend, results.clv, results.churn,
                           results.compare.comparison)  # fmt: skip
    study.out_dir.mkdir(parents=True, exist_ok=True)
    write_text(study.out_dir / "config.yaml", yaml.safe_dump(results.config.to_dict(), sort_keys=False))
    tables: dict[str, pd.DataFrame] = {
        "validation": results.data.validation.to_frame().astype(str),
        "rfm": f.rfm, "rfm_segments": f.rfm_segments, "cohort_sizes": f.cohort_sizes,
        "bgnbd_summary": p.summary, "bgnbd_holdout_check": p.holdout_check,
        "gg_independence_check": s.independence, "gg_summary": s.summary,
        "clv_customers": _categorical_as_text(c.customers), "clv_sensitivity": c.sensitivity,
        "lapse_table": ch.lapse_table, "cox_hazard_ratios": ch.hazard_ratios, "cox_ph_check": ch.ph_check,
        "churn_comparison": ch.comparison,
    }  # fmt: skip
    tables.update({f"clv_by_{col}": t for col, t in c.by_segment.items()})
    if f.kpis is not None:
        tables.update(channel_kpis=f.kpis, retention_matrix=f.retention.reset_index(),
                      stage_migration=f.migration.reset_index())  # fmt: skip
    if f.behaviour is not None:  # the k choice, the centres and the profile with CLV
        seg = f.behaviour.segments
        tables.update(
            behaviour_selection=seg.selection_,
            behaviour_centres=seg.centres_.reset_index(),
            behaviour_profile=c.behaviour_profile,
        )
    if c.cac is not None:
        tables["clv_cac"] = c.cac  # a new customer's value against CAC
        tables["new_customer_value"] = c.new_customer.summary()
        tables["residual_clv_cac"] = c.residual_cac  # the existing base's remaining value against CAC
    if c.budget is not None:
        tables.update(budget_allocation=c.budget.allocation, budget_strategies=c.budget.summary,
                      budget_frontier=c.budget.frontier)  # fmt: skip
    if cmp is not None:
        tables.update({f"compare_{k}": getattr(cmp, k) for k in ("loo", "errors", "holdout", "conditional", "churn",
                                                                  "tracking")})  # fmt: skip
        write_text(study.out_dir / "compare_verdict.txt", cmp.verdict + "\n")
    for name, df in tables.items():
        _table(study, df, name)


def _categorical_as_text(df: pd.DataFrame) -> pd.DataFrame:
    cats = [col for col in df.columns if isinstance(df[col].dtype, pd.CategoricalDtype)]
    return df.assign(**{col: df[col].astype(str) for col in cats}) if cats else df


def _write_metadata(study: Study, results: StudyResults, key: str | None = None) -> None:
    """Write the completion record: what the run was, and the hash of every file it wrote (last)."""
    d, p, s, ch = results.data, results.purchase, results.spend, results.churn
    meta = dict(
        run_key=key, config=results.config.to_dict(), quick=results.config.quick,
        data=dict(source=results.config.data.source, hash=d.hash, rows=len(d.transactions),
                  customers=int(d.transactions["customer_id"].nunique()), rfm_hash=results.features.hash),
        purchase=dict(model=p.model.model_name, **p.model.fit_record(), cached=p.cached),
        gamma_gamma=dict(**s.model.fit_record(), cached=s.cached),
        survival=dict(lapse_after=ch.lapse_after, heldout_concordance=ch.concordance),
        cached_fits=study.cached_fits, versions=package_versions(), timings=results.timings,
        finished_at=pd.Timestamp.now(tz="UTC").isoformat(), config_file=_config_file(study),
        fits=sorted(study.cached_fits),
        manifest=dict(run=manifest(study.out_dir, exclude=(RECORD,)), report=manifest(study.out_report_dir)),
    )  # fmt: skip
    write_json(study.out_dir / RECORD, meta)
