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
tables, by the fused op of :mod:`.bgnbd_kernel`. Pooling, the centring pilot, covariates and
every prediction come from the shared base, :class:`~clvlab.models.purchase.PurchaseModel`.

Input validation decisions: a segment with a single customer is allowed under ``partial``
(warning: its parameters are essentially the population's) and ``pooled``, but an error under
``unpooled`` (four free parameters from one customer are unidentified); all-zero frequency is
an error (the dropout process is unidentified).
"""

from __future__ import annotations

from typing import Any, ClassVar

from clvlab.models import bgnbd_math as bm
from clvlab.models.hierarchy import ParamPrior
from clvlab.models.patterns import Patterns
from clvlab.models.purchase import PurchaseModel

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


class BGNBD(PurchaseModel):
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
        Partial pooling only (NUTS): how the segment parameters are sampled (see
        :class:`~clvlab.models.purchase.PurchaseModel`).
    """

    model_name: ClassVar[str] = "bgnbd"
    math = bm
    params: ClassVar[tuple[str, ...]] = SEGMENT_PARAMS
    link_params: ClassVar[tuple[str, ...]] = LINK_PARAMS
    covariate_sign: ClassVar[dict[str, float]] = COVARIATE_SIGN
    default_priors: ClassVar[dict[str, ParamPrior]] = DEFAULT_PRIORS
    summary_vars: ClassVar[tuple[str, ...]] = (
        *SEGMENT_PARAMS, "phi", "kappa", "r_pop", "alpha_pop", "phi_pop", "kappa_pop",
        "r_sigma", "alpha_sigma", "phi_sigma", "kappa_sigma", "beta_alpha", "beta_a", "beta_b",
    )  # fmt: skip
    diagnostic_vars: ClassVar[tuple[str, ...]] = (
        "r", "alpha", "a", "b", "r_mu", "alpha_mu", "phi_mu", "kappa_mu",
        "r_sigma", "alpha_sigma", "phi_sigma", "kappa_sigma", "beta_alpha", "beta_a", "beta_b",
    )  # fmt: skip

    def _natural(self, link: dict[str, Any]) -> dict[str, Any]:
        """(r, alpha, a, b) from (r, alpha, phi, kappa): a = phi kappa, b = (1 - phi) kappa."""
        phi, kappa = link["phi"], link["kappa"]
        return {"r": link["r"], "alpha": link["alpha"], "a": phi * kappa, "b": (1.0 - phi) * kappa}

    def _loglik_term(self, values: dict[str, Any], pat: Patterns) -> Any:
        from clvlab.models.bgnbd_kernel import bgnbd_loglik

        return bgnbd_loglik(values["r"], values["alpha"], values["a"], values["b"], pat)

    def _prepare_backend(self, backend: str) -> None:
        if backend == "jax":  # the fused likelihood op needs its JAX implementation registered
            from clvlab.models.bgnbd_kernel import register_jax

            register_jax()
