"""Fused Gamma-Gamma log-likelihood and its analytic gradient (one numba pass; design.md "Speed").

Per (segment, x, zbar) pattern with weight w (:class:`~clvlab.models.gamma_gamma_math.SpendPatterns`),
:func:`~clvlab.models.gamma_gamma_math.gg_logpdf` splits as

    T(g, x) - (p x + q) L - p x ln(gamma) + (p x - 1) ln(zbar),     L = log1p(x zbar / gamma),

with the x-terms T = lnG(px+q) - lnG(q) - lnG(px) + px ln x on the small (segment, x) table
(Stirling's difference above :data:`~clvlab.models.gamma_gamma_math.LARGE_Q`, as in the math
module). The ln zbar terms and x are per-segment sufficient statistics (S = sum w x ln zbar,
X = sum w x, C = sum w ln zbar), so a pattern costs one log1p and a few multiply-adds.
Gradients (psi = digamma):

    dT/dp = x [psi(px+q) - psi(px) + ln x]     dT/dq = psi(px+q) - psi(q)
    d/dp  = dT/dp - x L - x ln(gamma) + x ln(zbar)
    d/dq  = dT/dq - L
    d/dgamma = (px+q) x zbar / (gamma (gamma + x zbar)) - p x / gamma

Above LARGE_Q, psi(px+q) - psi(q) is the q-derivative of the Stirling difference,
log1p(px/q) + px / (2q(q+px)) + S'(q+px) - S'(q). Parameters outside the support (<= 0 or not
finite) give a NaN total and NaN gradients. The PyMC model and the reference formula share
nothing but the math: tests/test_gamma_gamma.py checks value and gradient against
:func:`~clvlab.models.gamma_gamma_math.gg_loglik` and pytensor's autodiff of it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pytensor.graph.basic import Apply
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from clvlab.models import bgnbd_kernel, gamma_gamma_math
from clvlab.models.bgnbd_kernel import digamma
from clvlab.models.fused_op import FusedLoglik, njit_cached_by_source, source_hash
from clvlab.models.gamma_gamma_math import LARGE_Q, SpendPatterns

__all__ = ["GammaGammaLoglik", "gg_fused_loglik", "pattern_data", "register_jax"]

_SOURCES = (__file__, bgnbd_kernel.__file__, gamma_gamma_math.__file__)
N_PARAMS = 3
DATA_KINDS = ("int64", "float64", "float64", "int64", "float64", "float64", "float64", "float64", "float64", "float64")


_stirling = njit_cached_by_source(_SOURCES, nogil=True, error_model="numpy")(gamma_gamma_math._stirling_tail)


@njit_cached_by_source(_SOURCES, nogil=True, error_model="numpy")
def _stirling_d(y):  # type: ignore[no-untyped-def]
    u2 = 1.0 / (y * y)
    return u2 * (-1.0 / 12.0 + u2 * (1.0 / 120.0 - u2 / 252.0))


@njit_cached_by_source(_SOURCES, nogil=True, error_model="numpy")
def _kernel(p, q, gamma, sx_group, sx_x, sx_w, pat_group, pat_x, pat_xz, pat_w, grp_S, grp_X, grp_C):  # type: ignore[no-untyped-def]  # noqa: E501
    n_g = p.shape[0]
    g_p, g_q, g_gamma = np.zeros(n_g), np.zeros(n_g), np.zeros(n_g)
    for g in range(n_g):
        if not (p[g] > 0.0 and q[g] > 0.0 and gamma[g] > 0.0 and math.isfinite(p[g] + q[g] + gamma[g])):
            g_p[:] = np.nan
            g_q[:] = np.nan
            g_gamma[:] = np.nan
            return np.asarray(np.nan), g_p, g_q, g_gamma
    total = 0.0
    for g in range(n_g):  # per segment: sufficient statistics of ln zbar and x
        lg = math.log(gamma[g])
        total += p[g] * (grp_S[g] - lg * grp_X[g]) - grp_C[g]
        g_p[g] += grp_S[g] - lg * grp_X[g]
        g_gamma[g] -= p[g] * grp_X[g] / gamma[g]
    for k in range(sx_x.shape[0]):  # per (segment, x): the log-gammas and digammas
        g, x, w = sx_group[k], sx_x[k], sx_w[k]
        pg, qg = p[g], q[g]
        px = pg * x
        lx = math.log(x)
        if qg > LARGE_Q:
            t = (qg - 0.5) * math.log1p(px / qg) + px * math.log(qg + px) - px + _stirling(qg + px) - _stirling(qg)
            dq = math.log1p(px / qg) + px / (2.0 * qg * (qg + px)) + _stirling_d(qg + px) - _stirling_d(qg)
        else:
            t = math.lgamma(px + qg) - math.lgamma(qg)
            dq = digamma(px + qg) - digamma(qg)
        total += w * (t - math.lgamma(px) + px * lx)
        g_p[g] += w * x * (digamma(px + qg) - digamma(px) + lx)
        g_q[g] += w * dq
    for i in range(pat_x.shape[0]):  # per pattern: one log1p
        g, x, xz, w = pat_group[i], pat_x[i], pat_xz[i], pat_w[i]
        ratio = xz / gamma[g]
        L = math.log1p(ratio)
        c = p[g] * x + q[g]
        total -= w * c * L
        g_p[g] -= w * x * L
        g_q[g] -= w * L
        g_gamma[g] += w * c * ratio / (gamma[g] + xz)
    return np.asarray(total), g_p, g_q, g_gamma


class GammaGammaLoglik(FusedLoglik):
    """Weighted Gamma-Gamma log-likelihood over spend patterns and its gradient (outputs: total,
    dp, dq, dgamma). Inputs: the segment vectors p, q, gamma (float64), then :func:`pattern_data`.
    Only the first output may be differentiated."""

    n_params = N_PARAMS
    data_kinds = DATA_KINDS
    kernel = staticmethod(_kernel)


gg_loglik_op = GammaGammaLoglik()


def pattern_data(pat: SpendPatterns, n_segments: int) -> tuple[np.ndarray, ...]:
    """The op's constants: the unique (segment, x) table with summed weights; per pattern its
    segment, x, x zbar and weight; per segment S = sum w x ln zbar, X = sum w x, C = sum w ln zbar."""
    keys = np.stack([pat.segment, pat.x])
    sx, inverse = np.unique(keys, axis=1, return_inverse=True)
    sx_w = np.bincount(inverse.reshape(-1), weights=pat.weight, minlength=sx.shape[1])
    lz = np.log(pat.zbar)
    grp = lambda v: np.bincount(pat.segment, weights=v, minlength=n_segments)  # noqa: E731
    return (sx[0].astype(np.int64), sx[1].astype(float), sx_w, pat.segment.astype(np.int64), pat.x.astype(float),
            pat.x * pat.zbar, pat.weight.astype(float), grp(pat.weight * pat.x * lz), grp(pat.weight * pat.x),
            grp(pat.weight * lz))  # fmt: skip


def gg_fused_loglik(p: Any, q: Any, gamma: Any, pat: SpendPatterns, n_segments: int) -> Any:
    """Symbolic total log-likelihood over spend patterns (differentiable in the segment vectors)."""
    return gg_loglik_op(p, q, gamma, *pattern_data(pat, n_segments))[0]


def _source_version() -> int:
    """Hash of the kernel's sources, for pytensor's op cache key (it sees the Op's props only)."""
    return source_hash(_SOURCES)


@register_funcify_default_op_cache_key(GammaGammaLoglik)
def _numba_funcify_gg_loglik(op: GammaGammaLoglik, node: Apply | None = None, **kwargs: Any) -> Any:
    return _kernel, _source_version()


_JAX_REGISTERED = False


def register_jax() -> None:
    """Teach pytensor's JAX backend this Op (imports jax; called before a JAX compile): the same
    decomposition in jax.numpy, differentiated by JAX."""
    global _JAX_REGISTERED
    if _JAX_REGISTERED:
        return
    import jax
    import jax.numpy as jnp
    from pytensor.link.jax.dispatch import jax_funcify

    def total(p, q, gamma, sx_group, sx_x, sx_w, pat_group, pat_x, pat_xz, pat_w, grp_S, grp_X, grp_C):  # type: ignore[no-untyped-def]  # noqa: E501
        t = gamma_gamma_math.gg_logpdf_x_terms(sx_x, p[sx_group], q[sx_group])  # the math module's, on JAX arrays
        c = p[pat_group] * pat_x + q[pat_group]
        per_pattern = -jnp.dot(pat_w, c * jnp.log1p(pat_xz / gamma[pat_group]))
        per_segment = jnp.sum(p * (grp_S - jnp.log(gamma) * grp_X) - grp_C)
        return jnp.dot(sx_w, t) + per_pattern + per_segment

    value_and_grad = jax.value_and_grad(total, argnums=(0, 1, 2))

    @jax_funcify.register(GammaGammaLoglik)
    def _jax_funcify_gg_loglik(op: GammaGammaLoglik, **kwargs: Any) -> Any:
        def fn(p, q, gamma, *data):  # type: ignore[no-untyped-def]
            val, grads = value_and_grad(p, q, gamma, *data)
            return (val, *grads)

        return fn

    _JAX_REGISTERED = True
