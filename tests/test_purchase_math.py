"""MBG/NBD and Pareto/NBD math: the oracles (lifetimes, dev-only), mpmath references of the
defining integrals, the fused Pareto/NBD op's value and gradient, and consistency of the
predictions every purchase model provides (:data:`clvlab.models.purchase.MATH_FUNCTIONS`)."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pandas as pd
import pytest

from clvlab.models import bgnbd_math as bm
from clvlab.models import mbgnbd_math as mm
from clvlab.models import pareto_nbd_math as pm_
from clvlab.models.patterns import compress_patterns
from clvlab.models.purchase import MATH_FUNCTIONS

MBG = dict(r=0.525, alpha=6.183, a=0.891, b=1.614)  # BTYDplus / lifetimes MLE on the CDNOW 1/10 sample
PNBD = dict(r=0.553, alpha=10.578, s=0.606, beta=11.670)  # Pareto/NBD MLE on the same data


def _customers(seed: int = 0, n: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.poisson(2.0, n).astype(float)
    T = rng.uniform(5.0, 40.0, n)
    tx = np.where(x > 0, rng.uniform(0.0, 1.0, n) * T, 0.0)
    x[:3], tx[:3], T[:3] = [50.0, 120.0, 0.0], [30.0, 39.0, 0.0], [40.0, 40.0, 40.0]  # heavy buyers, a one-timer
    return x, tx, T


@pytest.mark.parametrize("module", [bm, mm, pm_], ids=["bgnbd", "mbgnbd", "pareto_nbd"])
def test_every_math_module_provides_the_shared_interface(module):
    missing = [f for f in MATH_FUNCTIONS if not callable(getattr(module, f, None))]
    assert not missing


# ---- MBG/NBD against lifetimes' ModifiedBetaGeoFitter -----------------------------------
def test_mbgnbd_matches_lifetimes_at_fixed_parameters():
    from lifetimes import ModifiedBetaGeoFitter

    x, tx, T = _customers()
    f = ModifiedBetaGeoFitter()
    f.params_ = pd.Series(MBG)
    p = tuple(MBG.values())
    n = len(x)
    ll_ref = -n * ModifiedBetaGeoFitter._negative_log_likelihood(np.log(p), x, tx, T, np.ones(n), 0.0)
    assert mm.loglik(*p, x, tx, T).sum() == pytest.approx(ll_ref, rel=1e-12)
    np.testing.assert_allclose(mm.p_alive(*p, x, tx, T), f.conditional_probability_alive(x, tx, T), rtol=1e-12)
    np.testing.assert_allclose(
        mm.conditional_expected_purchases(*p, x, tx, T, 10.0),
        f.conditional_expected_number_of_purchases_up_to_time(10.0, x, tx, T),
        rtol=1e-10,
    )
    ts = np.array([1.0, 10.0, 52.0])
    np.testing.assert_allclose(mm.expected_purchases_new(*p, ts), f.expected_number_of_purchases_up_to_time(ts),
                               rtol=1e-10)  # fmt: skip
    assert np.all(mm.p_alive(*p, 0.0, 0.0, T) < 1.0)  # one-time buyers can be dead (not so under BG/NBD)


def test_mbgnbd_symbolic_total_equals_the_per_customer_sum():
    """The model's term (BG/NBD op at b+1 for x > 0, a graph for x = 0) equals the reference sum."""
    import pytensor.tensor as pt

    x, tx, T = _customers(1)
    group = np.random.default_rng(1).integers(0, 3, len(x))
    pat = compress_patterns(group, x, tx, T)
    vec = {k: np.array([v, 1.1 * v, 0.9 * v]) for k, v in MBG.items()}
    total = mm.loglik_total_pt(*(pt.as_tensor_variable(v) for v in vec.values()), pat).eval()
    ref = mm.loglik(*(v[group] for v in vec.values()), x, tx, T).sum()
    assert float(total) == pytest.approx(ref, rel=1e-12)


# ---- Pareto/NBD against lifetimes' ParetoNBDFitter ------------------------------------------
def test_pareto_nbd_matches_lifetimes_at_fixed_parameters():
    from lifetimes import ParetoNBDFitter

    x, tx, T = _customers()
    f = ParetoNBDFitter()
    f.params_ = pd.Series(PNBD)
    p = tuple(PNBD.values())
    np.testing.assert_allclose(pm_.loglik(*p, x, tx, T), ParetoNBDFitter._conditional_log_likelihood(
        np.array(p), x, tx, T), rtol=1e-12)  # fmt: skip
    np.testing.assert_allclose(pm_.p_alive(*p, x, tx, T), f.conditional_probability_alive(x, tx, T), rtol=1e-11)
    np.testing.assert_allclose(
        pm_.conditional_expected_purchases(*p, x, tx, T, 10.0),
        f.conditional_expected_number_of_purchases_up_to_time(10.0, x, tx, T),
        rtol=1e-10,
    )
    ts = np.array([1.0, 10.0, 52.0])
    np.testing.assert_allclose(pm_.expected_purchases_new(*p, ts), f.expected_number_of_purchases_up_to_time(ts),
                               rtol=1e-10)  # fmt: skip
    for n in range(4):
        np.testing.assert_allclose(pm_.prob_purchases(*p, x[:40], tx[:40], T[:40], 20.0, n),
                                   f.conditional_probability_of_n_purchases_up_to_time(n, 20.0, x[:40], tx[:40], T[:40]),
                                   rtol=1e-8, atol=1e-14)  # fmt: skip


def _mp_loglik(r, alpha, s, beta, x, tx, T):  # type: ignore[no-untyped-def]
    """Pareto/NBD log-likelihood from its definition, 30 digits: the integral over the death time
    split at geometric points from t_x (the integrand can fall by orders of magnitude within
    (min(alpha, beta) + t_x) / (r + x) of t_x)."""
    r, alpha, s, beta, x, tx, T = map(mp.mpf, (r, alpha, s, beta, x, tx, T))
    pre = mp.loggamma(r + x) - mp.loggamma(r) + r * mp.log(alpha) + s * mp.log(beta)
    e1 = (alpha + T) ** -(r + x) * (beta + T) ** -s
    c = min(alpha, beta) + tx
    pts = [tx] + [tx + c * mp.mpf(2) ** k for k in range(-30, 40) if tx + c * mp.mpf(2) ** k < T] + [T]
    dead = mp.quad(lambda y: (alpha + y) ** -(r + x) * (beta + y) ** -(s + 1), pts) if T > tx else 0
    return pre + mp.log(e1 + s * dead)


def test_pareto_nbd_loglik_equals_the_defining_integral_over_the_domain():
    """Parameters 1e-2..1e2 (log-uniform), x up to 200, T up to 1e3: within 1e-9 of 30-digit mpmath."""
    mp.mp.dps = 30
    rng = np.random.default_rng(7)
    worst = 0.0
    for i in range(60):
        r, alpha, s, beta = (float(10 ** rng.uniform(-2, 2)) for _ in range(4))
        T = float(10 ** rng.uniform(-1, 3))
        x = float(rng.integers(1, 200)) if i % 3 else 0.0
        tx = float(rng.uniform(0, T)) if x > 0 else 0.0
        ref = float(_mp_loglik(r, alpha, s, beta, x, tx, T))
        worst = max(worst, abs(pm_.loglik(r, alpha, s, beta, x, tx, T) - ref) / max(1.0, abs(ref)))
    assert worst < 1e-9


def _mp_h(c0: float, c1: float, z: float) -> list[float]:
    """H = 2F1(1, c0; c1; z) and its partials in c0, c1, z at 60 digits."""
    mp.mp.dps = 60
    zm = mp.mpf(z)

    def h(a, b, q):  # type: ignore[no-untyped-def]
        return mp.hyp2f1(1, a, b, q)

    return [
        float(v)
        for v in (
            h(c0, c1, zm),
            mp.diff(lambda a: h(a, c1, zm), mp.mpf(c0)),
            mp.diff(lambda b: h(c0, b, zm), mp.mpf(c1)),
            mp.diff(lambda q: h(c0, c1, q), zm),
        )
    ]


def test_hypergeometric_series_against_mpmath():
    """H and its partials by the series, wherever it converges, to 1e-13 / 1e-10."""
    rng = np.random.default_rng(3)
    n = 0
    while n < 40:
        c0 = float(10 ** rng.uniform(-2, 3))
        c1 = c0 + float(10 ** rng.uniform(-2, 2.5))
        z = float(rng.uniform(0, 0.97)) if n % 2 else float(1 - 10 ** rng.uniform(-12, -1))
        val, d0, d1, dz, converged = pm_._h_series(c0, c1, z)
        if c1 - 1.0 < 0.02 or not converged:
            continue
        n += 1
        ref = _mp_h(c0, c1, z)
        assert val == pytest.approx(ref[0], rel=1e-13)
        for got, want in zip((d0, d1, dz), ref[1:], strict=True):
            assert got == pytest.approx(want, rel=1e-10, abs=1e-13 * val)


def test_hypergeometric_series_table_reuses_coefficients_exactly():
    """The fused kernel's series (coefficients kept across the y of one (group, x)) gives
    :func:`_h_series`'s values to rounding, for z in any order, and the same convergence flag."""
    rng = np.random.default_rng(5)
    table = np.empty((pm_.SERIES_MAX_TERMS + 1, 3))
    for _ in range(20):
        c0 = float(10 ** rng.uniform(-2, 2))
        c1 = c0 + float(10 ** rng.uniform(-1.5, 2))
        n_filled = 0
        for z in rng.permutation(np.r_[0.0, rng.uniform(0, 0.99, 6), 1 - 1e-6]):
            *got, conv_t, n_filled = pm_._h_series_table(c0, c1, z, table, n_filled)
            *want, conv = pm_._h_series(c0, c1, z)
            assert conv_t == conv
            assert np.allclose(got, want, rtol=1e-12, atol=0.0), (c0, c1, z)


def test_pareto_nbd_kernel_rejects_parameters_outside_the_support():
    """A non-positive or non-finite parameter gives a NaN total and NaN gradients (NUTS rejects)."""
    from clvlab.models.pareto_nbd_kernel import _kernel, pattern_data

    x, tx, T = _customers(4, 50)
    pat = compress_patterns(np.zeros(len(x), dtype=np.int64), x, tx, T)
    good = [np.array([v]) for v in (0.55, 10.6, 0.61, 11.7)]
    assert np.isfinite(float(_kernel(*good, *pattern_data(pat))[0]))
    for k in range(4):
        for bad in (0.0, -1.0, np.inf, np.nan):
            P = [v.copy() for v in good]
            P[k][0] = bad
            out = _kernel(*P, *pattern_data(pat))
            assert np.isnan(float(out[0])) and all(np.isnan(o).all() for o in out[1:]), (k, bad)


def test_hypergeometric_quadrature_where_the_series_stops():
    """Where the series needs more than SERIES_MAX_TERMS terms (z near 1, c1 - c0 small) the
    quadrature gives H and its partials in c0, c1 to 1e-7 (measured worst 5e-9 on 60 such points)
    and dH/dz to 1e-3 (worst 2.6e-4; the partials only steer the sampler's trajectories)."""
    rng = np.random.default_rng(3)
    n = 0
    while n < 30:
        c0 = float(10 ** rng.uniform(-2, 3))
        c1 = c0 + float(10 ** rng.uniform(-2, 0.5))
        z = float(1 - 10 ** rng.uniform(-12, -2))
        if c1 - 1.0 < 0.02 or pm_._h_series(c0, c1, z)[4]:
            continue
        n += 1
        ref = _mp_h(c0, c1, z)
        val, d0, d1, dz = pm_._h_quadrature(c0, c1, z, pm_._TS_U, pm_._TS_DU)
        assert val == pytest.approx(ref[0], rel=1e-8)
        assert d0 == pytest.approx(ref[1], rel=1e-7, abs=1e-12 * val)
        assert d1 == pytest.approx(ref[2], rel=1e-7, abs=1e-12 * val)
        assert dz == pytest.approx(ref[3], rel=1e-3)


def test_pareto_nbd_op_value_and_gradient():
    """The fused op equals the numpy reference sum; its gradient equals central differences."""
    from clvlab.models.pareto_nbd_kernel import _kernel, pattern_data

    x, tx, T = _customers(2, 500)
    group = np.random.default_rng(2).integers(0, 3, len(x))
    pat = compress_patterns(group, x, tx, T)
    P = [
        np.array([0.55, 0.6, 0.5]),
        np.array([10.6, 9.0, 0.02]),
        np.array([0.61, 0.7, 0.55]),
        np.array([11.7, 30.0, 5.0]),
    ]
    out = _kernel(*P, *pattern_data(pat))

    def total(params):  # type: ignore[no-untyped-def]
        return float(np.dot(pat.weight, pm_.loglik_patterns(*params, pat)))

    assert float(out[0]) == pytest.approx(total(P), rel=1e-12)
    for k in range(4):
        for g in range(3):
            h = 1e-6 * P[k][g]
            up, dn = [v.copy() for v in P], [v.copy() for v in P]
            up[k][g] += h
            dn[k][g] -= h
            fd = (total(up) - total(dn)) / (2 * h)
            assert out[k + 1][g] == pytest.approx(fd, rel=1e-5, abs=1e-6), (k, g)


def test_pareto_nbd_op_where_the_ratios_leave_exp_range():
    """Patterns whose G(t_x)/G(T) exceeds e^700 (a heavy buyer gone early in a long window) take
    the kernel's log-sum-exp path: value equal to the reference, gradient to central differences."""
    from clvlab.models.pareto_nbd_kernel import _kernel, pattern_data

    x, tx, T = np.array([400.0, 300.0, 2.0, 0.0]), np.array([1.0, 2.0, 500.0, 0.0]), np.full(4, 1000.0)
    pat = compress_patterns(np.zeros(4, dtype=np.int64), x, tx, T)
    P = [np.array([0.55]), np.array([0.5]), np.array([0.6]), np.array([11.7])]
    lg = pm_.log_g(P[0][0], P[1][0], P[2][0], P[3][0], x, tx) - pm_.log_g(P[0][0], P[1][0], P[2][0], P[3][0], x, T)
    assert lg[:2].min() > 700  # the first two patterns are on the log-sum-exp path

    def total(params):  # type: ignore[no-untyped-def]
        return float(np.dot(pat.weight, pm_.loglik_patterns(*params, pat)))

    out = _kernel(*P, *pattern_data(pat))
    assert float(out[0]) == pytest.approx(total(P), rel=1e-12)
    for k in range(4):
        h = 1e-6 * P[k][0]
        up, dn = [v.copy() for v in P], [v.copy() for v in P]
        up[k][0] += h
        dn[k][0] -= h
        assert out[k + 1][0] == pytest.approx((total(up) - total(dn)) / (2 * h), rel=1e-5, abs=1e-6), k


# ---- predictions: consistent with each other and with the posterior-predictive draws -------
MODELS = {"bgnbd": (bm, dict(r=0.243, alpha=4.414, a=0.793, b=2.426)), "mbgnbd": (mm, MBG), "pareto_nbd": (pm_, PNBD)}


@pytest.mark.parametrize("name", list(MODELS))
def test_count_distribution_sums_to_one_and_has_the_expected_mean(name):
    module, params = MODELS[name]
    x, tx, T = _customers(4, 50)
    p = tuple(params.values())
    probs = np.array([module.prob_purchases(*p, x, tx, T, 39.0, n) for n in range(400)])
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-8)
    mean = (np.arange(400)[:, None] * probs).sum(axis=0)
    np.testing.assert_allclose(mean, module.conditional_expected_purchases(*p, x, tx, T, 39.0), rtol=1e-7)
    np.testing.assert_allclose(probs[0], module.p_no_purchase(*p, x, tx, T, 39.0), rtol=1e-10)


@pytest.mark.parametrize("name", list(MODELS))
def test_posterior_predictive_draws_follow_the_count_distribution(name):
    """200k draws per customer: each frequency of 0, 1, 2 purchases within 5 standard errors of
    its probability (a false alarm at most ~1e-5 over the 3 x 5 checks)."""
    module, params = MODELS[name]
    x, tx, T = (v[3:8] for v in _customers(5, 8))
    p = tuple(params.values())
    draws = 200_000
    rng = np.random.default_rng(0)
    full = [np.broadcast_to(np.asarray(v, dtype=float), (draws, len(x))) for v in p]
    counts = module.sample_holdout(rng, *full, x, tx, T, 39.0)
    for n in range(3):
        prob = module.prob_purchases(*p, x, tx, T, 39.0, n)
        freq = (counts == n).mean(axis=0)
        se = np.sqrt(prob * (1 - prob) / draws)
        assert np.all(np.abs(freq - prob) < 5 * se + 1e-12), (n, freq, prob)


@pytest.mark.parametrize("name", list(MODELS))
def test_new_customer_frequency_draws_match_the_expected_purchases(name):
    """Mean of sample_frequency over 400k draws within 5 standard errors of E[X(T)]."""
    module, params = MODELS[name]
    p = tuple(params.values())
    rng = np.random.default_rng(1)
    T = 39.0
    draws = module.sample_frequency(rng, *(np.full(400_000, v) for v in p), np.full(400_000, T))
    se = draws.std() / np.sqrt(len(draws))
    assert abs(draws.mean() - float(module.expected_purchases_new(*p, T))) < 5 * se
