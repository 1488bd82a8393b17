"""The shared purchase-model estimator: what BG/NBD, MBG/NBD and Pareto/NBD have in common.

A purchase model (non-contractual, continuous time) is a population-level parameter vector
per segment, a log-likelihood that depends on a customer only through (x, t_x, T), and a set
of predictions. A subclass declares

* ``math`` (class attribute) its math module: pure numpy functions with one signature,
  ``f(*params, x, t_x, T, ...)`` (see :data:`MATH_FUNCTIONS`);
* ``params`` the model's parameters in the math's order, ``link_params`` the sampled
  parameters (each with a :class:`~clvlab.models.hierarchy.ParamPrior` in ``default_priors``)
  and :meth:`_natural` (link parameters -> params, written once for numpy and pytensor);
* ``covariate_sign``: how a covariate row X shifts a parameter, param_i = param_g exp(sign X beta);
* :meth:`_loglik_term`: the model's total log-likelihood over patterns as a pytensor scalar.

The base does the rest: pooling (pooled / unpooled / partial with the centring rule of
:mod:`.hierarchy` and the pilot fit of :mod:`.centering`), covariates, validation, and
every prediction on unique patterns expanded back to customers: ``p_alive``,
``p_no_purchase``, ``expected_purchases``, ``expected_purchases_new``, ``prob_purchases``,
``sample_holdout_purchases``, ``sample_frequency`` and the pointwise ``log_likelihood``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from clvlab.errors import ClvlabInputError
from clvlab.models.base import BayesianEstimator
from clvlab.models.centering import SegmentCentring
from clvlab.models.hierarchy import ParamPrior, segment_parameter
from clvlab.models.new_segments import NewSegments
from clvlab.models.patterns import Patterns, compress_patterns, factorize

__all__ = ["COVARIATE_PRIOR_SD", "MATH_FUNCTIONS", "PurchaseModel"]

COVARIATE_PRIOR_SD = 1.0
MATH_FUNCTIONS = (
    "loglik", "loglik_patterns", "p_alive", "p_no_purchase", "expected_purchases_numerator",
    "expected_purchases_new", "prob_purchases", "sample_holdout", "sample_frequency",
)  # fmt: skip
"""What a purchase model's math module provides (tests/test_purchase_models.py checks each)."""


def window_length(t: Any, name: str = "t") -> np.ndarray:
    """``t`` as floats, each a finite length of time >= 0 (a negative or NaN window has no answer).

    Raises
    ------
    ClvlabInputError
        Naming ``name`` and the values that are not.
    """
    arr = np.atleast_1d(np.asarray(t, dtype=object))
    ok = [isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)
          and np.isfinite(v) and v >= 0 for v in arr.ravel()]  # fmt: skip
    if arr.size == 0 or not all(ok):
        bad = [v for v, good in zip(arr.ravel(), ok, strict=True) if not good][:5]
        raise ClvlabInputError(f"{name}={t!r}: expected finite lengths of time >= 0 in the data's time unit "
                               f"(not {bad})" if bad else f"{name}={t!r}: expected at least one value",
                               what="argument")  # fmt: skip
    return arr.astype(float)


def _one_window(t: Any) -> float:
    if np.ndim(t) != 0:
        raise ClvlabInputError(f"t={t!r}: expected one length of time (expected_purchases_new takes several)",
                               what="argument")  # fmt: skip
    return float(window_length(t)[0])


class PurchaseModel(NewSegments, SegmentCentring, BayesianEstimator):
    """Base of the hierarchical purchase models (module docstring).

    Parameters
    ----------
    pooling : "pooled" | "unpooled" | "partial"
        How segments share the parameters. Without ``segment`` it is always pooled.
    segment : str, optional
        Segment column of the RFM table.
    priors : dict, optional
        Overrides per sampled parameter (``link_params``) of ``{"loc", "scale", "sigma_scale"}``
        on the link scale (see :class:`ParamPrior`).
    covariates : sequence of str, optional
        Time-invariant numeric customer columns (log-linear effects, ``covariate_sign``).
    parameterization : "auto" | "noncentered" | "centered"
        Partial pooling only (NUTS): how the segment parameters are sampled. "auto" fits the
        segments separately first (a MAP, seconds) and centres the (segment, parameter) pairs
        whose data are informative next to the between-segment spread; the choice is in
        ``centered_`` and ``fit_info_.centered``. MAP always uses the non-centred form
        (the centred joint density has no mode as the population sd goes to 0).
    """

    math: ClassVar[ModuleType]
    params: ClassVar[tuple[str, ...]] = ()
    link_params: ClassVar[tuple[str, ...]] = ()
    covariate_sign: ClassVar[dict[str, float]] = {}
    rfm_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")

    def __init__(
        self,
        pooling: str = "partial",
        segment: str | None = None,
        priors: Mapping[str, Mapping[str, float]] | None = None,
        covariates: Sequence[str] | None = None,
        parameterization: str = "auto",
    ):
        self.pooling = pooling
        self.segment = segment
        self.priors = priors
        self.covariates = covariates
        self.parameterization = parameterization
        self.centered_: dict[str, list[str]] = {}

    # ---- the model's math (subclass hooks) ----------------------------------------------
    def _natural(self, link: dict[str, Any]) -> dict[str, Any]:
        """The model's parameters from the sampled ones (numpy or pytensor values); identity by default."""
        return {k: link[k] for k in self.params}

    def _loglik_term(self, values: dict[str, Any], pat: Patterns) -> Any:
        """Total log-likelihood over patterns, a pytensor scalar; ``values`` indexed by group."""
        raise NotImplementedError

    # ---- settings and validation --------------------------------------------------------
    def _prior(self, name: str) -> ParamPrior:
        over = (self.priors or {}).get(name)
        return self.default_priors[name].updated(dict(over) if over else None)

    def _fit_rules(self, df: pd.DataFrame) -> list[str]:
        if len(df) == 0:
            return ["no rows"]
        if np.all(np.nan_to_num(df["frequency"].to_numpy()) == 0):
            return ["column 'frequency': all zero (no customer made a repeat purchase): the purchase and "
                    "dropout processes are unidentified; use a longer calibration period"]  # fmt: skip
        return []

    def _after_validate(self, df: pd.DataFrame, fitting: bool) -> pd.DataFrame:
        """Single-customer segments: an error under unpooled (unidentified), a warning under partial."""
        if not (self.segment and fitting):
            return df
        counts = df[self.segment].value_counts()
        single = sorted(counts.index[counts == 1])
        if single and self.effective_pooling == "unpooled":
            raise ClvlabInputError(
                f"column {self.segment!r}: segment(s) {single} have a single customer: under "
                f"pooling='unpooled' their {len(self.params)} parameters are unidentified; use "
                "pooling='partial' or merge segments",
                what="RFM data",
            )
        if single and self.effective_pooling == "partial":
            warnings.warn(
                f"segment(s) {single} have a single customer: their parameters are driven by the "
                "population distribution (partial pooling)",
                UserWarning,
                stacklevel=4,
            )
        return df

    # ---- model -------------------------------------------------------------------------
    def _groups(self, df: pd.DataFrame, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Parameter groups: segment, or (segment, covariate row). Returns (group, group_seg, group_X)."""
        cov = list(self.covariates or [])
        if not cov:
            return seg, np.arange(len(self.segments_)), np.zeros((len(self.segments_), 0))
        keys = pd.DataFrame({"_seg": seg, **{c: df[c].to_numpy() for c in cov}})
        group = keys.groupby(list(keys.columns), sort=True).ngroup().to_numpy()
        first = keys.drop_duplicates().assign(_g=lambda d: group[d.index]).sort_values("_g")
        return group, first["_seg"].to_numpy(), first[cov].to_numpy(dtype=float)

    def _patterns(self, df: pd.DataFrame, group: np.ndarray) -> Patterns:
        return compress_patterns(group, df["frequency"].to_numpy(), df["recency"].to_numpy(), df["T"].to_numpy())

    def _build_model(self, df: pd.DataFrame) -> Any:
        import pymc as pm
        import pytensor.tensor as pt

        seg = self._segment_codes(df, fitting=True)
        group, g_seg, g_X = self._groups(df, seg)
        pat = self._patterns(df, group)
        self.n_patterns_ = pat.n_patterns
        cov = list(self.covariates or [])
        coords: dict[str, Any] = {"segment": self.segments_}
        if cov:
            coords["covariate"] = cov
        with pm.Model(coords=coords) as model:
            link = {
                k: segment_parameter(
                    self._prior(k),
                    self.effective_pooling,
                    centered=self._centered_mask(k),
                    mean_centred=self.mean_centred_,
                )  # fmt: skip
                for k in self.link_params
            }
            values = {k: v if k in link else pm.Deterministic(k, v, dims="segment")
                      for k, v in self._natural(link).items()}  # fmt: skip
            if cov:  # groups are (segment, covariate row): gather the segment values first
                values = {k: v[g_seg] for k, v in values.items()}
                X = pt.as_tensor_variable(g_X)
                for k, sign in self.covariate_sign.items():
                    beta = pm.Normal(f"beta_{k}", 0.0, COVARIATE_PRIOR_SD, dims="covariate")
                    values[k] = values[k] * pt.exp(sign * pt.dot(X, beta))
            pm.Potential("loglik", self._loglik_term(values, pat))
        return model

    def _segment_loglik(self, df: pd.DataFrame, post: Any) -> Any:
        """Each segment's log-likelihood as a function of its link-scale parameters, covariate
        effects held at the pilot's MAP (``SegmentCentring._segment_estimates``)."""
        seg = self._segment_codes(df, fitting=False)
        group, g_seg, g_X = self._groups(df, seg)
        pat = self._patterns(df, group)
        n_seg, n_group = len(self.segments_), len(g_seg)
        shift = {k: np.zeros(n_group) for k in self.covariate_sign}
        if self.covariates:
            for k, sign in self.covariate_sign.items():
                shift[k] = sign * g_X @ np.asarray(post[f"beta_{k}"].values).reshape(-1)

        def segment_loglik(eta: np.ndarray) -> np.ndarray:
            nat = self._natural(self._link_values(eta))
            vals = [nat[k][g_seg] * np.exp(shift[k]) if k in shift else nat[k][g_seg] for k in self.params]
            per = self.math.loglik_patterns(*vals, pat)
            by_group = np.bincount(pat.group, weights=pat.weight * per, minlength=n_group)
            return np.bincount(g_seg, weights=by_group, minlength=n_seg)

        return segment_loglik

    # ---- posterior parameters for (new) data --------------------------------------------
    def _draws(self, name: str, thin: int) -> np.ndarray:
        return self.posterior_[name].values[:, ::thin]

    def _prepare(self, data: pd.DataFrame | None, thin: int) -> tuple[pd.DataFrame, dict[str, np.ndarray], np.ndarray]:
        """Validated data, per-group parameter draws (chain, draw, group) and customer group index."""
        self._check_fitted()
        df = self._validate(self._data_or_fit_data(data), fitting=False)
        seg = self._segment_codes(df, fitting=False)
        group, g_seg, g_X = self._groups(df, seg)
        p = {k: self._draws(k, thin)[:, :, g_seg] for k in self.params}
        if self.covariates:
            for k, sign in self.covariate_sign.items():
                beta = self._draws(f"beta_{k}", thin)  # (chain, draw, covariate)
                p[k] = p[k] * np.exp(sign * np.einsum("cdk,gk->cdg", beta, g_X))
        return df, p, group

    def _per_pattern(self, fn: Any, name: str, data: pd.DataFrame | None, thin: int, *args: Any) -> xr.DataArray:
        """``fn(*params, x, t_x, T, *args)`` on unique patterns, expanded to customers."""
        df, p, group = self._prepare(data, thin)
        pat = self._patterns(df, group)
        g = pat.group
        val = fn(*(p[k][:, :, g] for k in self.params), pat.x, pat.t_x, pat.T, *args)
        return self._customer_da(val[:, :, pat.inverse], df, name)

    # ---- predictions -------------------------------------------------------------------
    def p_alive(self, data: pd.DataFrame | None = None, thin: int = 1) -> xr.DataArray:
        """Posterior P(alive at T | x, t_x, T).

        Parameters
        ----------
        data : DataFrame, optional
            RFM table (default: the fit data).
        thin : int
            Keep every ``thin``-th draw.

        Returns
        -------
        DataArray
            Dims (chain, draw, customer_id).
        """
        return self._per_pattern(self.math.p_alive, "p_alive", data, thin)

    def p_no_purchase(self, t: float, data: pd.DataFrame | None = None, thin: int = 1) -> xr.DataArray:
        """Posterior P(no repeat purchase in (T, T+t]) (a churn score).

        Parameters
        ----------
        t : float
            Length of the window after T, in the data's time unit.
        data : DataFrame, optional
            RFM table (default: the fit data).
        thin : int
            Keep every ``thin``-th draw.

        Returns
        -------
        DataArray
            Dims (chain, draw, customer_id).
        """
        t = _one_window(t)
        return self._per_pattern(self.math.p_no_purchase, "p_no_purchase", data, thin, t)

    def prob_purchases(self, n: int | Sequence[int], t: float, data: pd.DataFrame | None = None,
                       thin: int = 1) -> xr.DataArray:  # fmt: skip
        """Posterior P(exactly n repeat purchases in (T, T+t] | x, t_x, T).

        Parameters
        ----------
        n : int or sequence of int
            Purchase counts (>= 0).
        t : float
            Length of the window after T, in the data's time unit.
        data : DataFrame, optional
            RFM table (default: the fit data).
        thin : int
            Keep every ``thin``-th draw.

        Returns
        -------
        DataArray
            Dims (chain, draw, customer_id[, n]) (``n`` only when a sequence was given).
        """
        t = _one_window(t)
        ns = np.atleast_1d(np.asarray(n))
        if ns.size == 0 or not np.issubdtype(ns.dtype, np.integer) or (ns < 0).any():
            raise ClvlabInputError(f"n={n!r}: expected whole numbers >= 0", what="argument")
        out = xr.concat(
            [self._per_pattern(self.math.prob_purchases, "prob_purchases", data, thin, float(t), int(k)) for k in ns],
            dim=pd.Index(ns, name="n"),
        ).transpose("chain", "draw", "customer_id", "n")
        return out.isel(n=0, drop=True) if np.ndim(n) == 0 else out

    def expected_purchases(self, t: float, data: pd.DataFrame | None = None, thin: int = 1) -> xr.DataArray:
        """Posterior E[Y(t) | x, t_x, T], expected repeat purchases in (T, T+t].

        E[Y(t)] = E[Y(t) | alive at T] x P(alive): the first factor depends on (group, x, T) and
        not on t_x, so it is evaluated on those unique rows; P(alive) on unique patterns.

        Parameters
        ----------
        t : float
            Length of the window after T, in the data's time unit.
        data : DataFrame, optional
            RFM table (default: the fit data).
        thin : int
            Keep every ``thin``-th draw.

        Returns
        -------
        DataArray
            Dims (chain, draw, customer_id).
        """
        t = _one_window(t)
        df, p, group = self._prepare(data, thin)
        pat = self._patterns(df, group)
        codes, first = factorize(pat.group, pat.x, pat.T)
        gu = pat.group[first]
        num = self.math.expected_purchases_numerator(*(p[k][:, :, gu] for k in self.params), pat.x[first],
                                                     pat.T[first], float(t))  # fmt: skip
        g = pat.group
        alive = self.math.p_alive(*(p[k][:, :, g] for k in self.params), pat.x, pat.t_x, pat.T)
        val = num[:, :, codes] * alive
        return self._customer_da(val[:, :, pat.inverse], df, "expected_purchases")

    def expected_purchases_new(self, t: float | Sequence[float], segment: str | Sequence[str] | None = None,
                               thin: int = 1) -> xr.DataArray:  # fmt: skip
        """Posterior E[X(t)], the expected repeat purchases of a new customer in (0, t].

        Parameters
        ----------
        t : float or sequence of float
            Time(s) since the first purchase, in the data's time unit.
        segment : str or sequence of str, optional
            Segments (default: all). With covariates this is the baseline customer (X = 0).
        thin : int
            Keep every ``thin``-th draw.

        Returns
        -------
        DataArray
            Dims (chain, draw, segment[, t]).
        """
        self._check_fitted()
        segs = self.segments_ if segment is None else ([segment] if isinstance(segment, str) else list(segment))
        unknown = [s for s in segs if s not in self.segments_]
        if unknown:
            raise ClvlabInputError(f"segment(s) {unknown} not in the fit ({self.segments_})", what="argument")
        sel = {k: self.posterior_[k].sel(segment=segs).isel(draw=slice(None, None, thin)) for k in self.params}
        ts = window_length(t)
        tt = xr.DataArray(ts, dims="t", coords={"t": ts})
        args = [sel[k] for k in self.params] + [tt]
        out = xr.apply_ufunc(self.math.expected_purchases_new, *args).rename("expected_purchases_new")
        out = out.transpose("chain", "draw", "segment", "t")
        return out.isel(t=0, drop=True) if np.ndim(t) == 0 else out

    def sample_holdout_purchases(
        self, duration: float, data: pd.DataFrame | None = None, thin: int = 1, seed: int = 0, replicates: int = 1
    ) -> xr.DataArray:
        """Posterior predictive repeat-purchase counts in (T, T+duration].

        Per draw, the model's process continued from the customer's posterior state at T
        (alive or not, then its rates), see the math module's ``sample_holdout``.

        Parameters
        ----------
        duration : float
            Length of the window after T, in the data's time unit.
        data : DataFrame, optional
            RFM table (default: the fit data).
        thin : int
            Keep every ``thin``-th draw.
        seed : int
            Random seed.
        replicates : int
            Simulations per posterior draw (each draw repeated in place along ``draw``): a MAP
            fit's one draw needs many for an interval of the process noise.

        Returns
        -------
        DataArray
            Dims (chain, draw, customer_id), integer counts; ``draw`` has ``replicates`` entries
            per kept draw.
        """
        if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) or replicates < 1:
            raise ClvlabInputError(f"replicates={replicates!r}: expected an integer >= 1", what="argument")
        df, p, group = self._prepare(data, thin)
        rng = np.random.default_rng(seed)
        x, tx, T = (df[c].to_numpy() for c in ("frequency", "recency", "T"))
        params = [np.repeat(p[k][:, :, group], replicates, axis=1) for k in self.params]
        counts = self.math.sample_holdout(rng, *params, x, tx, T, float(duration))
        return self._customer_da(counts, df, "holdout_purchases")

    def sample_frequency(self, data: pd.DataFrame | None = None, thin: int = 1, seed: int = 0) -> xr.DataArray:
        """Posterior predictive repeat-purchase counts over each customer's own (0, T].

        The model's process replicated for a customer of the same age and group (for PPC plots).

        Parameters
        ----------
        data : DataFrame, optional
            RFM table (default: the fit data).
        thin : int
            Keep every ``thin``-th draw.
        seed : int
            Random seed.

        Returns
        -------
        DataArray
            Dims (chain, draw, customer_id), integer counts.
        """
        df, p, group = self._prepare(data, thin)
        rng = np.random.default_rng(seed)
        counts = self.math.sample_frequency(rng, *(p[k][:, :, group] for k in self.params), df["T"].to_numpy())
        return self._customer_da(counts, df, "frequency")

    def log_likelihood(self, data: pd.DataFrame | None = None, thin: int = 1) -> xr.DataArray:
        """Pointwise log-likelihood per customer (for LOO).

        Parameters
        ----------
        data : DataFrame, optional
            RFM table (default: the fit data).
        thin : int
            Keep every ``thin``-th draw.

        Returns
        -------
        DataArray
            Dims (chain, draw, customer_id).
        """
        return self._per_pattern(self.math.loglik, "log_likelihood", data, thin)
