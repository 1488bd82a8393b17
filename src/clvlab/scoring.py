"""Score customers with a saved run's models, without refitting (``clvlab score``).

:func:`score_transactions` takes a transaction log and applies the run's own feature rules
(column names, segment columns, pseudonymisation, time unit, whole periods, the cohort rule) to
build each customer's RFM row as of a date; :func:`score_rfm` takes an RFM table already in the
run's time unit. Both give P(alive), the expected purchases over the run's CLV horizon and the
posterior CLV, each with its HDI.

A customer of a segment the fit did not see (a cohort acquired after the run's calibration
period, a new channel) is valued by a population draw of that segment's parameters
(:meth:`~clvlab.models.new_segments.NewSegments.with_segments`): the hierarchy's
between-segment spread, so the wider interval says how little the run knows of it. How many
customers that concerns is returned (:attr:`Scores.new_segments`) and said by ``clvlab score``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from .choices import BEHAVIOUR_COLUMN
from .config import RunConfig
from .errors import ClvlabInputError
from .run_folder import read_finished

__all__ = ["SEGMENT_IN_FIT", "Scores", "T_FLAG_RATIO", "score_rfm", "score_transactions"]

SEGMENT_IN_FIT = "segment_in_fit"
"""Output column: False where the customer's segment was valued by a population draw."""
T_FLAG_RATIO = 1.5
"""An RFM table whose longest T exceeds the run's by this factor is flagged (another time unit?)."""
RFM_OUT = ("frequency", "recency", "T", "monetary_value")


@dataclass(frozen=True)
class Scores:
    """What :func:`score_rfm` / :func:`score_transactions` found.

    Attributes
    ----------
    customers : DataFrame
        One row per customer, input order (a log: by customer id): ``customer_id``, the run's
        segment column, ``frequency``, ``recency``, ``T``, ``monetary_value``,
        ``segment_in_fit``, ``p_alive`` and ``expected_purchases`` over the CLV horizon (mean,
        HDI), CLV (mean, sd, HDI) and P(CLV > c) for the run's thresholds.
    config : RunConfig
        The run's configuration (its feature rules and CLV settings).
    new_segments : dict
        Model name -> the segment labels it did not see, valued by a population draw.
    n_new_segment_customers : int
        Customers in a segment either model did not see.
    as_of : Timestamp, optional
        The date the RFM rows were built at (a transaction log only).
    excluded : dict
        What the RFM builder left out (e.g. transactions after ``as_of``).
    """

    customers: pd.DataFrame
    config: RunConfig
    new_segments: dict[str, list[str]] = field(default_factory=dict)
    n_new_segment_customers: int = 0
    as_of: pd.Timestamp | None = None
    excluded: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> list[str]:
        """Lines for a person: how many customers, at which date and unit, and the new segments."""
        f = self.config.features
        n = len(self.customers)
        head = f"scored {n:,} customers"
        if self.as_of is not None:
            head += (f" as of {self.as_of:%Y-%m-%d} (the run's rules: time unit {f.time_unit}, cohorts by "
                     f"{f.cohort_freq}" + (f", segment {f.segment}" if f.segment else "") + ")")  # fmt: skip
        lines = [head]
        later = int(self.excluded.get("transactions_after_observation_end", 0))
        if later:
            first = int(self.excluded.get("customers_after_observation_end", 0))
            lines.append(
                f"left out {later:,} purchase day(s) after {self.as_of:%Y-%m-%d} (--as-of)"
                + (f", and with them {first:,} customer(s) first seen later" if first else "")
            )
        labels = sorted({g for v in self.new_segments.values() for g in v})
        if labels:
            shown = ", ".join(labels[:6]) + (f" and {len(labels) - 6} more" if len(labels) > 6 else "")
            lines.append(f"{self.n_new_segment_customers:,} of {n:,} customers are in {len(labels)} segment(s) the "
                         f"run did not fit ({f.segment}: {shown}): valued by a population draw of their parameters "
                         f"(column {SEGMENT_IN_FIT} = False; wider intervals)")  # fmt: skip
        return lines


def _run_config(run_dir: Path) -> RunConfig:
    return RunConfig.model_validate(read_finished(run_dir, what="--run")["config"])


def score_rfm(run_dir: str | os.PathLike, rfm: pd.DataFrame, *, prob: float | None = None) -> Scores:
    """Score RFM rows with the models of a saved run, without refitting.

    Parameters
    ----------
    run_dir : path
        A run folder written by :func:`clvlab.runs.run` (its completion record is checked).
    rfm : DataFrame
        RFM rows (``customer_id``, ``frequency``, ``recency``, ``T``, ``monetary_value`` and the
        run's segment column), in the run's time unit (``features.time_unit``).
    prob : float, optional
        HDI mass (default: the run's ``clv.hdi_prob``).

    Returns
    -------
    Scores
    """
    run_dir = Path(run_dir)
    return _score(run_dir, _run_config(run_dir), rfm, prob=prob)


def score_transactions(run_dir: str | os.PathLike, transactions: str | os.PathLike | pd.DataFrame, *,
                       as_of: Any = None, customer_col: str | None = None, date_col: str | None = None,
                       amount_col: str | None = None, prob: float | None = None) -> Scores:  # fmt: skip
    """Score the customers of a transaction log with a saved run's models and feature rules.

    Parameters
    ----------
    run_dir : path
        A run folder written by :func:`clvlab.runs.run`.
    transactions : path or DataFrame
        The log (CSV / Parquet path or a table), validated as the run's was
        (:func:`clvlab.data.load_transactions`), with the run's segment columns.
    as_of : date-like, optional
        Purchases up to this day (inclusive) count; T runs to it. Default: the log's last day.
    customer_col, date_col, amount_col : str, optional
        The log's column names (default: the run's ``data`` section).
    prob : float, optional
        HDI mass (default: the run's ``clv.hdi_prob``).

    Returns
    -------
    Scores
        With ``as_of`` and the builder's ``excluded`` counts.
    """
    from .data import load_transactions
    from .features import rfm_summary

    run_dir = Path(run_dir)
    cfg = _run_config(run_dir)
    d, f = cfg.data, cfg.features
    if f.segment == BEHAVIOUR_COLUMN:
        raise ClvlabInputError(f"--run {run_dir}: its models are segmented by the behavioural clusters "
                               f"(features.segment: {f.segment}); scoring a transaction log would need the "
                               "clustering's feature scaling, which the run folder does not keep: score an RFM "
                               f"table with a {f.segment!r} column (--input) instead", what="argument")  # fmt: skip
    tx, report = load_transactions(transactions, customer_col=customer_col or d.customer_col,
                                   date_col=date_col or d.date_col, amount_col=amount_col or d.amount_col,
                                   segment_cols=d.segment_cols, pseudonymise=d.pseudonymise)  # fmt: skip
    day = report.date_max.normalize() if as_of is None else _as_of(as_of)
    if day < report.date_min.normalize():
        raise ClvlabInputError(f"--as-of {day:%Y-%m-%d} is before the log's first purchase "
                               f"({report.date_min:%Y-%m-%d}): no customer to score", what="argument")  # fmt: skip
    rfm = rfm_summary(tx, day, time_unit=f.time_unit, segment_cols=d.segment_cols, whole_periods=f.whole_periods,
                      cohort_freq=f.cohort_freq)  # fmt: skip
    return replace(
        _score(run_dir, cfg, rfm, prob=prob, flag_t=False), as_of=day, excluded=dict(rfm.attrs.get("excluded", {}))
    )


def _as_of(value: Any) -> pd.Timestamp:
    try:
        day = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ClvlabInputError(f"--as-of {value!r}: not a date ({exc}); expected e.g. 1998-06-30",
                               what="argument") from None  # fmt: skip
    if pd.isna(day):
        raise ClvlabInputError(f"--as-of {value!r}: not a date; expected e.g. 1998-06-30", what="argument")
    return day.tz_localize(None).normalize() if day.tzinfo else day.normalize()


def _score(run_dir: Path, cfg: RunConfig, rfm: pd.DataFrame, *, prob: float | None, flag_t: bool = True) -> Scores:
    from .clv import customer_lifetime_value
    from .models import purchase_model_class
    from .models.gamma_gamma import GammaGamma
    from .stats import hdi
    from .units import unit_days

    name = cfg.purchase.model
    bg, gg = purchase_model_class(name).load(run_dir / name), GammaGamma.load(run_dir / "gamma_gamma")
    seg = cfg.features.segment
    need = ["customer_id", *RFM_OUT, *([seg] if seg else [])]
    missing = [c for c in need if c not in rfm.columns]
    if missing:
        raise ClvlabInputError(f"the RFM table has no column(s) {missing} (columns present: {list(rfm.columns)[:12]}); "
                               f"the run's models need {need}", what="RFM data")  # fmt: skip
    if flag_t:
        _flag_unit_mismatch(run_dir, rfm, cfg.features.time_unit)
    unit = rfm.attrs.get("time_unit")
    if unit is not None and bg.time_unit_ is not None and unit != bg.time_unit_:
        raise ClvlabInputError(f"the RFM table is in time unit {unit!r}, the run's models in {bg.time_unit_!r}: "
                               "rebuild it with the run's features.time_unit", what="RFM data")  # fmt: skip
    new: dict[str, list[str]] = {}
    in_fit = pd.Series(True, index=rfm.index)
    if seg:
        labels = rfm[seg].astype(str)
        rfm = rfm.assign(**{seg: labels})
        for key, model in ((name, bg), ("gamma_gamma", gg)):
            unseen = model.new_segments(labels)
            if unseen:
                new[key] = unseen
        if name in new:
            bg = bg.with_segments(new[name], seed=cfg.seed)
            in_fit &= ~labels.isin(new[name])
        if "gamma_gamma" in new:  # a segment without a repeat buyer in the fit: no spend of its own
            gg = gg.with_segments(new["gamma_gamma"], seed=cfg.seed)
            in_fit &= ~labels.isin(new["gamma_gamma"])
    c = cfg.clv
    prob = c.hdi_prob if prob is None else prob
    horizon_t = c.horizon * unit_days(c.period) / unit_days(bg.time_unit_ or cfg.features.time_unit)
    out = pd.DataFrame({"customer_id": rfm["customer_id"].astype(str).to_numpy()})
    if seg:
        out[seg] = rfm[seg].to_numpy()
    for col in RFM_OUT:
        out[col] = rfm[col].to_numpy()
    out[SEGMENT_IN_FIT] = in_fit.to_numpy()
    for what, da in (("p_alive", bg.p_alive(rfm)), ("expected_purchases", bg.expected_purchases(horizon_t, rfm))):
        v = da.stack(_s=("chain", "draw")).transpose("customer_id", "_s").values
        lo, hi = hdi(v, prob, axis=1)
        out[f"{what}_mean"], out[f"{what}_hdi_low"], out[f"{what}_hdi_high"] = v.mean(1), lo, hi
    res = customer_lifetime_value(bg, gg, rfm, horizon=c.horizon, period=c.period, discount_rate=c.discount_rate,
                                  margin=c.margin, threshold=c.thresholds, hdi_prob=prob)  # fmt: skip
    keep = [col for col in res.customers.columns if col.startswith(("clv_", "p_clv_gt_"))]
    customers = pd.concat([out, res.customers[keep].reset_index(drop=True)], axis=1)
    return Scores(customers=customers, config=cfg, new_segments=new, n_new_segment_customers=int((~in_fit).sum()))


def _flag_unit_mismatch(run_dir: Path, rfm: pd.DataFrame, unit: str) -> None:
    """Warn when the table's T reaches far beyond the run's calibration (a table in days for a
    weekly run, say): the numbers would be computed, but for the wrong time axis."""
    t = pd.to_numeric(rfm["T"], errors="coerce")
    ref = run_dir / "rfm.parquet"
    if not ref.is_file() or not t.notna().any():
        return
    longest = float(pd.read_parquet(ref, columns=["T"])["T"].max())
    if longest > 0 and float(t.max()) > T_FLAG_RATIO * longest:
        warnings.warn(f"the RFM table's T reaches {float(t.max()):g}, the run's calibration only {longest:g} "
                      f"(features.time_unit {unit!r}): is the table in another time unit? Rebuild it with the run's "
                      "features.time_unit", UserWarning, stacklevel=4)  # fmt: skip
