"""Budget allocation across acquisition channels under posterior uncertainty (clvlab.clv.budget)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from clvlab.clv.acquisition import AcquisitionSettings, NewCustomerValue
from clvlab.clv.budget import allocate_budget, customers_acquired
from clvlab.errors import ClvlabInputError

CHANNELS = ["premium", "mass", "dud"]
TRUE_VALUE = np.array([60.0, 24.0, 18.0])
CAC = {"premium": 20.0, "mass": 12.0, "dud": 25.0}


def _ncv(values: np.ndarray) -> NewCustomerValue:
    """A NewCustomerValue holding given per-draw values (draws, channels)."""
    d, k = values.shape
    coords = {"draw": np.arange(d), "channel": CHANNELS[:k]}
    da = xr.DataArray(values, dims=("draw", "channel"), coords=coords)
    st = AcquisitionSettings("channel", 12, "M", 4.35, "W", 0.01, 0.3, "bgnbd", 0.94, 0)
    cum = xr.DataArray(np.repeat(values[:, :, None], 13, axis=2), dims=("draw", "channel", "period"))
    return NewCustomerValue(da, cum, da, da, da, pd.Series(100, index=CHANNELS[:k]), st)


def _posterior(seed: int = 0, n: int = 2000, sd: float = 0.15) -> NewCustomerValue:
    rng = np.random.default_rng(seed)
    return _ncv(TRUE_VALUE * np.exp(rng.normal(0, sd, (n, 3)) - sd**2 / 2))


def test_saturation_curve():
    s = np.array([0.0, 100.0, 1e4])
    np.testing.assert_allclose(customers_acquired(s, 20.0, np.inf), s / 20.0)
    n = customers_acquired(s, 20.0, 300.0)
    np.testing.assert_allclose(n, 300 * (1 - np.exp(-s / 6000.0)), rtol=1e-14)
    assert n[-1] < 300 and customers_acquired(1e-6, 20.0, 300.0) == pytest.approx(1e-6 / 20.0, rel=1e-6)
    # a very large saturation is the fixed CAC
    assert customers_acquired(500.0, 20.0, 1e12) == pytest.approx(25.0, rel=1e-8)


def test_fixed_cac_puts_everything_on_the_best_ratio_and_equals_the_all_in_allocation():
    res = allocate_budget(_posterior(), CAC, 10_000.0)
    a = res.allocation.set_index("channel")
    assert a.loc["premium", "spend"] == pytest.approx(10_000.0, rel=1e-6)
    assert a.loc[["mass", "dud"], "spend"].sum() < 1e-3
    s = res.summary.set_index("strategy")
    assert s.loc["optimal", "expected_net_value"] == pytest.approx(
        s.loc["all on premium", "expected_net_value"], rel=1e-8
    )


def test_nothing_is_spent_when_no_channel_pays():
    res = allocate_budget(_ncv(np.tile([[10.0, 5.0, 8.0]], (50, 1))), CAC, 1000.0)
    assert res.allocation["spend"].sum() < 1e-3 and res.summary.iloc[0]["p_loss"] == 0.0


def test_with_saturation_the_allocation_beats_all_in_under_the_truth():
    """Chosen on the posterior, scored under the true values: the optimal allocation earns more
    than all-in on the best point estimate, meets the KKT conditions, and matches a brute-force grid."""
    sat = {"premium": 400.0, "mass": 3000.0}
    post = _posterior(seed=1)
    res = allocate_budget(post, CAC, 30_000.0, saturation=sat)
    a = res.allocation.set_index("channel")
    truth = _ncv(TRUE_VALUE[None, :])
    c, n_sat = np.array(list(CAC.values())), np.array([400.0, 3000.0, np.inf])

    def true_net(spend: np.ndarray) -> float:
        return float(TRUE_VALUE @ customers_acquired(spend, c, n_sat) - spend.sum())

    opt = a.loc[CHANNELS, "spend"].to_numpy()
    all_in = np.array([30_000.0, 0.0, 0.0])
    assert true_net(opt) > true_net(all_in) + 1000
    # KKT: the channels in use return the same marginal expected value per dollar, >= 1
    ev = post.value.values.mean(0)
    marginal = ev * np.exp(-opt / (c * n_sat)) / c
    used = opt > 1.0
    assert used[:2].all() and not used[2]
    assert marginal[0] == pytest.approx(marginal[1], rel=1e-3) and marginal[0] >= 1 - 1e-6
    # brute force over the two useful channels
    grid = np.linspace(0, 30_000, 601)
    best = max((float(ev @ customers_acquired(np.array([x, y, 0.0]), c, n_sat) - x - y), x, y)
               for x in grid for y in grid if x + y <= 30_000)  # fmt: skip
    assert res.summary.iloc[0]["expected_net_value"] >= best[0] - 1e-6 * abs(best[0])
    assert truth.value.shape == (1, 3)
    # the frontier holds the optimum, the all-in points and a non-empty efficient set
    f = res.frontier
    assert {"optimal", "all on premium", "all on mass", "all on dud"} <= set(f["allocation"])
    assert f["efficient"].any() and f.loc[f["allocation"] == "optimal", "expected_net_value"].iloc[0] >= f[
        "expected_net_value"
    ].max() - 1e-6 * abs(f["expected_net_value"].max())


def test_bad_budget_input_is_reported():
    post = _posterior()
    with pytest.raises(ClvlabInputError, match="below the lowest CAC"):
        allocate_budget(post, CAC, 5.0)
    with pytest.raises(ClvlabInputError) as e:
        allocate_budget(post, CAC, 100.0, saturation={"premium": -3.0, "nowhere": 10.0})
    assert "expected a number of customers > 0" in str(e.value) and "'nowhere', which has no customers" in str(e.value)
    with pytest.raises(ClvlabInputError, match="no CAC for channel 'dud'"):
        allocate_budget(post, {"premium": 20.0, "mass": 12.0}, 100.0)
