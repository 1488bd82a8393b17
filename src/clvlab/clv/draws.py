"""Parameter draws for the CLV engine: from fitted models, posteriors or fixed values.

A :class:`ParamDraws` holds each population parameter as an (n_draws, n_segments) array and
the column of the customer table that picks a customer's segment. The engine pairs BG/NBD
draws (``BGNBD_PARAMS``) with Gamma-Gamma draws (``GG_PARAMS``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..choices import ALL_SEGMENTS
from ..errors import ClvlabInputError

__all__ = ["BGNBD_PARAMS", "GG_PARAMS", "ParamDraws", "param_draws", "scale_dropout", "segment_codes"]

BGNBD_PARAMS = ("r", "alpha", "a", "b")
"""Population parameters of the BG/NBD purchase and dropout model."""
GG_PARAMS = ("p", "q", "gamma")
"""Population parameters of the Gamma-Gamma spend model."""


@dataclass(frozen=True)
class ParamDraws:
    """Population parameters per draw and segment.

    Parameters
    ----------
    values : dict of str to ndarray
        ``values[name]`` has shape (n_draws, n_segments).
    segments : list of str
        Segment labels, in column order; ``[ALL_SEGMENTS]`` for a pooled model.
    segment : str or None
        Column of the customer table holding each customer's segment; None: one segment
        for every customer.
    model : str or None
        The purchase model the draws belong to (its ``model_name``: "bgnbd", "mbgnbd",
        "pareto_nbd"); None for spend draws and bare parameters.
    """

    values: dict[str, np.ndarray]
    segments: list[str]
    segment: str | None
    model: str | None = None

    @property
    def n_draws(self) -> int:
        """Number of draws (rows of every ``values`` array)."""
        return next(iter(self.values.values())).shape[0]

    def thin(self, idx: np.ndarray) -> ParamDraws:
        """The draws at positions ``idx``.

        Parameters
        ----------
        idx : ndarray of int
            Draw positions to keep.

        Returns
        -------
        ParamDraws
        """
        return ParamDraws({k: v[idx] for k, v in self.values.items()}, self.segments, self.segment, self.model)

    def with_values(self, **values: np.ndarray) -> ParamDraws:
        """A copy with some parameter arrays replaced.

        Parameters
        ----------
        **values : ndarray
            New (n_draws, n_segments) arrays by parameter name.

        Returns
        -------
        ParamDraws
        """
        return ParamDraws({**self.values, **values}, self.segments, self.segment, self.model)


def _posterior_of(obj: Any) -> Any:
    """The posterior Dataset of a fitted estimator / InferenceData / DataTree, or ``obj`` itself."""
    if isinstance(getattr(obj, "posterior_", None), xr.Dataset):
        return obj.posterior_
    for attr in ("idata_", "idata", "trace_"):
        idata = getattr(obj, attr, None)
        if idata is not None:
            obj = idata
            break
    try:
        post = obj["posterior"]
    except (KeyError, TypeError, IndexError, ValueError):
        post = getattr(obj, "posterior", obj)
    if hasattr(post, "to_dataset") and not isinstance(post, xr.Dataset | xr.DataArray):
        post = post.to_dataset()  # DataTree node
    return post


def param_draws(
    source: Any,
    names: Sequence[str],
    *,
    segment: str | None = None,
    segment_dim: str = "segment",
    model: str | None = None,
) -> ParamDraws:
    """Collect parameter draws as (n_draws, n_segments) arrays.

    Parameters
    ----------
    source : estimator, InferenceData, DataTree, Dataset, Mapping or ParamDraws
        A fitted clvlab estimator (its posterior; segment column from its ``.segment``), an
        InferenceData / DataTree / xarray Dataset with variables ``names`` on dims
        (chain, draw[, ``segment_dim``]), or a mapping name -> scalar (fixed params, one
        draw), 1-D array over draws, or {segment: scalar} dict (fixed params per segment).
        A ParamDraws is returned unchanged.
    names : sequence of str
        Parameter names, e.g. :data:`BGNBD_PARAMS` or :data:`GG_PARAMS`.
    segment : str, optional
        Column of the customer table holding the segment labels (default: the estimator's
        ``.segment``). Ignored when there is only one segment.
    segment_dim : str
        Name of the posterior's segment dimension.
    model : str, optional
        The purchase model the draws belong to (default: the estimator's ``model_name``).

    Returns
    -------
    ParamDraws
    """
    if isinstance(source, ParamDraws):
        return source
    if model is None:
        model = getattr(source, "model_name", None)
        model = model if isinstance(model, str) else None
    if segment is None:
        segment = getattr(source, "segment", None)
        if not isinstance(segment, str):
            segment = None
    if isinstance(source, Mapping) and not isinstance(source, xr.Dataset):
        vals = {n: source[n] for n in names}
        if all(isinstance(v, Mapping) for v in vals.values()):
            segs = [str(s) for s in next(iter(vals.values()))]
            out = {n: np.array([[float(vals[n][s]) for s in segs]]) for n in names}
            return ParamDraws(out, segs, segment, model)
        out = {}
        for n, v in vals.items():
            arr = np.asarray(v, dtype=float)
            if arr.ndim == 0:
                arr = arr.reshape(1, 1)
            elif arr.ndim == 1:
                arr = arr[:, None]
            out[n] = arr
        n_seg = next(iter(out.values())).shape[1]
        segs = [ALL_SEGMENTS] if n_seg == 1 else [str(i) for i in range(n_seg)]
        return ParamDraws(out, segs, segment if len(segs) > 1 else None, model)

    post = _posterior_of(source)
    missing = [n for n in names if n not in post]
    if missing:
        raise ClvlabInputError(
            [f"posterior has no variable {n!r} (has {sorted(map(str, post.data_vars))})" for n in missing],
            what="model posterior",
        )
    out = {}
    segs: list[str] = [ALL_SEGMENTS]
    for n in names:
        da = post[n]
        sample_dims = [d for d in ("chain", "draw") if d in da.dims]
        extra = [d for d in da.dims if d not in sample_dims]
        if extra and extra != [segment_dim]:
            raise ClvlabInputError(
                f"{n!r} has dims {da.dims}: expected (chain, draw) or (chain, draw, {segment_dim!r})",
                what="model posterior",
            )
        if extra:
            da = da.stack(__sample__=sample_dims).transpose("__sample__", segment_dim)
            segs = [str(s) for s in da[segment_dim].values]
            out[n] = np.asarray(da.values, dtype=float)
        else:
            da = da.stack(__sample__=sample_dims) if sample_dims else da.expand_dims("__sample__")
            out[n] = np.asarray(da.values, dtype=float).reshape(-1, 1)
    n_seg = max(v.shape[1] for v in out.values())
    out = {k: np.broadcast_to(v, (v.shape[0], n_seg)).copy() for k, v in out.items()}
    if n_seg == 1:
        segs, segment = [ALL_SEGMENTS], None
    return ParamDraws(out, segs, segment, model)


def scale_dropout(bg: ParamDraws, scale: float | Mapping[str, float]) -> ParamDraws:
    """Retention what-if: the mean dropout scaled per segment, the rest of the model kept.

    BG/NBD and MBG/NBD: phi = a/(a+b) -> scale * phi with kappa = a+b kept; Pareto/NBD: the mean
    dropout rate s/beta -> scale * s/beta (beta / scale).

    Parameters
    ----------
    bg : ParamDraws
        Purchase-model draws (``bg.model`` picks the model; None: BG/NBD).
    scale : float or Mapping of str to float
        Factor on the mean dropout; < 1 is a retention uplift. A scalar for every segment or
        {segment: scale} (segments not named keep scale 1).

    Returns
    -------
    ParamDraws
        ``bg`` with the dropout parameters replaced.
    """
    from .families import family_of

    if isinstance(scale, Mapping):
        unknown = [s for s in scale if str(s) not in bg.segments]
        if unknown:
            raise ClvlabInputError(
                f"dropout scale for unknown segment(s) {unknown}; model has {bg.segments}", what="argument"
            )
        s = np.array([float(scale.get(g, 1.0)) for g in bg.segments])[None, :]
    else:
        s = float(scale)
    return bg.with_values(**family_of(bg).dropout(bg.values, s))


def segment_codes(data: pd.DataFrame, draws: ParamDraws, model: str) -> np.ndarray:
    """Integer code of each customer's segment among ``draws.segments`` (all 0 when pooled)."""
    if draws.segment is None:
        return np.zeros(len(data), dtype=np.int64)
    labels = data[draws.segment].astype(str)
    lookup = {s: i for i, s in enumerate(draws.segments)}
    codes = labels.map(lookup)
    if codes.isna().any():
        unknown = sorted(labels[codes.isna()].unique())[:5]
        raise ClvlabInputError(
            f"column {draws.segment!r}: value(s) {unknown} not among the {model} model's segments {draws.segments[:20]}",
            what="RFM table",
        )
    return codes.to_numpy(dtype=np.int64)
