"""Hierarchical Pareto/NBD (Schmittlein, Morrison & Colombo 1987) in PyMC.

Segment g has population parameters (r_g, alpha_g) of the Gamma purchase rates and (s_g,
beta_g) of the Gamma dropout rates; customer heterogeneity is integrated out in closed form
(:mod:`.pareto_nbd_math`), so the sampler sees segment and population parameters only, all on
the log scale. Pooling, the centring rule, covariates and every prediction come from the shared
base :class:`~clvlab.models.purchase.PurchaseModel`; the likelihood is the fused op of
:mod:`.pareto_nbd_kernel` on unique (group, x, t_x, T) patterns.

Optional time-invariant covariates X (Fader & Hardie 2007 note, as pymc-marketing's
ParetoNBDModel): alpha_i = alpha_g exp(-X_i beta_alpha), beta_i = beta_g exp(-X_i beta_beta),
so positive coefficients raise the purchase and the dropout rate. Standardise covariates first.

Samplers: nutpie (numba, the default) and pymc; the op has no JAX implementation, so numpyro
and nutpie's JAX backend are refused with a clear error.
"""

from __future__ import annotations

from typing import Any, ClassVar

from clvlab.errors import ClvlabInputError
from clvlab.models import pareto_nbd_math as pm_
from clvlab.models.hierarchy import ParamPrior
from clvlab.models.patterns import Patterns
from clvlab.models.purchase import PurchaseModel

SEGMENT_PARAMS = ("r", "alpha", "s", "beta")
DEFAULT_PRIORS: dict[str, ParamPrior] = {
    "r": ParamPrior("r", "log", loc=0.0, scale=2.0, sigma_scale=1.0),
    "alpha": ParamPrior("alpha", "log", loc=1.0, scale=3.0, sigma_scale=1.0),
    "s": ParamPrior("s", "log", loc=0.0, scale=2.0, sigma_scale=1.0),
    "beta": ParamPrior("beta", "log", loc=1.0, scale=3.0, sigma_scale=1.0),
}
"""Weak priors on the log scale; alpha and beta are in the data's time unit (CDNOW weeks: ~11)."""


class ParetoNBD(PurchaseModel):
    """Hierarchical Pareto/NBD estimator.

    Parameters
    ----------
    pooling : "pooled" | "unpooled" | "partial"
        How segments share (r, alpha, s, beta). Without ``segment`` it is always pooled.
    segment : str, optional
        Segment column of the RFM table.
    priors : dict, optional
        Overrides per parameter ("r", "alpha", "s", "beta") of ``{"loc", "scale", "sigma_scale"}``
        on the log scale (see :class:`ParamPrior`).
    covariates : sequence of str, optional
        Time-invariant numeric customer columns (log-linear effects on alpha and beta).
    parameterization : "auto" | "noncentered" | "centered"
        Partial pooling only (NUTS): how the segment parameters are sampled (see
        :class:`~clvlab.models.purchase.PurchaseModel`).
    """

    model_name: ClassVar[str] = "pareto_nbd"
    math = pm_
    params: ClassVar[tuple[str, ...]] = SEGMENT_PARAMS
    link_params: ClassVar[tuple[str, ...]] = SEGMENT_PARAMS
    covariate_sign: ClassVar[dict[str, float]] = {"alpha": -1.0, "beta": -1.0}
    default_priors: ClassVar[dict[str, ParamPrior]] = DEFAULT_PRIORS
    summary_vars: ClassVar[tuple[str, ...]] = (
        *SEGMENT_PARAMS, "r_pop", "alpha_pop", "s_pop", "beta_pop",
        "r_sigma", "alpha_sigma", "s_sigma", "beta_sigma", "beta_alpha", "beta_beta",
    )  # fmt: skip
    diagnostic_vars: ClassVar[tuple[str, ...]] = (
        *SEGMENT_PARAMS, "r_mu", "alpha_mu", "s_mu", "beta_mu",
        "r_sigma", "alpha_sigma", "s_sigma", "beta_sigma", "beta_alpha", "beta_beta",
    )  # fmt: skip

    def _loglik_term(self, values: dict[str, Any], pat: Patterns) -> Any:
        from clvlab.models.pareto_nbd_kernel import pareto_nbd_loglik

        return pareto_nbd_loglik(values["r"], values["alpha"], values["s"], values["beta"], pat)

    def _prepare_backend(self, backend: str) -> None:
        raise ClvlabInputError(
            f"{self.model_name}: the likelihood op has no {backend.upper()} implementation; use sampler='nutpie' "
            "(nutpie_backend='numba') or sampler='pymc'", what="argument",
        )  # fmt: skip
