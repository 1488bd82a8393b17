"""Segments a fit did not see: a population draw per posterior draw, for every model family
(clvlab.models.new_segments). No sampling: posteriors are built by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from clvlab.errors import ClvlabInputError
from clvlab.models.bgnbd import BGNBD
from clvlab.models.gamma_gamma import GammaGamma
from clvlab.models.mbgnbd import MBGNBD
from clvlab.models.nbd import NBD
from clvlab.models.pareto_nbd import ParetoNBD

# natural parameters -> the sampled link-scale ones, written out per model (the inverse of _natural)
TO_LINK = {
    BGNBD: lambda p: {"r": np.log(p["r"]), "alpha": np.log(p["alpha"]), "phi": _logit(p["a"] / (p["a"] + p["b"])),
                      "kappa": np.log(p["a"] + p["b"])},
    MBGNBD: lambda p: {"r": np.log(p["r"]), "purchase_rate": np.log(p["r"] / p["alpha"]),
                       "phi": _logit(p["a"] / (p["a"] + p["b"])), "kappa": np.log(p["a"] + p["b"])},
    ParetoNBD: lambda p: {"r": np.log(p["r"]), "alpha": np.log(p["alpha"]), "s": np.log(p["s"]),
                          "dropout_rate": np.log(p["s"] / p["beta"])},
    NBD: lambda p: {"r": np.log(p["r"]), "alpha": np.log(p["alpha"])},
    GammaGamma: lambda p: {"p": np.log(p["p"]), "q_minus_1": np.log(p["q"] - 1),
                           "mean_spend": np.log(p["p"] * p["gamma"] / (p["q"] - 1))},
}  # fmt: skip


def _logit(x):
    return np.log(x) - np.log1p(-x)


def _model(cls, pooling: str, mu: dict[str, float], sigma: dict[str, float]):
    """A fitted-looking model: segments a, b with fixed natural parameters, one posterior draw of mu, sigma."""
    m = cls(pooling=pooling, segment="seg")
    m.segments_ = ["a", "b"]
    rng = np.random.default_rng(0)
    link = {k: mu[k] + 0.1 * rng.standard_normal(2) for k in cls.link_params}
    natural = m._natural({k: np.exp(v) if m.default_priors[k].link == "log" else 1 / (1 + np.exp(-v))
                          for k, v in link.items()})  # fmt: skip
    dims = ("chain", "draw", "segment")
    data = {k: (dims, np.asarray(natural[k], dtype=float)[None, None, :]) for k in cls.params}
    data |= {f"{k}_mu": (("chain", "draw"), [[mu[k]]]) for k in cls.link_params}
    data |= {f"{k}_sigma": (("chain", "draw"), [[sigma[k]]]) for k in cls.link_params}
    m.posterior_ = xr.Dataset(data, coords={"chain": [0], "draw": [0], "segment": ["a", "b"]})
    return m


def _mu_sigma(cls) -> tuple[dict[str, float], dict[str, float]]:
    mu = {k: (0.3 if cls.default_priors[k].link == "logit" else 0.5 + 0.4 * i) for i, k in enumerate(cls.link_params)}
    sigma = {k: 0.2 + 0.1 * i for i, k in enumerate(cls.link_params)}
    return mu, sigma


@pytest.mark.parametrize("cls", list(TO_LINK), ids=lambda c: c.model_name)
def test_a_new_segment_is_a_draw_from_the_population(cls) -> None:
    """3,000 new segments from one posterior draw: each link-scale parameter must be Normal(mu, sigma).
    The z-scores' mean is within 5 / sqrt(n) of 0 and their sd within 0.1 of 1 (both beyond 5
    standard errors: false-alarm rate below 1e-6 per parameter)."""
    mu, sigma = _mu_sigma(cls)
    m = _model(cls, "partial", mu, sigma)
    new = [f"n{i}" for i in range(3000)]
    post = m.segment_posterior(["a", *new], seed=1)
    assert list(post["segment"].values) == ["a", "b", *new] and set(post.data_vars) == set(cls.params)
    for k in cls.params:  # the fitted segments are untouched
        np.testing.assert_array_equal(post[k].sel(segment=["a", "b"]).values, m.posterior_[k].values)
    eta = TO_LINK[cls]({k: post[k].sel(segment=new).values.ravel() for k in cls.params})
    for k, v in eta.items():
        z = (v - mu[k]) / sigma[k]
        assert abs(z.mean()) < 5 / math.sqrt(len(z)) and abs(z.std() - 1) < 0.1, k
    xr.testing.assert_equal(post, m.segment_posterior(["a", *new], seed=1))  # reproducible from the seed
    assert not np.array_equal(post[cls.params[0]].values, m.segment_posterior(new, seed=2)[cls.params[0]].values)


@pytest.mark.parametrize("cls", list(TO_LINK), ids=lambda c: c.model_name)
def test_pooled_shares_the_one_set_and_unpooled_refuses(cls) -> None:
    mu, sigma = _mu_sigma(cls)
    m = _model(cls, "pooled", mu, sigma)
    post = m.segment_posterior(["z"])
    for k in cls.params:
        assert post[k].sel(segment="z").item() == m.posterior_[k].sel(segment="a").item()
    m.pooling = "unpooled"
    with pytest.raises(ClvlabInputError, match=rf"\['z'\] of column 'seg' are not in the fit: an unpooled "
                                               rf"{cls.model_name} model has no population"):  # fmt: skip
        m.segment_posterior(["z"])


def test_with_segments_predicts_for_the_new_segment_and_leaves_the_others() -> None:
    mu, sigma = _mu_sigma(BGNBD)
    m = _model(BGNBD, "partial", mu, sigma)
    rfm = pd.DataFrame({"customer_id": ["1", "2", "3"], "frequency": [2.0, 0.0, 3.0], "recency": [10.0, 0.0, 20.0],
                        "T": [30.0, 12.0, 25.0], "seg": ["a", "new", "b"]})  # fmt: skip
    with pytest.raises(ClvlabInputError, match=r"segment\(s\) \['new'\] not in the fit"):
        m.p_alive(rfm)
    assert m.new_segments(rfm["seg"]) == ["new"]
    wide = m.with_segments(rfm["seg"], seed=3)
    assert wide.segments_ == ["a", "b", "new"] and wide.new_segments_ == ["new"] and m.segments_ == ["a", "b"]
    got = wide.p_alive(rfm).values[0, 0]
    assert np.all((got > 0) & (got <= 1))
    np.testing.assert_array_equal(got[[0, 2]], m.p_alive(rfm.iloc[[0, 2]]).values[0, 0])
    assert "r_mu" in wide.posterior_ and "r" in wide.posterior_ and wide.data_ is None
