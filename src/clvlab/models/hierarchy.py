"""Reusable segment-level parameter builder: pooled / unpooled / partial pooling (design.md "Hierarchy").

A model parameter theta that lives on a constrained scale is modelled on a link scale
eta = link(theta):

* ``link="log"``   for positive parameters (rates, shapes, scales, concentrations);
* ``link="logit"`` for a mean in (0, 1) (e.g. the BG/NBD dropout mean phi = a/(a+b)).

Pooling (G segments):

* ``pooled``   one eta shared by all segments: eta ~ Normal(loc, scale);
* ``unpooled`` independent eta_g ~ Normal(loc, scale);
* ``partial``  non-centred hierarchy eta_g = mu + sigma * z_g, mu ~ Normal(loc, scale),
  sigma ~ HalfNormal(sigma_scale), z_g ~ Normal(0, 1). Small segments shrink toward mu.

Each call registers, inside the active ``pm.Model``:
``<name>`` (dims ``segment``: the parameter per segment, always present so downstream code is
pooling-agnostic) and, for pooled/partial, ``<name>_pop`` = link^-1(mu), the population
(median) value used for customers of a segment not seen in the fit. Free variables:
``<name>_mu``, ``<name>_sigma``, ``<name>_z`` (partial), ``<name>_eta`` (unpooled).

Usage (any model: BG/NBD uses r, alpha, phi, kappa; Gamma-Gamma can use p, q, gamma)::

    with pm.Model(coords={"segment": names}):
        r = segment_parameter(ParamPrior("r", "log", loc=0.0, scale=1.5), pooling="partial")
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import pymc as pm
import pytensor.tensor as pt

Pooling = Literal["pooled", "unpooled", "partial"]
POOLINGS: tuple[str, ...] = ("pooled", "unpooled", "partial")
LINKS: tuple[str, ...] = ("log", "logit")


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
    """Map the link scale back to the parameter scale (exp or inverse logit)."""
    if link == "log":
        return pt.exp(eta)
    if link == "logit":
        return pt.sigmoid(eta)
    raise ValueError(f"unknown link {link!r}; expected one of {LINKS}")


def segment_parameter(prior: ParamPrior, pooling: Pooling, dims: str = "segment") -> pt.TensorVariable:
    """Build the per-segment parameter vector (dims ``dims``) in the active PyMC model."""
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
        mu = pm.Normal(f"{name}_mu", prior.loc, prior.scale)
        sigma = pm.HalfNormal(f"{name}_sigma", prior.sigma_scale)
        z = pm.Normal(f"{name}_z", 0.0, 1.0, dims=dims)
        pm.Deterministic(f"{name}_pop", inverse_link(mu, link))
        eta = mu + sigma * z
    else:
        raise ValueError(f"pooling={pooling!r}; expected one of {POOLINGS}")
    return pm.Deterministic(name, inverse_link(eta, link), dims=dims)
