"""BG/NBD predictions over the whole valid domain: finite, in range, under their bounds, and equal
to high-precision references (mpmath, 30 digits).

Domain (issue "reliability"): parameters r, alpha, a, b in [1e-3, 1e3]; x up to 1e4; t_x <= T up
to 1e4; t up to 1e4. Hypothesis runs derandomised (a fixed example sequence: no flaky runs).
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvlab.models import bgnbd_math as bm
from clvlab.models.beta_quadrature import beta_expectation, numerator_bounds

# ---- references ------------------------------------------------------------------------------


def ref_numerator_integral(r, alpha, a, b, x, T, t, dps=30):
    """E_{p ~ Beta(a, b+x)}[(1 - (1 + p s)^-(r+x)) / p], s = t/(alpha+T): mpmath tanh-sinh in y = logit p.

    The definition of FHL 2005 eq. 10's numerator (beta_quadrature's docstring), integrated
    adaptively on intervals split at the Beta density's mode and f's knee.
    """
    with mp.workdps(dps):
        r, alpha, a, b, x, T, t = (mp.mpf(float(v)) for v in (r, alpha, a, b, x, T, t))
        k, beta, s = r + x, b + x, t / (alpha + T)
        log_beta_fn = mp.log(mp.beta(a, beta))

        def integrand(y):
            log_p, log_q = -mp.log1p(mp.exp(-y)), -mp.log1p(mp.exp(y))
            p = mp.exp(log_p)
            return -mp.expm1(-k * mp.log1p(p * s)) / p * mp.exp(a * log_p + beta * log_q - log_beta_fn)

        y_mean, y_knee = mp.log(a / beta), -mp.log(k * s)
        width = mp.sqrt((a + beta) / (a * beta))
        pts = {y_mean, y_knee}
        for m in (1, 3, 10, 30, 100):
            pts |= {y_mean - m * width, y_mean + m * width}
        for m in (1, 3, 10, 30):
            pts |= {y_knee - m, y_knee + m}
        return float(mp.quad(integrand, [-mp.inf, *sorted(pts), mp.inf]))


def ref_numerator_closed(r, alpha, a, b, x, T, t, dps=40):
    """FHL 2005 eq. 10's numerator in its published closed form, evaluated by mpmath's hyp2f1."""
    with mp.workdps(dps):
        r, alpha, a, b, x, T, t = (mp.mpf(float(v)) for v in (r, alpha, a, b, x, T, t))
        c = a + b + x - 1
        bracket = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * mp.hyp2f1(r + x, b + x, c, t / (alpha + T + t))
        return float(c / (a - 1) * bracket)


# ---- the example of the issue, and points where the closed form used to fail ------------------

FAILED_BEFORE = [
    # (r, alpha, a, b, x, T, t): -inf, NaN or past the bound with the hyp2f1 form alone
    (1.0, 1.0, 100.0, 1.0, 8.0, 1.0, 100.0),
    (2.0, 3.0, 1e3, 1e-3, 1e4, 1.0, 1e4),
    (1e3, 1e-3, 1e3, 1e3, 0.0, 0.0, 1e4),
    (0.5, 0.2, 300.0, 2.0, 50.0, 5.0, 2e3),
    (0.08, 0.0036, 0.498, 0.0133, 7297.0, 0.26, 8366.9),
]


@pytest.mark.parametrize("point", FAILED_BEFORE)
def test_numerator_equals_mpmath_where_hyp2f1_failed(point):
    got = float(bm.expected_purchases_numerator(*point))
    want = ref_numerator_integral(*point)
    assert got == pytest.approx(want, rel=1e-7)


def test_issue_example_is_finite_and_right():
    # r = 1, alpha = 1, a = 100, b = 1, x = 8, t_x = 0, T = 1, t = 100 gave -inf
    e = float(bm.conditional_expected_purchases(1.0, 1.0, 100.0, 1.0, 8.0, 0.0, 1.0, 100.0))
    n = ref_numerator_integral(1.0, 1.0, 100.0, 1.0, 8.0, 1.0, 100.0)
    d = float(np.exp(bm.log_d(1.0, 1.0, 100.0, 1.0, 8.0, 0.0, 1.0)))
    assert e == pytest.approx(n / d, rel=1e-7)
    assert 0 <= e <= float(bm.p_alive(1.0, 1.0, 100.0, 1.0, 8.0, 0.0, 1.0)) * 9 / 2 * 100


def _log_uniform_points(n, seed):
    rng = np.random.default_rng(seed)

    def lu(lo, hi):
        return np.exp(rng.uniform(np.log(lo), np.log(hi), n))

    r, alpha, a, b = lu(1e-3, 1e3), lu(1e-3, 1e3), lu(1e-3, 1e3), lu(1e-3, 1e3)
    x = np.floor(lu(1, 1e4 + 1)) - 1
    return r, alpha, a, b, x, lu(1e-2, 1e4), lu(1e-2, 1e4)


def test_numerator_equals_mpmath_on_a_log_uniform_sample():
    """30 points of the whole domain (seeded): the integral reference, and the closed form where mpmath converges."""
    pts = _log_uniform_points(30, seed=11)
    got = bm.expected_purchases_numerator(*pts)
    for i in range(30):
        point = [float(v[i]) for v in pts]
        assert got[i] == pytest.approx(ref_numerator_integral(*point), rel=1e-7), point
        a, b, x = point[2], point[3], point[4]
        if a + b + x - 1 > 0.5 and abs(a - 1) > 1e-3 and a < 50:
            assert got[i] == pytest.approx(ref_numerator_closed(*point), rel=1e-7), point


def test_quadrature_alone_equals_mpmath():
    """The fallback on its own (not only where the closed form fails), incl. a < 1 and a near 1."""
    pts = [(0.24, 4.4, 0.79, 2.4, 2.0, 30.0, 52.0), (0.5, 2.0, 0.3, 0.2, 0.0, 0.0, 10.0),
           (3.0, 0.5, 1.0, 4.0, 12.0, 40.0, 1e4), (1e-3, 1e-3, 1e-3, 1e-3, 1e4, 1e4, 1e4),
           (50.0, 1e3, 1e3, 1e3, 1e4, 1e-2, 1e-2)]  # fmt: skip
    for r, alpha, a, b, x, T, t in pts:
        got = float(beta_expectation(r + x, t / (alpha + T), a, b + x))
        assert got == pytest.approx(ref_numerator_integral(r, alpha, a, b, x, T, t), rel=1e-8)


def test_bounds_hold_for_the_reference():
    pts = _log_uniform_points(12, seed=3)
    for i in range(12):
        r, alpha, a, b, x, T, t = (float(v[i]) for v in pts)
        lo, hi = numerator_bounds(r + x, t / (alpha + T), a, b + x)
        want = ref_numerator_integral(r, alpha, a, b, x, T, t)
        assert lo * (1 - 1e-12) <= want <= hi * (1 + 1e-12)


# ---- hypothesis: the whole domain ------------------------------------------------------------

TINY = 1e-300
horizon = st.floats(0.0, 1e4, allow_subnormal=False)
param = st.floats(-3.0, 3.0).map(lambda e: 10.0**e)  # 1e-3 .. 1e3, log-uniform


@st.composite
def customers(draw):
    x = draw(st.integers(0, 10_000))
    T = draw(st.floats(1e-3, 1e4, allow_subnormal=False))
    t_x = 0.0 if x == 0 else draw(st.floats(0.0, 1.0)) * T
    return float(x), t_x, T


@settings(max_examples=400, deadline=None, derandomize=True)
@given(r=param, alpha=param, a=param, b=param, cust=customers(), t=horizon)
def test_predictions_finite_in_range_and_bounded(r, alpha, a, b, cust, t):
    x, t_x, T = cust
    alive = float(bm.p_alive(r, alpha, a, b, x, t_x, T))
    none = float(bm.p_no_purchase(r, alpha, a, b, x, t_x, T, t))
    expected = float(bm.conditional_expected_purchases(r, alpha, a, b, x, t_x, T, t))
    new = float(bm.expected_purchases_new(r, alpha, a, b, t))
    ll = float(bm.loglik(r, alpha, a, b, x, t_x, T))
    assert np.isfinite([alive, none, expected, new, ll]).all()
    assert 0.0 <= alive <= 1.0 and 0.0 <= none <= 1.0
    assert none >= 1.0 - alive - 1e-12  # the dead buy nothing
    # expectations: >= 0, under P(alive) E[lambda] t (no dropout) and, for a > 1, under P(alive) E[1/p]
    # (relative slack for rounding; TINY absolute for subnormal P(alive), where products lose digits)
    assert 0.0 <= expected <= alive * (r + x) / (alpha + T) * t * (1 + 1e-12) + TINY
    if a > 1:
        assert expected <= alive * (a + b + x - 1) / (a - 1) * (1 + 1e-12) + TINY
    assert 0.0 <= new <= r / alpha * t * (1 + 1e-12) + TINY


@settings(max_examples=150, deadline=None, derandomize=True)
@given(r=param, alpha=param, a=param, b=param, cust=customers(), t=horizon, dt=horizon)
def test_expected_purchases_grow_with_t(r, alpha, a, b, cust, t, dt):
    x, _, T = cust
    n1, n2 = bm.expected_purchases_numerator(r, alpha, a, b, x, T, np.array([t, t + dt]))
    assert n2 >= n1 * (1 - 1e-7)
