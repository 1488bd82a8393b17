"""BG/NBD math at fixed parameters: published CDNOW log-likelihood, lifetimes oracle, compression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvlab.models import bgnbd_math as bm

MLE = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)  # FHL 2005, CDNOW 1/10 sample


def cdnow_sample_rfm(calibration_end: str = "1997-09-30") -> pd.DataFrame:
    """RFM of the CDNOW 1/10 sample in weeks (days/7), built with the project's loader and features."""
    from clvlab.data.cdnow import load_cdnow
    from clvlab.features import rfm_summary

    return rfm_summary(load_cdnow(sample=True), calibration_end, "W")


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    return cdnow_sample_rfm()


def test_cdnow_sample_summary_matches_paper(rfm):
    assert len(rfm) == 2357
    # FHL 2005: 1,411 of the 2,357 sample customers made no repeat purchase in weeks 1-39
    assert int((rfm["frequency"] == 0).sum()) == 1411


def test_loglik_at_published_mle(rfm):
    ll = bm.loglik(**MLE, x=rfm["frequency"].to_numpy(), t_x=rfm["recency"].to_numpy(), T=rfm["T"].to_numpy())
    assert ll.sum() == pytest.approx(-9582.4, abs=0.1)


def test_loglik_matches_lifetimes(rfm):
    from lifetimes import BetaGeoFitter

    x, tx, T = (rfm[c].to_numpy() for c in ("frequency", "recency", "T"))
    ll = bm.loglik(**MLE, x=x, t_x=tx, T=T)
    nll = BetaGeoFitter._negative_log_likelihood(
        np.log([MLE["r"], MLE["alpha"], MLE["a"], MLE["b"]]), x, tx, T, np.ones_like(x), 0.0
    )
    assert ll.mean() == pytest.approx(-nll, rel=1e-12)


def _with_heavy_buyers(rfm: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 40
    T = rng.uniform(20, 39, n)
    heavy = pd.DataFrame(
        {
            "customer_id": [f"h{i}" for i in range(n)],
            "frequency": rng.integers(100, 900, n).astype(float),
            "recency": T * rng.uniform(0.05, 1.0, n),
            "T": T,
        }
    )
    return pd.concat([rfm, heavy], ignore_index=True)


@pytest.mark.parametrize("params", [MLE, dict(r=1.7, alpha=12.0, a=2.5, b=0.9)])
def test_predictions_match_lifetimes(rfm, params):
    from lifetimes import BetaGeoFitter

    data = _with_heavy_buyers(rfm)
    x, tx, T = (data[c].to_numpy() for c in ("frequency", "recency", "T"))
    f = BetaGeoFitter()
    f.params_ = pd.Series(params)
    with np.errstate(all="ignore"):
        ref_alive = f.conditional_probability_alive(x, tx, T)
        ref_e39 = f.conditional_expected_number_of_purchases_up_to_time(39.0, x, tx, T)
    ours_alive = bm.p_alive(**params, x=x, t_x=tx, T=T)
    ours_e39 = bm.conditional_expected_purchases(**params, x=x, t_x=tx, T=T, t=39.0)
    assert np.all(np.isfinite(ours_alive)) and np.all(np.isfinite(ours_e39))
    np.testing.assert_allclose(ours_alive, ref_alive, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(ours_e39, ref_e39, rtol=1e-6, atol=1e-12)
    heavy = x >= 100
    assert heavy.sum() == 40 and np.all(ours_e39[heavy] >= 0)


def test_loglik_large_x_is_finite():
    x = np.array([0.0, 1.0, 500.0, 5000.0, 50000.0])
    T = np.full(5, 52.0)
    tx = np.array([0.0, 1.0, 0.5, 51.0, 52.0])
    ll = bm.loglik(0.5, 2.0, 0.9, 3.0, x, tx, T)
    assert np.all(np.isfinite(ll))
    # the log-sum-exp equals the naive formula where the naive one is representable
    naive = bm.loglik(0.5, 2.0, 0.9, 3.0, x[:2], tx[:2], T[:2])
    big_a, lr = bm.x_terms(0.5, 2.0, 0.9, 3.0, x[:2])
    direct = big_a + np.log(
        (2.0 + T[:2]) ** -(0.5 + x[:2]) + (x[:2] > 0) * np.exp(lr) * (2.0 + tx[:2]) ** -(0.5 + x[:2])
    )
    np.testing.assert_allclose(naive, direct, rtol=1e-13)


def test_expected_purchases_near_a_equal_one():
    p = dict(r=0.8, alpha=5.0, b=2.0, x=3.0, t_x=10.0, T=30.0, t=20.0)
    at_one = bm.conditional_expected_purchases(a=1.0, **p)
    left = bm.conditional_expected_purchases(a=1.0 - 1e-3, **p)
    right = bm.conditional_expected_purchases(a=1.0 + 1e-3, **p)
    assert np.isfinite(at_one)
    assert at_one == pytest.approx(0.5 * (left + right), rel=1e-6)
    new = bm.expected_purchases_new(0.8, 5.0, np.array([1.0, 1.0 + 5e-5, 1.0 - 1e-3, 1.0 + 1e-3]), 2.0, 20.0)
    assert np.all(np.isfinite(new))
    assert new[0] == pytest.approx(0.5 * (new[2] + new[3]), rel=1e-6)
    # continuous across the interpolation band edge
    slope = (new[3] - new[2]) / 2e-3
    assert new[1] == pytest.approx(new[0] + 5e-5 * slope, rel=1e-7)


def test_expected_new_matches_lifetimes():
    from lifetimes import BetaGeoFitter

    f = BetaGeoFitter()
    f.params_ = pd.Series(MLE)
    t = np.array([1.0, 10.0, 39.0, 78.0])
    np.testing.assert_allclose(
        bm.expected_purchases_new(**MLE, t=t), f.expected_number_of_purchases_up_to_time(t), rtol=1e-9
    )


def test_compressed_equals_uncompressed(rfm):
    rng = np.random.default_rng(0)
    n = len(rfm)
    group = rng.integers(0, 3, n)
    params = {k: np.array([v, v * 1.3, v * 0.7]) for k, v in MLE.items()}
    x, tx, T = (rfm[c].to_numpy() for c in ("frequency", "recency", "T"))
    pat = bm.compress_patterns(group, x, tx, T)
    assert pat.n_patterns < n and pat.weight.sum() == n
    per_pattern = bm.loglik_patterns(params["r"], params["alpha"], params["a"], params["b"], pat)
    full = bm.loglik(*(params[k][group] for k in ("r", "alpha", "a", "b")), x, tx, T)
    assert np.sum(pat.weight * per_pattern) == pytest.approx(full.sum(), abs=1e-9)
    np.testing.assert_allclose(per_pattern[pat.inverse], full, rtol=0, atol=1e-12)


def test_pytensor_backend_same_formula(rfm):
    import pytensor
    import pytensor.tensor as pt

    x, tx, T = (rfm[c].to_numpy() for c in ("frequency", "recency", "T"))
    pat = bm.compress_patterns(np.zeros(len(x), dtype=int), x, tx, T)
    th = pt.dvector("th")
    ll = pt.sum(pat.weight * bm.loglik_patterns(th[0:1], th[1:2], th[2:3], th[3:4], pat, xp=bm.PT))
    f = pytensor.function([th], [ll, pt.grad(ll, th)])
    val, grad = f(np.array([MLE["r"], MLE["alpha"], MLE["a"], MLE["b"]]))
    assert float(val) == pytest.approx(-9582.4, abs=0.1)
    # at the MLE the gradient is ~0 (published values rounded to 3 decimals)
    assert np.all(np.abs(grad) < 60) and np.all(np.isfinite(grad))
