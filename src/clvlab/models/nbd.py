"""The NBD purchase model without dropout (Ehrenberg 1959), a baseline for model comparison.

Segment g has (r_g, alpha_g) of the Gamma purchase rates; nobody ever drops out
(:mod:`.nbd_math`). It is deliberately wrong for non-contractual data with churn, and is in
the workbench as the floor of every comparison: a dropout model that does not beat it on LOO
and on the holdout is not earning its parameters. Pooling, the centring pilot and every
prediction come from :class:`~clvlab.models.purchase.PurchaseModel`; the likelihood is the
pytensor graph of :func:`.nbd_math.loglik_patterns` (two gammalns per pattern: no fused op needed).
The CLV engine does not value it (a customer who never leaves has an unbounded lifetime).
"""

from __future__ import annotations

from typing import Any, ClassVar

from clvlab.models import nbd_math as nm
from clvlab.models.hierarchy import ParamPrior
from clvlab.models.patterns import Patterns
from clvlab.models.purchase import PurchaseModel

SEGMENT_PARAMS = ("r", "alpha")


class NBD(PurchaseModel):
    """Hierarchical NBD estimator (no dropout).

    Parameters
    ----------
    pooling : "pooled" | "unpooled" | "partial"
        How segments share (r, alpha). Without ``segment`` it is always pooled.
    segment : str, optional
        Segment column of the RFM table.
    priors : dict, optional
        Overrides per parameter ("r", "alpha") of ``{"loc", "scale", "sigma_scale"}`` on the
        log scale (see :class:`ParamPrior`).
    covariates : sequence of str, optional
        Time-invariant numeric customer columns (alpha_i = alpha_g exp(-X_i beta_alpha)).
    parameterization : "auto" | "noncentered" | "centered"
        Partial pooling only (NUTS), see :class:`~clvlab.models.purchase.PurchaseModel`.
    """

    model_name: ClassVar[str] = "nbd"
    math = nm
    params: ClassVar[tuple[str, ...]] = SEGMENT_PARAMS
    link_params: ClassVar[tuple[str, ...]] = SEGMENT_PARAMS
    covariate_sign: ClassVar[dict[str, float]] = {"alpha": -1.0}
    default_priors: ClassVar[dict[str, ParamPrior]] = {
        "r": ParamPrior("r", "log", loc=0.0, scale=2.0, sigma_scale=1.0),
        "alpha": ParamPrior("alpha", "log", loc=1.0, scale=3.0, sigma_scale=1.0),
    }
    summary_vars: ClassVar[tuple[str, ...]] = (
        "r",
        "alpha",
        "r_pop",
        "alpha_pop",
        "r_sigma",
        "alpha_sigma",
        "beta_alpha",
    )
    diagnostic_vars: ClassVar[tuple[str, ...]] = ("r", "alpha", "r_mu", "alpha_mu", "r_sigma", "alpha_sigma",
                                                  "beta_alpha")  # fmt: skip

    def _loglik_term(self, values: dict[str, Any], pat: Patterns) -> Any:
        import pytensor.tensor as pt

        from clvlab.models.bgnbd_math import PT

        ll = nm.loglik_patterns(values["r"], values["alpha"], pat, PT)
        return pt.sum(pt.as_tensor_variable(pat.weight) * ll)
