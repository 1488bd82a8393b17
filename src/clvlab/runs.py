"""A run: :class:`~clvlab.study.Study` results -> artifacts in ``<runs_dir>/<name>/`` and a report.

:func:`run` runs the pipeline (:mod:`clvlab.study`) and writes what it found: tables
(Parquet, and CSV for small ones), the fitted models (cached there for the next run), the
CRM export, ``metadata.json`` (resolved config, quick flag, data hash, package versions,
stage timings, which fits came from the cache) and the HTML report (:mod:`clvlab.report`).
Every file is written atomically. :func:`score_customers` scores new RFM rows from a saved
run without refitting (``clvlab score``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import yaml

from .config import RunConfig
from .errors import ClvlabInputError
from .io import write_json, write_table, write_text
from .study import Study, StudyResults, run_key
from .versions import package_versions

__all__ = ["CSV_MAX_ROWS", "run", "score_customers", "write_artifacts"]

CSV_MAX_ROWS = 5000
"""Tables up to this many rows are also written as CSV (readable without Parquet tools)."""


def run(config: RunConfig, *, force: bool = False, root: str | Path | None = None) -> StudyResults | None:
    """Run every stage of ``config`` and write the run folder and the report.

    A run folder is up to date when its ``metadata.json`` holds the same run key (resolved
    config, data hash, versions, hash of clvlab's code: :func:`clvlab.study.run_key`) and its
    report exists: then nothing is recomputed (seconds: the data are read to hash them).
    Otherwise every stage runs, reusing each cached fit whose own key still matches.

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
    """
    t0 = time.perf_counter()
    study = Study(config, force=force, root=root)
    study.log(f"run folder {study.run_dir}, report {study.report_dir}")
    key = run_key(study.config, study.data().hash)
    if not force and _up_to_date(study, key):
        study.log(f"nothing changed since the last run ({_finished_at(study)}): run folder and report are up to "
                  f"date ({time.perf_counter() - t0:.1f} s; --force to redo every stage)")  # fmt: skip
        return None
    results = study.run()
    write_artifacts(study, results)
    t1 = time.perf_counter()
    from .run_report import build_report

    index = build_report(study, results)
    results.timings["report"] = round(time.perf_counter() - t1, 2)
    results.timings["total"] = round(time.perf_counter() - t0, 2)
    _write_metadata(study, results, key)
    line = ", ".join(f"{k} {v:.1f} s" for k, v in results.timings.items() if k != "total")
    study.log(f"stage timings: {line}")
    study.log(f"done in {results.timings['total']:.1f} s; report {index}")
    return results


def _table(study: Study, df: pd.DataFrame, name: str) -> Path:
    path = write_table(df, study.run_dir / f"{name}.parquet")
    if len(df) <= CSV_MAX_ROWS:
        write_table(df, study.run_dir / f"{name}.csv")
    return path


def write_artifacts(study: Study, results: StudyResults) -> None:
    """Write every result table of ``results`` into the run folder (the models are already there)."""
    f, p, s, c, ch, cmp = (results.features, results.purchase, results.spend, results.clv, results.churn,
                           results.compare.comparison)  # fmt: skip
    study.run_dir.mkdir(parents=True, exist_ok=True)
    write_text(study.run_dir / "config.yaml", yaml.safe_dump(results.config.to_dict(), sort_keys=False))
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
        tables.update(behaviour_selection=seg.selection_, behaviour_centres=seg.centres_.reset_index(),
                      behaviour_profile=c.behaviour_profile)
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
        write_text(study.run_dir / "compare_verdict.txt", cmp.verdict + "\n")
    for name, df in tables.items():
        _table(study, df, name)


def _categorical_as_text(df: pd.DataFrame) -> pd.DataFrame:
    cats = [col for col in df.columns if isinstance(df[col].dtype, pd.CategoricalDtype)]
    return df.assign(**{col: df[col].astype(str) for col in cats}) if cats else df


def _up_to_date(study: Study, key: str) -> bool:
    meta = study.run_dir / "metadata.json"
    if not meta.exists() or not (study.report_dir / "index.html").exists():
        return False
    try:
        return json.loads(meta.read_text()).get("run_key") == key
    except (OSError, ValueError):
        return False


def _finished_at(study: Study) -> str:
    return json.loads((study.run_dir / "metadata.json").read_text()).get("finished_at", "?")


def _write_metadata(study: Study, results: StudyResults, key: str | None = None) -> None:
    d, p, s, ch = results.data, results.purchase, results.spend, results.churn
    meta = dict(
        run_key=key, config=results.config.to_dict(), quick=results.config.quick,
        data=dict(source=results.config.data.source, hash=d.hash, rows=len(d.transactions),
                  customers=int(d.transactions["customer_id"].nunique()), rfm_hash=results.features.hash),
        purchase=dict(model=p.model.model_name, fit=p.model.fit_info_, convergence=p.model.convergence_, cached=p.cached),
        gamma_gamma=dict(fit=s.model.fit_info_, convergence=s.model.convergence_, cached=s.cached),
        survival=dict(lapse_after=ch.lapse_after, heldout_concordance=ch.concordance),
        cached_fits=study.cached_fits, versions=package_versions(), timings=results.timings,
        finished_at=pd.Timestamp.now(tz="UTC").isoformat(),
    )  # fmt: skip
    write_json(study.run_dir / "metadata.json", meta)


# ----------------------------------------------------------------------------------- scoring
def score_customers(run_dir: str | Path, rfm: pd.DataFrame, *, prob: float | None = None) -> pd.DataFrame:
    """Score customers with the models of a saved run, without refitting.

    Parameters
    ----------
    run_dir : path
        A run folder written by :func:`run` (holds the purchase model's folder, ``gamma_gamma/``,
        ``metadata.json``).
    rfm : DataFrame
        RFM rows (``customer_id``, ``frequency``, ``recency``, ``T``, ``monetary_value`` and the
        run's segment column), in the run's time unit (``features.time_unit``).
    prob : float, optional
        HDI mass (default: the run's ``clv.hdi_prob``).

    Returns
    -------
    DataFrame
        One row per customer, input order: ``customer_id``, segment, ``p_alive`` (posterior mean,
        HDI), ``expected_purchases`` over the CLV horizon (mean, HDI) and CLV (mean, sd, HDI,
        P(CLV > c) for the run's thresholds).
    """
    from .clv import customer_lifetime_value
    from .models import purchase_model_class
    from .models.gamma_gamma import GammaGamma
    from .stats import hdi
    from .units import unit_days

    run_dir = Path(run_dir)
    meta_path = run_dir / "metadata.json"
    if not meta_path.exists():
        raise ClvlabInputError(f"{run_dir}: no metadata.json (not a finished clvlab run folder)", what="run folder")
    cfg = RunConfig.model_validate(json.loads(meta_path.read_text())["config"])
    name = cfg.purchase.model
    bg, gg = purchase_model_class(name).load(run_dir / name), GammaGamma.load(run_dir / "gamma_gamma")
    unit = rfm.attrs.get("time_unit")
    if unit is not None and bg.time_unit_ is not None and unit != bg.time_unit_:
        raise ClvlabInputError(f"the RFM table is in time unit {unit!r}, the run's models in {bg.time_unit_!r}: "
                               "rebuild it with the run's features.time_unit", what="RFM data")  # fmt: skip
    c = cfg.clv
    prob = c.hdi_prob if prob is None else prob
    horizon_t = c.horizon * unit_days(c.period) / unit_days(bg.time_unit_ or cfg.features.time_unit)
    out = pd.DataFrame({"customer_id": rfm["customer_id"].astype(str).to_numpy()})
    seg = cfg.features.segment
    if seg:
        out[seg] = rfm[seg].astype(str).to_numpy()
    for name, da in (("p_alive", bg.p_alive(rfm)), ("expected_purchases", bg.expected_purchases(horizon_t, rfm))):
        v = da.stack(_s=("chain", "draw")).transpose("customer_id", "_s").values
        lo, hi = hdi(v, prob, axis=1)
        out[f"{name}_mean"], out[f"{name}_hdi_low"], out[f"{name}_hdi_high"] = v.mean(1), lo, hi
    res = customer_lifetime_value(bg, gg, rfm, horizon=c.horizon, period=c.period, discount_rate=c.discount_rate,
                                  margin=c.margin, threshold=c.thresholds, hdi_prob=prob)  # fmt: skip
    keep = [col for col in res.customers.columns if col.startswith(("clv_", "p_clv_gt_"))]
    return pd.concat([out, res.customers[keep].reset_index(drop=True)], axis=1)
