"""Hierarchical MBG/NBD (Batislam, Denizel & Filiztekin 2007) in PyMC.

BG/NBD with dropout possible right after the first purchase, so one-time buyers can be dead
(P(alive) < 1), which BG/NBD rules out: on CDNOW that is what makes BG/NBD's 1 - P(alive) rank
churners backwards. Same parameters (r, alpha, a, b), same sampled scale (log r, log alpha,
logit phi, log kappa), same pooling, centring rule, covariates (alpha_i = alpha_g
exp(-X beta_alpha), a_i = a_g exp(X beta_a), b_i = b_g exp(X beta_b)) and predictions as
:class:`~clvlab.models.bgnbd.BGNBD`, through the shared base
:class:`~clvlab.models.purchase.PurchaseModel`; the math is :mod:`.mbgnbd_math`, whose
likelihood reuses the fused BG/NBD op.
"""

from __future__ import annotations

from typing import Any, ClassVar

from clvlab.models import mbgnbd_math as mm
from clvlab.models.bgnbd import BGNBD
from clvlab.models.patterns import Patterns


class MBGNBD(BGNBD):
    """Hierarchical MBG/NBD estimator (parameters as :class:`~clvlab.models.bgnbd.BGNBD`)."""

    model_name: ClassVar[str] = "mbgnbd"
    math = mm

    def _loglik_term(self, values: dict[str, Any], pat: Patterns) -> Any:
        return mm.loglik_total_pt(values["r"], values["alpha"], values["a"], values["b"], pat)
