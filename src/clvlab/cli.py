"""``clvlab`` command line. The Makefile calls these; each writes its outputs atomically.

    clvlab run --config models/configs/cdnow.yaml [--quick] [--force]
    clvlab rfm --input tx.csv --calibration-end 1997-09-30 --observation-end 1998-06-30 --out rfm.parquet
    clvlab fit bgnbd --input rfm.parquet --segment cohort --pooling partial --out models/runs/NAME
    clvlab fit gg    --input rfm.parquet --segment cohort --pooling partial --out models/runs/NAME
    clvlab score --run models/runs/cdnow transactions.csv --out scores.csv [--as-of 1998-06-30]
    clvlab score --run models/runs/cdnow --input rfm.parquet --out scores.csv
    clvlab compare --runs models/runs/A models/runs/B --out reports/compare/

Bad input ends with exit code 2 and one message naming the argument, file or column.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .choices import COHORT_FREQS, METHODS, PARAMETERIZATIONS, POOLINGS, SAMPLERS, TIME_UNITS
from .errors import ClvlabInputError

READ_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz")
"""Formats an RFM table is read from."""


def _add_columns(p: argparse.ArgumentParser) -> None:
    p.add_argument("--customer-col", default="customer_id")
    p.add_argument("--date-col", default="date")
    p.add_argument("--amount-col", default="amount")
    p.add_argument("--segment-cols", default="", help="comma-separated segment columns (e.g. channel,region)")


def _add_fit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="RFM table (Parquet/CSV) from `clvlab rfm`")
    p.add_argument("--segment", default=None, help="segment column (omit for one population)")
    p.add_argument("--pooling", choices=POOLINGS, default="partial")
    p.add_argument("--method", choices=METHODS, default="nuts")
    p.add_argument("--sampler", choices=SAMPLERS, default="nutpie")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=None, help="warm-up per chain (default: the sampler's: nutpie 400)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--parameterization",
        choices=PARAMETERIZATIONS,
        default="auto",
        help="partial pooling: centred / non-centred segment parameters (auto: from a pilot fit)",
    )
    p.add_argument(
        "--time-unit",
        choices=TIME_UNITS,
        default=None,
        help="unit of recency / T (default: the one `clvlab rfm` stored in a Parquet input)",
    )
    p.add_argument("--out", required=True, help="run folder to write")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clvlab", description="Bayesian CLV workbench")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a configured job (data -> models -> CLV -> report)")
    p.add_argument("--config", required=True)
    p.add_argument(
        "--quick", action="store_true", help="smoke run: few draws, the CDNOW sample (run folder NAME_quick)"
    )
    p.add_argument("--force", action="store_true", help="refit every model (default: reuse matching cached fits)")

    p = sub.add_parser("rfm", help="transaction log -> RFM calibration/holdout table")
    p.add_argument("--input", required=True, help="CSV or Parquet transaction log")
    _add_columns(p)
    p.add_argument("--calibration-end", required=True)
    p.add_argument("--observation-end", required=True)
    p.add_argument("--time-unit", choices=TIME_UNITS, default="W")
    p.add_argument("--whole-periods", action="store_true")
    p.add_argument(
        "--cohort-freq",
        choices=COHORT_FREQS,
        default="W",
        help="period of the cohort label of the first purchase (as a run's features.cohort_freq)",
    )
    p.add_argument(
        "--pseudonymise",
        action="store_true",
        help="replace customer ids by a salted HMAC (salt from the CLVLAB_SALT environment variable)",
    )
    p.add_argument("--out", required=True, help="output .parquet or .csv")

    fit = sub.add_parser("fit", help="fit a model to an RFM table").add_subparsers(dest="model", required=True)
    _add_fit_options(fit.add_parser("bgnbd", help="hierarchical BG/NBD (purchase + dropout)"))
    _add_fit_options(fit.add_parser("mbgnbd", help="hierarchical MBG/NBD (dropout possible at the first purchase)"))
    _add_fit_options(fit.add_parser("pareto_nbd", help="hierarchical Pareto/NBD (dropout in continuous time)"))
    _add_fit_options(fit.add_parser("nbd", help="NBD without dropout (a comparison baseline)"))
    _add_fit_options(fit.add_parser("gg", help="hierarchical Gamma-Gamma (spend)"))

    p = sub.add_parser("score", help="score customers with a saved run's models (no refit)",
                       description="Score the customers of a transaction log (built into RFM rows by the run's own "
                                   "feature rules) or of an RFM table with a saved run's models. Customers of a "
                                   "segment the run did not fit (e.g. a cohort acquired later) are valued by a "
                                   "population draw, and counted.")  # fmt: skip
    p.add_argument("--run", required=True, help="run folder of `clvlab run` (e.g. models/runs/cdnow)")
    p.add_argument(
        "transactions",
        nargs="?",
        default=None,
        help="transaction log (CSV/Parquet) with the run's columns and segment columns",
    )
    p.add_argument("--input", default=None, help="an RFM table (Parquet/CSV) in the run's time unit, instead of a log")
    p.add_argument("--as-of", default=None, help="score as of this day (default: the log's last purchase day)")
    p.add_argument("--customer-col", default=None, help="the log's customer column (default: the run's)")
    p.add_argument("--date-col", default=None, help="the log's date column (default: the run's)")
    p.add_argument("--amount-col", default=None, help="the log's amount column (default: the run's)")
    p.add_argument("--out", required=True, help="output .csv or .parquet (P(alive), expected purchases, CLV)")

    p = sub.add_parser("compare", help="score the purchase models of saved runs against each other (LOO, holdout)")
    p.add_argument("--runs", required=True, nargs="+", help="run folders on the same customers")
    p.add_argument("--out", required=True, help="folder for the CSV tables, comparison.md and the figures")
    return parser


def _check_input(path: str, what: str = "--input") -> Path:
    p = Path(path)
    problems = []
    if not p.is_file():
        problems.append(f"{what} {path}: no such file")
    elif not p.name.lower().endswith(READ_SUFFIXES):
        problems.append(f"{what} {path}: unsupported suffix {p.suffix!r}; expected one of {READ_SUFFIXES}")
    if problems:
        raise ClvlabInputError(problems, what="argument")
    return p


def _check_output(path: str) -> None:
    from .io import check_table_path

    check_table_path(path, "--out")


def _read_table(path: Path):
    import pandas as pd

    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, dtype={"customer_id": str})  # ids are labels: keep leading zeros
    except (OSError, ValueError) as exc:  # 0-byte, corrupt or header-only files
        raise ClvlabInputError(f"--input {path}: not a readable table ({exc})", what="argument") from None
    if len(table) == 0:
        raise ClvlabInputError(f"--input {path}: no rows", what="argument")
    return table


def cmd_rfm(args: argparse.Namespace) -> None:
    from .data import load_transactions
    from .features import calibration_holdout
    from .io import write_table

    _check_output(args.out)  # before the work; the input is checked by load_transactions
    segments = [c for c in args.segment_cols.split(",") if c]
    tx, report = load_transactions(
        args.input,
        customer_col=args.customer_col,
        date_col=args.date_col,
        amount_col=args.amount_col,
        segment_cols=segments,
        pseudonymise=args.pseudonymise,
    )
    rfm = calibration_holdout(
        tx,
        args.calibration_end,
        args.observation_end,
        time_unit=args.time_unit,
        segment_cols=segments,
        whole_periods=args.whole_periods,
        cohort_freq=args.cohort_freq,
    )
    if len(rfm) == 0:
        raise ClvlabInputError(
            f"no customer made a first purchase on or before --calibration-end "
            f"{args.calibration_end} (data from {report.date_min:%Y-%m-%d})",
            what="argument",
        )
    write_table(rfm, args.out)
    repeaters = int((rfm["frequency"] > 0).sum())
    print(f"customers      {len(rfm):,}  (repeaters in calibration: {repeaters:,}, {repeaters / len(rfm):.1%})")
    print(f"date range     {report.date_min:%Y-%m-%d} .. {report.date_max:%Y-%m-%d}")
    print(
        f"rows           {report.n_input_rows:,} in, {report.n_output_rows:,} purchase days "
        f"({report.n_input_rows - report.n_output_rows:,} rows aggregated)"
    )
    print(f"wrote          {args.out}")


def cmd_fit(args: argparse.Namespace) -> None:
    rfm = _read_table(_check_input(args.input))
    if args.model == "gg":
        from .models.gamma_gamma import GammaGamma as Model
    else:
        from .models import purchase_model_class

        Model = purchase_model_class(args.model)
    model = Model(pooling=args.pooling, segment=args.segment, parameterization=args.parameterization)
    model.fit(
        rfm,
        method=args.method,
        sampler=args.sampler,
        chains=args.chains,
        draws=args.draws,
        tune=args.tune,
        seed=args.seed,
        time_unit=args.time_unit,
    )
    if args.method == "nuts":
        print(model.diagnostics_)
    print(model.summary().to_string())
    model.save(args.out)
    print(f"wrote {args.out}")


def cmd_run(args: argparse.Namespace) -> None:
    from .config import load_config
    from .runs import run

    run(load_config(args.config, quick=args.quick or None), force=args.force)


def cmd_score(args: argparse.Namespace) -> None:
    from .io import write_table
    from .scoring import score_rfm, score_transactions

    log_only = {"--as-of": args.as_of, "--customer-col": args.customer_col, "--date-col": args.date_col,
                "--amount-col": args.amount_col}  # fmt: skip
    if (args.transactions is None) == (args.input is None):
        raise ClvlabInputError("give a transaction log (a path after the options) or an RFM table (--input), "
                               f"not {'both' if args.input else 'neither'}", what="argument")  # fmt: skip
    if args.input is not None and any(v is not None for v in log_only.values()):
        raise ClvlabInputError(f"{[k for k, v in log_only.items() if v is not None]} apply to a transaction log, not "
                               "to an RFM table (--input)", what="argument")  # fmt: skip
    _check_output(args.out)
    if args.input is not None:
        scores = score_rfm(args.run, _read_table(_check_input(args.input)))
    else:
        scores = score_transactions(args.run, _check_input(args.transactions, "transaction log"), as_of=args.as_of,
                                    customer_col=args.customer_col, date_col=args.date_col,
                                    amount_col=args.amount_col)  # fmt: skip
    write_table(scores.customers, args.out)
    for line in scores.describe():
        print(line)
    print(f"with the models of {args.run}; wrote {args.out}")


def cmd_compare(args: argparse.Namespace) -> None:
    from .compare_runs import compare_runs, write_comparison

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ClvlabInputError(f"--out {out}: an existing file, not a folder (the comparison writes several files)",
                               what="argument")  # fmt: skip
    cmp, cfg = compare_runs(args.runs)
    path = write_comparison(cmp, args.out, time_unit=cfg.features.time_unit)
    print(cmp.verdict)
    print(f"wrote {path} (+ CSV tables and figures in {args.out})")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"run": cmd_run, "rfm": cmd_rfm, "fit": cmd_fit, "score": cmd_score, "compare": cmd_compare}[args.command]
    try:
        handler(args)
    except ClvlabInputError as exc:
        print(f"clvlab: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
