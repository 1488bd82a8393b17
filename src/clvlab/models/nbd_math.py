"""NBD math (Ehrenberg 1959): Poisson purchasing with Gamma(r, alpha) rates and *no dropout*.

The baseline every dropout model must beat: with nobody ever leaving, a long silence is no
evidence of anything, so the model over-predicts the holdout of lapsed customers. Given lambda,
purchase times are a Poisson process, so (x, t_x, T) enters the likelihood through (x, T) only::

    log L = lnG(r+x) - lnG(r) + r log(alpha) - (r+x) log(alpha+T)       (the lambda^x e^(-lambda T) kernel)
    P(alive) = 1,  lambda | data ~ Gamma(r+x, alpha+T)
    E[Y(t) | x, T] = (r+x) t / (alpha+T),  P(Y(t) = n) = NB(n; r+x, (alpha+T)/(alpha+T+t))

Every function has the purchase models' shared signature, ``f(r, alpha, x, t_x, T, ...)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.special as sps

from clvlab.models.bgnbd_math import NP
from clvlab.models.patterns import Patterns

__all__ = [
    "loglik", "loglik_patterns", "p_alive", "p_no_purchase", "expected_purchases_numerator",
    "conditional_expected_purchases", "expected_purchases_new", "prob_purchases", "sample_holdout",
    "sample_frequency",
]  # fmt: skip


def loglik(r: Any, alpha: Any, x: Any, t_x: Any, T: Any, xp: Any = NP) -> Any:
    """Per-customer NBD log-likelihood of x purchases at these times in (0, T] (module docstring)."""
    return xp.gammaln(r + x) - xp.gammaln(r) + r * xp.log(alpha) - (r + x) * xp.log(alpha + T)


def loglik_patterns(r: Any, alpha: Any, pat: Patterns, xp: Any = NP) -> Any:
    """Per-pattern log-likelihood from group-level parameter vectors (indexed by group)."""
    g = xp.constant(pat.group)
    return loglik(r[g], alpha[g], pat.x, pat.t_x, pat.T, xp)


def p_alive(r: Any, alpha: Any, x: Any, t_x: Any, T: Any) -> np.ndarray:
    """1: nobody drops out."""
    return np.ones(np.broadcast(r, alpha, x, t_x, T).shape)


def expected_purchases_numerator(r: Any, alpha: Any, x: Any, T: Any, t: Any) -> np.ndarray:
    """E[Y(t) | x, T] = (r+x) t / (alpha+T)."""
    return (r + np.asarray(x, dtype=float)) * t / (alpha + T)


def conditional_expected_purchases(r: Any, alpha: Any, x: Any, t_x: Any, T: Any, t: Any) -> np.ndarray:
    """E[Y(t) | x, t_x, T] (P(alive) = 1)."""
    return expected_purchases_numerator(r, alpha, x, T, t) * p_alive(r, alpha, x, t_x, T)


def expected_purchases_new(r: Any, alpha: Any, t: Any) -> np.ndarray:
    """E[X(t)] = r t / alpha for a new customer."""
    return r * np.asarray(t, dtype=float) / alpha


def prob_purchases(r: Any, alpha: Any, x: Any, t_x: Any, T: Any, t: float, n: int) -> np.ndarray:
    """P(exactly n purchases in (T, T+t]) = NB(n; r+x, (alpha+T)/(alpha+T+t))."""
    r1 = r + np.asarray(x, dtype=float) + 0.0 * np.asarray(t_x, dtype=float)
    a1 = alpha + np.asarray(T, dtype=float)
    return np.exp(sps.gammaln(r1 + n) - sps.gammaln(r1) - sps.gammaln(n + 1.0) + r1 * np.log(a1 / (a1 + t))
                  + n * np.log(t / (a1 + t)))  # fmt: skip


def p_no_purchase(r: Any, alpha: Any, x: Any, t_x: Any, T: Any, t: Any) -> np.ndarray:
    """P(no purchase in (T, T+t]) = ((alpha+T)/(alpha+T+t))^(r+x)."""
    return prob_purchases(r, alpha, x, t_x, T, float(t), 0)


def sample_holdout(
    rng: np.random.Generator, r: Any, alpha: Any, x: Any, t_x: Any, T: Any, duration: float
) -> np.ndarray:
    """Counts in (T, T+duration]: Poisson(lambda duration), lambda ~ Gamma(r+x, alpha+T)."""
    lam = rng.gamma(r + x + 0.0 * t_x, 1.0 / (alpha + T))
    return rng.poisson(lam * float(duration))


def sample_frequency(rng: np.random.Generator, r: Any, alpha: Any, T: Any) -> np.ndarray:
    """Purchases over (0, T] of a new customer: Poisson(lambda T), lambda ~ Gamma(r, alpha)."""
    return rng.poisson(rng.gamma(r, 1.0 / alpha) * T)
