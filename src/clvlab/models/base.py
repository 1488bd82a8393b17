"""Shared machinery of clvlab's Bayesian estimators: fitting, diagnostics, save/load.

A subclass implements

* ``_validate(data) -> DataFrame``    check and normalise the input (raise ClvlabInputError);
* ``_build_model(data) -> pm.Model``  the PyMC model (segment/population parameters only);
* ``_get_state() / _set_state(dict)`` JSON-serialisable fitted state besides the posterior
  (segment levels, covariate names, ...), so a loaded model predicts without the data;
* ``_config() -> dict``               the constructor arguments (saved, and passed back to
  the constructor on load);
* ``diagnostic_vars`` (class attribute) variables whose R-hat / ESS are checked.

Fitting (``fit``): ``method="nuts"`` with ``sampler`` in {"nutpie", "numpyro", "pymc"}, or
``method="map"`` (posterior with one chain and one draw at the mode, so every prediction
works unchanged). MAP maximises the log posterior density of the constrained parameters
(no Jacobian term, as ``pm.find_MAP``) by scipy's L-BFGS-B on the unconstrained vector, with
one logp+gradient function compiled in pytensor's FAST_COMPILE mode: on CDNOW-size data the
optimisation takes a fraction of a second, so compilation is what counts (pm.find_MAP's C
compilation of two functions took 6-7 s there; see :data:`MAP_MODE`). After NUTS the diagnostics (R-hat, bulk/tail ESS, divergences, BFMI, via
ArviZ 1.x) are stored in ``diagnostics_`` and a :class:`~clvlab.errors.ConvergenceWarning`
is raised when R-hat > 1.01, ESS < 400, any divergence, or BFMI < 0.3.

A run folder holds ``posterior.nc`` (posterior and sample_stats groups) and
``metadata.json`` (model name, config, state, data hash, fit settings, diagnostics summary,
package versions), each written atomically with :mod:`clvlab.io`.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from clvlab.errors import ClvlabInputError, ConvergenceWarning
from clvlab.io import atomic_path, write_json
from clvlab.versions import data_hash, package_versions

__all__ = ["BayesianEstimator", "convergence_report", "convergence_problems", "hdi", "data_hash", "package_versions"]

METHODS = ("nuts", "map")
SAMPLERS = ("nutpie", "numpyro", "pymc")
RHAT_MAX = 1.01
ESS_MIN = 400.0
BFMI_MIN = 0.3
POSTERIOR_FILE = "posterior.nc"
METADATA_FILE = "metadata.json"
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
DEFAULT_TUNE = 1000
"""Warm-up length for pm.sample's NUTS and numpyro (their usual default)."""


def hdi(samples: np.ndarray, prob: float = 0.94) -> tuple[float, float]:
    """Narrowest interval holding ``prob`` of the (1-d) samples."""
    s = np.sort(np.asarray(samples, dtype=float).ravel())
    n = len(s)
    k = max(int(np.floor(prob * n)), 1)
    if k >= n:
        return float(s[0]), float(s[-1])
    widths = s[k:] - s[: n - k]
    i = int(np.argmin(widths))
    return float(s[i]), float(s[i + k])


def _map_posterior(model: Any, seed: int, mode: Any = None) -> tuple[xr.DataTree, dict[str, Any]]:
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
    info = dict(
        map_converged=bool(res.success), map_message=str(res.message), map_n_eval=int(res.nfev),
        map_n_iter=int(res.nit), map_logp=float(-res.fun), map_compile_s=compile_s, map_optimise_s=optimise_s,
    )  # fmt: skip
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


def _sample_nuts(
    model: Any, sampler: str, chains: int, draws: int, tune: int, seed: int, progressbar: bool,
    target_accept: float, nutpie_backend: str, sampler_kwargs: dict[str, Any],
) -> tuple[xr.DataTree, float]:  # fmt: skip
    """Run NUTS; return the DataTree (posterior, sample_stats) and the compile time in seconds."""
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
        with model:
            trace = pm.sample(**kwargs)
        return trace, float("nan")
    raise ClvlabInputError(f"sampler={sampler!r}: expected one of {SAMPLERS}", what="argument")


def convergence_report(idata: xr.DataTree, var_names: Sequence[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-parameter R-hat and bulk/tail ESS (tidy) plus a run summary (divergences, BFMI)."""
    import arviz as az

    post = idata["posterior"].to_dataset()
    names = [v for v in var_names if v in post.data_vars]
    rhat = _as_dataset(az.rhat(idata, var_names=names), "posterior")
    ess_b = _as_dataset(az.ess(idata, var_names=names, method="bulk"), "posterior")
    ess_t = _as_dataset(az.ess(idata, var_names=names, method="tail"), "posterior")
    rows = []
    for v in names:
        r_v, b_v, t_v = (np.atleast_1d(ds[v].values).ravel() for ds in (rhat, ess_b, ess_t))
        labels = _element_labels(post[v])
        for i, lab in enumerate(labels):
            rows.append(dict(parameter=v, element=lab, r_hat=r_v[i], ess_bulk=b_v[i], ess_tail=t_v[i]))
    table = pd.DataFrame(rows)
    stats = idata["sample_stats"].to_dataset() if "sample_stats" in idata.children else None
    n_div = int(stats["diverging"].sum()) if stats is not None and "diverging" in stats else 0
    bfmi: list[float] = []
    if stats is not None and "energy" in stats:
        bfmi = [float(v) for v in np.atleast_1d(_as_dataset(az.bfmi(idata), "sample_stats")["energy"].values)]
    summary = dict(
        max_r_hat=float(table["r_hat"].max()) if len(table) else float("nan"),
        min_ess_bulk=float(table["ess_bulk"].min()) if len(table) else float("nan"),
        min_ess_tail=float(table["ess_tail"].min()) if len(table) else float("nan"),
        divergences=n_div,
        bfmi=bfmi,
        chains=int(post.sizes["chain"]),
        draws=int(post.sizes["draw"]),
    )
    return table, summary


def _as_dataset(obj: Any, group: str) -> xr.Dataset:
    """ArviZ 1.x returns a DataTree node (or the whole tree); normalise to a Dataset."""
    if isinstance(obj, xr.DataTree):
        if group in obj.children:
            obj = obj[group]
        return obj.to_dataset()
    return obj


def _element_labels(da: xr.DataArray) -> list[str]:
    dims = [d for d in da.dims if d not in ("chain", "draw")]
    if not dims:
        return [""]
    idx = pd.MultiIndex.from_product([da[d].values for d in dims]) if len(dims) > 1 else da[dims[0]].values
    return [",".join(map(str, k)) if isinstance(k, tuple) else str(k) for k in idx]


def convergence_problems(summary: dict[str, Any]) -> list[str]:
    """Human-readable list of crossed thresholds (empty if the run looks fine)."""
    out = []
    if summary["max_r_hat"] > RHAT_MAX:
        out.append(f"max R-hat {summary['max_r_hat']:.4f} > {RHAT_MAX}")
    if summary["min_ess_bulk"] < ESS_MIN:
        out.append(f"min bulk ESS {summary['min_ess_bulk']:.0f} < {ESS_MIN:.0f}")
    if summary["min_ess_tail"] < ESS_MIN:
        out.append(f"min tail ESS {summary['min_ess_tail']:.0f} < {ESS_MIN:.0f}")
    if summary["divergences"] > 0:
        out.append(f"{summary['divergences']} divergent transitions")
    low = [b for b in summary["bfmi"] if b < BFMI_MIN]
    if low:
        out.append(f"BFMI {min(low):.2f} < {BFMI_MIN} in {len(low)} chain(s)")
    return out


ALL = "all"  # the single segment name when a model has no segment column


def examples(index: pd.Index, mask: np.ndarray, k: int = 5) -> str:
    """'rows [..] (+n more)' for the rows of ``index`` where ``mask`` holds (error messages)."""
    rows = list(index[np.asarray(mask)][:k])
    more = int(np.sum(mask)) - len(rows)
    return f"rows {rows}" + (f" (+{more} more)" if more > 0 else "")


class BayesianEstimator:
    """Base class: ``fit`` / diagnostics / ``save`` / ``load``. See the module docstring."""

    model_name: ClassVar[str] = "base"
    diagnostic_vars: ClassVar[tuple[str, ...]] = ()
    summary_vars: ClassVar[tuple[str, ...]] = ()  # default rows of summary(), those in the posterior

    # ---- subclass hooks -------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        raise NotImplementedError

    def _validate(self, data: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError

    def _build_model(self, data: pd.DataFrame) -> Any:
        raise NotImplementedError

    def _get_state(self) -> dict[str, Any]:
        return {}

    def _set_state(self, state: dict[str, Any]) -> None:
        pass

    # ---- fitting ----------------------------------------------------------------------
    def _prepare_backend(self, backend: str) -> None:
        """Hook run before the model is compiled for ``backend`` ("jax"): custom ops register there."""

    def _before_build(self, data: pd.DataFrame, method: str, seed: int) -> dict[str, Any]:
        """Hook run on the validated data before :meth:`_build_model` (e.g. a pilot fit that picks
        the parameterisation); returns entries for ``fit_info_``."""
        return {}

    def _nutpie_adaptation(self) -> str:
        """nutpie's mass-matrix adaptation for this fit (called after :meth:`_before_build`):
        "diag" (nutpie's default) unless a model knows better (BG/NBD: ``BGNBD._nutpie_adaptation``)."""
        return "diag"

    def build_model(self, data: pd.DataFrame) -> Any:
        """Validate ``data`` and return the PyMC model that ``fit(method="nuts")`` would sample (for inspection)."""
        clean = self._validate(data)
        self._before_build(clean, "nuts", 0)
        return self._build_model(clean)

    def fit(
        self,
        data: pd.DataFrame,
        method: str = "nuts",
        sampler: str = "nutpie",
        chains: int = 4,
        draws: int = 1000,
        tune: int | None = None,
        seed: int = 0,
        progressbar: bool = True,
        target_accept: float = 0.8,
        nutpie_backend: str = "numba",
        sampler_kwargs: dict[str, Any] | None = None,
    ) -> BayesianEstimator:
        """Fit by NUTS (``sampler``: nutpie, numpyro or pymc) or MAP; returns ``self``.

        ``tune``: warm-up iterations per chain; None = the sampler's default (nutpie
        :data:`NUTPIE_TUNE`, whose mass-matrix adaptation needs fewer; pymc / numpyro 1000).
        ``nutpie_backend``: "numba" (default: fastest end to end on CDNOW-size data, measured)
        or "jax". ``sampler_kwargs`` go to ``nutpie.sample`` / ``pm.sample`` unchanged; with
        nutpie, ``adaptation`` defaults to the model's choice (``fit_info_["nutpie_adaptation"]``).
        """
        if method not in METHODS:
            raise ClvlabInputError(f"method={method!r}: expected one of {METHODS}", what="argument")
        if method == "nuts" and sampler not in SAMPLERS:
            raise ClvlabInputError(f"sampler={sampler!r}: expected one of {SAMPLERS}", what="argument")
        if tune is None:
            tune = NUTPIE_TUNE if sampler == "nutpie" else DEFAULT_TUNE
        clean = self._validate(data)
        pre_info = self._before_build(clean, method, seed)
        t0 = time.perf_counter()
        model = self._build_model(clean)
        build_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        map_info: dict[str, Any] = {}
        if method == "map":
            idata, map_info = _map_posterior(model, seed)
            compile_s = map_info["map_compile_s"]
        else:
            if sampler == "numpyro" or (sampler == "nutpie" and nutpie_backend == "jax"):
                self._prepare_backend("jax")
            sampler_kwargs = dict(sampler_kwargs or {})
            if sampler == "nutpie":
                sampler_kwargs.setdefault("adaptation", self._nutpie_adaptation())
                pre_info["nutpie_adaptation"] = sampler_kwargs["adaptation"]
            idata, compile_s = _sample_nuts(
                model, sampler, chains, draws, tune, seed, progressbar, target_accept, nutpie_backend,
                sampler_kwargs,
            )  # fmt: skip
        fit_s = time.perf_counter() - t1
        self.model_ = model
        self.data_ = clean  # validated fit data: the default for predictions
        self.idata_ = idata
        self.posterior_ = idata["posterior"].to_dataset()
        self.fit_info_ = dict(
            method=method, sampler=sampler if method == "nuts" else None, chains=chains, draws=draws,
            tune=tune, seed=seed, target_accept=target_accept,
            nutpie_backend=nutpie_backend if (method == "nuts" and sampler == "nutpie") else None,
            n_rows=len(clean), data_hash=data_hash(clean), build_s=build_s, compile_s=compile_s, fit_s=fit_s,
            **pre_info, **map_info,
        )  # fmt: skip
        self.diagnostics_ = None
        self.convergence_ = None
        if method == "map" and not map_info["map_converged"]:
            warnings.warn(
                f"{self.model_name}: MAP optimiser did not converge ({map_info['map_message']}, "
                f"{map_info['map_n_eval']} evaluations)", ConvergenceWarning, stacklevel=2,
            )  # fmt: skip
        if method == "nuts":
            self.diagnostics_, self.convergence_ = convergence_report(idata, self.diagnostic_vars)
            problems = convergence_problems(self.convergence_)
            if progressbar:
                c = self.convergence_
                print(
                    f"{self.model_name}: {c['chains']} chains x {c['draws']} draws; max R-hat {c['max_r_hat']:.4f}, "
                    f"min ESS bulk/tail {c['min_ess_bulk']:.0f}/{c['min_ess_tail']:.0f}, "
                    f"{c['divergences']} divergences, BFMI {[round(b, 2) for b in c['bfmi']]}"
                )
            if problems:
                warnings.warn(
                    f"{self.model_name}: sampler diagnostics: " + "; ".join(problems), ConvergenceWarning, stacklevel=2
                )
        return self

    @property
    def effective_pooling(self) -> str:
        """The pooling actually used: without a segment column there is one population."""
        return self.pooling if self.segment is not None else "pooled"

    def _segment_codes(self, df: pd.DataFrame, fitting: bool) -> np.ndarray:
        """Integer code of each row's segment (``self.segment`` column); sets ``segments_`` when fitting."""
        if not self.segment:
            if fitting:
                self.segments_ = [ALL]
            return np.zeros(len(df), dtype=np.int64)
        if fitting:
            self.segments_ = sorted(df[self.segment].unique())
        codes = pd.Index(self.segments_).get_indexer(df[self.segment])
        unknown = codes < 0
        if unknown.any():
            raise ClvlabInputError(
                f"column {self.segment!r}: segment(s) {sorted(set(df[self.segment][unknown]))} not in the fit "
                f"({self.segments_}), {examples(df.index, unknown)}",
                what="RFM data",
            )
        return codes.astype(np.int64)

    # ---- summaries -------------------------------------------------------------------
    def summary(self, var_names: Sequence[str] | None = None, prob: float = 0.94) -> pd.DataFrame:
        """Tidy posterior summary: parameter, segment, mean, sd, hdi_low, hdi_high (+ R-hat/ESS after NUTS)."""
        self._check_fitted()
        names = list(var_names) if var_names else [v for v in self.summary_vars if v in self.posterior_]
        rows = []
        for v in names:
            da = self.posterior_[v]
            other = [d for d in da.dims if d not in ("chain", "draw")]
            flat = da.stack(_s=("chain", "draw")).transpose(*other, "_s")
            values = flat.values.reshape(-1, flat.sizes["_s"])
            labels = [""] if not other else [str(k) for k in da[other[0]].values]
            for lab, s in zip(labels, values, strict=True):
                lo, hi = hdi(s, prob)
                rows.append(dict(parameter=v, element=lab, mean=s.mean(), sd=s.std(ddof=1) if len(s) > 1 else 0.0,
                                 hdi_low=lo, hdi_high=hi))  # fmt: skip
        out = pd.DataFrame(rows)
        if self.diagnostics_ is not None and len(out):
            out = out.merge(self.diagnostics_, on=["parameter", "element"], how="left")
        return out.rename(columns={"element": "segment"})

    def print_summary(self, prob: float = 0.94) -> None:
        print(self.summary(prob=prob).to_string(index=False))

    @staticmethod
    def _customer_da(values: np.ndarray, df: pd.DataFrame, name: str) -> xr.DataArray:
        """Per-customer draws (chain, draw, customer) as a labelled DataArray."""
        c, d = values.shape[:2]
        return xr.DataArray(
            values,
            dims=("chain", "draw", "customer_id"),
            coords={"chain": np.arange(c), "draw": np.arange(d), "customer_id": df["customer_id"].to_numpy()},
            name=name,
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "posterior_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() or load() first")

    # ---- persistence -------------------------------------------------------------------
    def save(self, run_dir: str | os.PathLike) -> Path:
        """Write ``posterior.nc`` and ``metadata.json`` into ``run_dir`` (atomic writes)."""
        self._check_fitted()
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        groups = {"posterior": self.posterior_}
        if "sample_stats" in self.idata_.children:
            stats = self.idata_["sample_stats"].to_dataset()
            groups["sample_stats"] = stats[[v for v in stats.data_vars if stats[v].dtype != object]]
        tree = xr.DataTree.from_dict(groups)
        with atomic_path(run_dir / POSTERIOR_FILE) as tmp:
            tree.to_netcdf(tmp, engine="h5netcdf")
        meta = dict(
            model=self.model_name,
            config=self._config(),
            state=self._get_state(),
            fit=self.fit_info_,
            convergence=self.convergence_,
            versions=package_versions(),
            saved_at=pd.Timestamp.now(tz="UTC").isoformat(),
        )
        write_json(run_dir / METADATA_FILE, meta)
        if self.diagnostics_ is not None:
            from clvlab.io import write_table

            write_table(self.diagnostics_, run_dir / "diagnostics.csv")
        return run_dir

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> BayesianEstimator:
        """Rebuild a fitted estimator from a run folder written by :meth:`save`."""
        run_dir = Path(run_dir)
        meta = json.loads((run_dir / METADATA_FILE).read_text())
        if meta.get("model") != cls.model_name:
            raise ClvlabInputError(
                f"{run_dir / METADATA_FILE}: model {meta.get('model')!r}, expected {cls.model_name!r}", what="run folder"
            )
        obj = cls(**meta["config"])
        with xr.open_datatree(run_dir / POSTERIOR_FILE, engine="h5netcdf") as tree:
            tree = tree.load()
        obj.idata_ = tree
        obj.posterior_ = tree["posterior"].to_dataset()
        obj.fit_info_ = meta.get("fit", {})
        obj.convergence_ = meta.get("convergence")
        diag = run_dir / "diagnostics.csv"
        obj.diagnostics_ = pd.read_csv(diag, keep_default_na=False) if diag.exists() else None
        obj._set_state(meta.get("state", {}))
        return obj
