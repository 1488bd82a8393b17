"""Hierarchical BG/NBD (Fader, Hardie & Lee 2005) in PyMC, with pooled / unpooled / partial pooling.

Segment g has population parameters (r_g, alpha_g, a_g, b_g); customer heterogeneity
(lambda ~ Gamma(r_g, alpha_g), p ~ Beta(a_g, b_g)) is integrated out in closed form, so the
sampler sees only segment and population parameters. Parameterisation (design.md):
log r_g, log alpha_g; dropout mean phi_g = a_g/(a_g+b_g) (logit-normal) and concentration
kappa_g = a_g + b_g (log-normal). Partial pooling is non-centred or centred per segment and
parameter (:mod:`.hierarchy`); ``parameterization="auto"`` (default) decides from a pilot fit
of the segments separately (MAP + per-segment curvature, :meth:`BGNBD.segment_estimates`):
a segment is centred for a parameter when its data pin the parameter down well inside the
between-segment spread (:func:`~clvlab.models.hierarchy.choose_centering`).

Optional time-invariant customer covariates X (Fader & Hardie 2007 note, as in
pymc-marketing's BetaGeoModel): alpha_i = alpha_g exp(-X_i beta_alpha) (so beta_alpha > 0
raises the purchase rate), a_i = a_g exp(X_i beta_a), b_i = b_g exp(X_i beta_b).
Standardise covariates first; ``expected_purchases_new`` uses X = 0 (the baseline customer).

The likelihood is the one pure function of :mod:`.bgnbd_math`, evaluated on unique
(group, x, t_x, T) patterns (group = segment, or segment x covariate row) with the factored
tables. Predictions are computed on unique patterns and expanded to customers.

Input validation decisions: a segment with a single customer is allowed under ``partial``
(warning: its parameters are essentially the population's) and ``pooled``, but an error under
``unpooled`` (four free parameters from one customer are unidentified); all-zero frequency is
an error (the dropout process is unidentified).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from clvlab.choices import PARAMETERIZATIONS
from clvlab.errors import ClvlabInputError
from clvlab.models import bgnbd_math as bm
from clvlab.models.base import BayesianEstimator, _map_posterior
from clvlab.models.hierarchy import MIN_SEGMENTS_TO_CENTRE, ParamPrior, choose_centering, segment_parameter

SEGMENT_PARAMS = ("r", "alpha", "a", "b")
COVARIATE_SIGN = {"alpha": -1.0, "a": 1.0, "b": 1.0}
"""Covariate effects on the log scale: param_i = param_g * exp(sign * X_i beta_param) (module docstring)."""
DEFAULT_PRIORS: dict[str, ParamPrior] = {
    "r": ParamPrior("r", "log", loc=0.0, scale=2.0, sigma_scale=1.0),
    "alpha": ParamPrior("alpha", "log", loc=1.0, scale=3.0, sigma_scale=1.0),
    "phi": ParamPrior("phi", "logit", loc=0.0, scale=2.0, sigma_scale=1.0),
    "kappa": ParamPrior("kappa", "log", loc=1.0, scale=2.0, sigma_scale=1.0),
}
LINK_PARAMS = ("r", "alpha", "phi", "kappa")  # the sampled segment parameters (link scale: log, log, logit, log)
COVARIATE_PRIOR_SD = 1.0
HESSIAN_STEP = 1e-3  # finite-difference step on the link scale for the per-segment curvature


class BGNBD(BayesianEstimator):
    """Hierarchical BG/NBD estimator.

    Parameters
    ----------
    pooling : "pooled" | "unpooled" | "partial"
        How segments share (r, alpha, a, b). Without ``segment`` it is always pooled.
    segment : str, optional
        Segment column of the RFM table.
    priors : dict, optional
        Overrides per parameter ("r", "alpha", "phi", "kappa") of
        ``{"loc", "scale", "sigma_scale"}`` on the link scale (see :class:`ParamPrior`).
    covariates : sequence of str, optional
        Time-invariant numeric customer columns (log-linear effects on alpha, a, b).
    parameterization : "auto" | "noncentered" | "centered"
        Partial pooling only (NUTS): how the segment parameters are sampled. "auto" fits the
        segments separately first (a MAP, seconds) and centres the (segment, parameter) pairs
        whose data are informative next to the between-segment spread; the choice is in
        ``centered_`` and ``fit_info_["centered"]``. MAP always uses the non-centred form
        (the centred joint density has no mode as the population sd goes to 0).
    """

    model_name: ClassVar[str] = "bgnbd"
    rfm_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    default_priors: ClassVar[dict[str, ParamPrior]] = DEFAULT_PRIORS
    summary_vars: ClassVar[tuple[str, ...]] = (
        *SEGMENT_PARAMS, "phi", "kappa", "r_pop", "alpha_pop", "phi_pop", "kappa_pop",
        "r_sigma", "alpha_sigma", "phi_sigma", "kappa_sigma", "beta_alpha", "beta_a", "beta_b",
    )  # fmt: skip
    diagnostic_vars: ClassVar[tuple[str, ...]] = (
        "r", "alpha", "a", "b", "r_mu", "alpha_mu", "phi_mu", "kappa_mu",
        "r_sigma", "alpha_sigma", "phi_sigma", "kappa_sigma", "beta_alpha", "beta_a", "beta_b",
    )  # fmt: skip

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

    # ---- settings and validation -------------------------------------------------------------
    def _prior(self, name: str) -> ParamPrior:
        over = (self.priors or {}).get(name)
        return DEFAULT_PRIORS[name].updated(dict(over) if over else None)

    def _settings_problems(self) -> list[str]:
        if self.parameterization not in PARAMETERIZATIONS:
            return [f"parameterization={self.parameterization!r}: expected one of {PARAMETERIZATIONS}"]
        return []

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
                "pooling='unpooled' their four parameters are unidentified; use pooling='partial' "
                "or merge segments",
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

    def _build_model(self, df: pd.DataFrame) -> Any:
        import pymc as pm
        import pytensor.tensor as pt

        from clvlab.models.bgnbd_kernel import bgnbd_loglik

        seg = self._segment_codes(df, fitting=True)
        group, g_seg, g_X = self._groups(df, seg)
        pat = bm.compress_patterns(group, df["frequency"].to_numpy(), df["recency"].to_numpy(), df["T"].to_numpy())
        self.n_patterns_ = pat.n_patterns
        pooling = self.effective_pooling
        cov = list(self.covariates or [])
        coords: dict[str, Any] = {"segment": self.segments_}
        if cov:
            coords["covariate"] = cov
        with pm.Model(coords=coords) as model:
            r, alpha, phi, kappa = (
                segment_parameter(
                    self._prior(k), pooling, centered=self._centered_mask(k), mean_centred=self.mean_centred_
                )
                for k in LINK_PARAMS
            )
            a = pm.Deterministic("a", phi * kappa, dims="segment")
            b = pm.Deterministic("b", (1.0 - phi) * kappa, dims="segment")
            r_g, alpha_g, a_g, b_g = r, alpha, a, b  # groups are the segments
            if cov:  # groups are (segment, covariate row): gather the segment values first
                r_g, alpha_g, a_g, b_g = r[g_seg], alpha[g_seg], a[g_seg], b[g_seg]
                X = pt.as_tensor_variable(g_X)
                shift = {k: sign * pt.dot(X, pm.Normal(f"beta_{k}", 0.0, COVARIATE_PRIOR_SD, dims="covariate"))
                         for k, sign in COVARIATE_SIGN.items()}  # fmt: skip
                alpha_g, a_g, b_g = (v * pt.exp(shift[k]) for k, v in (("alpha", alpha_g), ("a", a_g), ("b", b_g)))
            pm.Potential("loglik", bgnbd_loglik(r_g, alpha_g, a_g, b_g, pat))
        return model

    def _centered_mask(self, name: str) -> np.ndarray:
        """Boolean per segment: is ``name`` sampled centred (from ``centered_``; partial pooling)."""
        return np.isin(self.segments_, self.centered_.get(name, []))

    def _before_build(self, df: pd.DataFrame, method: str, seed: int) -> dict[str, Any]:
        """Pick the partial-pooling parameterisation (sets ``centered_``; see ``parameterization``)."""
        self.centered_ = {}
        if method != "nuts" or self.effective_pooling != "partial" or self.parameterization == "noncentered":
            return {"centered": self.centered_}
        if self.parameterization == "centered":
            self.centered_ = {k: list(self.segments_) for k in LINK_PARAMS}
            return {"centered": self.centered_}
        if len(self.segments_) < MIN_SEGMENTS_TO_CENTRE:  # the rule would centre nothing: no pilot
            return {"centered": self.centered_}
        t0 = time.perf_counter()
        est = self._segment_estimates(df, seed)
        mask = choose_centering(est[[f"{k}_eta" for k in LINK_PARAMS]].to_numpy(),
                                est[[f"{k}_se" for k in LINK_PARAMS]].to_numpy())  # fmt: skip
        self.centered_ = {k: [s for s, c in zip(self.segments_, mask[:, i], strict=True) if c]
                          for i, k in enumerate(LINK_PARAMS)}  # fmt: skip
        return {"centered": self.centered_, "centering_s": time.perf_counter() - t0}

    def _nutpie_adaptation(self) -> str:
        """Low-rank mass matrix unless some segment parameter is sampled non-centred.

        nutpie's "low_rank" adaptation also learns the leading posterior correlations. Measured
        (nutpie, 4 x 1000, benchmarks/results/bgnbd.json): pooled CDNOW 3.4 leapfrog steps per
        draw vs 5.1 with "diag" and 2-3x the bulk ESS; unpooled CDNOW by 12 cohorts 7.0 vs 14.0
        steps; 1M simulated customers, all centred, 7 vs 15. A non-centred hierarchy is a funnel
        whose shape changes with sigma, which no single linear map fits: full CDNOW by cohorts
        (all non-centred) took as many steps per draw, 1.5x the warm-up and gave 1 divergence
        per run against 0 with "diag", so those fits keep "diag".
        """
        n_seg = len(self.segments_)
        if self.effective_pooling == "partial" and any(len(self.centered_.get(k, [])) < n_seg for k in LINK_PARAMS):
            return "diag"
        return "low_rank"

    def segment_estimates(self, data: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
        """Each segment fitted on its own: link-scale estimates and standard errors.

        The unpooled model's MAP (covariate effects shared), then the per-segment 4 x 4
        curvature of the log-likelihood in (log r, log alpha, logit phi, log kappa) by central
        finite differences (segments are independent given the covariate effects, so one
        perturbation of all segments at once gives every segment's block). ``<param>_se`` is
        the marginal standard error, sqrt(diag(-H^-1)); infinite where the curvature is not
        negative definite (the segment's data do not identify its parameters). Columns
        ``<param>_eta``, ``<param>_se`` for r, alpha, phi, kappa; one row per segment.
        """
        return self._segment_estimates(self._validate(data), seed)

    def _segment_estimates(self, df: pd.DataFrame, seed: int) -> pd.DataFrame:
        pilot = BGNBD(pooling="unpooled", segment=self.segment, priors=self.priors, covariates=self.covariates,
                      parameterization="noncentered")  # fmt: skip
        idata, _ = _map_posterior(pilot._build_model(df), seed)
        post = idata["posterior"]
        value = {k: np.asarray(post[k].values).reshape(-1) for k in LINK_PARAMS}
        eta0 = np.stack([np.log(value["r"]), np.log(value["alpha"]),
                         np.log(value["phi"]) - np.log1p(-value["phi"]), np.log(value["kappa"])], axis=1)  # fmt: skip
        seg = pilot._segment_codes(df, fitting=False)
        group, g_seg, g_X = pilot._groups(df, seg)
        pat = bm.compress_patterns(group, df["frequency"].to_numpy(), df["recency"].to_numpy(), df["T"].to_numpy())
        n_seg, n_group = eta0.shape[0], len(g_seg)
        shift = {k: np.zeros(n_group) for k in ("alpha", "a", "b")}
        if self.covariates:
            for k, sign in COVARIATE_SIGN.items():
                shift[k] = sign * g_X @ np.asarray(post[f"beta_{k}"].values).reshape(-1)

        def segment_loglik(eta: np.ndarray) -> np.ndarray:
            r, alpha, phi, kappa = np.exp(eta[:, 0]), np.exp(eta[:, 1]), 1 / (1 + np.exp(-eta[:, 2])), np.exp(eta[:, 3])
            a, b = phi * kappa, (1 - phi) * kappa
            per = bm.loglik_patterns(r[g_seg], alpha[g_seg] * np.exp(shift["alpha"]), a[g_seg] * np.exp(shift["a"]),
                                     b[g_seg] * np.exp(shift["b"]), pat)  # fmt: skip
            by_group = np.bincount(pat.group, weights=pat.weight * per, minlength=n_group)
            return np.bincount(g_seg, weights=by_group, minlength=n_seg)

        h, unit = HESSIAN_STEP, np.eye(4)
        f0 = segment_loglik(eta0)
        hess = np.zeros((n_seg, 4, 4))
        for i in range(4):
            hess[:, i, i] = (segment_loglik(eta0 + h * unit[i]) - 2 * f0 + segment_loglik(eta0 - h * unit[i])) / h**2
            for j in range(i + 1, 4):
                pp, mm = segment_loglik(eta0 + h * (unit[i] + unit[j])), segment_loglik(eta0 - h * (unit[i] + unit[j]))
                pm_, mp = segment_loglik(eta0 + h * (unit[i] - unit[j])), segment_loglik(eta0 - h * (unit[i] - unit[j]))
                hess[:, i, j] = hess[:, j, i] = (pp - pm_ - mp + mm) / (4 * h * h)
        se = np.full((n_seg, 4), np.inf)
        for g in range(n_seg):
            info = -hess[g]
            if np.all(np.isfinite(info)) and np.all(np.linalg.eigvalsh(info) > 0):
                se[g] = np.sqrt(np.diag(np.linalg.inv(info)))
        out = pd.DataFrame({"segment": pilot.segments_})
        for i, k in enumerate(LINK_PARAMS):
            out[f"{k}_eta"], out[f"{k}_se"] = eta0[:, i], se[:, i]
        return out

    def _prepare_backend(self, backend: str) -> None:
        if backend == "jax":  # the fused likelihood op needs its JAX implementation registered
            from clvlab.models.bgnbd_kernel import register_jax

            register_jax()

    # ---- posterior parameters for (new) data --------------------------------------------
    def _draws(self, name: str, thin: int) -> np.ndarray:
        return self.posterior_[name].values[:, ::thin]

    def _prepare(self, data: pd.DataFrame | None, thin: int) -> tuple[pd.DataFrame, dict[str, np.ndarray], np.ndarray]:
        """Validated data, per-group parameter draws (chain, draw, group) and customer group index."""
        self._check_fitted()
        df = self._validate(self._data_or_fit_data(data), fitting=False)
        seg = self._segment_codes(df, fitting=False)
        group, g_seg, g_X = self._groups(df, seg)
        p = {k: self._draws(k, thin)[:, :, g_seg] for k in SEGMENT_PARAMS}
        if self.covariates:
            for k, sign in COVARIATE_SIGN.items():
                beta = self._draws(f"beta_{k}", thin)  # (chain, draw, covariate)
                p[k] = p[k] * np.exp(sign * np.einsum("cdk,gk->cdg", beta, g_X))
        return df, p, group

    # ---- predictions -------------------------------------------------------------------
    def p_alive(self, data: pd.DataFrame | None = None, thin: int = 1) -> xr.DataArray:
        """Posterior P(alive | x, t_x, T), dims (chain, draw, customer_id)."""
        df, p, group = self._prepare(data, thin)
        pat = bm.compress_patterns(group, df["frequency"], df["recency"], df["T"])
        g = pat.group
        val = bm.p_alive(*(p[k][:, :, g] for k in SEGMENT_PARAMS), pat.x, pat.t_x, pat.T)
        return self._customer_da(val[:, :, pat.inverse], df, "p_alive")

    def p_no_purchase(self, t: float, data: pd.DataFrame | None = None, thin: int = 1) -> xr.DataArray:
        """Posterior P(no repeat purchase in (T, T+t]), dims (chain, draw, customer_id) (a churn score)."""
        df, p, group = self._prepare(data, thin)
        pat = bm.compress_patterns(group, df["frequency"], df["recency"], df["T"])
        g = pat.group
        val = bm.p_no_purchase(*(p[k][:, :, g] for k in SEGMENT_PARAMS), pat.x, pat.t_x, pat.T, float(t))
        return self._customer_da(val[:, :, pat.inverse], df, "p_no_purchase")

    def expected_purchases(self, t: float, data: pd.DataFrame | None = None, thin: int = 1) -> xr.DataArray:
        """Posterior E[Y(t) | x, t_x, T] (FHL 2005 eq. 10), dims (chain, draw, customer_id).

        The 2F1 numerator is evaluated on unique (group, x, T), the divisor D on unique patterns.
        """
        df, p, group = self._prepare(data, thin)
        pat = bm.compress_patterns(group, df["frequency"], df["recency"], df["T"])
        xt = pd.DataFrame({"g": pat.group, "x": pat.x, "T": pat.T})
        codes = xt.groupby(["g", "x", "T"], sort=False).ngroup().to_numpy()
        first = xt.drop_duplicates().index.to_numpy()
        gu = pat.group[first]
        num = bm.expected_purchases_numerator(
            *(p[k][:, :, gu] for k in SEGMENT_PARAMS), pat.x[first], pat.T[first], float(t)
        )
        g = pat.group
        logd = bm.log_d(*(p[k][:, :, g] for k in SEGMENT_PARAMS), pat.x, pat.t_x, pat.T)
        val = num[:, :, codes] * np.exp(-logd)
        return self._customer_da(val[:, :, pat.inverse], df, "expected_purchases")

    def expected_purchases_new(self, t: float | Sequence[float], segment: str | Sequence[str] | None = None) -> xr.DataArray:
        """Posterior E[X(t)] for a new customer (FHL 2005 eq. 9), dims (chain, draw, segment[, t]).

        With covariates this is the baseline customer (X = 0).
        """
        self._check_fitted()
        segs = self.segments_ if segment is None else ([segment] if isinstance(segment, str) else list(segment))
        unknown = [s for s in segs if s not in self.segments_]
        if unknown:
            raise ClvlabInputError(f"segment(s) {unknown} not in the fit ({self.segments_})", what="argument")
        sel = {k: self.posterior_[k].sel(segment=segs) for k in SEGMENT_PARAMS}
        ts = np.atleast_1d(np.asarray(t, dtype=float))
        tt = xr.DataArray(ts, dims="t", coords={"t": ts})
        args = [sel[k] for k in SEGMENT_PARAMS] + [tt]
        out = xr.apply_ufunc(bm.expected_purchases_new, *args).rename("expected_purchases_new")
        out = out.transpose("chain", "draw", "segment", "t")
        return out.isel(t=0, drop=True) if np.ndim(t) == 0 else out

    def sample_holdout_purchases(
        self, duration: float, data: pd.DataFrame | None = None, thin: int = 1, seed: int = 0
    ) -> xr.DataArray:
        """Posterior predictive repeat-purchase counts in (T, T+duration], dims (chain, draw, customer_id).

        Per draw: alive at T with probability 1/D; if alive, lambda ~ Gamma(r+x, alpha+T) and
        p ~ Beta(a, b+x) (the alive component of the customer's posterior); purchases follow a
        Poisson(lambda) process, each followed by dropout with probability p, so the count is
        min(Poisson(lambda * duration), Geometric(p)).
        """
        df, p, group = self._prepare(data, thin)
        rng = np.random.default_rng(seed)
        x, tx, T = (df[c].to_numpy() for c in ("frequency", "recency", "T"))
        r, alpha, a, b = (p[k][:, :, group] for k in SEGMENT_PARAMS)
        alive = rng.random(r.shape) < bm.p_alive(r, alpha, a, b, x, tx, T)
        lam = rng.gamma(r + x, 1.0 / (alpha + T))
        pdrop = rng.beta(a, b + x)
        n_poisson = rng.poisson(lam * float(duration))
        n_until_drop = rng.geometric(np.clip(pdrop, 1e-300, 1.0))
        counts = np.where(alive, np.minimum(n_poisson, n_until_drop), 0)
        return self._customer_da(counts, df, "holdout_purchases")

    def sample_frequency(self, data: pd.DataFrame | None = None, thin: int = 1, seed: int = 0) -> xr.DataArray:
        """Posterior predictive repeat-purchase counts over each customer's own (0, T], dims (chain, draw, customer_id).

        Per draw: lambda ~ Gamma(r, alpha), p ~ Beta(a, b), x = min(Poisson(lambda T), Geometric(p)):
        the BG/NBD process replicated for a customer of the same age and group (for PPC plots).
        """
        df, p, group = self._prepare(data, thin)
        rng = np.random.default_rng(seed)
        T = df["T"].to_numpy()
        r, alpha, a, b = (p[k][:, :, group] for k in SEGMENT_PARAMS)
        lam = rng.gamma(r, 1.0 / alpha)
        pdrop = np.clip(rng.beta(a, b), 1e-300, 1.0)
        counts = np.minimum(rng.poisson(lam * T), rng.geometric(pdrop))
        return self._customer_da(counts, df, "frequency")

    def log_likelihood(self, data: pd.DataFrame | None = None, thin: int = 1) -> xr.DataArray:
        """Pointwise log-likelihood per customer (for LOO), dims (chain, draw, customer_id)."""
        df, p, group = self._prepare(data, thin)
        pat = bm.compress_patterns(group, df["frequency"], df["recency"], df["T"])
        g = pat.group  # p[k] is (chain, draw, group): gather per pattern, evaluate the reference formula
        val = bm.loglik(*(p[k][:, :, g] for k in SEGMENT_PARAMS), pat.x, pat.t_x, pat.T)
        return self._customer_da(val[:, :, pat.inverse], df, "log_likelihood")

    # ---- persistence hooks -------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any]:
        return dict(centered=self.centered_)

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        self.centered_ = {k: list(v) for k, v in state.get("centered", {}).items()}
