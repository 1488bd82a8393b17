"""MBG/NBD math as pure functions (Batislam, Denizel & Filiztekin 2007).

The BG/NBD process with one change: a customer may drop out right after the *first* purchase
too, so x repeat purchases mean x + 1 chances to leave. With lambda ~ Gamma(r, alpha) and
p ~ Beta(a, b), given (lambda, p)::

    L = lambda^x (1-p)^x [ (1-p) e^(-lambda T) + p e^(-lambda t_x) ]

and integrating the heterogeneity out (B(a+1, b+x) / B(a, b+x+1) = a / (b+x))::

    log L = A(x) - (r+x) log(alpha+T) + log(1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x))
    A(x)  = lnG(r+x) - lnG(r) + r ln(alpha) + lnG(a+b) + lnG(b+x+1) - lnG(b) - lnG(a+b+x+1)
    P(alive | x, t_x, T) = 1 / D,  D = 1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)   (every x)

Alive at T, the posterior is lambda ~ Gamma(r+x, alpha+T), p ~ Beta(a, b+x+1): the BG/NBD
alive component with b + 1 in place of b. So every conditional expectation is BG/NBD's with
b -> b + 1 (:func:`clvlab.models.bgnbd_math.expected_purchases_numerator`, with its safe
closed form / quadrature), which gives Batislam et al.'s

    E[Y(t) | x, t_x, T] = (a+b+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x)
                          2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t))] / D
    E[X(t)] (new)       = b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))]

For the sampler, the total over patterns reuses the fused BG/NBD op: for x > 0,
A(x) = A_BG(x; b+1) + log(b/(a+b)) and log(a/(b+x)) is BG/NBD's log(a/(b'+x-1)) at b' = b+1,
so the repeat customers' sum is the BG/NBD kernel at (r, alpha, a, b+1) plus
n_repeat log(b/(a+b)); the x = 0 patterns (one per (group, T) in valid data) are a small pytensor graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clvlab.models import bgnbd_math as bm
from clvlab.models.bgnbd_math import NP, logaddexp
from clvlab.models.patterns import Patterns

__all__ = [
    "loglik", "loglik_patterns", "log_d", "p_alive", "p_no_purchase", "expected_purchases_numerator",
    "conditional_expected_purchases", "expected_purchases_new", "prob_purchases", "sample_holdout",
    "sample_frequency",
]  # fmt: skip


def loglik(r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any, xp: Any = NP) -> Any:
    """Per-customer MBG/NBD log-likelihood (module docstring), log-sum-exp for large x."""
    big_a = (xp.gammaln(r + x) - xp.gammaln(r) + r * xp.log(alpha) + xp.gammaln(a + b) + xp.gammaln(b + x + 1.0)
             - xp.gammaln(b) - xp.gammaln(a + b + x + 1.0))  # fmt: skip
    u = -(r + x) * xp.log(alpha + T)
    v = xp.log(a) - xp.log(b + x) - (r + x) * xp.log(alpha + t_x)
    return big_a + logaddexp(u, v, xp)


def loglik_patterns(r: Any, alpha: Any, a: Any, b: Any, pat: Patterns, xp: Any = NP) -> Any:
    """Per-pattern log-likelihood from group-level parameter vectors (indexed by group)."""
    g = xp.constant(pat.group)
    return loglik(r[g], alpha[g], a[g], b[g], pat.x, pat.t_x, pat.T, xp)


def loglik_total_pt(r: Any, alpha: Any, a: Any, b: Any, pat: Patterns) -> Any:
    """Symbolic total over patterns (pytensor): the BG/NBD op for x > 0, a graph for x = 0."""
    import dataclasses

    import pytensor.tensor as pt

    from clvlab.models.bgnbd_kernel import bgnbd_loglik
    from clvlab.models.patterns import compress_patterns

    total = 0.0
    rep = pat.x > 0
    if rep.any():
        sub = compress_patterns(pat.group[rep], pat.x[rep], pat.t_x[rep], pat.T[rep])  # rows already unique
        sub = dataclasses.replace(
            sub, weight=np.bincount(sub.inverse, weights=pat.weight[rep], minlength=sub.n_patterns)
        )
        n_rep = np.bincount(pat.group[rep], weights=pat.weight[rep], minlength=int(pat.group.max()) + 1)
        n_g = pt.as_tensor_variable(n_rep)
        total = bgnbd_loglik(r, alpha, a, b + 1.0, sub) + pt.sum(n_g * (pt.log(b) - pt.log(a + b)))
    zero = ~rep
    if zero.any():
        g0 = pt.as_tensor_variable(pat.group[zero])
        per = loglik(r[g0], alpha[g0], a[g0], b[g0], 0.0, pat.t_x[zero], pat.T[zero], bm.PT)
        total = total + pt.dot(pt.as_tensor_variable(pat.weight[zero]), per)
    return total


def log_d(r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any) -> np.ndarray:
    """log D, D = 1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x) (every x, one-time buyers included)."""
    x = np.asarray(x, dtype=float)
    v = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.logaddexp(0.0, v)


def p_alive(r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any) -> np.ndarray:
    """P(alive | x, t_x, T) = 1/D (below 1 for one-time buyers, unlike BG/NBD)."""
    return np.exp(-log_d(r, alpha, a, b, x, t_x, T))


def p_no_purchase(r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any, t: Any) -> np.ndarray:
    """P(no repeat purchase in (T, T+t]) = 1 - 1/D + (1/D) ((alpha+T)/(alpha+T+t))^(r+x)."""
    alive = p_alive(r, alpha, a, b, x, t_x, T)
    none_if_alive = np.exp((r + np.asarray(x, dtype=float)) * (np.log(alpha + T) - np.log(alpha + T + t)))
    return 1.0 - alive + alive * none_if_alive


def expected_purchases_numerator(r: Any, alpha: Any, a: Any, b: Any, x: Any, T: Any, t: Any) -> np.ndarray:
    """E[Y(t) | alive at T, x, T]: BG/NBD's (t_x-free) numerator at b + 1 (module docstring)."""
    return bm.expected_purchases_numerator(r, alpha, a, np.asarray(b, dtype=float) + 1.0, x, T, t)


def conditional_expected_purchases(r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any, t: Any) -> np.ndarray:
    """E[Y(t) | x, t_x, T], expected repeat purchases in (T, T+t] (Batislam et al. 2007)."""
    return expected_purchases_numerator(r, alpha, a, b, x, T, t) * p_alive(r, alpha, a, b, x, t_x, T)


def expected_purchases_new(r: Any, alpha: Any, a: Any, b: Any, t: Any) -> np.ndarray:
    """E[X(t)] for a new customer: alive after the first purchase with probability b/(a+b)."""
    b = np.asarray(b, dtype=float)
    return b / (a + b) * expected_purchases_numerator(r, alpha, a, b, 0.0, 0.0, t)


def prob_purchases(r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any, t: float, n: int) -> np.ndarray:
    """P(exactly n repeat purchases in (T, T+t] | x, t_x, T): BG/NBD's alive part at p ~ Beta(a, b+x+1)."""
    x = np.asarray(x, dtype=float)
    alive = p_alive(r, alpha, a, b, x, t_x, T)
    given = bm.prob_purchases_alive_geometric(r + x, alpha + T, a, b + x + 1.0, t, n)
    return alive * given + (1.0 - alive if n == 0 else 0.0)


def sample_holdout(rng: np.random.Generator, r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any,
                   duration: float) -> np.ndarray:  # fmt: skip
    """Counts in (T, T+duration] from the posterior state at T: alive with probability 1/D, then
    lambda ~ Gamma(r+x, alpha+T), p ~ Beta(a, b+x+1), count min(Poisson(lambda t), Geometric(p))."""
    alive = rng.random(np.shape(r)) < p_alive(r, alpha, a, b, x, t_x, T)
    lam = rng.gamma(r + x, 1.0 / (alpha + T))
    pdrop = np.clip(rng.beta(a, b + x + 1.0), 1e-300, 1.0)
    counts = np.minimum(rng.poisson(lam * float(duration)), rng.geometric(pdrop))
    return np.where(alive, counts, 0)


def sample_frequency(rng: np.random.Generator, r: Any, alpha: Any, a: Any, b: Any, T: Any) -> np.ndarray:
    """Repeat purchases over (0, T] of a new customer: none if the customer leaves right after the
    first purchase (probability p), else min(Poisson(lambda T), Geometric(p))."""
    lam = rng.gamma(r, 1.0 / alpha)
    pdrop = np.clip(rng.beta(a, b), 1e-300, 1.0)
    left_at_once = rng.random(np.shape(pdrop)) < pdrop
    counts = np.minimum(rng.poisson(lam * T), rng.geometric(pdrop))
    return np.where(left_at_once, 0, counts)
