"""Running the samplers: NUTS (nutpie, numpyro, pm.sample) and the MAP optimiser.

Used by :class:`clvlab.models.base.BayesianEstimator.fit`; both return an ArviZ-style
DataTree whose posterior has (chain, draw, ...) dims, so predictions work unchanged after
either (a MAP fit is one chain with one draw).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import xarray as xr

from clvlab.choices import SAMPLERS
from clvlab.errors import ClvlabInputError
from clvlab.models.fit_info import MapInfo

MAP_MODE = "FAST_COMPILE"
"""Pytensor mode of the MAP objective. Measured (one run each, 2 shared cores): full CDNOW
pooled, 8.7k patterns, 16 evaluations: FAST_COMPILE 1.2 s compile + 6 ms/eval; NUMBA 4.2 s
rewrites + 0.9 s (cached) jit + 1.2 ms/eval; C ("cvm") ~50 s the first time. 1M customers /
20 segments, 136k patterns, ~115 evaluations: FAST_COMPILE 2.6 s + 36 ms/eval = 12 s; NUMBA 7.6 s
+ 8.3 s jit + 6.7 ms/eval = 18 s. FAST_COMPILE wins both and never calls a compiler."""
MAP_MAXITER = 10_000
NUTPIE_TUNE = 400
"""nutpie's own default warm-up length (gradient-based diagonal mass matrix, adapted in growing
windows). Measured on full CDNOW by 12 cohorts, partial pooling, 4 x 1000 draws: tune 400 gave
max R-hat 1.002, min bulk ESS 2,669, no divergence (benchmarks/results/bgnbd.json), in ~60% of
the gradient evaluations of tune 1000. Pass ``tune=`` for a longer warm-up."""
DEFAULT_TARGET_ACCEPT = 0.8
FEW_SEGMENTS_TARGET_ACCEPT = 0.99
"""NUTS target acceptance for partial pooling over few segments (``fit(target_accept=None)``).
Measured on the README example (CDNOW 1/10 sample, 3 monthly cohorts, 4 x 500, mean-centred
offsets, seeds 1-6): 0.8 gave 15-90 divergences and max R-hat 1.015-1.09; 0.9 4-7 and
1.006-1.017; 0.95 0-3 and 1.007-1.013; 0.99 none, max R-hat 1.004-1.010, about 50 leapfrog
steps per draw against 16 (7 s a fit instead of 5)."""
DEFAULT_TUNE = 1000
"""Warm-up length for pm.sample's NUTS and numpyro (their usual default)."""


def map_posterior(model: Any, seed: int, mode: Any = None) -> tuple[xr.DataTree, MapInfo]:
    """Posterior at the MAP, stored as one chain with one draw, plus optimiser info.

    Maximises log p(theta | data) without the Jacobian of the transforms (the mode of the
    constrained parameters, as ``pm.find_MAP``), by L-BFGS-B on the raveled unconstrained
    vector, starting at ``model.initial_point(seed)``; constrained values and deterministics
    are mapped back with a small compiled function of the value variables.
    """
    import pytensor
    import pytensor.tensor as pt
    import scipy.optimize as so
    from pymc.blocking import DictToArrayBijection, RaveledVars
    from pymc.pytensorf import join_nonshared_inputs

    mode = MAP_MODE if mode is None else mode
    value_vars = model.continuous_value_vars
    if len(value_vars) != len(model.value_vars):
        raise ClvlabInputError("MAP needs a model with continuous parameters only", what="model")
    start = model.initial_point(seed)
    t0 = time.perf_counter()
    logp = model.logp(jacobian=False)
    grad = pt.concatenate([pt.flatten(g) for g in pt.grad(logp, value_vars)])
    (logp_x, grad_x), x = join_nonshared_inputs(start, [logp, grad], value_vars)
    fn = pytensor.function([x], [logp_x, grad_x], mode=mode, trust_input=True)
    compile_s = time.perf_counter() - t0
    x0 = DictToArrayBijection.map({v.name: start[v.name] for v in value_vars})

    def objective(xv: np.ndarray) -> tuple[float, np.ndarray]:
        lp, g = fn(xv)
        lp = float(lp)
        if not np.isfinite(lp):  # outside the support numerically: make the line search back off
            return np.inf, np.zeros_like(xv)
        return -lp, -np.asarray(g, dtype=float)

    t1 = time.perf_counter()
    res = so.minimize(objective, x0.data, jac=True, method="L-BFGS-B", options=dict(maxiter=MAP_MAXITER))
    optimise_s = time.perf_counter() - t1
    point = DictToArrayBijection.rmap(RaveledVars(res.x, x0.point_map_info), start)
    keep = {v.name for v in model.free_RVs} | {v.name for v in model.deterministics}
    outs = [v for v in model.unobserved_value_vars if v.name in keep]  # graphs of the value variables
    to_constrained = model.compile_fn(outs=outs, inputs=model.value_vars, mode="FAST_COMPILE", on_unused_input="ignore")
    point = {v.name: val for v, val in zip(outs, to_constrained(point), strict=True)}
    info = MapInfo(converged=bool(res.success), message=str(res.message), n_eval=int(res.nfev), n_iter=int(res.nit),
                   logp=float(-res.fun), compile_s=compile_s, optimise_s=optimise_s)  # fmt: skip
    data_vars = {}
    keep = [v.name for v in model.free_RVs] + [v.name for v in model.deterministics]
    for name in keep:
        dims = tuple(model.named_vars_to_dims.get(name, ()) or ())
        value = np.asarray(point[name])[None, None, ...]
        data_vars[name] = (("chain", "draw", *dims), value)
    coords = {k: list(v) for k, v in model.coords.items() if v is not None}
    coords.update(chain=[0], draw=[0])
    post = xr.Dataset(data_vars, coords={k: v for k, v in coords.items() if any(k in d[0] for d in data_vars.values())})
    return xr.DataTree.from_dict({"posterior": post}), info


DEVICES = ("cpu", "gpu")
"""Where numpyro's NUTS runs (``fit(device=...)``); the other samplers run on the CPU."""


def jax_device(device: str) -> Any:
    """The first JAX device of kind ``device`` ("cpu" or "gpu"); a clear error when JAX has none.

    A GPU needs a CUDA (or ROCm) build of jaxlib on the machine, e.g. ``pip install
    'jax[cuda12]'``; JAX then lists it in ``jax.devices("gpu")``.
    """
    import jax

    try:
        found = jax.devices(device)
    except RuntimeError:
        found = []
    if not found:
        raise ClvlabInputError(
            [
                f"device={device!r}: JAX sees no {device.upper()} (its devices: {[str(d) for d in jax.devices()]}); "
                "install a CUDA build of jax (pip install 'jax[cuda12]') on a GPU machine, or use device='cpu'"
            ],
            what="argument",
        )
    return found[0]


def device_name(device: str) -> str:
    """The JAX device numpyro runs on, named: ``"cpu:0 (cpu)"``, ``"gpu:0 (NVIDIA H200)"``."""
    d = jax_device(device)
    return f"{d.platform}:{d.id} ({d.device_kind})"


def sample_nuts(
    model: Any, sampler: str, chains: int, draws: int, tune: int, seed: int, progressbar: bool,
    target_accept: float, nutpie_backend: str, sampler_kwargs: dict[str, Any], device: str = "cpu",
) -> tuple[xr.DataTree, float]:  # fmt: skip
    """Run NUTS; return the DataTree (posterior, sample_stats) and the compile time in seconds.
    numpyro runs on the JAX ``device``; on a GPU its chains are vectorised (one device holds them)."""
    import pymc as pm

    cores = max(1, min(chains, os.cpu_count() or 1))
    if sampler == "nutpie":
        import nutpie

        t0 = time.perf_counter()
        compiled = nutpie.compile_pymc_model(model, backend=nutpie_backend, freeze_model=True)
        compile_s = time.perf_counter() - t0
        trace = nutpie.sample(
            compiled, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed,
            progress_bar=progressbar, target_accept=target_accept, **sampler_kwargs,
        )  # fmt: skip
        return trace, compile_s
    if sampler in ("pymc", "numpyro"):
        kwargs: dict[str, Any] = dict(
            draws=draws, tune=tune, chains=chains, random_seed=seed, progressbar=progressbar,
            target_accept=target_accept, compute_convergence_checks=False,
        )  # fmt: skip
        # pm.sample's default NUTS implementation may itself be nutpie: name it explicitly
        kwargs["nuts_sampler"] = sampler
        if sampler == "pymc":
            kwargs["cores"] = cores
        kwargs.update(sampler_kwargs)
        if sampler == "numpyro":
            import jax

            where = jax_device(device)
            if device == "gpu":
                nuts_kwargs = dict(kwargs.get("nuts_sampler_kwargs") or {})
                nuts_kwargs.setdefault("chain_method", "vectorized")
                kwargs["nuts_sampler_kwargs"] = nuts_kwargs
            with model, jax.default_device(where):
                trace = pm.sample(**kwargs)
            return trace, float("nan")
        with model:
            trace = pm.sample(**kwargs)
        return trace, float("nan")
    raise ClvlabInputError(f"sampler={sampler!r}: expected one of {SAMPLERS}", what="argument")
