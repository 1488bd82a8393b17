"""Fused Pareto/NBD log-likelihood: the weighted sum over patterns and its gradient in one pass.

The math is :mod:`.pareto_nbd_math`'s (this module imports it, never the reverse). Per pattern
(group g, x, t_x, T), with E1 = (alpha+T)^-(r+x) (beta+T)^-s and G the tail integral::

    log L = lnG(r+x) - lnG(r) + r log alpha + s log beta + log V,   V = E1 + s G(t_x) - s G(T)

G depends on (group, x, y) only, so it is evaluated with its partials (series, or quadrature
near z = 1; :mod:`.pareto_nbd_math`) once per unique (group, x, y) with y in the patterns' t_x
and T values (full CDNOW by 12 cohorts: 6.7k entries for 8.7k patterns). Each term lives on the
smallest table it depends on: lnG / psi / log(r+s+x) and the series' z-free coefficients per
(group, x) (the entries of one (group, x) are evaluated in a row, so a y after the first costs
multiplications only); log and reciprocal of alpha + y, beta + y per (group, y); the ratio
q = E1 / (s G(T)) per (group, x, T). Per pattern, V = s G(T) (q + expm1(log G(t_x) - log G(T)))
costs one expm1 and one log (log-sum-exp where a ratio leaves exp's range). With the weights
w_E = E1/V, w_A = s G(t_x)/V, w_B = s G(T)/V, d log V = w_E d log E1 + w_A d log G(t_x)
- w_B d log G(T) + (w_A - w_B)/s ds; the entries' and the E1 terms' gradients are gathered with
the summed weights at the end. Numba only (nutpie's default backend, and ``perform`` for pytensor's C and
Python modes); tests/test_purchase_math.py checks the value against :func:`loglik` and the
gradient against central finite differences.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pytensor.graph.basic import Apply
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from clvlab.models import bgnbd_kernel
from clvlab.models import pareto_nbd_math as pm_
from clvlab.models.bgnbd_kernel import digamma
from clvlab.models.fused_op import FusedLoglik, njit_cached_by_source, source_hash
from clvlab.models.patterns import Patterns, factorize

__all__ = ["ParetoNBDLoglik", "pareto_nbd_loglik", "pattern_data"]

N_PARAMS = 4  # r, alpha, s, beta (one value per group)
_LINEAR_MAX = 700.0  # log-ratios below this are safe to exponentiate (exp overflows at 709.8)
DATA_KINDS = ("int64", "float64", "float64", "int64", "float64", "int64", "int64", "float64", "int64", "int64",
              "int64", "int64", "float64", "float64", "float64")  # fmt: skip
"""dtypes of :func:`pattern_data`'s arrays (the last two: the quadrature's nodes and weights)."""


_SOURCES = (pm_.__file__, bgnbd_kernel.__file__, __file__)
"""The kernel's module and its callees' (:func:`_source_version`)."""


@njit_cached_by_source(_SOURCES, nogil=True, error_model="numpy")
def _kernel(r, alpha, s, beta, gx_group, gx_x, gx_w, gy_ix, gy_y, gy_v, gv_group, gv_y, e_T, group, iy_tx, iy_T,
            weight, nodes, weights):  # type: ignore[no-untyped-def]  # fmt: skip
    """Weighted log-likelihood sum and its gradient wrt the group vectors (module docstring)."""
    n_g, n_x, n_y, n_v, n_p = r.shape[0], gx_x.shape[0], gy_y.shape[0], gv_y.shape[0], group.shape[0]
    for g in range(n_g):  # outside the support (or not finite): NaN, which a sampler rejects
        if not (0.0 < r[g] < np.inf and 0.0 < alpha[g] < np.inf and 0.0 < s[g] < np.inf and 0.0 < beta[g] < np.inf):
            nan = np.full(n_g, np.nan)
            return np.asarray(np.nan), nan, nan.copy(), nan.copy(), nan.copy()
    lgr, psr, la, lb, ls = np.empty(n_g), np.empty(n_g), np.empty(n_g), np.empty(n_g), np.empty(n_g)
    for g in range(n_g):
        lgr[g], psr[g] = math.lgamma(r[g]), digamma(r[g])
        la[g], lb[g], ls[g] = math.log(alpha[g]), math.log(beta[g]), math.log(s[g])
    g_r, g_alpha, g_s, g_beta = np.zeros(n_g), np.zeros(n_g), np.zeros(n_g), np.zeros(n_g)
    total = 0.0
    # the pattern-free part, with each (group, x)'s summed weight: lnG(r+x) - lnG(r) + r log alpha + s log beta
    lrs, irs = np.empty(n_x), np.empty(n_x)
    for i in range(n_x):
        g, w = gx_group[i], gx_w[i]
        v = r[g] + gx_x[i]
        lrs[i], irs[i] = math.log(v + s[g]), 1.0 / (v + s[g])
        total += w * (math.lgamma(v) - lgr[g] + r[g] * la[g] + s[g] * lb[g])
        g_r[g] += w * (digamma(v) - psr[g] + la[g])
        g_alpha[g] += w * r[g] / alpha[g]
        g_s[g] += w * lb[g]
        g_beta[g] += w * s[g] / beta[g]
    lay, lby, iay, iby = np.empty(n_v), np.empty(n_v), np.empty(n_v), np.empty(n_v)  # per unique (group, y)
    for v in range(n_v):
        g = gv_group[v]
        ay, by = alpha[g] + gv_y[v], beta[g] + gv_y[v]
        lay[v], lby[v], iay[v], iby[v] = math.log(ay), math.log(by), 1.0 / ay, 1.0 / by
    lG = np.empty(n_y)
    dG = np.empty((n_y, 4))
    table = np.empty((pm_.SERIES_MAX_TERMS + 1, 3))  # the series coefficients of the current (group, x)
    n_filled, last = 0, -1
    for e in range(n_y):  # entries come sorted by (group, x): each one's coefficients are computed once
        i, v = gy_ix[e], gy_v[e]
        g, x, y = gx_group[i], gx_x[i], gy_y[e]
        if i != last:
            n_filled, last = 0, i
        c0, c1, z = pm_._hyp_args(r[g], alpha[g], s[g], beta[g], x, y)
        h, h0, h1, hz, converged, n_filled = pm_._h_series_table(c0, c1, z, table, n_filled)
        if not converged:
            h, h0, h1, hz = pm_._h_quadrature(c0, c1, z, nodes, weights)
        lG[e], dG[e, 0], dG[e, 1], dG[e, 2], dG[e, 3] = pm_.log_g_from_h(
            r[g], alpha[g], s[g], beta[g], x, y, lay[v], lby[v], iay[v], iby[v], lrs[i], irs[i], h, h0, h1, hz
        )
    # E1 / (s G(T)) per (group, x, T) entry: the alive term relative to the dead-after-T one
    lq, qE = np.full(n_y, np.nan), np.full(n_y, np.nan)
    for k in range(e_T.shape[0]):
        e = e_T[k]
        i, v = gy_ix[e], gy_v[e]
        g = gx_group[i]
        lq[e] = -(r[g] + gx_x[i]) * lay[v] - s[g] * lby[v] - ls[g] - lG[e]
        qE[e] = math.exp(lq[e])
    cy, cE = np.zeros(n_y), np.zeros(n_y)  # sum w d logV/d log G(y) and sum w wE, per entry
    q_s = np.zeros(n_g)  # sum w (wA - wB): times 1/s below
    for p in range(n_p):
        g, w, et, eT = group[p], weight[p], iy_tx[p], iy_T[p]
        d = lG[et] - lG[eT]  # log G(t_x)/G(T) >= 0
        lB = ls[g] + lG[eT]
        if d < _LINEAR_MAX and lq[eT] < _LINEAR_MAX:
            # V = s G(T) (qE + G(t_x)/G(T) - 1): one expm1 and one log a pattern
            dead = max(math.expm1(d), 0.0)
            D = qE[eT] + dead
            total += w * (lB + math.log(D))
            wB = w / D
            wE, wA = qE[eT] * wB, (1.0 + dead) * wB
        else:  # a ratio beyond exp's range: log-sum-exp on the larger of the alive and dead terms
            le, lA = lq[eT] + lB, lB + d
            m = max(le, lA)
            eE, eA, eB = math.exp(le - m), math.exp(lA - m), math.exp(lB - m)
            dead = max(eA - eB, 0.0)
            total += w * (m + math.log(eE + dead))
            wV = w / (eE + dead)
            wE, wA, wB = eE * wV, eA * wV, eB * wV
        if dead == 0.0:  # t_x = T (or rounding): V = E1, the dead term drops out
            wA = wB = 0.0
        cE[eT] += wE
        q_s[g] += wA - wB
        cy[et] += wA
        cy[eT] -= wB
    for k in range(e_T.shape[0]):  # d log E1 = -log(alpha+T) d(r) - (r+x)/(alpha+T) d(alpha) - ...
        e = e_T[k]
        i, v = gy_ix[e], gy_v[e]
        g, c = gx_group[i], cE[e]
        g_r[g] -= c * lay[v]
        g_alpha[g] -= c * (r[g] + gx_x[i]) * iay[v]
        g_s[g] -= c * lby[v]
        g_beta[g] -= c * s[g] * iby[v]
    for g in range(n_g):
        g_s[g] += q_s[g] / s[g]
    for e in range(n_y):
        g = gx_group[gy_ix[e]]
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
    """The op's constant inputs: unique (group, x) with its summed weight; unique (group, x, y) for y in t_x and T, with
    each entry's row in the unique (group, y) table; per pattern its group, its rows in those
    tables (for t_x and for T), its weight; the quadrature nodes."""
    n = pat.n_patterns
    ix2, ys = np.concatenate([pat.ix, pat.ix]), np.concatenate([pat.t_x, pat.T])
    codes, first = factorize(ix2, ys)  # (group, x) rows are unique, so (ix, y) keys (group, x, y)
    gy_ix, gy_y = ix2[first], ys[first]
    v_codes, v_first = factorize(pat.gx_group[gy_ix], gy_y)
    gv_group, gv_y = pat.gx_group[gy_ix][v_first], gy_y[v_first]
    gx_w = np.bincount(pat.ix, weights=pat.weight, minlength=len(pat.gx_x))
    return (pat.gx_group, pat.gx_x, gx_w, gy_ix, gy_y, v_codes, gv_group, gv_y, np.unique(codes[n:]), pat.group,
            codes[:n], codes[n:], pat.weight, pm_._TS_U, pm_._TS_DU)  # fmt: skip


def pareto_nbd_loglik(r: Any, alpha: Any, s: Any, beta: Any, pat: Patterns) -> Any:
    """Symbolic total log-likelihood over patterns (differentiable in the group vectors)."""
    return pareto_nbd_loglik_op(r, alpha, s, beta, *pattern_data(pat))[0]


def _source_version() -> int:
    """Hash of the sources the kernel runs, for pytensor's op cache key (which sees the Op's props
    only) and numba's (:func:`~clvlab.models.fused_op.njit_cached_by_source`)."""
    return source_hash(_SOURCES)


@register_funcify_default_op_cache_key(ParetoNBDLoglik)
def _numba_funcify_pareto_nbd_loglik(op: ParetoNBDLoglik, node: Apply | None = None, **kwargs: Any) -> Any:
    return _kernel, _source_version()
