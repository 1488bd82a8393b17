"""Customers of segments a fit did not see: each such segment gets a draw from the population.

A hierarchical model knows more than its fitted segments: under partial pooling the segment
parameters are eta_g ~ Normal(mu, sigma) on the link scale (:mod:`.hierarchy`), so a new
segment g* is, per posterior draw, eta* = mu + sigma z with z ~ Normal(0, 1): the
between-segment spread, not just its median ``<name>_pop``. Pooled, every segment shares the
one set. Unpooled has no population to draw from, and is refused.

Used for a behavioural segment without a repeat buyer (no spend data of its own), and by
``clvlab score`` for customers acquired after the fitted cohorts.

A model using :class:`NewSegments` declares ``link_params`` (each with a prior in
``default_priors`` naming its link), ``params`` (the natural parameters stored per segment in
the posterior) and ``_natural`` (link parameters -> natural ones, on NumPy values).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from clvlab.errors import ClvlabInputError
from clvlab.models.hierarchy import inverse_link

__all__ = ["NewSegments"]


class NewSegments:
    """``segment_posterior`` and ``with_segments`` for a hierarchical estimator."""

    params: ClassVar[tuple[str, ...]]
    link_params: ClassVar[tuple[str, ...]]

    def new_segments(self, labels: Sequence[Any]) -> list[str]:
        """The labels (as text, first appearance order, each once) that are not among ``segments_``.

        Parameters
        ----------
        labels : sequence
            Segment labels, e.g. a table's segment column.

        Returns
        -------
        list of str
        """
        self._check_fitted()
        known = set(map(str, self.segments_))
        return [g for g in dict.fromkeys(map(str, labels)) if g not in known]

    def segment_posterior(self, new_segments: Sequence[Any] = (), seed: int = 0) -> xr.Dataset:
        """Posterior of the natural parameters per segment, including segments the fit did not see.

        Parameters
        ----------
        new_segments : sequence of str
            Segment labels to add (those already fitted are ignored).
        seed : int
            Seed of the population draws (the same seed gives the same draws).

        Returns
        -------
        Dataset
            ``params`` on (chain, draw, segment): the fitted segments, then the new ones.

        Raises
        ------
        ClvlabInputError
            Under ``pooling="unpooled"`` (no population to draw a new segment from).
        """
        self._check_fitted()
        post = self.posterior_[list(self.params)]
        new = self.new_segments(new_segments)
        if not new:
            return post
        pooling = self.effective_pooling
        if pooling == "unpooled":
            raise ClvlabInputError([f"segment(s) {new[:10]} of column {self.segment!r} are not in the fit: an unpooled "
                                    f"{self.model_name} model has no population to value them by (fit "
                                    "pooling='partial' or 'pooled')"], what=f"{self.model_name} model")  # fmt: skip
        if pooling == "pooled":
            extra = post.isel(segment=[0] * len(new))
        else:
            rng = np.random.default_rng(seed)
            full = self.posterior_
            shape = full[f"{self.link_params[0]}_mu"].shape + (len(new),)
            linked = {}
            for name in self.link_params:  # one standard-normal block per parameter, in link_params order
                eta = (full[f"{name}_mu"].values[..., None]
                       + full[f"{name}_sigma"].values[..., None] * rng.standard_normal(shape))  # fmt: skip
                linked[name] = np.asarray(inverse_link(eta, self.default_priors[name].link), dtype=float)
            natural = self._natural(linked)
            dims = ("chain", "draw", "segment")
            extra = xr.Dataset({k: (dims, np.asarray(natural[k], dtype=float)) for k in self.params},
                               coords={"chain": post["chain"], "draw": post["draw"]})  # fmt: skip
        extra = extra.assign_coords(segment=new)
        return xr.concat([post, extra], dim="segment")

    def with_segments(self, new_segments: Sequence[Any], seed: int = 0) -> Any:
        """A copy of the fitted model that also predicts for segments the fit did not see.

        Parameters
        ----------
        new_segments : sequence of str
            Segment labels; those not in the fit get a population draw (:meth:`segment_posterior`).
        seed : int
            Seed of the population draws.

        Returns
        -------
        estimator
            The same class, ``segments_`` extended and ``new_segments_`` naming what was added;
            its posterior holds the per-segment ``params`` and the segment-free variables
            (covariate effects, population parameters). No fit data (``data_`` is None).
        """
        new = self.new_segments(new_segments)
        post = self.segment_posterior(new, seed=seed)
        rest = self.posterior_[[v for v in self.posterior_.data_vars if "segment" not in self.posterior_[v].dims]]
        out = copy.copy(self)
        out.posterior_ = xr.merge([rest, post])
        out.segments_ = [*self.segments_, *new]
        out.new_segments_ = new
        out.data_ = None
        return out
