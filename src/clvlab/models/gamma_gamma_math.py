"""Gamma-Gamma spend model: pure math (Fader, Hardie & Lee 2005, "RFM and CLV"; Colombo & Jiang 1999).

For a customer with x > 0 repeat purchases of mean value zbar, transaction values are
z ~ Gamma(p, rate=nu) and nu ~ Gamma(q, rate=gamma) across customers, so (design.md)::

    log f(zbar | p,q,gamma,x) = lnG(px+q) - lnG(px) - lnG(q) + q ln(gamma) + px ln(x)
                                + (px-1) ln(zbar) - (px+q) ln(gamma + x zbar)
    E[M | x, zbar]            = p (gamma + x zbar) / (p x + q - 1)

Every function here works on NumPy arrays, PyTensor tensors and JAX arrays (the PyMC model calls
the very same ``gg_logpdf``), so there is exactly one copy of each formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special as sp

__all__ = [
    "SpendPatterns",
    "compress_spend_patterns",
    "gg_conditional_mean_spend",
    "gg_logpdf",
    "gg_logpdf_from_x_terms",
    "gg_logpdf_x_terms",
    "gg_loglik",
    "gg_natural",
    "gg_population_mean_spend",
    "gg_sample_mean_spend",
    "gg_spend_weight",
]


LARGE_Q = 1e3
"""Above this q, lnG(px+q) - lnG(q) comes from Stirling's series of both terms, differenced
analytically: (q - 1/2) ln(1 + px/q) + px ln(q + px) - px + S(q+px) - S(q), with
S(y) = 1/(12y) - 1/(360y^3) + 1/(1260y^5) (truncation error < 1/(1680 y^7): below 1e-24 here).
The two log-gammas are ~q ln q, and their direct difference loses digits as q grows (abs.
error 2e-6 at q = 1e9) and keeps none at q ~ 1e128, which warm-up can reach: there the direct
form returned large positive garbage and a chain stayed stuck (all its draws divergent)."""


def _stirling_tail(y):
    u = 1.0 / y  # powers of 1/y: no overflow for huge y
    return u * (1.0 / 12.0 - u * u * (1.0 / 360.0 - u * u / 1260.0))


def _ops(*args: Any):
    """(log, log1p, gammaln, where) of JAX or PyTensor when any argument is a JAX array or a symbolic tensor, else of NumPy/SciPy."""
    try:
        from pytensor.tensor.variable import TensorVariable
    except ImportError:  # pragma: no cover - pytensor is a hard dependency
        TensorVariable = ()  # type: ignore[assignment]
    if any(type(a).__module__.split(".")[0] in ("jax", "jaxlib") for a in args):  # the JAX twin of the fused op
        import jax.numpy as jnp
        from jax.scipy.special import gammaln as jgammaln

        return jnp.log, jnp.log1p, jgammaln, jnp.where
    if any(isinstance(a, TensorVariable) for a in args):
        import pytensor.tensor as pt

        def switch(cond: Any, a: Any, b: Any) -> Any:  # a plain bool (float q next to tensors) as a constant
            return pt.switch(np.asarray(cond) if isinstance(cond, bool | np.bool_) else cond, a, b)

        return pt.log, pt.log1p, pt.gammaln, switch
    return np.log, np.log1p, sp.gammaln, np.where


def gg_logpdf_x_terms(x, p, q):
    """The part of :func:`gg_logpdf` that depends on x and not on zbar: lnG(px+q) - lnG(q) - lnG(px) + px ln x.

    Evaluated on the small (segment, x) table and gathered per (segment, x, zbar) pattern by the
    model (the log-gammas are most of the cost). lnG(px+q) - lnG(q) by Stirling's series above
    :data:`LARGE_Q`. NumPy or PyTensor.
    """
    log, log1p, gammaln, where = _ops(x, p, q)
    px = p * x
    big = q > LARGE_Q
    small_q, large_q = where(big, 1.0, q), where(big, q, 2.0 * LARGE_Q)  # each branch sees its own range only
    stirling = ((large_q - 0.5) * log1p(px / large_q) + px * log(large_q + px) - px
                + _stirling_tail(large_q + px) - _stirling_tail(large_q))  # fmt: skip
    return where(big, stirling, gammaln(px + small_q) - gammaln(small_q)) - gammaln(px) + px * log(x)


def gg_logpdf_from_x_terms(x_terms, x, zbar, log_zbar, p, q, gamma):
    """:func:`gg_logpdf` given its x-terms (:func:`gg_logpdf_x_terms`) and ln zbar.

    q ln(gamma) - (px+q) ln(gamma + x zbar) is written -q ln(1 + x zbar / gamma) - px ln(gamma + x zbar):
    for large q the two terms of the first form are ~q ln q and cancel.
    """
    log, log1p, _, _ = _ops(x_terms, x, zbar, p, q, gamma)
    px = p * x
    return x_terms - q * log1p(x * zbar / gamma) - px * log(gamma + x * zbar) + (px - 1.0) * log_zbar


def gg_logpdf(x, zbar, p, q, gamma):
    """Log-density of the mean repeat spend ``zbar`` given ``x`` > 0 repeat purchases (design.md GG eq.).

    The x-terms (:func:`gg_logpdf_x_terms`) plus the zbar-terms (:func:`gg_logpdf_from_x_terms`),
    both written to stay accurate for huge q. Elementwise over broadcast arguments; NumPy or PyTensor.
    """
    log = _ops(x, zbar, p, q, gamma)[0]
    return gg_logpdf_from_x_terms(gg_logpdf_x_terms(x, p, q), x, zbar, log(zbar), p, q, gamma)


def gg_loglik(x, zbar, p, q, gamma, weights=None):
    """Total log-likelihood: ``sum_i w_i * gg_logpdf(x_i, zbar_i)`` (w = 1 when ``weights`` is None)."""
    lp = gg_logpdf(x, zbar, p, q, gamma)
    if weights is not None:
        lp = lp * weights
    return lp.sum()


def gg_natural(p, q_minus_1, mean_spend):
    """(q, gamma) from the sampled parameters (p, q - 1, mean_spend = p gamma / (q - 1)): q = 1 + (q - 1),
    gamma = mean_spend (q - 1) / p. NumPy or PyTensor."""
    return 1.0 + q_minus_1, mean_spend * q_minus_1 / p


def gg_population_mean_spend(p, q, gamma):
    """Population mean spend per transaction, E[z] = p gamma / (q - 1) (finite only for q > 1)."""
    return p * gamma / (q - 1.0)


def gg_spend_weight(x, p, q):
    """p / (p x + q - 1): E[M | x, zbar] = (gamma + x zbar) * gg_spend_weight(x, p, q)."""
    return p / (p * x + q - 1.0)


def gg_conditional_mean_spend(x, zbar, p, q, gamma):
    """E[M | x, zbar] = p (gamma + x zbar) / (p x + q - 1) (FHL 2005 "RFM and CLV" eq. 5).

    At x = 0 it reduces to the population mean p gamma / (q - 1), so customers without
    repeat purchases get their segment's population mean. Linear in (gamma + x zbar), which
    the CLV engine uses to fold the per-(segment, x) factor into its pattern table.
    """
    return (gamma + x * zbar) * gg_spend_weight(x, p, q)


def gg_sample_mean_spend(x, p, q, gamma, rng: np.random.Generator):
    """Draw replicated mean repeat spend for customers with ``x`` > 0 (posterior predictive).

    nu ~ Gamma(q, rate=gamma) per customer; the mean of x values z ~ Gamma(p, rate=nu) is
    Gamma(p x, rate=x nu). Arguments broadcast; NumPy only.
    """
    x = np.asarray(x, dtype=float)
    p, q, gamma = (np.asarray(v, dtype=float) for v in (p, q, gamma))
    shape = np.broadcast_shapes(x.shape, p.shape, q.shape, gamma.shape)
    nu = rng.gamma(np.broadcast_to(q, shape), 1.0 / np.broadcast_to(gamma, shape))
    return rng.gamma(np.broadcast_to(p * x, shape)) / (np.broadcast_to(x, shape) * nu)


@dataclass(frozen=True)
class SpendPatterns:
    """Identical (segment, x, zbar) rows collapsed to one with a count weight.

    ``inverse`` maps each input row to its pattern: ``pattern_value[inverse]`` expands a
    per-pattern quantity (e.g. pointwise log-likelihood for LOO) back to customers.
    """

    segment: np.ndarray  # int codes, per pattern
    x: np.ndarray
    zbar: np.ndarray
    weight: np.ndarray  # number of customers with the pattern
    inverse: np.ndarray  # per input row

    @property
    def n_patterns(self) -> int:
        return int(self.x.shape[0])


def compress_spend_patterns(segment: np.ndarray, x: np.ndarray, zbar: np.ndarray) -> SpendPatterns:
    """Collapse identical (segment, x, zbar) rows; the weighted log-likelihood equals the row sum."""
    segment = np.asarray(segment, dtype=np.int64)
    x = np.asarray(x, dtype=float)
    zbar = np.asarray(zbar, dtype=float)
    keys = np.rec.fromarrays([segment, x, zbar], names="g,x,z")
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return SpendPatterns(
        segment=np.asarray(uniq["g"], dtype=np.int64),
        x=np.asarray(uniq["x"], dtype=float),
        zbar=np.asarray(uniq["z"], dtype=float),
        weight=counts.astype(float),
        inverse=inverse.reshape(-1),
    )
