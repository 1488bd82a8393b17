"""BG/NBD math as pure functions (Fader, Hardie & Lee 2005, "Counting your customers the easy way").

Every formula is written once. The log-likelihood pieces take a backend module ``xp``
(:data:`NP` for numpy/scipy, :data:`PT` for pytensor), so the very same code builds the
PyMC graph, the compressed (pattern) likelihood and the numpy values the tests check.
Prediction formulas need ``hyp2f1`` and are numpy/scipy only.

Notation: x = frequency (repeat purchases), t_x = recency, T = age, all in one time unit;
(r, alpha) is the Gamma purchase-rate heterogeneity, (a, b) the Beta dropout heterogeneity.

Log-likelihood of one customer (FHL 2005 eq. 6, in logs)::

    log L = A(x) + log( (alpha+T)^-(r+x) + [x>0] a/(b+x-1) (alpha+t_x)^-(r+x) )
    A(x)  = lnG(r+x) - lnG(r) + r ln(alpha) + lnG(a+b) + lnG(b+x) - lnG(b) - lnG(a+b+x)

The last term is a log-sum-exp (Fader & Hardie 2013, the "#NUM!" note), stable for large x.
It is factored (design.md) into pieces that depend on less than the whole pattern:
``x_terms`` on (group, x), ``log(alpha+T)`` on (group, T), ``log(alpha+t_x)`` on
(group, t_x); :func:`combine_loglik` joins gathered pieces per pattern.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import scipy.special as sps

from clvlab.models.beta_quadrature import beta_expectation, numerator_bounds
from clvlab.models.patterns import Patterns, compress_patterns

__all__ = [
    "NP",
    "PT",
    "logaddexp",
    "x_terms",
    "log_ratio",
    "combine_loglik",
    "loglik",
    "log_d_excess",
    "combine_log_d",
    "log_d",
    "p_alive",
    "numerator_from_hyp",
    "expected_purchases_numerator",
    "conditional_expected_purchases",
    "expected_purchases_new",
    "A_ONE_TOL",
    "Patterns",
    "compress_patterns",
    "pattern_tables",
    "loglik_patterns",
    "loglik_total",
    "p_no_purchase",
    "prob_purchases",
    "prob_purchases_alive_geometric",
    "sample_holdout",
    "sample_frequency",
]

# --------------------------------------------------------------------------------------
# backends: the small set of elementwise functions the formulas use
# --------------------------------------------------------------------------------------
NP = types.SimpleNamespace(
    name="numpy",
    gammaln=sps.gammaln,
    log=np.log,
    log1p=np.log1p,
    exp=np.exp,
    abs=np.abs,
    maximum=np.maximum,
    where=np.where,
    constant=np.asarray,
)


def _pytensor_backend() -> types.SimpleNamespace:
    import pytensor.tensor as pt

    return types.SimpleNamespace(
        name="pytensor",
        gammaln=pt.gammaln,
        log=pt.log,
        log1p=pt.log1p,
        exp=pt.exp,
        abs=pt.abs,
        maximum=pt.maximum,
        where=pt.switch,
        # index arrays must enter the graph as constants first: indexing a tensor with a raw
        # numpy array makes pytensor walk every element in Python (seconds at 1e5 patterns)
        constant=pt.as_tensor_variable,
    )


class _LazyPT:
    """Pytensor backend, imported on first use (numpy-only users never pay for it)."""

    _ns: types.SimpleNamespace | None = None

    def __getattr__(self, item: str) -> Any:
        if _LazyPT._ns is None:
            _LazyPT._ns = _pytensor_backend()
        return getattr(_LazyPT._ns, item)


PT: Any = _LazyPT()


def logaddexp(u: Any, v: Any, xp: Any) -> Any:
    """log(exp(u) + exp(v)) without overflow (same code for both backends)."""
    m = xp.maximum(u, v)
    return m + xp.log1p(xp.exp(-xp.abs(u - v)))


# --------------------------------------------------------------------------------------
# log-likelihood (FHL 2005 eq. 6), factored
# --------------------------------------------------------------------------------------
def x_terms(r: Any, alpha: Any, a: Any, b: Any, x: Any, xp: Any = NP) -> tuple[Any, Any]:
    """Pieces of log L that depend only on (parameters, x).

    Returns ``(A, log_ratio)`` with A = lnG(r+x) - lnG(r) + r ln(alpha) + lnG(a+b) + lnG(b+x)
    - lnG(b) - lnG(a+b+x) and :func:`log_ratio`.
    """
    big_a = (
        xp.gammaln(r + x)
        - xp.gammaln(r)
        + r * xp.log(alpha)
        + xp.gammaln(a + b)
        + xp.gammaln(b + x)
        - xp.gammaln(b)
        - xp.gammaln(a + b + x)
    )
    return big_a, log_ratio(a, b, x, xp)


def log_ratio(a: Any, b: Any, x: Any, xp: Any = NP) -> Any:
    """log(a/(b+x-1)), evaluated at max(x, 1) so it stays finite for x = 0 (masked out there)."""
    return xp.log(a) - xp.log(b + xp.maximum(x, 1.0) - 1.0)


def combine_loglik(
    big_a: Any, log_ratio: Any, r_plus_x: Any, log_alpha_T: Any, log_alpha_tx: Any, has_repeat: Any, xp: Any = NP
) -> Any:
    """log L = A + logsumexp(-(r+x) log(alpha+T), [x>0] (log_ratio - (r+x) log(alpha+t_x)))."""
    u = -r_plus_x * log_alpha_T
    v = log_ratio - r_plus_x * log_alpha_tx
    return big_a + xp.where(has_repeat, logaddexp(u, v, xp), u)


def loglik(r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any, xp: Any = NP) -> Any:
    """Per-customer BG/NBD log-likelihood (FHL 2005 eq. 6), uncompressed reference form."""
    big_a, log_ratio = x_terms(r, alpha, a, b, x, xp)
    return combine_loglik(big_a, log_ratio, r + x, xp.log(alpha + T), xp.log(alpha + t_x), x > 0, xp)


# --------------------------------------------------------------------------------------
# predictions (numpy / scipy)
# --------------------------------------------------------------------------------------
def log_d_excess(
    log_ratio: Any, r_plus_x: Any, log_alpha_T: Any, log_alpha_tx: Any, out: np.ndarray | None = None
) -> Any:
    """log(D - 1) = log(a/(b+x-1)) + (r+x) (log(alpha+T) - log(alpha+t_x)) for x > 0 (FHL 2005 eq. 10).

    Linear in ``log_alpha_T`` and ``log_alpha_tx``, so callers may evaluate the (x, T) part per
    pattern (``log_alpha_tx=0``) and add the t_x part per customer (``log_ratio`` = that result,
    ``log_alpha_T=0``), as :mod:`clvlab.clv` does. ``out`` (numpy only, of the broadcast shape,
    may be one of the inputs): computed in place there, for large (customers x draws) blocks.
    """
    if out is None:
        return log_ratio + r_plus_x * (log_alpha_T - log_alpha_tx)
    # the same expression as log_ratio - r_plus_x * (log_alpha_tx - log_alpha_T), in place
    if np.isscalar(log_alpha_T) and log_alpha_T == 0.0:
        if out is not log_alpha_tx:
            np.copyto(out, log_alpha_tx)
    else:
        np.subtract(log_alpha_tx, log_alpha_T, out=out)
    out *= r_plus_x
    return np.subtract(log_ratio, out, out=out)


def combine_log_d(
    log_ratio: Any, r_plus_x: Any, log_alpha_T: Any, log_alpha_tx: Any, has_repeat: Any, xp: Any = NP
) -> Any:
    """log D = [x>0] log(1 + exp(:func:`log_d_excess`)), by log-sum-exp so large x never overflows."""
    v = log_d_excess(log_ratio, r_plus_x, log_alpha_T, log_alpha_tx)
    return xp.where(has_repeat, logaddexp(0.0, v, xp), 0.0)


def log_d(r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any) -> np.ndarray:
    """log D with D = 1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x) (FHL 2005 eq. 10 divisor)."""
    x = np.asarray(x, dtype=float)
    return combine_log_d(log_ratio(a, b, x), r + x, np.log(alpha + T), np.log(alpha + t_x), x > 0)


def p_alive(r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any) -> np.ndarray:
    """P(alive | x, t_x, T) = 1/D (Fader, Hardie & Lee 2008 note 021)."""
    return np.exp(-log_d(r, alpha, a, b, x, t_x, T))


def p_no_purchase(r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any, t: Any) -> np.ndarray:
    """P(no repeat purchase in (T, T+t] | x, t_x, T).

    Dead customers buy nothing; an alive one has lambda | data ~ Gamma(r+x, alpha+T), so
    P(0 purchases in t | alive) = ((alpha+T)/(alpha+T+t))^(r+x) (no dropout before a purchase).
    Hence P = 1 - 1/D + (1/D) ((alpha+T)/(alpha+T+t))^(r+x): the churn score for "buys nothing
    in the holdout" (1 - P(alive) ignores that alive customers with a low rate buy nothing too).
    """
    alive = p_alive(r, alpha, a, b, x, t_x, T)
    none_if_alive = np.exp((r + np.asarray(x, dtype=float)) * (np.log(alpha + T) - np.log(alpha + T + t)))
    return 1.0 - alive + alive * none_if_alive


BOUND_SLACK = 1e-12
"""Relative slack of the bounds check in :func:`expected_purchases_numerator` (rounding only)."""
A_ONE_TOL = 1e-4
"""Half-width of the band around a = 1 where eq. 10 is 0/0; there it is interpolated linearly
between a = 1 - A_ONE_TOL and a = 1 + A_ONE_TOL (relative error ~1e-8, the function is smooth in a)."""


def numerator_from_hyp(a: Any, c: Any, log1mz: Any, hyp: Any) -> np.ndarray:
    """c/(a-1) [1 - (1-z)^(a-1) hyp] with hyp = 2F1(a+b-1-r, a-1; c; z), c = a+b+x-1, log1mz = log(1-z).

    The Euler-transformed FHL 2005 eq. 10 numerator given its 2F1 value (see :func:`_numerator_raw`);
    :mod:`clvlab.clv` supplies ``hyp`` from a recurrence in x instead of one hyp2f1 call per x.
    Written as -expm1(e) - exp(e) (hyp - 1), e = (a-1) log(1-z), to keep precision when hyp ~ 1.
    """
    e = (a - 1.0) * log1mz
    return c / (a - 1.0) * (-np.expm1(e) - np.exp(e) * (hyp - 1.0))


def _numerator_raw(r: Any, alpha: Any, a: Any, b: Any, x: Any, T: Any, t: Any) -> np.ndarray:
    """(a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)], z = t/(alpha+T+t).

    Uses Euler's transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) with
    1 - z = (alpha+T)/(alpha+T+t), which turns the bracket into
    1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z): no overflow for large x.
    """
    c = a + b + x - 1.0
    log1mz = np.log(alpha + T) - np.log(alpha + T + t)
    z = -np.expm1(log1mz)
    return numerator_from_hyp(a, c, log1mz, sps.hyp2f1(a + b - 1.0 - r, a - 1.0, c, z))


def expected_purchases_numerator(r: Any, alpha: Any, a: Any, b: Any, x: Any, T: Any, t: Any) -> np.ndarray:
    """Numerator of FHL 2005 eq. 10: depends on (params, x, T, t) but NOT on t_x.

    E[Y(t) | x, t_x, T] = numerator(x, T, t) / D(x, t_x, T); the numerator is the expected
    purchases in (T, T+t] of a customer alive at T (:mod:`.beta_quadrature`). The closed form
    (:func:`_numerator_raw`, one hyp2f1 call; near a = 1, where it is 0/0, interpolated linearly
    in a between 1 -/+ :data:`A_ONE_TOL`) is used where it lands inside the bounds of
    :func:`~clvlab.models.beta_quadrature.numerator_bounds`; elsewhere (hyp2f1 loses accuracy
    for z = t/(alpha+T+t) > 1/2 with large a: NaN, +-inf or values past the bounds on 3% of a
    log-uniform grid of the whole domain) the value comes from the quadrature. Within the bounds
    the closed form agreed with the quadrature to 4e-8 on that grid.
    """
    r, alpha, a, b, x, T, t = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (r, alpha, a, b, x, T, t)))
    near = np.abs(a - 1.0) < A_ONE_TOL
    out = np.empty(a.shape)
    far = ~near
    with np.errstate(all="ignore"):
        if far.any():
            out[far] = _numerator_raw(r[far], alpha[far], a[far], b[far], x[far], T[far], t[far])
        if near.any():
            args = (r[near], alpha[near])
            rest = (b[near], x[near], T[near], t[near])
            lo = _numerator_raw(*args, 1.0 - A_ONE_TOL, *rest)
            hi = _numerator_raw(*args, 1.0 + A_ONE_TOL, *rest)
            w = (a[near] - (1.0 - A_ONE_TOL)) / (2.0 * A_ONE_TOL)
            out[near] = lo + w * (hi - lo)
        k, s, beta = r + x, t / (alpha + T), b + x
        lower, upper = numerator_bounds(k, s, a, beta)
    bad = ~(np.isfinite(out) & (out >= lower * (1.0 - BOUND_SLACK)) & (out <= upper * (1.0 + BOUND_SLACK)))
    if bad.any():
        out[bad] = beta_expectation(k[bad], s[bad], a[bad], beta[bad])
    return np.clip(out, lower, upper)


def conditional_expected_purchases(r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any, t: Any) -> np.ndarray:
    """E[Y(t) | x, t_x, T], expected repeat purchases in (T, T+t] (FHL 2005 eq. 10)."""
    return expected_purchases_numerator(r, alpha, a, b, x, T, t) * np.exp(-log_d(r, alpha, a, b, x, t_x, T))


def expected_purchases_new(r: Any, alpha: Any, a: Any, b: Any, t: Any) -> np.ndarray:
    """E[X(t)] for a new customer (FHL 2005 eq. 9): eq. 10's numerator at x = 0, T = 0 (D = 1)."""
    return expected_purchases_numerator(r, alpha, a, b, 0.0, 0.0, t)


def pattern_tables(r: Any, alpha: Any, a: Any, b: Any, pat: Patterns, xp: Any = NP) -> tuple[Any, ...]:
    """The factored tables: ``(A, log_ratio, r+x)`` on unique (group, x), ``log(alpha+T)`` on
    unique (group, T) and ``log(alpha+t_x)`` on unique (group, t_x); parameters indexed by group."""
    c = xp.constant
    g = c(pat.gx_group)
    big_a, lr = x_terms(r[g], alpha[g], a[g], b[g], pat.gx_x, xp)
    return (
        big_a,
        lr,
        r[g] + pat.gx_x,
        xp.log(alpha[c(pat.gT_group)] + pat.gT_T),
        xp.log(alpha[c(pat.gt_group)] + pat.gt_tx),
    )


def loglik_patterns(r: Any, alpha: Any, a: Any, b: Any, pat: Patterns, xp: Any = NP) -> Any:
    """Per-pattern log-likelihood from group-level parameter vectors (indexed by group).

    Special functions run on the unique (group, x), (group, T), (group, t_x) tables only
    (:func:`pattern_tables`), then are gathered per pattern and joined by :func:`combine_loglik`.
    Weighted by ``pat.weight`` and summed, it equals the sum of :func:`loglik` over customers.
    """
    big_a, lr, r_plus_x, log_alpha_T, log_alpha_tx = pattern_tables(r, alpha, a, b, pat, xp)
    c = xp.constant
    ix, iT, itx = c(pat.ix), c(pat.iT), c(pat.itx)
    return combine_loglik(
        big_a[ix], lr[ix], r_plus_x[ix], log_alpha_T[iT], log_alpha_tx[itx], pat.x > 0, xp,
    )  # fmt: skip


def loglik_total(r: Any, alpha: Any, a: Any, b: Any, pat: Patterns) -> float:
    """Total log-likelihood (numpy), sum over patterns of weight x :func:`loglik_patterns`.

    The model's term under pytensor is the fused op :func:`clvlab.models.bgnbd_kernel.bgnbd_loglik`
    (tested equal to this sum); the kernel imports this module, never the other way round.
    """
    return float(np.dot(pat.weight, loglik_patterns(r, alpha, a, b, pat, NP)))


# --------------------------------------------------------------------------------------
# counts after T: exact probabilities and posterior-predictive draws
# --------------------------------------------------------------------------------------
def prob_purchases_alive_geometric(r_post: Any, rate_post: Any, a: Any, b_post: Any, t: Any, n: int) -> np.ndarray:
    """P(N(t) = n) for a customer alive at the start, with lambda ~ Gamma(r_post, rate_post) and
    p ~ Beta(a, b_post), who buys at rate lambda and drops out after each purchase with probability p.

    N = min(Poisson(lambda t), G), G ~ Geometric(p) on {1, 2, ...} (the purchase after which the
    customer leaves), so for n >= 1 P(N = n) = P(Pois = n) P(G >= n) + P(Pois > n) P(G = n) and
    P(N = 0) = P(Pois = 0). Over the heterogeneity E[P(Pois = n)] is the NBD probability,
    E[P(Pois > n)] = I_{t/(rate+t)}(n+1, r) (regularised incomplete beta), E[(1-p)^(n-1)] =
    B(a, b+n-1)/B(a, b) and E[p(1-p)^(n-1)] = B(a+1, b+n-1)/B(a, b). Shared by BG/NBD and
    MBG/NBD (which differ in the posterior b_post).
    """
    r_post, rate_post, a, b_post = (np.asarray(v, dtype=float) for v in (r_post, rate_post, a, b_post))
    log_q = np.log(rate_post) - np.log(rate_post + t)  # log(rate/(rate+t))
    log_nb = (sps.gammaln(r_post + n) - sps.gammaln(r_post) - sps.gammaln(n + 1.0) + r_post * log_q
              + (n * (np.log(t) - np.log(rate_post + t)) if n > 0 else 0.0))  # fmt: skip
    log_beta0 = sps.betaln(a, b_post)
    if n == 0:
        return np.exp(log_nb)
    stay = np.exp(log_nb + sps.betaln(a, b_post + n - 1.0) - log_beta0)
    more = sps.betainc(n + 1.0, r_post, t / (rate_post + t))  # E[P(Pois > n)]
    return stay + more * np.exp(sps.betaln(a + 1.0, b_post + n - 1.0) - log_beta0)


def prob_purchases(r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any, t: float, n: int) -> np.ndarray:
    """P(exactly n repeat purchases in (T, T+t] | x, t_x, T).

    Dead at T (probability 1 - 1/D) means none; alive, lambda | data ~ Gamma(r+x, alpha+T) and
    p | data ~ Beta(a, b+x): :func:`prob_purchases_alive_geometric`.
    """
    x = np.asarray(x, dtype=float)
    alive = p_alive(r, alpha, a, b, x, t_x, T)
    given = prob_purchases_alive_geometric(r + x, alpha + T, a, b + x, t, n)
    return alive * given + (1.0 - alive if n == 0 else 0.0)


def sample_holdout(rng: np.random.Generator, r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any,
                   duration: float) -> np.ndarray:  # fmt: skip
    """Repeat-purchase counts in (T, T+duration] drawn from the customer's posterior state at T.

    Alive at T with probability 1/D; if alive, lambda ~ Gamma(r+x, alpha+T) and p ~ Beta(a, b+x)
    (the alive component of the customer's posterior); purchases follow a Poisson(lambda) process,
    each followed by dropout with probability p, so the count is min(Poisson(lambda t), Geometric(p)).
    """
    alive = rng.random(np.shape(r)) < p_alive(r, alpha, a, b, x, t_x, T)
    lam = rng.gamma(r + x, 1.0 / (alpha + T))
    pdrop = rng.beta(a, b + x)
    n_poisson = rng.poisson(lam * float(duration))
    n_until_drop = rng.geometric(np.clip(pdrop, 1e-300, 1.0))
    return np.where(alive, np.minimum(n_poisson, n_until_drop), 0)


def sample_frequency(rng: np.random.Generator, r: Any, alpha: Any, a: Any, b: Any, T: Any) -> np.ndarray:
    """Repeat purchases over (0, T] of a new customer: min(Poisson(lambda T), Geometric(p)),
    lambda ~ Gamma(r, alpha), p ~ Beta(a, b) (the BG/NBD process)."""
    lam = rng.gamma(r, 1.0 / alpha)
    pdrop = np.clip(rng.beta(a, b), 1e-300, 1.0)
    return np.minimum(rng.poisson(lam * T), rng.geometric(pdrop))
