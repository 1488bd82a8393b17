"""Customers collapsed to unique (group, x, t_x, T) patterns (design.md "Speed").

Every purchase model's likelihood depends on a customer only through (group, x, t_x, T), where
group is the customer's parameter row (segment, or segment x covariate row). One weighted row
per unique pattern gives the same total; the factored tables (unique (group, x), (group, T),
(group, t_x)) are where a model evaluates its special functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Patterns", "compress_patterns", "factorize"]


# --------------------------------------------------------------------------------------
def factorize(*cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each row's unique key and the row of its first occurrence (keys sorted)."""
    df = pd.DataFrame({f"c{i}": c for i, c in enumerate(cols)})
    codes = df.groupby(list(df.columns), sort=True).ngroup().to_numpy()
    n = int(codes.max()) + 1 if len(codes) else 0
    first = np.full(n, -1, dtype=np.int64)
    # first occurrence of each code (reverse assignment keeps the smallest index)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return codes.astype(np.int64), first


@dataclass(frozen=True)
class Patterns:
    """Customers collapsed to unique (group, x, t_x, T) patterns, plus the factored tables.

    ``group`` is the parameter row a customer uses: its segment, or (segment, covariate row)
    when there are covariates. Tables: ``gx_group, gx_x`` unique (group, x);
    ``gT_group, gT_T`` unique (group, T); ``gt_group, gt_tx`` unique (group, t_x).
    Per pattern: ``group, x, t_x, T, weight`` and the gather indices ``ix, iT, itx``.
    ``inverse`` maps each customer (input row) to its pattern.
    """

    group: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    weight: np.ndarray
    inverse: np.ndarray
    gx_group: np.ndarray
    gx_x: np.ndarray
    gT_group: np.ndarray
    gT_T: np.ndarray
    gt_group: np.ndarray
    gt_tx: np.ndarray
    ix: np.ndarray
    iT: np.ndarray
    itx: np.ndarray

    @property
    def n_patterns(self) -> int:
        return len(self.x)


def compress_patterns(group: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> Patterns:
    """Collapse identical (group, x, t_x, T) rows to one pattern with a count weight."""
    group = np.asarray(group, dtype=np.int64)
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    inverse, first = factorize(group, x, t_x, T)
    weight = np.bincount(inverse, minlength=len(first)).astype(float)
    pg, px, ptx, pT = group[first], x[first], t_x[first], T[first]
    ix, fx = factorize(pg, px)
    iT, fT = factorize(pg, pT)
    itx, ft = factorize(pg, ptx)
    return Patterns(
        group=pg, x=px, t_x=ptx, T=pT, weight=weight, inverse=inverse,
        gx_group=pg[fx], gx_x=px[fx], gT_group=pg[fT], gT_T=pT[fT], gt_group=pg[ft], gt_tx=ptx[ft],
        ix=ix, iT=iT, itx=itx,
    )  # fmt: skip
