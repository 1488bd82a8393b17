"""Acquisition budget allocation under posterior uncertainty.

Spending S_g on channel g acquires n_g(S_g) new customers. With a fixed CAC c_g, n = S / c.
A channel saturates as it grows: the documented curve here is the exponential saturation

    n_g(S) = N_g (1 - exp(-S / (c_g N_g)))

with c_g the CAC of the first customers (the marginal CAC at S = 0) and N_g the most customers
the channel can bring (``saturation``); its marginal CAC c_g exp(S / (c_g N_g)) rises with
spend, and N_g -> inf gives the fixed CAC back. Each new customer is worth V_g (per posterior
draw, :func:`clvlab.clv.new_customer_value`), so an allocation S earns, per draw,

    NV(S) = sum_g V_g n_g(S_g) - sum_g S_g

:func:`allocate_budget` maximises the posterior mean of NV over S >= 0, sum S <= B (a concave
problem, solved exactly by water-filling: :func:`_water_fill`), then reports its risk across draws — the 5%
quantile of NV and P(NV < 0) — next to the all-in allocation on the channel with the best
point estimate (posterior mean value / CAC) and the frontier of expected value against the 5%
quantile over random allocations (a seeded Dirichlet sample of the simplex, plus the optimum
and every all-in allocation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.optimize as so

from ..errors import ClvlabInputError
from .acquisition import NewCustomerValue
from .cac import CAC, cac_by_segment

__all__ = ["BudgetAllocation", "allocate_budget", "customers_acquired"]

RISK_QUANTILE = 0.05
FRONTIER_SAMPLES = 2000


def customers_acquired(spend: np.ndarray, cac: np.ndarray, saturation: np.ndarray) -> np.ndarray:
    """n(S) = N (1 - exp(-S / (c N))) per channel (module docstring); S / c where N is inf.

    Parameters
    ----------
    spend, cac, saturation : ndarray
        Broadcast against each other; ``saturation`` may hold inf (fixed CAC).

    Returns
    -------
    ndarray
    """
    spend, cac, sat = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (spend, cac, saturation)))
    finite = np.isfinite(sat)
    safe = np.where(finite, sat, 1.0)
    return np.where(finite, safe * -np.expm1(-spend / (cac * safe)), spend / cac)


@dataclass(frozen=True)
class BudgetAllocation:
    """The chosen allocation, its risk, the all-in alternative and the frontier.

    Attributes
    ----------
    allocation : DataFrame
        Per channel: spend, share, customers (expected n), value_mean (E[V]), and the HDI-free
        5%-95% interval of the channel's net contribution V n - S.
    summary : DataFrame
        One row per strategy ("optimal", "all on <channel>" for the best point estimate):
        budget spent, expected net value, its 5% quantile, P(loss).
    frontier : DataFrame
        Random allocations and the named strategies: expected net value and its 5% quantile,
        a flag for the upper-left (efficient) frontier.
    net_draws : ndarray
        Net value per draw of the optimal allocation.
    """

    allocation: pd.DataFrame
    summary: pd.DataFrame
    frontier: pd.DataFrame
    net_draws: np.ndarray


def _net(values: np.ndarray, spend: np.ndarray, cac: np.ndarray, sat: np.ndarray) -> np.ndarray:
    """Net value per draw of allocations: values (draws, channels), spend (..., channels) -> (..., draws)."""
    n = customers_acquired(spend, cac, sat)  # (..., channels)
    return n @ values.T - spend.sum(-1, keepdims=True)


def _water_fill(ev: np.ndarray, c: np.ndarray, sat: np.ndarray, budget: float) -> np.ndarray:
    """argmax_S sum_g ev_g n_g(S_g) - sum S_g subject to S >= 0, sum S <= budget, exactly.

    The problem is concave and separable, so at the optimum every channel in use returns the
    same marginal expected value per unit spend, lambda >= 1 (the budget's shadow price + 1).
    A saturating channel spends S_g(lambda) = c_g N_g log(ev_g / (c_g lambda))^+ (its marginal
    return ev_g exp(-S / (c_g N_g)) / c_g set to lambda); a fixed-CAC channel returns ev_g / c_g
    on every unit, so only the best of them, rho*, can be used, and only once lambda has fallen
    to rho*. lambda is found by Brent's method on the spend it implies.
    """
    sat_ch = np.isfinite(sat)
    fixed = np.flatnonzero(~sat_ch)
    rho = float((ev[fixed] / c[fixed]).max()) if len(fixed) else 0.0

    def spend_at(lam: float) -> np.ndarray:
        s = np.zeros(len(ev))
        with np.errstate(divide="ignore"):
            s[sat_ch] = c[sat_ch] * sat[sat_ch] * np.maximum(np.log(ev[sat_ch] / (c[sat_ch] * lam)), 0.0)
        return s

    floor = max(1.0, rho)  # lambda never falls below 1 (a unit must return a unit) nor below a usable rho*
    s = spend_at(floor)
    if s.sum() > budget:  # the saturating channels alone exhaust the budget at a higher lambda
        top = float((ev / c).max())
        lam = so.brentq(lambda v: spend_at(np.exp(v)).sum() - budget, np.log(floor), np.log(top))
        return np.minimum(spend_at(float(np.exp(lam))), budget)
    if rho > 1.0:  # what is left goes to the best fixed-CAC channel
        s[fixed[np.argmax(ev[fixed] / c[fixed])]] = budget - s.sum()
    return s


def _efficient(mean: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Points not dominated in (higher mean, higher quantile)."""
    order = np.lexsort((-q, -mean))
    best_q, keep = -np.inf, np.zeros(len(mean), bool)
    for i in order:
        if q[i] > best_q:
            keep[i], best_q = True, q[i]
    return keep


def allocate_budget(ncv: NewCustomerValue, cac: CAC, budget: float, *,
                    saturation: Mapping[str, float] | None = None, seed: int = 0) -> BudgetAllocation:  # fmt: skip
    """The allocation of ``budget`` across channels that maximises the expected net value.

    Parameters
    ----------
    ncv : NewCustomerValue
        A new customer's value per channel and draw.
    cac : Mapping, Series or DataFrame
        CAC of the first customers per channel (see :func:`clvlab.clv.clv_cac_draws`).
    budget : float
        Total acquisition budget B (need not all be spent when spending loses money).
    saturation : Mapping, optional
        N_g, the most customers each channel can bring (module docstring); a channel left out
        has a fixed CAC.
    seed : int
        Seed of the frontier's random allocations.

    Returns
    -------
    BudgetAllocation
    """
    seg = ncv.settings.segment
    chans = ncv.segments
    c = cac_by_segment(cac, seg, chans, priced_without_customers="the first orders").to_numpy()
    problems = []
    if not (isinstance(budget, int | float | np.number) and not isinstance(budget, bool) and np.isfinite(budget)):
        problems.append(f"budget={budget!r}: expected a number")
    elif budget < c.min():
        problems.append(f"budget={budget!r} is below the lowest CAC ({c.min():g}): it does not buy one customer")
    if saturation is not None and not isinstance(saturation, Mapping | pd.Series):
        problems.append(f"saturation={saturation!r}: expected a mapping {{{seg}: most customers}}, got a "
                        f"{type(saturation).__name__}")  # fmt: skip
        saturation = None
    sat_map = dict(saturation if saturation is not None else {})
    for g, v in sat_map.items():
        if g not in chans:
            problems.append(f"saturation for {seg} {g!r}, which has no customers")
        elif isinstance(v, bool) or not (isinstance(v, int | float | np.number) and v > 0 and not np.isnan(v)):
            problems.append(f"saturation of {seg} {g!r} is {v!r}: expected a number of customers > 0")
    if problems:
        raise ClvlabInputError(problems, what="budget allocation")
    sat = np.array([float(sat_map.get(g, np.inf)) for g in chans])
    values = ncv.value.values  # (draws, channels)
    ev = values.mean(0)
    B = float(budget)
    k = len(chans)

    spend = _water_fill(ev, c, sat, B)
    best = int(np.argmax(ev / c))  # the best point estimate of value / CAC
    all_in = np.zeros(k)
    all_in[best] = B
    strategies = {"optimal": spend, f"all on {chans[best]}": all_in}
    rows, nets = [], {}
    for name, s in strategies.items():
        nv = nets[name] = _net(values, s[None, :], c, sat)[0]
        rows.append(dict(strategy=name, spent=float(s.sum()), expected_net_value=float(nv.mean()),
                         net_value_q05=float(np.quantile(nv, RISK_QUANTILE)), p_loss=float((nv < 0).mean())))  # fmt: skip
    n_opt = customers_acquired(spend, c, sat)
    contrib = values * n_opt[None, :] - spend[None, :]
    allocation = pd.DataFrame({
        seg: chans, "cac": c, "saturation": sat, "spend": spend, "share": spend / B, "customers": n_opt,
        "value_mean": ev, "net_mean": contrib.mean(0), "net_q05": np.quantile(contrib, RISK_QUANTILE, axis=0),
        "net_q95": np.quantile(contrib, 1 - RISK_QUANTILE, axis=0),
    })  # fmt: skip
    rng = np.random.default_rng(seed)
    rand = rng.dirichlet(np.ones(k), FRONTIER_SAMPLES) * B
    named = np.vstack([spend, *(np.eye(k) * B)])
    grid = np.vstack([rand, named])
    nv = _net(values, grid, c, sat)  # (allocations, draws)
    mean, q = nv.mean(1), np.quantile(nv, RISK_QUANTILE, axis=1)
    labels = ["random"] * FRONTIER_SAMPLES + ["optimal"] + [f"all on {g}" for g in chans]
    frontier = pd.DataFrame({"allocation": labels, "expected_net_value": mean, "net_value_q05": q,
                             "efficient": _efficient(mean, q)})  # fmt: skip
    return BudgetAllocation(allocation=allocation, summary=pd.DataFrame(rows), frontier=frontier,
                            net_draws=nets["optimal"])  # fmt: skip
