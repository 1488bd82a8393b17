"""Model evaluation.

Sections (others add theirs alongside): holdout checks and
**churn comparison**: binary churn labels from a calibration/holdout split,
rank-based ROC AUC, Brier score, ROC and calibration tables, compared across scores and
segments.  Metrics are plain numpy (no scikit-learn dependency).
PSIS-LOO tables live in :mod:`clvlab.comparison` (:func:`~clvlab.comparison.loo_table`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .errors import ClvlabInputError

__all__ = [
    "holdout_churn_labels",
    "roc_auc",
    "brier_score",
    "roc_curve",
    "roc_table",
    "calibration_curve",
    "churn_comparison",
    "holdout_check",
]

ALL_SEGMENTS = "all"

# =========================================================================== churn comparison


def holdout_churn_labels(
    transactions: pd.DataFrame, calibration_end: str | pd.Timestamp, holdout_end: str | pd.Timestamp
) -> pd.Series:
    """Churn label per calibration-period customer: 1 if no purchase in (calibration_end, holdout_end].

    Customers are those with a first purchase on or before ``calibration_end``.  Returns
    an int Series (0/1) indexed by ``customer_id`` named ``churned``.
    """
    cal, hold = pd.Timestamp(calibration_end), pd.Timestamp(holdout_end)
    problems = [f"missing column {c!r}" for c in ("customer_id", "date") if c not in transactions]
    if not problems and hold <= cal:
        problems.append(f"holdout_end={hold.date()} must be after calibration_end={cal.date()}")
    if not problems and transactions["date"].min() > cal:
        problems.append(
            f"calibration_end={cal.date()} is before all data (first date {transactions['date'].min().date()})"
        )
    if problems:
        raise ClvlabInputError(problems, what="churn label input")
    ids = transactions["customer_id"].astype(str)
    customers = pd.Index(np.sort(ids[transactions["date"] <= cal].unique()), name="customer_id")
    bought = ids[(transactions["date"] > cal) & (transactions["date"] <= hold)].unique()
    return pd.Series((~customers.isin(bought)).astype("int64"), index=customers, name="churned")


def _as_arrays(labels, scores, *, probability: bool = False, name: str = "score") -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=float)
    s = np.asarray(scores, dtype=float)
    problems = []
    if y.shape != s.shape or y.ndim != 1:
        problems.append(f"labels and {name} must be 1-d of equal length, got {y.shape} and {s.shape}")
    else:
        if not np.isin(y, (0.0, 1.0)).all():
            problems.append(f"labels: expected 0/1, got e.g. {np.unique(y[~np.isin(y, (0.0, 1.0))])[:3].tolist()}")
        if not np.isfinite(s).all():
            problems.append(f"{name}: {int((~np.isfinite(s)).sum())} non-finite value(s)")
        elif probability and ((s < 0) | (s > 1)).any():
            problems.append(f"{name}: probabilities must lie in [0, 1], got range [{s.min():.3g}, {s.max():.3g}]")
    if problems:
        raise ClvlabInputError(problems, what="metric input")
    return y, s


def _midranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    uniq, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)  # rank of the last member of each tie group
    return (upper - (counts - 1) / 2.0)[inv]


def roc_auc(labels, scores) -> float:
    """ROC AUC = P(score of a churner > score of a non-churner) + 0.5 P(tie) (Mann-Whitney U / (n1 n0)).

    Computed from midranks: AUC = (sum of churner ranks - n1 (n1 + 1) / 2) / (n1 n0).
    NaN when only one class is present.
    """
    y, s = _as_arrays(labels, scores)
    n1 = y.sum()
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = _midranks(s)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def brier_score(labels, probabilities) -> float:
    """Brier score: mean (p_i - y_i)^2 (lower is better; 0.25 for p = 0.5 everywhere)."""
    y, p = _as_arrays(labels, probabilities, probability=True, name="probabilities")
    return float(np.mean((p - y) ** 2))


def roc_curve(labels, scores) -> pd.DataFrame:
    """ROC points (threshold, fpr, tpr) for 'churn if score >= threshold', thresholds descending.

    Starts at (0, 0) with threshold +inf; tied scores form one point.  The trapezoid area
    under it equals :func:`roc_auc`.
    """
    y, s = _as_arrays(labels, scores)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_tie = np.r_[np.diff(s_sorted) != 0, True]
    tp = np.cumsum(y_sorted)[last_of_tie]
    fp = np.cumsum(1 - y_sorted)[last_of_tie]
    n1, n0 = y.sum(), len(y) - y.sum()
    return pd.DataFrame(
        {
            "threshold": np.r_[np.inf, s_sorted[last_of_tie]],
            "fpr": np.r_[0.0, fp / n0] if n0 else np.nan,
            "tpr": np.r_[0.0, tp / n1] if n1 else np.nan,
        }
    )


def _aligned(labels: pd.Series, scores: Mapping[str, pd.Series], segment: pd.Series | None) -> pd.DataFrame:
    """Join labels, scores and segments on customer_id; every problem reported at once."""
    problems: list[str] = []
    if not isinstance(labels, pd.Series):
        raise ClvlabInputError(
            ["labels: expected a pandas Series indexed by customer_id"], what="churn comparison input"
        )
    if not isinstance(scores, Mapping) or not scores:
        raise ClvlabInputError(["scores: expected a non-empty dict {name: Series}"], what="churn comparison input")
    if labels.index.has_duplicates:
        problems.append(
            f"labels: duplicated customer_id(s), e.g. {labels.index[labels.index.duplicated()][:3].tolist()}"
        )
    idx = labels.index.astype(str)
    df = pd.DataFrame({"label": labels.to_numpy()}, index=pd.Index(idx, name="customer_id"))
    for name, s in scores.items():
        if not isinstance(s, pd.Series):
            problems.append(f"score {name!r}: expected a pandas Series indexed by customer_id")
            continue
        s = s.copy()
        s.index = s.index.astype(str)
        if s.index.has_duplicates:
            problems.append(
                f"score {name!r}: duplicated customer_id(s), e.g. {s.index[s.index.duplicated()][:3].tolist()}"
            )
            continue
        missing = df.index.difference(s.index)
        if len(missing):
            problems.append(
                f"score {name!r}: no value for {len(missing)} labelled customer(s), e.g. {missing[:3].tolist()}"
            )
        col = s.reindex(df.index)
        nan = col.isna() & df.index.isin(s.index)
        if nan.any():
            problems.append(
                f"score {name!r}: {int(nan.sum())} NaN value(s), e.g. customer_id {df.index[nan][:3].tolist()}"
            )
        elif ((col < 0) | (col > 1)).any():
            problems.append(
                f"score {name!r}: expected probabilities in [0, 1], got range [{col.min():.3g}, {col.max():.3g}]"
            )
        df[f"score::{name}"] = col.to_numpy(dtype=float)
    if segment is not None:
        seg = segment.copy()
        seg.index = seg.index.astype(str)
        missing = df.index.difference(seg.index)
        if len(missing):
            problems.append(f"segment: no segment for {len(missing)} customer(s), e.g. {missing[:3].tolist()}")
        df["segment"] = seg.reindex(df.index).astype(str).to_numpy()
    bad = ~df["label"].isin([0, 1, True, False])
    if bad.any():
        problems.append(f"labels: expected 0/1, got e.g. {df.loc[bad, 'label'].unique()[:3].tolist()}")
    if problems:
        raise ClvlabInputError(problems, what="churn comparison input")
    df["label"] = df["label"].astype(int)
    return df


def churn_comparison(
    labels: pd.Series, scores: Mapping[str, pd.Series], segment: pd.Series | None = None
) -> pd.DataFrame:
    """Compare churn scores (probabilities of churn) against labels, overall and per segment.

    ``labels``: 0/1 Series indexed by customer_id (1 = churned, see
    :func:`holdout_churn_labels`); ``scores``: {name: Series of P(churn)} over the same
    customers (e.g. 1 - P(alive) from BG/NBD, a Cox lapse probability); ``segment``:
    optional Series of segment labels.  Every labelled customer needs a score (scores
    for unlabelled customers are ignored).  Returns a tidy table with one row per (score,
    segment): n, n_churned, churn_rate, mean_score, auc, brier.  Segment ``"all"`` is
    the pooled row.
    """
    df = _aligned(labels, scores, segment)
    groups: list[tuple[str, pd.DataFrame]] = [(ALL_SEGMENTS, df)]
    if segment is not None:
        groups += [(str(k), g) for k, g in df.groupby("segment", sort=True)]
    rows = []
    for name in scores:
        col = f"score::{name}"
        for seg, g in groups:
            y, p = g["label"].to_numpy(), g[col].to_numpy()
            rows.append(
                {
                    "score": name,
                    "segment": seg,
                    "n": len(g),
                    "n_churned": int(y.sum()),
                    "churn_rate": float(y.mean()),
                    "mean_score": float(p.mean()),
                    "auc": roc_auc(y, p),
                    "brier": brier_score(y, p),
                }
            )
    return pd.DataFrame(rows)


def calibration_curve(
    labels: pd.Series,
    scores: Mapping[str, pd.Series] | pd.Series,
    *,
    n_bins: int = 10,
    strategy: str = "quantile",
) -> pd.DataFrame:
    """Reliability table: per score and bin, mean predicted probability vs observed churn rate.

    ``strategy="quantile"``: bins with equal numbers of customers (ties kept together);
    ``"uniform"``: equal-width bins on [0, 1].  Columns: score, bin, p_low, p_high, n,
    mean_predicted, observed_rate, se (binomial standard error of the observed rate).
    """
    if isinstance(scores, pd.Series):
        scores = {scores.name or "score": scores}
    if strategy not in ("quantile", "uniform") or int(n_bins) < 1:
        raise ClvlabInputError(
            [f"strategy={strategy!r}, n_bins={n_bins!r}: expected 'quantile'/'uniform' and >= 1"], what="argument"
        )
    df = _aligned(labels, scores, None)
    rows = []
    for name in scores:
        p = df[f"score::{name}"].to_numpy()
        y = df["label"].to_numpy()
        if strategy == "quantile":
            edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
        else:
            edges = np.linspace(0.0, 1.0, n_bins + 1)
        inner = edges[1:-1]
        b = np.searchsorted(inner, p, side="right") if len(inner) else np.zeros(len(p), int)
        for k in np.unique(b):
            m = b == k
            rate = y[m].mean()
            rows.append(
                {
                    "score": name,
                    "bin": int(k),
                    "p_low": float(p[m].min()),
                    "p_high": float(p[m].max()),
                    "n": int(m.sum()),
                    "mean_predicted": float(p[m].mean()),
                    "observed_rate": float(rate),
                    "se": float(np.sqrt(rate * (1 - rate) / m.sum())),
                }
            )
    return pd.DataFrame(rows)


def roc_table(labels: pd.Series, scores: Mapping[str, pd.Series]) -> pd.DataFrame:
    """ROC points of several scores in one tidy table (score, threshold, fpr, tpr) for plotting."""
    df = _aligned(labels, scores, None)
    parts = [roc_curve(df["label"], df[f"score::{name}"]).assign(score=name) for name in scores]
    return pd.concat(parts, ignore_index=True)[["score", "threshold", "fpr", "tpr"]]


# =========================================================================== holdout checks


def holdout_check(
    rfm: pd.DataFrame, expected: pd.Series, *, segment: str | None = None, max_frequency: int = 7
) -> pd.DataFrame:
    """Predicted vs actual holdout repeat purchases (FHL 2005 fig. 4 as a table).

    ``rfm``: calibration/holdout table (``frequency``, ``frequency_holdout``); ``expected``:
    posterior-mean expected holdout purchases per customer (Series indexed by customer_id).
    Rows grouped by calibration frequency (``max_frequency`` and above pooled), by
    ``segment`` and overall: customers, actual and predicted means and totals, and the
    relative error of the total.
    """
    missing = [c for c in ("customer_id", "frequency", "frequency_holdout") if c not in rfm.columns]
    if missing:
        raise ClvlabInputError([f"rfm: columns {missing} missing (present: {list(rfm.columns)})"], what="holdout data")
    pred = expected.reindex(rfm["customer_id"].to_numpy())
    if pred.isna().any():
        ids = list(rfm["customer_id"][pred.isna().to_numpy()].head(3))
        raise ClvlabInputError(
            [f"expected: no prediction for {int(pred.isna().sum())} customer(s), e.g. {ids}"],
            what="holdout predictions",
        )
    df = pd.DataFrame(
        {
            "actual": rfm["frequency_holdout"].to_numpy(float),
            "predicted": pred.to_numpy(float),
            "frequency": np.minimum(rfm["frequency"].to_numpy(), max_frequency).astype(int).astype(str),
        }
    )
    df.loc[df["frequency"] == str(max_frequency), "frequency"] = f"{max_frequency}+"
    df["all"] = ALL_SEGMENTS
    groupings = ["all", "frequency"]
    if segment:
        df[segment] = rfm[segment].astype(str).to_numpy()
        groupings.append(segment)
    parts = []
    for by in groupings:
        g = df.groupby(by, sort=True)
        part = pd.DataFrame(
            {
                "customers": g.size(),
                "actual_mean": g["actual"].mean(),
                "predicted_mean": g["predicted"].mean(),
                "actual_total": g["actual"].sum(),
                "predicted_total": g["predicted"].sum(),
            }
        )
        part.index = part.index.astype(str)
        if by == "frequency":  # numeric order: 0, 1, ..., 7+
            part = part.loc[sorted(part.index, key=lambda k: int(k.rstrip("+")))]
        parts.append(part.rename_axis("group").reset_index().assign(by=by))
    out = pd.concat(parts, ignore_index=True)
    out["error_total"] = out["predicted_total"] / out["actual_total"].where(out["actual_total"] > 0) - 1.0
    return out[
        ["by", "group", "customers", "actual_mean", "predicted_mean", "actual_total", "predicted_total", "error_total"]
    ]
