"""Reusable segment-level parameter builder: pooled / unpooled / partial pooling (design.md "Hierarchy").

A model parameter theta that lives on a constrained scale is modelled on a link scale
eta = link(theta):

* ``link="log"``   for positive parameters (rates, shapes, scales, concentrations);
* ``link="logit"`` for a mean in (0, 1) (e.g. the BG/NBD dropout mean phi = a/(a+b)).

Pooling (G segments):

* ``pooled``   one eta shared by all segments: eta ~ Normal(loc, scale);
* ``unpooled`` independent eta_g ~ Normal(loc, scale);
* ``partial``  eta_g ~ Normal(mu, sigma), mu ~ Normal(loc, scale), sigma ~ HalfNormal(sigma_scale).
  Small segments shrink toward mu.

Partial pooling can be written two ways with the same posterior but very different geometry
for the sampler. Non-centred (the default): eta_g = mu + sigma * z_g, z_g ~ Normal(0, 1),
right when the data say little about a segment next to the between-segment spread (few or
similar segments; the centred form has a funnel as sigma -> 0). Centred: eta_g itself is the
free variable, right when each segment's data pin eta_g down much more tightly than sigma
(large segments: the non-centred form then ties z_g, mu and sigma into a thin ridge and NUTS
needs deep trees). ``centered`` picks per segment; :func:`choose_centering` is the rule.
Measured (BG/NBD, nutpie, benchmarks/bench_bgnbd.py data): 100k simulated customers in 20
segments, 15 leapfrog steps per draw centred (or as chosen by the rule) vs 43 non-centred, a
quarter of the warm-up work; full CDNOW by 12 similar cohorts, all-centred gives 309
divergences and 37 steps per draw, non-centred none and 15 (the rule keeps it non-centred).
With few segments the centred form does worse (:data:`MIN_SEGMENTS_TO_CENTRE`).

Mean-centred (``mean_centred=True``, what NUTS fits use when no segment is centred): the
non-centred form with the segments' mean m = mean_g(eta_g) as the sampled location,
eta_g = m + sigma z_g with zero-sum z. With few segments the data pin m down far more tightly
than mu (mu sits within sigma / sqrt(G) of m), and in the plain form every z_g must move
whenever mu does: the population means had the worst R-hat of the README example. Integrating
mu out in closed form, m ~ Normal(loc, sqrt(scale^2 + sigma^2 / G)), and mu | m, sigma is
Normal, sampled as a standard-normal ``<name>_u`` that is independent a posteriori. It is an
exact change of variables (tested: the log densities differ by its log-Jacobian only).
Measured on that example (3 monthly cohorts, 4 x 500, target_accept 0.9, seeds 1-3): max
R-hat 1.006-1.017 and 4-7 divergences, against 1.014-1.017 and 4-11 with the plain form at
0.95 (see :data:`~clvlab.models.inference.FEW_SEGMENTS_TARGET_ACCEPT` for the rest).

Each call registers, inside the active ``pm.Model``:
``<name>`` (dims ``segment``: the parameter per segment, always present so downstream code is
pooling-agnostic) and, for pooled/partial, ``<name>_pop`` = link^-1(mu), the population
(median) value used for customers of a segment not seen in the fit. Free variables:
``<name>_mu``, ``<name>_sigma``, and ``<name>_z`` (partial, all segments non-centred),
``<name>_raw`` (partial with some segment centred: eta_g for centred segments, the
standardised offset z_g for the others), ``<name>_eta`` (unpooled); mean-centred:
``<name>_center``, ``<name>_sigma``, ``<name>_z`` (zero-sum) and ``<name>_u``, with
``<name>_mu`` a deterministic.

Usage (any model: BG/NBD uses r, alpha, phi, kappa; Gamma-Gamma can use p, q, gamma)::

    with pm.Model(coords={"segment": names}):
        r = segment_parameter(ParamPrior("r", "log", loc=0.0, scale=1.5), pooling="partial")
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from clvlab.choices import POOLINGS  # the one list, re-exported here

Pooling = Literal[POOLINGS]  # type: ignore[valid-type]
LINKS: tuple[str, ...] = ("log", "logit")
CENTERING_RATIO = 2.0  # centre a segment when its standard error is below tau / CENTERING_RATIO
MIN_SEGMENTS_TO_CENTRE = 10
"""Fewer identified segments than this: nothing is centred. With few segments sigma is weakly
identified and the centred form brings divergences. Measured (BG/NBD, nutpie, 2 chains x 300,
seeds 3-6, segments of 2-3k simulated customers, tests/test_hierarchy_centering.py data):
5 large segments, rule's choice (nearly all centred) 1-10 divergences per run vs 0-1 non-centred
at similar ESS; 3-5 large segments plus a 12-customer one (mixed), bulk ESS 50-90 vs 120-190
non-centred. 10 segments of 1.5k plus the tiny one (``rfm_many`` there; r and alpha centred
for the 10): 0 divergences, 14.5 vs 45 steps per draw, max R-hat 1.013-1.027 vs 1.023-1.038;
20 segments: the gains above. 7-9 segments were not measured: below 10 the non-centred form is
kept, which is never wrong, only slower with large segments."""


@dataclass(frozen=True)
class ParamPrior:
    """Prior of one segment-level parameter on its link scale.

    ``loc``/``scale``: Normal prior of the (population) mean on the link scale;
    ``sigma_scale``: HalfNormal scale of the between-segment sd (partial pooling only).
    """

    name: str
    link: Literal["log", "logit"]
    loc: float = 0.0
    scale: float = 1.5
    sigma_scale: float = 1.0

    def updated(self, overrides: dict[str, float] | None) -> ParamPrior:
        """Copy with some of loc / scale / sigma_scale replaced (unknown keys are an error)."""
        if not overrides:
            return self
        allowed = {"loc", "scale", "sigma_scale"}
        bad = set(overrides) - allowed
        if bad:
            raise ValueError(f"prior for {self.name!r}: unknown keys {sorted(bad)}; allowed {sorted(allowed)}")
        return replace(self, **{k: float(v) for k, v in overrides.items()})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def inverse_link(eta: Any, link: str) -> Any:
    """Map the link scale back to the parameter scale (exp or inverse logit); a NumPy array
    stays NumPy (posterior draws), anything else is a PyTensor expression."""
    if link not in LINKS:
        raise ValueError(f"unknown link {link!r}; expected one of {LINKS}")
    if isinstance(eta, np.ndarray | float | int):
        return np.exp(eta) if link == "log" else 1.0 / (1.0 + np.exp(-np.asarray(eta, dtype=float)))
    return pt.exp(eta) if link == "log" else pt.sigmoid(eta)


def choose_centering(
    eta_hat: np.ndarray, se: np.ndarray, ratio: float = CENTERING_RATIO, min_segments: int = MIN_SEGMENTS_TO_CENTRE
) -> np.ndarray:
    """Which segments to centre, per parameter, from per-segment estimates and standard errors.

    ``eta_hat``, ``se``: (segments, parameters) on the link scale, from the segments fitted
    separately (an infinite ``se`` marks a segment whose data do not identify the parameter).
    The between-segment sd is the method-of-moments estimate (DerSimonian & Laird 1986)
    tau^2 = max(0, var_g(eta_hat) - mean_g(se^2)) over the identified segments; segment g is
    centred for a parameter when ``se * ratio < tau`` (its data pin eta_g down well inside the
    population spread). Fewer than ``min_segments`` identified segments: nothing is centred
    (:data:`MIN_SEGMENTS_TO_CENTRE`). Returns a boolean array shaped like ``eta_hat``.
    """
    eta_hat, se = np.asarray(eta_hat, dtype=float), np.asarray(se, dtype=float)
    if eta_hat.shape != se.shape or eta_hat.ndim != 2:
        raise ValueError(f"eta_hat {eta_hat.shape} and se {se.shape}: expected the same (segments, parameters) shape")
    out = np.zeros(eta_hat.shape, dtype=bool)
    for k in range(eta_hat.shape[1]):
        ok = np.isfinite(se[:, k]) & np.isfinite(eta_hat[:, k])
        if ok.sum() < max(min_segments, 3):  # tau needs 3 at the very least
            continue
        tau2 = max(0.0, float(np.var(eta_hat[ok, k], ddof=1) - np.mean(se[ok, k] ** 2)))
        out[:, k] = ok & (se[:, k] * ratio < np.sqrt(tau2))
    return out


def _mean_centred(prior: ParamPrior, n: int, dims: str, sigma: pt.TensorVariable) -> tuple[Any, Any]:
    """(mu, eta) of partial pooling in the mean-centred non-centred form (module docstring).

    eta_g = m + sigma z_g with sum_g z_g = 0 (``<name>_z``, ZeroSumNormal(1)) and m the
    segments' mean, m ~ Normal(loc, sqrt(scale^2 + sigma^2/n)) (``<name>_center``); the
    population mean is mu = w m + (1-w) loc + u sigma scale / sqrt(sigma^2 + n scale^2) with
    w = n scale^2 / (n scale^2 + sigma^2) and u ~ Normal(0, 1) (``<name>_u``): its conditional
    distribution given m and sigma, so u is independent of everything a posteriori.
    """
    name, loc, scale = prior.name, prior.loc, prior.scale
    center = pm.Normal(f"{name}_center", loc, pt.sqrt(scale**2 + sigma**2 / n))
    z = pm.ZeroSumNormal(f"{name}_z", sigma=1.0, dims=dims)
    u = pm.Normal(f"{name}_u", 0.0, 1.0)
    spread = n * scale**2 + sigma**2
    w = n * scale**2 / spread
    mu = pm.Deterministic(f"{name}_mu", w * center + (1.0 - w) * loc + u * sigma * scale / pt.sqrt(spread))
    return mu, center + sigma * z


def segment_parameter(
    prior: ParamPrior, pooling: Pooling, dims: str = "segment", centered: bool | np.ndarray = False,
    mean_centred: bool = False,
) -> pt.TensorVariable:  # fmt: skip
    """Build the per-segment parameter vector (dims ``dims``) in the active PyMC model.

    Parameters
    ----------
    prior : ParamPrior
        Link, prior of the (population) mean and of the between-segment sd.
    pooling : {"pooled", "unpooled", "partial"}
        How the segments share the parameter.
    dims : str
        The segment dimension (its coordinates must be in the model).
    centered : bool or array of bool
        Partial pooling only: False (all non-centred), True (all centred) or one flag per segment.
    mean_centred : bool
        Partial pooling with no segment centred, two or more segments: sample the segments' mean
        and zero-sum offsets instead of the population mean and free offsets
        (:func:`_mean_centred`; the same posterior, better geometry for NUTS with few segments).
        MAP keeps the plain form: the mode is not invariant under the change of variables.

    Returns
    -------
    TensorVariable
        ``<name>``, the parameter per segment (dims ``dims``).
    """
    model = pm.modelcontext(None)
    n = len(model.coords[dims])
    name, link = prior.name, prior.link
    if pooling == "pooled":
        mu = pm.Normal(f"{name}_mu", prior.loc, prior.scale)
        pm.Deterministic(f"{name}_pop", inverse_link(mu, link))
        eta = pt.repeat(mu, n)
    elif pooling == "unpooled":
        eta = pm.Normal(f"{name}_eta", prior.loc, prior.scale, dims=dims)
    elif pooling == "partial":
        mask = np.broadcast_to(np.asarray(centered, dtype=bool), (n,))
        if mean_centred and n >= 2 and not mask.any():
            sigma = pm.HalfNormal(f"{name}_sigma", prior.sigma_scale)
            mu, eta = _mean_centred(prior, n, dims, sigma)
        else:
            mu = pm.Normal(f"{name}_mu", prior.loc, prior.scale)
            sigma = pm.HalfNormal(f"{name}_sigma", prior.sigma_scale)
            eta = _plain_partial(name, dims, mask, mu, sigma)
        pm.Deterministic(f"{name}_pop", inverse_link(mu, link))
    else:
        raise ValueError(f"pooling={pooling!r}; expected one of {POOLINGS}")
    return pm.Deterministic(name, inverse_link(eta, link), dims=dims)


def _plain_partial(name: str, dims: str, mask: np.ndarray, mu: Any, sigma: Any) -> Any:
    """eta of partial pooling around a free mu: non-centred, centred, or centred per segment (``mask``)."""
    if not mask.any():
        return mu + sigma * pm.Normal(f"{name}_z", 0.0, 1.0, dims=dims)
    if mask.all():
        return pm.Normal(f"{name}_raw", mu, sigma, dims=dims)
    c = pt.as_tensor_variable(mask)
    raw = pm.Normal(f"{name}_raw", pt.where(c, mu, 0.0), pt.where(c, sigma, 1.0), dims=dims)
    return pt.where(c, raw, mu + sigma * raw)
