"""Acquisition costs (CAC) per channel: the one reader and checker every CLV/CAC analysis uses
(:func:`clvlab.clv.clv_cac`, :func:`clvlab.clv.cac_ratio`, :func:`clvlab.clv.allocate_budget`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..choices import MIN_CAC
from ..errors import ClvlabInputError

__all__ = ["CAC", "cac_by_segment"]

CAC = Mapping[str, float] | pd.Series | pd.DataFrame
"""Acquisition cost per customer by channel: {channel: cost}, a Series, or a table with the
channel column and ``cac``."""


def cac_by_segment(cac: CAC, segment: str, segments: Sequence[str], *, priced_without_customers: str | None = None
                   ) -> pd.Series:  # fmt: skip
    """The CAC of each of ``segments``, checked; every problem is listed at once.

    Parameters
    ----------
    cac : Mapping, Series or DataFrame
        {label: cost}, a Series indexed by label, or a table with columns ``segment`` and ``cac``.
    segment : str
        The channel column's name (used in the table's columns and in the messages).
    segments : sequence of str
        The labels that need a price (every one must have a CAC >= :data:`MIN_CAC`, one row each).
    priced_without_customers : str, optional
        Where customers come from, e.g. "the first orders": a CAC for a label that is not
        in ``segments`` is then an error ("has a CAC but no customers in the first orders");
        None: such a CAC is allowed (and unused).

    Returns
    -------
    Series
        float CAC indexed by ``segments``, in their order.
    """
    if isinstance(cac, pd.DataFrame):
        if segment not in cac.columns or "cac" not in cac.columns:
            raise ClvlabInputError(f"a CAC table needs columns {segment!r} and 'cac', got {list(cac.columns)}",
                                   what="CAC table")  # fmt: skip
        cac = cac.set_index(segment)["cac"]
    cac = pd.Series(cac, dtype=object)
    cac.index = cac.index.astype(str)
    segments = [str(g) for g in segments]
    twice = sorted(set(cac.index[cac.index.duplicated()]))
    problems = [f"{segment} {g!r} has {int((cac.index == g).sum())} CAC rows: expected one" for g in twice]
    problems += [f"no CAC for {segment} {g!r}" for g in segments if g not in cac.index]
    for g, v in cac.items():
        if g in twice or (g not in segments and priced_without_customers is None):
            continue  # named above / allowed and unused
        if not _is_cost(v):
            problems.append(f"CAC of {segment} {g!r} is {v!r}: expected a number >= {MIN_CAC:g} (not text, "
                            "not True/False)")  # fmt: skip
        elif g not in segments:
            problems.append(f"{segment} {g!r} has a CAC but no customers in {priced_without_customers}")
    if problems:
        raise ClvlabInputError(problems, what="CAC table")
    return cac.reindex(segments).astype(float)


def _is_cost(v: object) -> bool:
    """A finite real number >= MIN_CAC; text and booleans are not costs (no silent conversion)."""
    if isinstance(v, bool | np.bool_ | str) or not isinstance(v, int | float | np.integer | np.floating):
        return False
    return bool(np.isfinite(v) and v >= MIN_CAC)
