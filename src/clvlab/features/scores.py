"""RFM scores (quantile bins 1..n) and named RFM segments.

Scores, each 1 (worst) .. ``n_bins`` (best), from an RFM table (:func:`rfm_summary`):

* ``R`` on the time since the last purchase, ``T - recency``: a smaller gap (more recent)
  scores higher.
* ``F`` on the repeat frequency ``frequency``.
* ``M`` on ``monetary_value``. A 0 means "no repeat spend observed" (every customer without a
  repeat purchase has 0), not a cheap customer: zeros would otherwise fill the low bins and
  push all repeat buyers up. So zeros get M = 1 and the positive values are binned among
  themselves (1..n_bins).

Binning is by rank, deterministic under ties: ``score = 1 + floor(n_bins * (rank_min - 1) / n)``
with ``rank_min`` the smallest 1-based rank of the value among the ``n`` values. Equal
values always get equal scores; when one value fills several bins (e.g. 60% of CDNOW has
frequency 0) the scores in between are simply not used (F takes the values 1, 4, 5 there).

The named segment is looked up from (R, F) in :data:`SEGMENT_RULES`, the one table of the
rules (the usual R x F grid of RFM practice, with "lost" split off "hibernating"). For
``n_bins != 5`` the scores are first mapped onto 1..5 with ``ceil(score * 5 / n_bins)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from clvlab.errors import ClvlabInputError
from clvlab.features.validation import RECENCY_TOLERANCE

__all__ = ["SegmentRule", "SEGMENT_RULES", "SEGMENTS", "quantile_scores", "rfm_scores", "segment_of"]


class SegmentRule(NamedTuple):
    """Customers with R in [r_min, r_max] and F in [f_min, f_max] (scores on 1..5) form ``name``."""

    name: str
    r_min: int
    r_max: int
    f_min: int
    f_max: int
    meaning: str


#: The RFM segment rule table (R x F grid on 1..5 scores). Every (R, F) cell is in exactly one rule.
#:
#:     R\F  1               2               3               4            5
#:     5    new             potential loy.  potential loy.  champions    champions
#:     4    promising       potential loy.  potential loy.  loyal        loyal
#:     3    about to sleep  about to sleep  need attention  loyal        loyal
#:     2    hibernating     hibernating     at risk         at risk      cannot lose
#:     1    lost            lost            at risk         at risk      cannot lose
SEGMENT_RULES: tuple[SegmentRule, ...] = (
    SegmentRule("champions", 5, 5, 4, 5, "bought recently, buy often"),
    SegmentRule("loyal", 3, 4, 4, 5, "buy often, fairly recently"),
    SegmentRule("potential loyalist", 4, 5, 2, 3, "recent, a few repeat purchases"),
    SegmentRule("new", 5, 5, 1, 1, "bought very recently, no repeat yet"),
    SegmentRule("promising", 4, 4, 1, 1, "recent, no repeat yet"),
    SegmentRule("need attention", 3, 3, 3, 3, "middling recency and frequency"),
    SegmentRule("about to sleep", 3, 3, 1, 2, "middling recency, rarely bought"),
    SegmentRule("at risk", 1, 2, 3, 4, "bought often, but long ago"),
    SegmentRule("cannot lose", 1, 2, 5, 5, "were among the most frequent, long ago"),
    SegmentRule("hibernating", 2, 2, 1, 2, "long ago, rarely"),
    SegmentRule("lost", 1, 1, 1, 2, "longest ago, rarely"),
)
SEGMENTS: tuple[str, ...] = tuple(rule.name for rule in SEGMENT_RULES)


def quantile_scores(values: pd.Series | np.ndarray, n_bins: int = 5) -> np.ndarray:
    """Rank-based quantile bins 1..n_bins: ``1 + floor(n_bins * (rank_min - 1) / n)``."""
    v = pd.Series(np.asarray(values, dtype=float))
    if len(v) == 0:
        return np.zeros(0, dtype=np.int64)
    rank_min = v.rank(method="min").to_numpy()
    return (1 + np.floor(n_bins * (rank_min - 1) / len(v))).astype(np.int64)


def segment_of(r: np.ndarray, f: np.ndarray, n_bins: int = 5) -> pd.Categorical:
    """Segment names from R and F scores (1..n_bins) via :data:`SEGMENT_RULES`."""
    r5 = np.ceil(np.asarray(r) * 5 / n_bins).astype(int)
    f5 = np.ceil(np.asarray(f) * 5 / n_bins).astype(int)
    out = np.full(len(r5), None, dtype=object)
    for rule in SEGMENT_RULES:
        hit = (r5 >= rule.r_min) & (r5 <= rule.r_max) & (f5 >= rule.f_min) & (f5 <= rule.f_max)
        out[hit] = rule.name
    return pd.Categorical(out, categories=list(SEGMENTS))


def rfm_scores(rfm: pd.DataFrame, n_bins: int = 5) -> pd.DataFrame:
    """A copy of ``rfm`` with integer scores ``R``, ``F``, ``M`` (1..n_bins), ``rfm_code``
    (e.g. "545" for n_bins <= 9) and the categorical ``rfm_segment`` (module docstring)."""
    problems = []
    missing = [c for c in ("frequency", "recency", "T", "monetary_value") if c not in rfm.columns]
    if missing:
        problems.append(f"columns {missing} missing: expected an RFM table from rfm_summary")
    if not isinstance(n_bins, (int, np.integer)) or isinstance(n_bins, bool) or not 2 <= n_bins <= 100:
        problems.append(f"n_bins={n_bins!r}: expected an integer from 2 to 100")
    if not missing:
        for col in ("frequency", "recency", "T", "monetary_value"):
            bad = rfm[col].isna() | (rfm[col] < 0)
            if bad.any():
                problems.append(
                    f"column {col!r} is NaN or negative in {int(bad.sum())} row(s) "
                    f"(e.g. index {list(rfm.index[bad][:3])}): expected >= 0"
                )
        over = rfm["recency"] > rfm["T"] * (1 + RECENCY_TOLERANCE) + RECENCY_TOLERANCE
        if over.any():
            problems.append(
                f"column 'recency': recency > T in {int(over.sum())} row(s) "
                f"(e.g. index {list(rfm.index[over][:3])}): expected recency <= T"
            )
    if problems:
        raise ClvlabInputError(problems, what="RFM table")
    out = rfm.copy()
    out["R"] = quantile_scores(-(rfm["T"] - rfm["recency"]), n_bins)
    out["F"] = quantile_scores(rfm["frequency"], n_bins)
    m = np.ones(len(rfm), dtype=np.int64)
    positive = (rfm["monetary_value"] > 0).to_numpy()
    m[positive] = quantile_scores(rfm["monetary_value"].to_numpy()[positive], n_bins)
    out["M"] = m
    sep = "" if n_bins <= 9 else "-"
    out["rfm_code"] = out["R"].astype(str) + sep + out["F"].astype(str) + sep + out["M"].astype(str)
    out["rfm_segment"] = segment_of(out["R"].to_numpy(), out["F"].to_numpy(), n_bins)
    return out


def _check_rules_partition() -> None:  # import-time guard: the table must cover the grid exactly once
    cover = np.zeros((5, 5), dtype=int)
    for rule in SEGMENT_RULES:
        cover[rule.r_min - 1 : rule.r_max, rule.f_min - 1 : rule.f_max] += 1
    if not (cover == 1).all():  # pragma: no cover - a broken edit of the table
        raise AssertionError(f"SEGMENT_RULES must cover each (R, F) cell once:\n{cover}")


_check_rules_partition()
