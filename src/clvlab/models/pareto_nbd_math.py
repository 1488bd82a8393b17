"""Pareto/NBD math as pure functions (Schmittlein, Morrison & Colombo 1987).

A customer buys at Poisson rate lambda while alive and dies after an exponential lifetime of
rate mu; lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta) across customers. Given (lambda, mu),
with x repeat purchases, the last at t_x, observed up to T (Fader & Hardie 2005, "A note on
deriving the Pareto/NBD model and related expressions", eqs. 1-3)::

    L(lambda, mu) = lambda^x e^-(lambda+mu)T + lambda^x mu int_{t_x}^T e^-(lambda+mu)y dy

(alive at T, or dead at some y in (t_x, T]). Integrating lambda and mu out under the integral::

    L = G(r+x) alpha^r beta^s / G(r) [ E1 + s (G(t_x) - G(T)) ]
    E1   = (alpha+T)^-(r+x) (beta+T)^-s
    G(y) = int_y^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du

G is the note's hypergeometric term (its eq. 19 and 20, the alpha >= beta and alpha < beta
forms) written so that the series always converges geometrically. With (M, k_M) the larger of
the offsets alpha, beta and its exponent (r+x for alpha, s+1 for beta), (m, k_m) the other,
K = r+s+x+1 and z = (M-m)/(M+y) in [0, 1) (the substitution m+u = (m+y) e^w, then Euler's
transformation)::

    G(y) = (M+y)^-k_M (m+y)^(1-k_m) H / (r+s+x),   H = 2F1(1, k_M; K; z) = sum_n prod_{j<n} z (k_M+j)/(K+j)

Every term ratio is below z, so the series converges geometrically; only for z near 1 with k_m small (terms falling like
n^-k_m z^n) does it take more than :data:`SERIES_MAX_TERMS` terms, and there H comes from an
incomplete-beta integral by quadrature (:func:`_h_quadrature`). Both give H and its partials in (k_M, K, z),
so the fused likelihood op of :mod:`.pareto_nbd_kernel` has its gradient in the same pass.
Tested against a 30-digit mpmath quadrature of the defining integral (tests/test_pareto_nbd.py).

Predictions (the note's eqs. 11, 18, 22 and the alive-customer algebra below):

    P(alive | x, t_x, T) = E1 / [E1 + s (G(t_x) - G(T))]
    E[Y(t) | alive at T] = (r+x)/(alpha+T) (beta+T) [1 - ((beta+T)/(beta+T+t))^(s-1)] / (s-1)
    E[X(t)] (new)        = r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]
    P(Y(t) = 0 | alive)  = (alpha+T)^(r+x) (beta+T)^s [E1' + s (G(T) - G(T+t))]   (E1' at T+t)

(the last: no purchase before T+t or death; the same integral as the likelihood, shifted).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import scipy.special as sps

from clvlab.models.bgnbd_math import NP
from clvlab.models.patterns import Patterns

__all__ = [
    "SERIES_MAX_TERMS", "log_g", "loglik", "loglik_patterns", "log_e1", "p_alive", "p_no_purchase",
    "expected_purchases_numerator", "conditional_expected_purchases", "expected_purchases_new",
    "prob_purchases", "sample_holdout", "sample_frequency",
]  # fmt: skip

SERIES_MAX_TERMS = 1000
"""H by its series when it converges within this many terms, else by the quadrature above."""
_SERIES_TOL = 1e-17
_GL8_X, _GL8_W = np.polynomial.legendre.leggauss(8)
_GL32_X, _GL32_W = np.polynomial.legendre.leggauss(32)
_MAX_PANELS = 4000.0  # panels of J_L at most (a bound on the work for parameters far out in the tails)
_TS_H = 1.0 / 16.0
_TS_T = np.arange(-5.0, 5.0 + _TS_H / 2, _TS_H)
_TS_U = 0.5 * np.pi * np.sinh(_TS_T)  # tanh-sinh: p = p0 + (1-p0)(1 + tanh u)/2
_TS_DU = 0.5 * np.pi * np.cosh(_TS_T) * _TS_H / 2.0  # du/dt times the step, halved: p = (3 + tanh u)/4


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _h_series(c0, c1, z):  # type: ignore[no-untyped-def]
    """H = 2F1(1, c0; c1; z) (c1 > c0 > 0, 0 <= z < 1) and dH/dc0, dH/dc1, dH/dz by the series.

    Terms t_{n+1} = t_n z (c0+n)/(c1+n); the partials sum t_n times the running log-derivatives.
    Stops when the tail bound t_n (n+1) / (1-z) is below 1e-17 H; returns converged=False after
    :data:`SERIES_MAX_TERMS` terms (z near 1 with c1 - c0 small: the terms fall like n^-(c1-c0) z^n).
    """
    h, h0, h1, hz = 1.0, 0.0, 0.0, 0.0
    term, s0, s1 = 1.0, 0.0, 0.0
    n = 0
    converged = False
    while n < SERIES_MAX_TERMS:
        i0, i1 = 1.0 / (c0 + n), 1.0 / (c1 + n)
        term *= z * (c0 + n) * i1
        s0 += i0
        s1 += i1
        n += 1
        h += term
        h0 += term * s0
        h1 -= term * s1
        hz += term * n
        if term * (1.0 + n) < _SERIES_TOL * h * (1.0 - z) or term == 0.0:
            converged = True
            break
    return h, h0, h1, (hz / z if z > 0.0 else c0 / c1), converged


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _j_parts(lp, l1p, km, c1):  # type: ignore[no-untyped-def]
    """log of p^-k_m (1-p)^(K-2) and its d/dk_m, d/dk_M factors (K = k_m + k_M = c1)."""
    return -km * lp + (c1 - 2.0) * l1p, -lp + l1p, l1p


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _h_quadrature(c0, c1, z, nodes, weights):  # type: ignore[no-untyped-def]
    """H and dH/dc0, dH/dc1, dH/dz for z near 1, where the series is slow, from an incomplete-beta form.

    With k_M = c0, k_m = c1 - c0, K = c1 and p0 = 1 - z (the substitution e^w = z/(1-z) e^v,
    p = e^v/(1+e^v) in the integral of the module docstring)::

        H = (K-1) z^-k_M (z/(1-z))^(1-k_m) J,   J = int_{p0}^1 p^-k_m (1-p)^(K-2) dp

    J = J_L + J_R split at p = 1/2. J_L in l = log p: 8-point Gauss-Legendre panels short enough
    that the log-integrand moves by about 1 on each (width 1/|slope| at the panel's start), stopped
    once a panel adds less than 1e-18 of the sum; J_R by tanh-sinh on [1/2, 1] (``nodes`` u,
    ``weights`` du/dt times the step) for K >= 2, and for K < 2, where (1-p)^(K-2) is singular at
    1 (strongly so as K -> 1: tanh-sinh lost 0.2% at K = 1.02), by 32-point Gauss-Legendre in
    q = (1-p)^(K-1), which removes the singularity. The partials of J are
    integrals of the same nodes, plus the boundary term dJ/dz = f(p0).
    """
    km = c1 - c0
    p0 = 1.0 - z
    lp0, l1p0 = math.log(p0), math.log(z)
    # --- J_L: panels in l = log p from log p0 to -log 2, scaled by the integrand's value at p0
    lref = _j_parts(lp0, l1p0, km, c1)[0]
    j = jm = jk = 0.0
    lo, end = lp0, -math.log(2.0)
    min_width = (end - lo) / _MAX_PANELS
    while lo < end:
        ep = math.exp(lo)
        slope = abs(1.0 - km - (c1 - 2.0) * ep / (1.0 - ep))  # of the log-integrand in l (dp = p dl)
        width = min(end - lo, max(1.0 / max(slope, 0.5), min_width))
        add = 0.0
        for i in range(_GL8_X.shape[0]):
            ell = lo + 0.5 * width * (_GL8_X[i] + 1.0)
            l1p = math.log1p(-math.exp(ell))
            lf, fm, fk = _j_parts(ell, l1p, km, c1)
            f = 0.5 * width * _GL8_W[i] * math.exp(lf + ell - lref)
            add += f
            jm += fm * f
            jk += fk * f
        j += add
        lo += width
        if add < 1e-18 * j:
            break
    # --- J_R on [1/2, 1]
    if c1 < 2.0:  # (1-p)^(K-2) singular at 1: q = (1-p)^(K-1) takes it out, p = 1 - q^(1/(K-1))
        # J_R = (1/(K-1)) int_0^q1 p^-k_m dq, q1 = 2^-(K-1); its partials by Leibniz's rule in this
        # form (differentiating under the p-integral would integrate a log singularity at p = 1)
        k1 = c1 - 1.0
        q1 = math.exp(-k1 * math.log(2.0))
        jr = d_km = d_k = 0.0
        for i in range(_GL32_X.shape[0]):
            q = 0.5 * q1 * (_GL32_X[i] + 1.0)
            lq = math.log(q)
            qk = math.exp(lq / k1)  # q^(1/(K-1)) = 1 - p
            lp = math.log1p(-qk)
            f = 0.5 * q1 * _GL32_W[i] / k1 * math.exp(-km * lp - lref)
            jr += f
            d_km -= lp * f  # d/dk_m at fixed K
            d_k -= km * f * qk / (1.0 - qk) * lq / (k1 * k1)  # d/dK at fixed k_m, under the integral
        d_k += -jr / k1 - math.log(2.0) * q1 / k1 * math.exp(km * math.log(2.0) - lref)  # the 1/(K-1) and q1 terms
        j += jr
        jm += d_km + d_k  # k_M fixed: K moves with k_m
        jk += d_k
    else:  # tanh-sinh, p = (3 + tanh u)/4
        for i in range(nodes.shape[0]):
            u = nodes[i]
            e = math.exp(-2.0 * abs(u))
            if u > 0.0:
                l1p = math.log(0.5) - 2.0 * u - math.log1p(e)  # 1 - p = (1/2) e^-2u / (1 + e^-2u)
                lp = math.log1p(-0.5 * e / (1.0 + e))
            else:
                l1p = math.log(0.5) - math.log1p(e)
                lp = math.log(0.5 + 0.5 * e / (1.0 + e))
            lf, fm, fk = _j_parts(lp, l1p, km, c1)
            # dp = (1/2) sech(u)^2 du / 2 (weights hold du/dt * step / 2); sech^2 = 4e/(1+e)^2
            f = 0.5 * weights[i] * 4.0 * e / (1.0 + e) ** 2 * math.exp(lf - lref)
            j += f
            jm += fm * f
            jk += fk * f
    lj = lref + math.log(j)
    dlj_m, dlj_k = jm / j, jk / j
    dlj_z = 1.0 / j  # f(p0) / J: f(p0) = e^lref and J = e^lref j
    k1 = c1 - 1.0
    h = math.exp(math.log(k1) - c0 * l1p0 + (1.0 - km) * (l1p0 - lp0) + lj)
    dm = 1.0 / k1 - (l1p0 - lp0) + dlj_m  # dlogH/dk_m
    dk = 1.0 / k1 - l1p0 + dlj_k  # dlogH/dk_M
    dz = -c0 / z + (1.0 - km) * (1.0 / z + 1.0 / p0) + dlj_z
    return h, h * (dk - dm), h * dm, h * dz


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _h_series_table(c0, c1, z, table, n_filled):  # type: ignore[no-untyped-def]
    """:func:`_h_series` with its z-free coefficients kept for the next call with the same (c0, c1).

    ``table[n]`` holds (a_n, S0_n, S1_n): a_n = prod_{j<n} (c0+j)/(c1+j) and the running sums
    S0_n = sum_{j<n} 1/(c0+j), S1_n = sum_{j<n} 1/(c1+j); rows below ``n_filled`` are valid (0:
    none). Then H = sum a_n z^n, dH/dc0 = sum a_n S0_n z^n, dH/dc1 = -sum a_n S1_n z^n and
    z dH/dz = sum n a_n z^n, so a call on filled rows costs multiplications only; the fused kernel
    evaluates all y of one (group, x) in a row. Same terms and stopping rule as :func:`_h_series`.
    Returns (h, dh/dc0, dh/dc1, dh/dz, converged, n_filled).
    """
    if n_filled == 0:
        table[0, 0], table[0, 1], table[0, 2] = 1.0, 0.0, 0.0
        n_filled = 1
    h, h0, h1, hz = 1.0, 0.0, 0.0, 0.0
    zn = 1.0
    n = 0
    converged = False
    while n < SERIES_MAX_TERMS:
        n += 1
        if n >= n_filled:
            c0n, c1n = c0 + (n - 1), c1 + (n - 1)
            table[n, 0] = table[n - 1, 0] * c0n / c1n
            table[n, 1] = table[n - 1, 1] + 1.0 / c0n
            table[n, 2] = table[n - 1, 2] + 1.0 / c1n
            n_filled = n + 1
        zn *= z
        term = table[n, 0] * zn
        h += term
        h0 += term * table[n, 1]
        h1 -= term * table[n, 2]
        hz += term * n
        if term * (1.0 + n) < _SERIES_TOL * h * (1.0 - z) or term == 0.0:
            converged = True
            break
    return h, h0, h1, (hz / z if z > 0.0 else c0 / c1), converged, n_filled


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _hyp_args(r, alpha, s, beta, x, y):  # type: ignore[no-untyped-def]
    """(c0, c1, z) of H = 2F1(1, c0; c1; z) for G(y): the larger offset's exponent, K, and z."""
    if alpha >= beta:  # M = alpha, k_M = r + x
        return r + x, r + s + x + 1.0, (alpha - beta) / (alpha + y)
    return s + 1.0, r + s + x + 1.0, (beta - alpha) / (beta + y)  # M = beta, k_M = s + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def log_g_grad(r, alpha, s, beta, x, y, nodes, weights):  # type: ignore[no-untyped-def]
    """log G(y) (module docstring) and its partials in (r, alpha, s, beta); NaN where a parameter is
    not finite and positive (a sampler then rejects the point)."""
    if not (0.0 < r < np.inf and 0.0 < alpha < np.inf and 0.0 < s < np.inf and 0.0 < beta < np.inf):
        return np.nan, np.nan, np.nan, np.nan, np.nan
    c0, c1, z = _hyp_args(r, alpha, s, beta, x, y)
    h, h0, h1, hz, converged = _h_series(c0, c1, z)
    if not converged:
        h, h0, h1, hz = _h_quadrature(c0, c1, z, nodes, weights)
    return log_g_from_h(r, alpha, s, beta, x, y, math.log(alpha + y), math.log(beta + y), 1.0 / (alpha + y),
                        1.0 / (beta + y), math.log(r + s + x), 1.0 / (r + s + x), h, h0, h1, hz)  # fmt: skip


@numba.njit(cache=True, nogil=True, error_model="numpy")
def log_g_from_h(r, alpha, s, beta, x, y, la, lb, ia, ib, lrs, irs, h, h0, h1, hz):  # type: ignore[no-untyped-def]
    """log G(y) and its partials from H and its partials (:func:`log_g_grad`), given la, lb =
    log(alpha+y), log(beta+y), ia, ib = their reciprocals, lrs = log(r+s+x) and irs = 1/(r+s+x),
    which the fused kernel computes once per (group, y) and per (group, x)."""
    lh, ih = math.log(h), 1.0 / h
    d0, d1, dz = h0 * ih, h1 * ih, hz * ih
    if alpha >= beta:
        lg = -(r + x) * la - s * lb + lh - lrs
        g_r = -la + d0 + d1 - irs
        g_s = -lb + d1 - irs
        g_alpha = -(r + x) * ia + dz * (beta + y) * ia * ia
        g_beta = -s * ib - dz * ia
    else:
        lg = -(s + 1.0) * lb + (1.0 - r - x) * la + lh - lrs
        g_r = -la + d1 - irs
        g_s = -lb + d0 + d1 - irs
        g_beta = -(s + 1.0) * ib + dz * (alpha + y) * ib * ib
        g_alpha = (1.0 - r - x) * ia - dz * ib
    return lg, g_r, g_alpha, g_s, g_beta


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_g_flat(r, alpha, s, beta, x, y, nodes, weights):  # type: ignore[no-untyped-def]
    out = np.empty(r.shape[0])
    for i in range(r.shape[0]):
        out[i] = log_g_grad(r[i], alpha[i], s[i], beta[i], x[i], y[i], nodes, weights)[0]
    return out


def log_g(r: Any, alpha: Any, s: Any, beta: Any, x: Any, y: Any) -> np.ndarray:
    """log G(y) = log int_y^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du (module docstring), broadcast."""
    args = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (r, alpha, s, beta, x, y)))
    flat = [np.ascontiguousarray(v).ravel() for v in args]
    return _log_g_flat(*flat, _TS_U, _TS_DU).reshape(args[0].shape)


def log_e1(r: Any, alpha: Any, s: Any, beta: Any, x: Any, T: Any) -> np.ndarray:
    """log E1 = -(r+x) log(alpha+T) - s log(beta+T): alive throughout (0, T]."""
    return -(r + x) * np.log(alpha + T) - s * np.log(beta + T)


def _log_death_between(r: Any, alpha: Any, s: Any, beta: Any, x: Any, y0: Any, y1: Any) -> np.ndarray:
    """log(s (G(y0) - G(y1))) for y0 <= y1 (dying in (y0, y1]), -inf at y0 = y1."""
    l0, l1 = log_g(r, alpha, s, beta, x, y0), log_g(r, alpha, s, beta, x, y1)
    with np.errstate(divide="ignore"):
        return np.log(s) + l0 + np.log(-np.expm1(np.minimum(l1 - l0, 0.0)))


def _log_bracket(r: Any, alpha: Any, s: Any, beta: Any, x: Any, t_x: Any, T: Any) -> tuple[np.ndarray, np.ndarray]:
    """(log E1, log[E1 + s (G(t_x) - G(T))]) by log-sum-exp."""
    x = np.asarray(x, dtype=float)
    le = log_e1(r, alpha, s, beta, x, T)
    return le, np.logaddexp(le, _log_death_between(r, alpha, s, beta, x, t_x, T))


def loglik(r: Any, alpha: Any, s: Any, beta: Any, x: Any, t_x: Any, T: Any, xp: Any = NP) -> np.ndarray:
    """Per-customer Pareto/NBD log-likelihood (module docstring; numpy only, ``xp`` for the common signature)."""
    x = np.asarray(x, dtype=float)
    _, lbr = _log_bracket(r, alpha, s, beta, x, t_x, T)
    return sps.gammaln(r + x) - sps.gammaln(r) + r * np.log(alpha) + s * np.log(beta) + lbr


def loglik_patterns(r: Any, alpha: Any, s: Any, beta: Any, pat: Patterns, xp: Any = NP) -> np.ndarray:
    """Per-pattern log-likelihood from group-level parameter vectors (indexed by group)."""
    g = pat.group
    return loglik(r[g], alpha[g], s[g], beta[g], pat.x, pat.t_x, pat.T)


def p_alive(r: Any, alpha: Any, s: Any, beta: Any, x: Any, t_x: Any, T: Any) -> np.ndarray:
    """P(alive at T | x, t_x, T) = E1 / [E1 + s (G(t_x) - G(T))] (Fader & Hardie 2005 note, eq. 18)."""
    le, lbr = _log_bracket(r, alpha, s, beta, x, t_x, T)
    return np.exp(le - lbr)


def _expm1_ratio(s: Any, u: Any) -> np.ndarray:
    """[1 - e^-((s-1) u)] / (s-1), = u at s = 1 (the limit), without 0/0."""
    d = np.asarray(s, dtype=float) - 1.0
    small = np.abs(d * u) < 1e-8
    with np.errstate(divide="ignore", invalid="ignore"):
        full = -np.expm1(-d * u) / d
    return np.where(small, u * (1.0 - 0.5 * d * u), full)


def expected_purchases_numerator(r: Any, alpha: Any, s: Any, beta: Any, x: Any, T: Any, t: Any) -> np.ndarray:
    """E[Y(t) | alive at T, x, T] = E[lambda] E[(1 - e^-mu t)/mu] with lambda ~ Gamma(r+x, alpha+T),
    mu ~ Gamma(s, beta+T): (r+x)/(alpha+T) (beta+T) [1 - ((beta+T)/(beta+T+t))^(s-1)]/(s-1)."""
    x = np.asarray(x, dtype=float)
    u = np.log1p(t / (beta + T))
    return (r + x) / (alpha + T) * (beta + T) * _expm1_ratio(s, u)


def conditional_expected_purchases(
    r: Any, alpha: Any, s: Any, beta: Any, x: Any, t_x: Any, T: Any, t: Any
) -> np.ndarray:
    """E[Y(t) | x, t_x, T] (Fader & Hardie 2005 note, eq. 22)."""
    return expected_purchases_numerator(r, alpha, s, beta, x, T, t) * p_alive(r, alpha, s, beta, x, t_x, T)


def expected_purchases_new(r: Any, alpha: Any, s: Any, beta: Any, t: Any) -> np.ndarray:
    """E[X(t)] for a new customer (Schmittlein et al. 1987, eq. 17): the alive expectation at x = T = 0."""
    return expected_purchases_numerator(r, alpha, s, beta, 0.0, 0.0, t)


_GL_X, _GL_W = np.polynomial.legendre.leggauss(128)


def _alive_count_integral(
    r1: np.ndarray, a1: np.ndarray, s: np.ndarray, b1: np.ndarray, t: float, n: int
) -> np.ndarray:
    """int_0^t s b1^s (b1+tau)^-(s+1) NB(n; r1, a1, tau) dtau: death at tau after n purchases.

    Gauss-Legendre (128 nodes) in w = log(1 + tau/c), c = min(a1, b1): the integrand's nearest
    singularity (tau = -c) moves to w = -inf, so the rule converges fast whatever t/c is.
    """
    c = np.minimum(a1, b1)
    wmax = np.log1p(t / c)
    w = 0.5 * wmax[..., None] * (_GL_X + 1.0)  # (..., nodes)
    tau = c[..., None] * np.expm1(w)
    jac = 0.5 * wmax[..., None] * _GL_W * (c[..., None] + tau)
    r1, a1, s, b1 = (v[..., None] for v in (r1, a1, s, b1))
    with np.errstate(divide="ignore"):
        log_nb = (sps.gammaln(r1 + n) - sps.gammaln(r1) - sps.gammaln(n + 1.0) + r1 * np.log(a1)
                  + n * np.log(tau) - (r1 + n) * np.log(a1 + tau))  # fmt: skip
    log_death = np.log(s) + s * np.log(b1) - (s + 1.0) * np.log(b1 + tau)
    return np.sum(jac * np.exp(log_nb + log_death), axis=-1)


def prob_purchases(r: Any, alpha: Any, s: Any, beta: Any, x: Any, t_x: Any, T: Any, t: float, n: int) -> np.ndarray:
    """P(exactly n repeat purchases in (T, T+t] | x, t_x, T).

    Alive at T (:func:`p_alive`), lambda ~ Gamma(r+x, alpha+T) and mu ~ Gamma(s, beta+T): either
    alive throughout, NB(n; r+x, alpha+T, t) (beta+T)^s/(beta+T+t)^s, or dead at tau in (0, t] after
    n purchases (:func:`_alive_count_integral`); for n = 0 that sum is the closed form of the
    module docstring. Dead at T: n = 0 with certainty.
    """
    r, alpha, s, beta, x, t_x, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (r, alpha, s, beta, x,
                                                                                              t_x, T)))  # fmt: skip
    alive = p_alive(r, alpha, s, beta, x, t_x, T)
    r1, a1, b1 = r + x, alpha + T, beta + T
    if n == 0:
        dead = _log_death_between(r, alpha, s, beta, x, T, T + t)
        given = np.exp(np.logaddexp(log_e1(r, alpha, s, beta, x, T + t), dead) + r1 * np.log(a1) + s * np.log(b1))
        return alive * np.minimum(given, 1.0) + 1.0 - alive
    log_nb_t = (sps.gammaln(r1 + n) - sps.gammaln(r1) - sps.gammaln(n + 1.0) + r1 * np.log(a1 / (a1 + t))
                + n * np.log(t / (a1 + t)))  # fmt: skip
    given = np.exp(log_nb_t + s * np.log(b1 / (b1 + t))) + _alive_count_integral(r1, a1, s, b1, float(t), n)
    return alive * given


def p_no_purchase(r: Any, alpha: Any, s: Any, beta: Any, x: Any, t_x: Any, T: Any, t: Any) -> np.ndarray:
    """P(no repeat purchase in (T, T+t] | x, t_x, T) (a churn score): :func:`prob_purchases` at n = 0."""
    return prob_purchases(r, alpha, s, beta, x, t_x, T, float(t), 0)


def sample_holdout(rng: np.random.Generator, r: Any, alpha: Any, s: Any, beta: Any, x: Any, t_x: Any, T: Any,
                   duration: float) -> np.ndarray:  # fmt: skip
    """Counts in (T, T+duration] from the posterior state at T: alive with :func:`p_alive`, then
    lambda ~ Gamma(r+x, alpha+T), mu ~ Gamma(s, beta+T), remaining life ~ Exponential(mu),
    count ~ Poisson(lambda min(duration, life))."""
    alive = rng.random(np.shape(r)) < p_alive(r, alpha, s, beta, x, t_x, T)
    lam = rng.gamma(r + x, 1.0 / (alpha + T))
    mu = rng.gamma(s, 1.0 / (beta + T))
    life = rng.exponential(1.0 / np.maximum(mu, 1e-300))
    return np.where(alive, rng.poisson(lam * np.minimum(float(duration), life)), 0)


def sample_frequency(rng: np.random.Generator, r: Any, alpha: Any, s: Any, beta: Any, T: Any) -> np.ndarray:
    """Repeat purchases over (0, T] of a new customer: Poisson(lambda min(T, life)), lambda ~ Gamma(r, alpha),
    life ~ Exponential(mu), mu ~ Gamma(s, beta)."""
    lam = rng.gamma(r, 1.0 / alpha)
    mu = rng.gamma(s, 1.0 / beta)
    life = rng.exponential(1.0 / np.maximum(mu, 1e-300))
    return rng.poisson(lam * np.minimum(T, life))
