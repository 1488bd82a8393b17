"""The fused Gamma-Gamma op: value against the reference formula, gradient against pytensor's
autodiff of that formula (and central differences in the large-q branch), the support, and the
JAX implementation numpyro uses."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from clvlab.models import gamma_gamma_math as gm
from clvlab.models.gamma_gamma_kernel import _kernel, gg_fused_loglik, pattern_data

G = 3


@pytest.fixture(scope="module")
def pat() -> gm.SpendPatterns:
    rng = np.random.default_rng(0)
    n = 2500
    seg, x = rng.integers(0, G, n), rng.integers(1, 15, n).astype(float)
    z = np.round(rng.gamma(3.0, 10.0, n), 2)
    z[:40] = z[40:80]  # repeated (segment, x, zbar) rows: weights > 1
    seg[:40], x[:40] = seg[40:80], x[40:80]
    return gm.compress_spend_patterns(seg, x, z)


POINTS = [
    (np.array([2.0, 5.0, 0.7]), np.array([3.0, 4.0, 20.0]), np.array([10.0, 30.0, 5.0])),
    (np.array([0.3, 12.0, 1.5]), np.array([1.2, 900.0, 1.001e3]), np.array([2.0, 5e3, 800.0])),
    (np.array([2.0, 5.0, 0.7]), np.array([3e3, 4e5, 1e8]), np.array([1e4, 3e6, 5e8])),  # Stirling branch
]


def _reference_graph(pat: gm.SpendPatterns):  # type: ignore[no-untyped-def]
    p, q, g = pt.dvector("p"), pt.dvector("q"), pt.dvector("g")
    s = pat.segment
    total = pt.sum(pat.weight * gm.gg_logpdf(pat.x, pat.zbar, p[s], q[s], g[s]))
    return pytensor.function([p, q, g], [total, *pt.grad(total, [p, q, g])])


@pytest.mark.parametrize("point", POINTS, ids=["moderate", "q near LARGE_Q", "huge q"])
def test_value_and_gradient_equal_the_formula_and_autodiff(pat, point):
    ref = _reference_graph(pat)(*point)
    got = _kernel(*point, *pattern_data(pat, G))
    assert float(got[0]) == pytest.approx(float(ref[0]), rel=1e-12)
    for mine, theirs in zip(got[1:], ref[1:], strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-8, atol=1e-9 * np.abs(theirs).max())


def test_gradient_by_central_differences_in_the_stirling_branch(pat):
    p, q, g = POINTS[2]
    data = pattern_data(pat, G)
    _, _, dq, _ = _kernel(p, q, g, *data)
    for k in range(G):
        h = 1e-5 * q[k]
        up, dn = q.copy(), q.copy()
        up[k] += h
        dn[k] -= h
        num = (float(_kernel(p, up, g, *data)[0]) - float(_kernel(p, dn, g, *data)[0])) / (2 * h)
        assert dq[k] == pytest.approx(num, rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.inf, np.nan])
@pytest.mark.parametrize("which", [0, 1, 2])
def test_outside_the_support_is_nan(pat, bad, which):
    point = [v.copy() for v in POINTS[0]]
    point[which][1] = bad
    out = _kernel(*point, *pattern_data(pat, G))
    assert np.isnan(float(out[0])) and all(np.isnan(v).all() for v in out[1:])


def test_symbolic_op_and_its_jax_implementation_agree(pat):
    pytest.importorskip("jax")
    from clvlab.models.gamma_gamma_kernel import register_jax

    register_jax()
    p, q, g = pt.dvector("p"), pt.dvector("q"), pt.dvector("g")
    total = gg_fused_loglik(p, q, g, pat, G)
    outs = [total, *pt.grad(total, [p, q, g])]
    numba_fn = pytensor.function([p, q, g], outs, mode="NUMBA")
    jax_fn = pytensor.function([p, q, g], outs, mode="JAX")
    for point in POINTS:
        for a, b in zip(numba_fn(*point), jax_fn(*point), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9)
