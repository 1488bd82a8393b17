"""Fused Pareto/NBD log-likelihood: the weighted sum over patterns and its gradient in one pass.

The math is :mod:`.pareto_nbd_math`'s (this module imports it, never the reverse). Per pattern
(group g, x, t_x, T), with E1 = (alpha+T)^-(r+x) (beta+T)^-s and G the tail integral::

    log L = lnG(r+x) - lnG(r) + r log alpha + s log beta + log V,   V = E1 + s G(t_x) - s G(T)

G depends on (group, x, y) only, so it is evaluated with its partials
(:func:`~clvlab.models.pareto_nbd_math.log_g_grad`: series, or quadrature near z = 1) once per
unique (group, x, y) with y in the patterns' t_x and T values (full CDNOW by 12 cohorts: 6.8k
entries for 8.7k patterns), and lnG / psi of r + x once per unique (group, x). With the weights
w_E = E1/V, w_A = s G(t_x)/V, w_B = s G(T)/V, d log V = w_E d log E1 + w_A d log G(t_x)
- w_B d log G(T) + (w_A - w_B)/s ds; the entries' gradients are gathered with the summed
weights at the end. Numba only (nutpie's default backend, and ``perform`` for pytensor's C and
Python modes); tests/test_pareto_nbd.py checks the value against :func:`loglik` and the
gradient against central finite differences.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numba
import numpy as np
from pytensor.graph.basic import Apply
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from clvlab.models import pareto_nbd_math as pm_
from clvlab.models import bgnbd_kernel
from clvlab.models.bgnbd_kernel import digamma
from clvlab.models.fused_op import FusedLoglik
from clvlab.models.patterns import Patterns, factorize

__all__ = ["ParetoNBDLoglik", "pareto_nbd_loglik", "pattern_data"]

N_PARAMS = 4  # r, alpha, s, beta (one value per group)
DATA_KINDS = ("int64", "float64", "int64", "float64", "float64", "int64", "int64", "int64", "int64", "float64",
              "float64", "float64", "float64")  # fmt: skip
"""dtypes of :func:`pattern_data`'s arrays (the last two: the quadrature's nodes and weights)."""


@numba.njit(cache=False, nogil=True, error_model="numpy")  # not cached: see _source_version
def _kernel(r, alpha, s, beta, gx_group, gx_x, gy_group, gy_x, gy_y, group, ix, iy_tx, iy_T, T, weight, nodes,
            weights):  # type: ignore[no-untyped-def]  # fmt: skip
    """Weighted log-likelihood sum and its gradient wrt the group vectors (module docstring)."""
    n_g, n_x, n_y, n_p = r.shape[0], gx_x.shape[0], gy_y.shape[0], group.shape[0]
    lgr, psr, la, lb, ls = np.empty(n_g), np.empty(n_g), np.empty(n_g), np.empty(n_g), np.empty(n_g)
    for g in range(n_g):
        lgr[g], psr[g] = math.lgamma(r[g]), digamma(r[g])
        la[g], lb[g], ls[g] = math.log(alpha[g]), math.log(beta[g]), math.log(s[g])
    lg_rx, ps_rx = np.empty(n_x), np.empty(n_x)
    for i in range(n_x):
        v = r[gx_group[i]] + gx_x[i]
        lg_rx[i], ps_rx[i] = math.lgamma(v), digamma(v)
    lG = np.empty(n_y)
    dG = np.empty((n_y, 4))
    for e in range(n_y):
        g = gy_group[e]
        lG[e], dG[e, 0], dG[e, 1], dG[e, 2], dG[e, 3] = pm_.log_g_grad(r[g], alpha[g], s[g], beta[g], gy_x[e],
                                                                       gy_y[e], nodes, weights)  # fmt: skip
    cy = np.zeros(n_y)
    g_r, g_alpha, g_s, g_beta = np.zeros(n_g), np.zeros(n_g), np.zeros(n_g), np.zeros(n_g)
    total = 0.0
    for p in range(n_p):
        g, i, w = group[p], ix[p], weight[p]
        x = gx_x[i]
        rx = r[g] + x
        aT, bT = alpha[g] + T[p], beta[g] + T[p]
        laT, lbT = math.log(aT), math.log(bT)
        le = -rx * laT - s[g] * lbT
        lA, lB = ls[g] + lG[iy_tx[p]], ls[g] + lG[iy_T[p]]
        m = max(le, lA)
        eE, eA, eB = math.exp(le - m), math.exp(lA - m), math.exp(lB - m)
        dead = max(eA - eB, 0.0)
        V = eE + dead
        total += w * (lg_rx[i] - lgr[g] + r[g] * la[g] + s[g] * lb[g] + m + math.log(V))
        wE, wA, wB = eE / V, eA / V, eB / V
        if dead == 0.0:  # t_x = T (or rounding): V = E1, the dead term drops out
            wA = wB = 0.0
        g_r[g] += w * (ps_rx[i] - psr[g] + la[g] - wE * laT)
        g_alpha[g] += w * (r[g] / alpha[g] - wE * rx / aT)
        g_s[g] += w * (lb[g] - wE * lbT + (wA - wB) / s[g])
        g_beta[g] += w * (s[g] / beta[g] - wE * s[g] / bT)
        cy[iy_tx[p]] += w * wA
        cy[iy_T[p]] -= w * wB
    for e in range(n_y):
        g = gy_group[e]
        g_r[g] += cy[e] * dG[e, 0]
        g_alpha[g] += cy[e] * dG[e, 1]
        g_s[g] += cy[e] * dG[e, 2]
        g_beta[g] += cy[e] * dG[e, 3]
    return np.asarray(total), g_r, g_alpha, g_s, g_beta


class ParetoNBDLoglik(FusedLoglik):
    """Weighted Pareto/NBD log-likelihood over patterns and its gradient (outputs: total, dr, dalpha, ds, dbeta).

    Inputs: the group vectors r, alpha, s, beta (float64), then the constants of :func:`pattern_data`.
    Only the first output may be differentiated.
    """

    n_params = N_PARAMS
    data_kinds = DATA_KINDS
    kernel = staticmethod(_kernel)


pareto_nbd_loglik_op = ParetoNBDLoglik()


def pattern_data(pat: Patterns) -> tuple[np.ndarray, ...]:
    """The op's constant inputs: unique (group, x); unique (group, x, y) for y in t_x and T; per
    pattern its group, indices into both tables, T and weight; the quadrature nodes."""
    n = pat.n_patterns
    ys = np.concatenate([pat.t_x, pat.T])
    codes, first = factorize(np.concatenate([pat.group, pat.group]), np.concatenate([pat.x, pat.x]), ys)
    gy_group, gy_x, gy_y = np.concatenate([pat.group, pat.group])[first], np.concatenate([pat.x, pat.x])[first], ys[first]
    return (pat.gx_group, pat.gx_x, gy_group, gy_x, gy_y, pat.group, pat.ix, codes[:n], codes[n:], pat.T, pat.weight,
            pm_._TS_U, pm_._TS_DU)  # fmt: skip


def pareto_nbd_loglik(r: Any, alpha: Any, s: Any, beta: Any, pat: Patterns) -> Any:
    """Symbolic total log-likelihood over patterns (differentiable in the group vectors)."""
    return pareto_nbd_loglik_op(r, alpha, s, beta, *pattern_data(pat))[0]


def _source_version() -> int:
    """Hash of the sources the kernel runs: pytensor's numba cache keys on the Op's props only.

    numba's own cache (``cache=True``) keys a function on its defining file alone, so a cached
    caller keeps running a stale copy of a callee edited in another module (measured: an old,
    unbounded quadrature loop kept running after the fix). :func:`_kernel` calls into
    :mod:`.pareto_nbd_math` and :mod:`.bgnbd_kernel`, so it is compiled per process (~2 s) and
    its callees are cached in their own modules.
    """
    src = b"".join(Path(m.__file__).read_bytes() for m in (pm_, bgnbd_kernel)) + Path(__file__).read_bytes()
    return int(hashlib.sha256(src).hexdigest()[:12], 16)


@register_funcify_default_op_cache_key(ParetoNBDLoglik)
def _numba_funcify_pareto_nbd_loglik(op: ParetoNBDLoglik, node: Apply | None = None, **kwargs: Any) -> Any:
    return _kernel, _source_version()
