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
from test_bgnbd_math import cdnow_sample_rfm

from clvlab.data import SegmentParams, simulate
from clvlab.errors import ClvlabInputError
from clvlab.features import rfm_summary
from clvlab.models.bgnbd import BGNBD

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
    assert m.fit_info_.map.converged
    model = m.model_
    logp = model.compile_logp(jacobian=False)
    # unconstrained point from the stored constrained values (log / identity transforms only)
    point = {}
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        v = m.posterior_[rv.name].values[0, 0]
        point[value.name] = np.log(v) if value.name.endswith("_log__") else v
    best = float(logp(point))
    assert best == pytest.approx(m.fit_info_.map.logp, rel=1e-9)
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
    assert m.fit_info_.sampler == "pymc"
    assert set(m.diagnostics_["parameter"]) >= {"r", "alpha", "a", "b"}
    assert "sample_stats" in m.idata_.children and m.convergence_.divergences == 0
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
        m = BGNBD(pooling="pooled").fit(
            seg_rfm, sampler="numpyro", chains=2, draws=200, tune=200, seed=3, progressbar=False
        )
        mp = BGNBD(pooling="pooled").fit(seg_rfm, method="map", progressbar=False)
    post = m.posterior_
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 200 and m.fit_info_.sampler == "numpyro"
    assert m.fit_info_.device.startswith("cpu:0")  # the JAX device, named
    assert m.convergence_.divergences == 0 and m.convergence_.max_r_hat < 1.05
    for k in ("r", "alpha", "a", "b"):
        draws = post[k].values.ravel()
        assert abs(np.median(draws) - mp.posterior_[k].item()) < 0.5 * draws.std(), k


def _has_gpu() -> bool:
    try:
        import jax

        return bool(jax.devices("gpu"))
    except (ImportError, RuntimeError):
        return False


@pytest.mark.slow
def test_gpu_path_vectorised_chains_on_cpu_jax(seg_rfm):
    """What device='gpu' runs — numpyro's chains vectorised on one JAX device — run on CPU JAX,
    where CI can check it: the same posterior as the MAP, no divergence."""
    pytest.importorskip("numpyro")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short run may warn about ESS
        m = BGNBD(pooling="pooled").fit(seg_rfm, sampler="numpyro", chains=2, draws=200, tune=200, seed=3,
                                        progressbar=False, sampler_kwargs={"nuts_sampler_kwargs": {"chain_method": "vectorized"}})  # fmt: skip
        mp = BGNBD(pooling="pooled").fit(seg_rfm, method="map", progressbar=False)
    assert m.convergence_.divergences == 0 and m.convergence_.max_r_hat < 1.05
    for k in ("r", "alpha", "a", "b"):
        draws = m.posterior_[k].values.ravel()
        assert abs(np.median(draws) - mp.posterior_[k].item()) < 0.5 * draws.std(), k


def test_gpu_device_is_checked_before_any_work(seg_rfm):
    pytest.importorskip("numpyro")
    with pytest.raises(ClvlabInputError, match="device='gpu' needs method='nuts' with sampler='numpyro'"):
        BGNBD(pooling="pooled").fit(seg_rfm, sampler="nutpie", device="gpu")
    with pytest.raises(ClvlabInputError, match="device='tpu': expected one of"):
        BGNBD(pooling="pooled").fit(seg_rfm, sampler="numpyro", device="tpu")
    from clvlab.config import load_config

    with pytest.raises(ClvlabInputError, match="device: gpu needs method: nuts with sampler: numpyro"):
        load_config({"name": "g", "purchase": {"device": "gpu"}})  # the default sampler is nutpie
    assert load_config({"name": "g", "purchase": {"device": "gpu", "sampler": "numpyro"}}).purchase.device == "gpu"
    if not _has_gpu():  # on a machine without a GPU the request fails clearly, naming JAX's devices
        with pytest.raises(ClvlabInputError, match="JAX sees no GPU"):
            BGNBD(pooling="pooled").fit(seg_rfm, sampler="numpyro", device="gpu", chains=1, draws=10, tune=10)


@pytest.mark.slow
@pytest.mark.skipif(
    not _has_gpu(),
    reason="no GPU visible to JAX (CPU-only machine: the GPU path is "
    "checked on CPU JAX by test_gpu_path_vectorised_chains_on_cpu_jax)",
)
def test_numpyro_on_a_gpu(seg_rfm):
    m = BGNBD(pooling="pooled").fit(seg_rfm, sampler="numpyro", device="gpu", chains=2, draws=200, tune=200,
                                    seed=3, progressbar=False)  # fmt: skip
    assert m.fit_info_.device.startswith("gpu:0") and m.convergence_.divergences == 0
