"""BayesianEstimator fit paths beyond nutpie: the MAP optimiser and pm.sample's own NUTS.

Small data and few draws: these check the plumbing (the point returned is the mode, the
constrained values and deterministics are mapped back, pymc's sampler output is usable),
not posterior accuracy (test_bgnbd_model.py does that with nutpie).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from clvlab.data import SegmentParams, simulate
from clvlab.features import rfm_summary
from clvlab.models.bgnbd import BGNBD

from test_bgnbd_math import cdnow_sample_rfm

TRUTH = {
    "big": SegmentParams(r=0.5, alpha=4.0, a=0.8, b=2.5),
    "small": SegmentParams(r=0.3, alpha=6.0, a=1.2, b=3.0),
}


@pytest.fixture(scope="module")
def seg_rfm() -> pd.DataFrame:
    sim = simulate(TRUTH, n_customers={"big": 600, "small": 150}, seed=5, segment_col="channel")
    return rfm_summary(sim.transactions, sim.observation_end, "W", segment_cols=["channel"])


@pytest.fixture(scope="module")
def partial_map(seg_rfm) -> BGNBD:
    return BGNBD(pooling="partial", segment="channel").fit(seg_rfm, method="map", progressbar=False)


def test_map_point_is_a_local_maximum(partial_map):
    m = partial_map
    assert m.fit_info_["map_converged"]
    model = m.model_
    logp = model.compile_logp(jacobian=False)
    # unconstrained point from the stored constrained values (log / identity transforms only)
    point = {}
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        v = m.posterior_[rv.name].values[0, 0]
        point[value.name] = np.log(v) if value.name.endswith("_log__") else v
    best = float(logp(point))
    assert best == pytest.approx(m.fit_info_["map_logp"], rel=1e-9)
    rng = np.random.default_rng(0)
    for _ in range(20):
        moved = {k: v + rng.normal(0.0, 0.02, np.shape(v)) for k, v in point.items()}
        assert float(logp(moved)) < best


def test_map_maps_back_constrained_values_and_deterministics(partial_map):
    post = partial_map.posterior_
    assert post.sizes["chain"] == 1 and post.sizes["draw"] == 1
    assert list(post["r"].coords["segment"].values) == ["big", "small"]
    np.testing.assert_allclose(post["a"], post["phi"] * post["kappa"], rtol=1e-12)
    np.testing.assert_allclose(post["b"], (1 - post["phi"]) * post["kappa"], rtol=1e-12)
    eta = post["r_mu"] + post["r_sigma"] * post["r_z"]
    np.testing.assert_allclose(post["r"], np.exp(eta), rtol=1e-12)
    assert post["r_sigma"].item() > 0


def test_map_predictions_work(partial_map, seg_rfm):
    ey = partial_map.expected_purchases(10.0)
    assert ey.dims == ("chain", "draw", "customer_id") and ey.shape == (1, 1, len(seg_rfm))
    assert np.all(np.isfinite(ey.values)) and np.all(ey.values >= 0)


@pytest.mark.slow
def test_pymc_sampler_path():
    rfm = cdnow_sample_rfm()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short run may warn about ESS
        m = BGNBD(pooling="pooled").fit(rfm, sampler="pymc", chains=2, draws=150, tune=150, seed=2, progressbar=False)
        mp = BGNBD(pooling="pooled").fit(rfm, method="map", progressbar=False)
    post = m.posterior_
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 150
    assert m.fit_info_["sampler"] == "pymc"
    assert set(m.diagnostics_["parameter"]) >= {"r", "alpha", "a", "b"}
    assert "sample_stats" in m.idata_.children and m.convergence_["divergences"] == 0
    for k in ("r", "alpha", "a", "b"):
        draws = post[k].values.ravel()
        # the CDNOW posterior is near-normal: its mean lies within a fraction of an sd of the mode
        assert abs(draws.mean() - mp.posterior_[k].item()) < 0.5 * draws.std(), k
    assert m.expected_purchases(4.0).shape == (2, 150, len(rfm))


@pytest.mark.slow
def test_numpyro_sampler_path(seg_rfm):
    """numpyro runs the model through pytensor's JAX backend (the fused likelihood op's JAX form)."""
    pytest.importorskip("numpyro")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short run may warn about ESS
        m = BGNBD(pooling="pooled").fit(seg_rfm, sampler="numpyro", chains=2, draws=200, tune=200, seed=3, progressbar=False)
        mp = BGNBD(pooling="pooled").fit(seg_rfm, method="map", progressbar=False)
    post = m.posterior_
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 200 and m.fit_info_["sampler"] == "numpyro"
    assert m.convergence_["divergences"] == 0 and m.convergence_["max_r_hat"] < 1.05
    for k in ("r", "alpha", "a", "b"):
        draws = post[k].values.ravel()
        assert abs(np.median(draws) - mp.posterior_[k].item()) < 0.5 * draws.std(), k
