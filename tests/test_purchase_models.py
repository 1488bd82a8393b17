"""MBGNBD and ParetoNBD estimators: published CDNOW estimates, NUTS, predictions, save/load,
recovery of simulated segment parameters under partial pooling, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_bgnbd_math import cdnow_sample_rfm

from clvlab.data import SegmentParams, simulate
from clvlab.errors import ClvlabInputError, ConvergenceWarning
from clvlab.features import rfm_summary
from clvlab.models import mbgnbd_math as mm
from clvlab.models import pareto_nbd_math as pm_
from clvlab.models.mbgnbd import MBGNBD
from clvlab.models.pareto_nbd import ParetoNBD

pytestmark = pytest.mark.slow

# MLE on the CDNOW 1/10 sample (39-week calibration, weeks = days/7). Pareto/NBD: r, alpha, s,
# beta and the log-likelihood -9594.98 as in the BTYD R package's vignette (Fader, Hardie & Lee
# 2005 report 0.55, 10.58, 0.61, 11.67); MBG/NBD: as BTYDplus's mbgcnbd on the same data (k = 1).
PNBD_MLE = dict(r=0.5534, alpha=10.5802, s=0.6061, beta=11.6562)
PNBD_LL = -9594.98
MBG_MLE = dict(r=0.525, alpha=6.183, a=0.891, b=1.614)
WIDE = {"scale": 10.0}


@pytest.fixture(scope="module")
def rfm():
    return cdnow_sample_rfm()


@pytest.mark.parametrize(("cls", "mle", "links"), [
    (ParetoNBD, PNBD_MLE, ("r", "alpha", "s", "dropout_rate")),
    (MBGNBD, MBG_MLE, ("r", "purchase_rate", "phi", "kappa")),
], ids=["pareto_nbd", "mbgnbd"])  # fmt: skip
def test_flat_prior_map_reproduces_the_published_mle(rfm, cls, mle, links):
    m = cls(pooling="pooled", priors={k: WIDE for k in links}).fit(rfm, method="map", progressbar=False)
    est = m.summary().set_index("parameter")["mean"]
    for k, v in mle.items():
        assert est[k] == pytest.approx(v, rel=0.01), k
    if cls is ParetoNBD:
        ll = pm_.loglik(*(est[k] for k in ("r", "alpha", "s", "beta")), rfm["frequency"], rfm["recency"], rfm["T"])
        assert ll.sum() == pytest.approx(PNBD_LL, abs=0.05)


@pytest.fixture(scope="module")
def pooled_fits(rfm):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return {cls.model_name: cls(pooling="pooled").fit(rfm, chains=2, draws=1000, seed=4, progressbar=False)
                for cls in (ParetoNBD, MBGNBD)}  # fmt: skip


@pytest.mark.parametrize("name", ["pareto_nbd", "mbgnbd"])
def test_pooled_nuts_on_cdnow(pooled_fits, name):
    """Clean sampling (ConvergenceWarning raised as an error in the fixture), posterior near the MLE."""
    m = pooled_fits[name]
    mle = PNBD_MLE if name == "pareto_nbd" else MBG_MLE
    s = m.summary().set_index("parameter")
    for k, v in mle.items():
        assert s.loc[k, "hdi_low"] < v < s.loc[k, "hdi_high"], k
        assert abs(np.median(m.posterior_[k].values) - v) < 0.5 * s.loc[k, "sd"], k
    assert m.convergence_.divergences == 0


@pytest.mark.parametrize("name", ["pareto_nbd", "mbgnbd"])
def test_predictions_equal_the_math_per_draw(pooled_fits, rfm, name):
    m = pooled_fits[name]
    module = pm_ if name == "pareto_nbd" else mm
    keys = m.params
    post = {k: m.posterior_[k].values[:, ::50, 0] for k in keys}  # (chain, draw) at every 50th draw
    sub = rfm.iloc[:200]
    x, tx, T = (sub[c].to_numpy() for c in ("frequency", "recency", "T"))
    p = [post[k][..., None] for k in keys]
    np.testing.assert_allclose(m.p_alive(sub, thin=50).values, module.p_alive(*p, x, tx, T), rtol=1e-12)
    np.testing.assert_allclose(m.expected_purchases(39.0, sub, thin=50).values,
                               module.conditional_expected_purchases(*p, x, tx, T, 39.0), rtol=1e-10)  # fmt: skip
    np.testing.assert_allclose(m.log_likelihood(sub, thin=50).values, module.loglik(*p, x, tx, T), rtol=1e-12)
    pn = m.prob_purchases([0, 1, 2], 39.0, sub, thin=50)
    assert pn.dims == ("chain", "draw", "customer_id", "n")
    np.testing.assert_allclose(pn.sel(n=0).values, m.p_no_purchase(39.0, sub, thin=50).values, rtol=1e-10)
    new = m.expected_purchases_new([1.0, 39.0])
    assert new.dims == ("chain", "draw", "segment", "t") and np.all(np.diff(new.values, axis=-1) > 0)


def test_mbgnbd_one_time_buyers_can_be_dead_and_rank_the_holdout(pooled_fits, rfm):
    """MBG/NBD's point: one-time buyers get P(alive) < 1 (BG/NBD gives them exactly 1)."""
    pa = pooled_fits["mbgnbd"].p_alive(rfm).mean(("chain", "draw")).to_series()
    one_timers = (rfm.set_index("customer_id")["frequency"] == 0).reindex(pa.index)
    assert pa[one_timers].max() < 0.99


@pytest.mark.parametrize("name", ["pareto_nbd", "mbgnbd"])
def test_save_load_roundtrip(pooled_fits, rfm, tmp_path, name):
    m = pooled_fits[name]
    m.save(tmp_path / name)
    back = type(m).load(tmp_path / name)
    np.testing.assert_array_equal(back.p_alive(thin=100).values, m.p_alive(rfm, thin=100).values)
    with pytest.raises(ClvlabInputError, match="expected"):
        (MBGNBD if name == "pareto_nbd" else ParetoNBD).load(tmp_path / name)


def test_pareto_nbd_refuses_the_jax_samplers(rfm):
    with pytest.raises(ClvlabInputError, match="no JAX implementation"):
        ParetoNBD(pooling="pooled").fit(rfm.iloc[:300], sampler="numpyro", chains=1, draws=10, progressbar=False)


def test_bad_settings_and_input_are_clear_errors(rfm):
    with pytest.raises(ClvlabInputError, match="priors: unknown parameters"):
        ParetoNBD(priors={"phi": {"loc": 0.0}}).fit(rfm, method="map")
    bad = rfm.iloc[:50].copy()
    bad.loc[bad.index[0], "recency"] = -1.0
    with pytest.raises(ClvlabInputError, match="recency"):
        MBGNBD(pooling="pooled").fit(bad, method="map")


# ---- partial pooling recovers simulated segment parameters ----------------------------------
PNBD_TRUTH = {"s0": (0.35, 5.0, 0.6, 10.0), "s1": (0.6, 8.0, 0.8, 14.0), "s2": (0.45, 6.0, 0.5, 8.0),
              "s3": (0.3, 3.5, 0.7, 12.0), "s4": (0.55, 7.0, 0.4, 6.0), "s5": (0.4, 4.5, 0.9, 16.0)}  # fmt: skip
MBG_TRUTH = {"s0": (0.35, 5.0, 0.8, 2.5), "s1": (0.6, 8.0, 1.2, 3.5), "s2": (0.45, 6.0, 0.6, 2.0),
             "s3": (0.3, 3.5, 0.9, 2.8), "s4": (0.55, 7.0, 0.7, 3.0), "s5": (0.4, 4.5, 1.1, 2.2)}  # fmt: skip
SIZES = {"s0": 1600, "s1": 900, "s2": 1200, "s3": 600, "s4": 400, "s5": 800}
RECOVERY_SEEDS = (11, 12)


def _recovery_fit(cls, seed, chains=2, draws=400, tune=400):  # type: ignore[no-untyped-def]
    """The simulated six-segment business, fitted partially pooled; (model, intervals covering, intervals).

    Also run over many seeds by ``benchmarks/seed_margins.py recovery_pareto_nbd`` (and ``_mbgnbd``)."""
    pareto = cls is ParetoNBD
    truth = PNBD_TRUTH if pareto else MBG_TRUTH
    names = ("r", "alpha", "s", "beta") if pareto else ("r", "alpha", "a", "b")
    segs = {g: SegmentParams(**dict(zip(names, v, strict=True))) for g, v in truth.items()}
    sim = simulate(segs, n_customers=SIZES, acquisition_days=84, observation_days=364, time_unit="W", seed=seed,
                   process=cls.model_name)  # fmt: skip
    data = rfm_summary(sim.transactions, sim.observation_end, "W", segment_cols=["channel"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = cls(pooling="partial", segment="channel").fit(data, seed=seed, chains=chains, draws=draws,
                                                          tune=tune, progressbar=False)  # fmt: skip
    hit = total = 0
    for g, values in truth.items():
        for k, v in zip(names, values, strict=True):
            lo, hi = np.quantile(m.posterior_[k].sel(segment=g).values.ravel(), [0.05, 0.95])
            hit += lo <= v <= hi
            total += 1
    return m, hit, total


@pytest.mark.parametrize("cls", [ParetoNBD, MBGNBD], ids=["pareto_nbd", "mbgnbd"])
def test_partial_pooling_recovers_simulated_segment_parameters(cls):
    """90% intervals of the 6 segments x 4 parameters over two seeds cover >= 35 of the 48 truths.

    The bounds are set from Pareto/NBD's fit measured over 20 seeds (another CPU's chains are, in
    effect, other seeds; ``python benchmarks/seed_margins.py recovery_pareto_nbd --draws 400``):
    - coverage per fit: mean 21.45 of 24 (89%), sd 2.16 (the binomial's would be 1.47: the
      intervals of one fit share a population), range 18-24. Two fits below 35 of 48: about 0.3%
      (normal approximation); the earlier bound, 80% (39 of 48), failed 15 of the 190 pairs of
      these fits (8%). A fit that does not recover the segments (a wrong likelihood or a broken
      hierarchy) covers far fewer.
    - max R-hat of 2 x 400 draws: 1.008-1.063, above 1.05 on 2 of 20 (so the earlier bound 1.05
      failed on a machine whose chains differed); (R-hat - 1) is near log-normal (geometric mean
      0.018, log sd 0.52), which puts 1.1 at about 5e-4 a fit. Stuck or disagreeing chains give
      far more. Bulk ESS 45-205 (Pareto/NBD's (s, beta) are weakly identified); no divergence.
    """
    hits = total = 0
    for seed in RECOVERY_SEEDS:
        m, hit, n = _recovery_fit(cls, seed)
        hits, total = hits + hit, total + n
        assert m.convergence_.divergences <= 5
        assert m.convergence_.max_r_hat < 1.1, m.convergence_.describe()
    assert hits >= 35, f"{hits}/{total}"
