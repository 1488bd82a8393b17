"""A run: config (YAML) -> artifacts in ``models/runs/<name>/`` and a report in ``reports/<name>/``.

Stages (each logs what it did and how long it took; all outputs are written atomically):

1. data      load + validate the transaction log (validation report)
2. features  calibration/holdout RFM (DuckDB), RFM scores, cohorts
3. bgnbd     hierarchical BG/NBD fit, diagnostics, P(alive) / expected-purchase figures
4. clv       hierarchical Gamma-Gamma + posterior CLV per customer / segment
5. survival  lapse table, Kaplan-Meier, Cox, churn-score comparison with BG/NBD P(alive)

``metadata.json`` in the run folder records the config, the data hash, package versions and
stage timings, so a run can be reproduced from its folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .config import RunConfig
from .io import write_json, write_table
from .report import Report
from .versions import data_hash, package_versions


@dataclass
class RunContext:
    """What the stages share: the config, output folders, the report, and produced objects."""

    config: RunConfig
    report: Report
    timings: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return self.config.run_dir

    def log(self, msg: str) -> None:
        print(f"[{self.config.name}] {msg}", flush=True)

    def table(self, df: pd.DataFrame, name: str) -> Path:
        """Write ``df`` as Parquet (and CSV for small tables) into the run folder."""
        path = write_table(df, self.run_dir / f"{name}.parquet")
        if len(df) <= 5000:
            write_table(df, self.run_dir / f"{name}.csv")
        return path


def _load(ctx: RunContext) -> None:
    from .data import load_cdnow_with_report, load_transactions

    d = ctx.config.data
    if d.source in ("cdnow", "cdnow_sample"):
        tx, report = load_cdnow_with_report(sample=d.source == "cdnow_sample")
    else:
        tx, report = load_transactions(d.source, customer_col=d.customer_col, date_col=d.date_col,
                                       amount_col=d.amount_col, segment_cols=d.segment_cols,
                                       pseudonymise=d.pseudonymise)
    ctx.artifacts["transactions"] = tx
    ctx.meta["data"] = {"source": d.source, "hash": data_hash(tx), "rows": len(tx),
                        "customers": int(tx["customer_id"].nunique())}
    ctx.report.add_text("Data", str(report))
    ctx.log(f"data: {len(tx):,} purchase days, {tx['customer_id'].nunique():,} customers")


def _features(ctx: RunContext) -> None:
    from .features import calibration_holdout, cohorts, interpurchase_times, rfm_scores
    from .plots.rfm import plot_cohort_sizes, plot_interpurchase_times, plot_rfm_segments

    f, d = ctx.config.features, ctx.config.data
    tx = ctx.artifacts["transactions"]
    rfm = calibration_holdout(tx, f.calibration_end, f.observation_end, time_unit=f.time_unit,
                              segment_cols=d.segment_cols, whole_periods=f.whole_periods,
                              cohort_freq=f.cohort_freq)
    rfm = rfm_scores(rfm)
    ctx.artifacts["rfm"] = rfm
    ctx.table(rfm, "rfm")
    repeaters = int((rfm["frequency"] > 0).sum())
    ctx.log(f"features: {len(rfm):,} customers ({repeaters:,} repeaters) in calibration to {f.calibration_end}")
    seg_counts = rfm["rfm_segment"].value_counts().rename_axis("rfm_segment").reset_index(name="customers")
    ctx.report.add_table("RFM", rfm.describe().T, caption="RFM summary (calibration)")
    ctx.report.add_figure("RFM", plot_rfm_segments(rfm), "rfm_segments", caption="RFM-score segments")
    sizes = cohorts(tx, f.cohort_freq, observation_end=f.calibration_end).sizes
    ctx.table(sizes, "cohort_sizes")
    ctx.report.add_figure("RFM", plot_cohort_sizes(sizes), "cohort_sizes", caption="Acquisition cohorts")
    ctx.report.add_figure("RFM", plot_interpurchase_times(interpurchase_times(tx)), "interpurchase_times",
                          caption="Days between consecutive purchases")
    ctx.table(seg_counts, "rfm_segments")


STAGES: list[tuple[str, Callable[[RunContext], None]]] = [
    ("data", _load),
    ("features", _features),
]


def run(config: RunConfig) -> RunContext:
    """Run every stage of ``config``; returns the context (artifacts, timings)."""
    report = Report(title=f"clvlab run: {config.name}", directory=config.report_dir)
    ctx = RunContext(config=config, report=report)
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    ctx.log(f"run folder {ctx.run_dir}, report {config.report_dir}")
    t_all = time.perf_counter()
    for name, stage in STAGES:
        t0 = time.perf_counter()
        stage(ctx)
        ctx.timings[name] = round(time.perf_counter() - t0, 2)
        ctx.log(f"{name} done in {ctx.timings[name]:.1f} s")
    ctx.timings["total"] = round(time.perf_counter() - t_all, 2)
    ctx.meta.update(config=config.to_dict(), versions=package_versions(), timings=ctx.timings,
                    finished_at=pd.Timestamp.now(tz="UTC").isoformat())
    write_json(ctx.run_dir / "metadata.json", ctx.meta)
    index = ctx.report.write()
    ctx.log(f"done in {ctx.timings['total']:.1f} s; report {index}")
    return ctx
