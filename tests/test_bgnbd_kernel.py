"""The fused BG/NBD likelihood op (clvlab.models.bgnbd_kernel) against the reference formulas.

Value against :func:`bgnbd_math.loglik` summed over customers (uncompressed); gradient against
pytensor's autodiff of the unfused graph (:func:`bgnbd_math.loglik_patterns`); every backend
the op runs under (numba, C/Python via ``perform``, JAX) gives the same numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sps
from test_bgnbd_math import MLE, _with_heavy_buyers, cdnow_sample_rfm

from clvlab.models import bgnbd_kernel as bk
from clvlab.models import bgnbd_math as bm

PARAMS = ("r", "alpha", "a", "b")


@pytest.fixture(scope="module")
def data() -> dict:
    """CDNOW sample plus 40 heavy buyers (x in the hundreds), spread over 3 groups."""
    rfm = _with_heavy_buyers(cdnow_sample_rfm())
    rng = np.random.default_rng(7)
    group = rng.integers(0, 3, len(rfm))
    x, tx, T = (rfm[c].to_numpy() for c in ("frequency", "recency", "T"))
    params = {k: np.array([v, v * 1.3, v * 0.7]) for k, v in MLE.items()}
    return dict(group=group, x=x, tx=tx, T=T, params=params, pat=bm.compress_patterns(group, x, tx, T))


def _reference_value_and_grad(params: dict, pat: bm.Patterns) -> list[np.ndarray]:
    import pytensor
    import pytensor.tensor as pt

    th = [pt.dvector(k) for k in PARAMS]
    total = pt.sum(pat.weight * bm.loglik_patterns(*th, pat, xp=bm.PT))
    f = pytensor.function(th, [total, *pt.grad(total, th)], mode="FAST_COMPILE")
    return [np.asarray(v) for v in f(*(params[k] for k in PARAMS))]


def test_digamma_matches_scipy():
    z = np.concatenate([np.geomspace(1e-4, 1e4, 400), [0.5, 1.0, 9.999, 10.0, 10.001]])
    ours = np.array([bk.digamma(v) for v in z])
    np.testing.assert_allclose(ours, sps.digamma(z), rtol=1e-13, atol=1e-13)


def test_x_functions_recurrence_matches_direct_calls():
    r, a, b = np.array([0.24, 3.0]), np.array([0.8, 0.05]), np.array([2.4, 7.0])
    # sorted rows with gaps of 1 (recurrence), 8 (recurrence), 9 (direct), a group change, and
    # then rows out of order (direct calls)
    gx_group = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1])
    gx_x = np.array([0.0, 1.0, 2.0, 10.0, 19.0, 400.0, 0.0, 3.0, 11.0, 5.0, 1.0])
    got = bk._x_functions(r, a, b, gx_group, gx_x)
    g = gx_group
    for c, z in enumerate((r[g] + gx_x, b[g] + gx_x, a[g] + b[g] + gx_x)):
        np.testing.assert_allclose(got[:, 2 * c], sps.gammaln(z), rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(got[:, 2 * c + 1], sps.digamma(z), rtol=1e-13, atol=1e-13)


def test_logaddexp_parts_match_numpy():
    """The kernel's branch-free exp / log1p / sigmoid against numpy, over the whole range of d."""
    d = np.concatenate([
        np.linspace(-60, 60, 240_001), np.geomspace(1e-300, 800, 5000), -np.geomspace(1e-300, 800, 5000),
        [0.0, -0.0, 0.34657359, -0.34657359, np.log(2), np.sqrt(2) - 1, 700.0, -700.0, 1e300, -1e300],
    ])  # fmt: skip
    lp, sig, scratch = np.empty_like(d), np.empty_like(d), np.empty_like(d)
    bk._logaddexp_parts(d, lp, sig, scratch)
    np.testing.assert_allclose(lp, np.log1p(np.exp(-np.abs(d))), rtol=2e-15, atol=1e-300)
    np.testing.assert_allclose(sig, sps.expit(d), rtol=2e-15, atol=1e-300)
    # infinities saturate, NaN propagates (a sampler must see the NaN and reject the point)
    lp, sig = np.empty(3), np.empty(3)
    bk._logaddexp_parts(np.array([np.inf, -np.inf, np.nan]), lp, sig, np.empty(3))
    assert lp[0] == lp[1] == pytest.approx(0.0, abs=1e-300) and np.isnan(lp[2])
    assert sig[0] == 1.0 and sig[1] == pytest.approx(0.0, abs=1e-300) and np.isnan(sig[2])


def test_kernel_value_equals_uncompressed_loglik(data):
    p, pat = data["params"], data["pat"]
    total, *_ = bk._kernel(*(p[k] for k in PARAMS), *bk.pattern_data(pat))
    full = bm.loglik(*(p[k][data["group"]] for k in PARAMS), data["x"], data["tx"], data["T"])
    assert float(total) == pytest.approx(full.sum(), abs=1e-9)
    assert bm.loglik_total(*(p[k] for k in PARAMS), pat) == pytest.approx(full.sum(), abs=1e-9)


def test_kernel_gradient_equals_autodiff_of_unfused_graph(data):
    p, pat = data["params"], data["pat"]
    got = bk._kernel(*(p[k] for k in PARAMS), *bk.pattern_data(pat))
    ref = _reference_value_and_grad(p, pat)
    assert float(got[0]) == pytest.approx(float(ref[0]), abs=1e-9)
    for k, g, want in zip(PARAMS, got[1:], ref[1:], strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-8, err_msg=k)


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE", "JAX"])
def test_op_in_every_backend(data, mode):
    import pytensor
    import pytensor.tensor as pt

    if mode == "JAX":
        pytest.importorskip("jax")
        bk.register_jax()
    p, pat = data["params"], data["pat"]
    th = [pt.dvector(k) for k in PARAMS]
    total = bk.bgnbd_loglik(*th, pat)
    # through a transform, as in the model: the op's gradient must compose with autodiff
    eta = pt.dvector("eta")
    composed = bk.bgnbd_loglik(pt.exp(eta), th[1], th[2], th[3], pat)
    f = pytensor.function([*th, eta], [total, *pt.grad(total, th), pt.grad(composed, eta)], mode=mode)
    out = [np.asarray(v) for v in f(*(p[k] for k in PARAMS), np.log(p["r"]))]
    ref = _reference_value_and_grad(p, pat)
    assert float(out[0]) == pytest.approx(float(ref[0]), abs=1e-8)
    for g, want in zip(out[1:5], ref[1:], strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-9, atol=1e-8)
    np.testing.assert_allclose(out[5], ref[1] * p["r"], rtol=1e-9, atol=1e-8)  # chain rule through exp


def test_second_derivative_is_refused(data):
    import pytensor.tensor as pt

    th = [pt.dvector(k) for k in PARAMS]
    outs = bk.bgnbd_loglik_op(*th, *bk.pattern_data(data["pat"]))
    with pytest.raises(NotImplementedError, match="no Hessian"):
        pt.grad(pt.sum(outs[1]), th[0])


def test_extreme_parameters_give_non_finite_values_not_exceptions(data):
    """Samplers probe far-out points: the kernel must return inf/nan there, never raise."""
    pat = data["pat"]
    ones = np.ones(3)
    for bad in (0.0, 1e-320, np.inf):
        out = bk._kernel(ones * bad, ones * 4.0, ones * 0.8, ones * 2.4, *bk.pattern_data(pat))
        assert not (math.isfinite(float(out[0])) and all(np.all(np.isfinite(g)) for g in out[1:]))


def test_op_input_checks():
    with pytest.raises(TypeError, match="takes 15 inputs"):
        bk.bgnbd_loglik_op(np.ones(2), np.ones(2))
