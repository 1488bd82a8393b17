"""Centred / non-centred partial pooling: the rule, the density identity, the BG/NBD pilot.

The two forms must define the same posterior (checked exactly through the change-of-variables
identity, and by sampling both on the same data); the pilot's per-segment standard errors
are checked against an autodiff Hessian and its estimates against lifetimes' per-segment MLE.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from centering_util import assert_mass_matrix_rule, forbid_pilot

from clvlab.data import SegmentParams, simulate
from clvlab.errors import ClvlabInputError
from clvlab.features import rfm_summary
from clvlab.models import bgnbd_math as bm
from clvlab.models.bgnbd import BGNBD, LINK_PARAMS
from clvlab.models.hierarchy import MIN_SEGMENTS_TO_CENTRE, ParamPrior, choose_centering, segment_parameter

# three large, well-separated segments and a tiny one
TRUTH = {
    "north": SegmentParams(r=0.3, alpha=3.0, a=0.6, b=2.0),
    "south": SegmentParams(r=0.8, alpha=8.0, a=1.0, b=4.0),
    "west": SegmentParams(r=0.5, alpha=5.0, a=0.9, b=1.5),
    "tiny": SegmentParams(r=0.5, alpha=5.0, a=0.8, b=2.5),
}
SIZES = {"north": 3000, "south": 2500, "west": 2000, "tiny": 12}


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    sim = simulate(TRUTH, n_customers=SIZES, seed=11, segment_col="region")
    return rfm_summary(sim.transactions, sim.observation_end, "W", segment_cols=["region"])


def _many_segments() -> tuple[dict[str, SegmentParams], dict[str, int]]:
    """MIN_SEGMENTS_TO_CENTRE large segments spread around a population, plus the tiny one."""
    rng = np.random.default_rng(5)
    truth = {
        f"s{i:02d}": SegmentParams(
            r=float(np.exp(rng.normal(np.log(0.5), 0.35))),
            alpha=float(np.exp(rng.normal(np.log(5.0), 0.35))),
            a=float(np.exp(rng.normal(np.log(0.8), 0.3))),
            b=float(np.exp(rng.normal(np.log(2.5), 0.3))),
        )  # fmt: skip
        for i in range(MIN_SEGMENTS_TO_CENTRE)
    }
    sizes = dict.fromkeys(truth, 1500)
    return {**truth, "tiny": TRUTH["tiny"]}, {**sizes, "tiny": SIZES["tiny"]}


@pytest.fixture(scope="module")
def rfm_many() -> pd.DataFrame:
    truth, sizes = _many_segments()
    sim = simulate(truth, n_customers=sizes, seed=12, segment_col="region")
    return rfm_summary(sim.transactions, sim.observation_end, "W", segment_cols=["region"])


LARGE = [f"s{i:02d}" for i in range(MIN_SEGMENTS_TO_CENTRE)]


@pytest.fixture(scope="module")
def estimates(rfm) -> pd.DataFrame:
    return BGNBD(pooling="partial", segment="region").segment_estimates(rfm)


# ---- the rule -------------------------------------------------------------------------
def test_rule_centres_precise_segments_of_a_spread_population():
    rng = np.random.default_rng(0)
    eta = rng.normal(0.0, 0.5, size=(20, 2))
    se = np.column_stack([np.full(20, 0.02), np.full(20, 1.0)])  # precise / vague
    mask = choose_centering(eta, se)
    assert mask[:, 0].all() and not mask[:, 1].any()


def test_rule_keeps_similar_segments_non_centred():
    eta = np.column_stack([np.full(12, -1.4) + np.linspace(-0.01, 0.01, 12)])
    se = np.full((12, 1), 0.06)  # spread explained by the standard errors: tau = 0
    assert not choose_centering(eta, se).any()


def test_rule_mixes_within_a_parameter_and_skips_unidentified_segments():
    eta = np.array([[-1.0], [0.0], [1.0], [0.5], [-0.5]])
    se = np.array([[0.01], [0.01], [0.9], [np.inf], [0.01]])
    mask = choose_centering(eta, se, min_segments=3)
    assert mask[:, 0].tolist() == [True, True, False, False, True]


def test_rule_needs_enough_identified_segments_and_matching_shapes():
    assert not choose_centering(np.array([[0.0], [3.0]]), np.array([[0.01], [0.01]]), min_segments=1).any()
    eta, se = np.linspace(-1, 1, 12)[:, None], np.full((12, 1), 0.01)  # spread out, precise
    n = MIN_SEGMENTS_TO_CENTRE
    assert not choose_centering(eta[: n - 1], se[: n - 1]).any()
    assert choose_centering(eta[:n], se[:n]).all()
    se[0] = np.inf  # one unidentified: n - 1 identified are too few
    assert not choose_centering(eta[:n], se[:n]).any()
    with pytest.raises(ValueError, match="same"):
        choose_centering(np.zeros((3, 2)), np.zeros((3, 1)))


# ---- the two forms are the same density ------------------------------------------------
def _density(mask: np.ndarray) -> tuple[pm.Model, pt.TensorVariable]:
    with pm.Model(coords={"segment": list("abcd")}) as model:
        theta = segment_parameter(ParamPrior("t", "log", loc=0.3, scale=1.0, sigma_scale=0.7), "partial", centered=mask)
    return model, theta


@pytest.mark.parametrize("mask", [[False] * 4, [True] * 4, [True, False, True, False]])
def test_centred_and_non_centred_are_the_same_density(mask):
    """p_centred(eta) = p_noncentred(z) / sigma per centred segment (eta = mu + sigma z)."""
    mask = np.asarray(mask)
    ref, _ = _density(np.zeros(4, bool))
    mixed, theta = _density(mask)
    mu, sigma = 0.2, 0.45
    z = np.array([0.3, -1.2, 0.8, 2.0])
    eta = mu + sigma * z
    ref_point = {"t_mu": mu, "t_sigma_log__": np.log(sigma), "t_z": z}
    free = "t_z" if not mask.any() else "t_raw"
    point = {"t_mu": mu, "t_sigma_log__": np.log(sigma), free: np.where(mask, eta, z)}
    lp_ref = float(ref.compile_logp()(ref_point))
    lp = float(mixed.compile_logp()(point))
    assert lp - lp_ref == pytest.approx(-mask.sum() * np.log(sigma), abs=1e-10)
    (theta_v,) = mixed.replace_rvs_by_values([theta])
    got = pytensor.function(mixed.value_vars, theta_v, on_unused_input="ignore")(
        *(point[v.name] for v in mixed.value_vars)
    )
    np.testing.assert_allclose(got, np.exp(eta), rtol=1e-12)


# ---- the BG/NBD pilot ------------------------------------------------------------------
def test_segment_estimates_standard_errors_match_an_autodiff_hessian(rfm, estimates):
    """Finite-difference curvature == pytensor's exact Hessian of the segment log-likelihood."""
    v = pt.dvector("v")  # log r, log alpha, logit phi, log kappa
    r, alpha, phi, kappa = pt.exp(v[0]), pt.exp(v[1]), pt.sigmoid(v[2]), pt.exp(v[3])
    for seg in ("north", "west"):
        d = rfm[rfm["region"] == seg]
        ll = pt.sum(bm.loglik(r, alpha, phi * kappa, (1 - phi) * kappa, d["frequency"].to_numpy(),
                              d["recency"].to_numpy(), d["T"].to_numpy(), xp=bm.PT))  # fmt: skip
        hess = pytensor.function([v], pytensor.gradient.hessian(ll, v))
        row = estimates.set_index("segment").loc[seg]
        h = hess(np.array([row[f"{k}_eta"] for k in LINK_PARAMS]))
        se = np.sqrt(np.diag(np.linalg.inv(-h)))
        np.testing.assert_allclose([row[f"{k}_se"] for k in LINK_PARAMS], se, rtol=1e-4)


def test_segment_estimates_agree_with_lifetimes_per_segment_mle(rfm, estimates):
    from lifetimes import BetaGeoFitter

    est = estimates.set_index("segment")
    for seg in ("north", "south", "west"):
        d = rfm[rfm["region"] == seg]
        p = BetaGeoFitter().fit(d["frequency"], d["recency"], d["T"]).params_
        mle = [np.log(p["r"]), np.log(p["alpha"]), np.log(p["a"] / p["b"]), np.log(p["a"] + p["b"])]
        got = [est.loc[seg, f"{k}_eta"] for k in LINK_PARAMS]
        se = [est.loc[seg, f"{k}_se"] for k in LINK_PARAMS]
        # the weak priors of the unpooled MAP move it by a small fraction of a standard error
        assert np.all(np.abs(np.subtract(got, mle)) < 0.1 * np.asarray(se)), (seg, got, mle, se)


def test_auto_centres_the_large_segments_only(rfm_many):
    m = BGNBD(pooling="partial", segment="region")
    est = m.segment_estimates(rfm_many).set_index("segment")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.build_model(rfm_many)
    se_cols = [f"{k}_se" for k in LINK_PARAMS]
    # 12 customers say little: each standard error several times the large segments' largest
    tiny, large = est.loc["tiny", se_cols].to_numpy(), est.loc[LARGE, se_cols].to_numpy().max(axis=0)
    assert np.all(tiny > 3 * large), (tiny, large)
    for k in ("r", "alpha"):  # the large segments differ by far more than their standard errors
        assert m.centered_[k] == LARGE
    assert all("tiny" not in v for v in m.centered_.values())
    # a non-centred segment left: nutpie keeps its diagonal mass matrix; none left: low rank
    assert_mass_matrix_rule(m, LINK_PARAMS)


def test_no_pilot_with_few_segments(rfm, monkeypatch):
    """Three large segments and a tiny one are too few to centre (MIN_SEGMENTS_TO_CENTRE): no pilot fit."""
    forbid_pilot(monkeypatch, BGNBD)
    m = BGNBD(pooling="partial", segment="region")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.build_model(rfm)
    assert m.centered_ == {} and m._nutpie_adaptation() == "diag"


def test_parameterization_is_validated_and_map_stays_non_centred(rfm):
    with pytest.raises(ClvlabInputError, match="parameterization"):
        BGNBD(pooling="partial", segment="region", parameterization="centred").fit(rfm, method="map")
    m = BGNBD(pooling="partial", segment="region", parameterization="centered").fit(
        rfm, method="map", progressbar=False
    )
    assert m.centered_ == {} and "r_z" in m.posterior_


@pytest.mark.slow
def test_centred_and_non_centred_fits_agree(rfm_many, tmp_path):
    """Same posterior either way (means within Monte Carlo error); the choice is saved with the run.

    Monte Carlo error from each fit's own bulk ESS. Measured on these data (seeds 3-6): no
    divergence either way, 14.5 vs 45 leapfrog steps per draw (mixed vs non-centred). With
    fewer segments the mixed form did worse (MIN_SEGMENTS_TO_CENTRE).
    """
    kw = dict(chains=2, draws=300, seed=3, progressbar=False)
    fits = {}
    for p in ("noncentered", "auto"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[p] = BGNBD(pooling="partial", segment="region", parameterization=p).fit(rfm_many, **kw)
    auto = fits["auto"]
    assert fits["noncentered"].fit_info_.nutpie_adaptation == auto.fit_info_.nutpie_adaptation == "diag"
    assert auto.fit_info_.centered["r"] == LARGE and "r_raw" in auto.posterior_
    assert [f.convergence_.divergences for f in fits.values()] == [0, 0]
    tables = [fits[p].summary().set_index(["parameter", "segment"]) for p in fits]
    for k in ("r", "alpha", "a", "b"):
        for seg in LARGE:
            rows = [t.loc[(k, seg)] for t in tables]
            assert min(row["ess_bulk"] for row in rows) > 30, (k, seg)  # enough for an MCSE estimate
            mcse = np.hypot(*(row["sd"] / np.sqrt(row["ess_bulk"]) for row in rows))
            assert abs(rows[0]["mean"] - rows[1]["mean"]) < 4 * mcse, (k, seg)
    auto.save(tmp_path / "run")
    loaded = BGNBD.load(tmp_path / "run")
    assert loaded.centered_ == auto.centered_ and loaded.parameterization == "auto"


def test_mean_centred_form_is_the_same_model():
    """Mean-centred (m, sigma, zero-sum z, u) vs plain non-centred (mu, sigma, z): an exact change of variables.

    With eta = mu + sigma z, m = mean(eta), z' = (eta - m) / sigma and
    u = (mu - w m - (1-w) loc) sqrt(G s^2 + sigma^2) / (sigma s), the log densities differ by
    log|d(m, u)/d(mu, sqrt(G) mean(z))| = log(sqrt(sigma^2 + G s^2) / (sqrt(G) s)) at every point.
    """
    prior = ParamPrior("t", "log", loc=0.3, scale=1.0, sigma_scale=0.7)
    coords = {"segment": list("abcd")}
    with pm.Model(coords=coords) as plain:
        segment_parameter(prior, "partial")
    with pm.Model(coords=coords) as centred:
        theta = segment_parameter(prior, "partial", mean_centred=True)
    assert {v.name for v in centred.free_RVs} == {"t_sigma", "t_center", "t_z", "t_u"}
    lp_plain, lp_centred = plain.compile_logp(), centred.compile_logp()
    z_rv = next(v for v in centred.free_RVs if v.name == "t_z")
    forward = centred.rvs_to_transforms[z_rv].forward
    (theta_v, mu_v) = centred.replace_rvs_by_values([theta, centred["t_mu"]])
    values = pytensor.function(centred.value_vars, [theta_v, mu_v], on_unused_input="ignore")
    rng = np.random.default_rng(4)
    G, s, loc = 4, prior.scale, prior.loc
    for _ in range(6):
        mu, sigma, z = rng.normal(0.3, 1.0), np.exp(rng.normal(-1.0, 1.0)), rng.normal(size=G)
        eta = mu + sigma * z
        m = eta.mean()
        w = G * s**2 / (G * s**2 + sigma**2)
        u = (mu - w * m - (1 - w) * loc) * np.sqrt(G * s**2 + sigma**2) / (sigma * s)
        p_plain = {"t_mu": mu, "t_sigma_log__": np.log(sigma), "t_z": z}
        p_centred = {"t_sigma_log__": np.log(sigma), "t_center": m, "t_u": u,
                     "t_z_zerosum__": forward(pt.as_tensor((eta - m) / sigma)).eval()}  # fmt: skip
        diff = float(lp_plain(p_plain)) - float(lp_centred(p_centred))
        assert diff == pytest.approx(np.log(np.sqrt(sigma**2 + G * s**2) / (np.sqrt(G) * s)), abs=1e-9)
        got_theta, got_mu = values(*(p_centred[v.name] for v in centred.value_vars))
        np.testing.assert_allclose(got_theta, np.exp(eta), rtol=1e-12)
        assert float(got_mu) == pytest.approx(mu, abs=1e-12)
