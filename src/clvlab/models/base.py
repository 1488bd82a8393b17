"""Shared machinery of clvlab's Bayesian estimators: fitting, diagnostics, save/load.

A subclass is mostly its math. It declares

* ``rfm_columns`` (class attribute)    the RFM columns it reads (checked by the one shared
  validator, :func:`clvlab.features.validation.check_rfm`);
* ``default_priors`` (class attribute) its priors by name (``priors=`` overrides are checked
  against these keys);
* ``diagnostic_vars`` / ``summary_vars`` (class attributes) variables whose R-hat / ESS are
  checked, and the default rows of :meth:`summary`;
* ``_build_model(data) -> pm.Model``   the PyMC model (segment/population parameters only);

and may override ``_fit_rules`` (problems only fitting data has, e.g. no repeat purchase at
all), ``_after_validate`` (normalise / warn), ``_settings_problems`` (its own settings) and
``_extra_state`` / ``_set_extra_state`` (fitted state besides the posterior). The base does
the rest: settings checks, validation, fit (NUTS or MAP), diagnostics, summaries, the data's
time unit (``time_unit_``), and save / load of the run folder.

Fitting (``fit``): ``method="nuts"`` with ``sampler`` in {"nutpie", "numpyro", "pymc"}, or
``method="map"`` (posterior with one chain and one draw at the mode, so every prediction
works unchanged). MAP maximises the log posterior density of the constrained parameters
(no Jacobian term, as ``pm.find_MAP``) by scipy's L-BFGS-B on the unconstrained vector, with
one logp+gradient function compiled in pytensor's FAST_COMPILE mode: on CDNOW-size data the
optimisation takes a fraction of a second, so compilation is what counts (pm.find_MAP's C
compilation of two functions took 6-7 s there; see :data:`MAP_MODE`). After NUTS the diagnostics (R-hat, bulk/tail ESS, divergences, BFMI, via
ArviZ 1.x) are stored in ``diagnostics_`` and a :class:`~clvlab.errors.ConvergenceWarning`
is raised when R-hat > 1.01, ESS < 400, any divergence, or BFMI < 0.3.

A run folder holds ``posterior.nc`` (posterior and sample_stats groups), ``data.parquet``
(the validated data the model was fitted on, so a loaded model predicts without being given
the data again) and ``metadata.json`` (model name, config, state incl. the data's time unit,
data hash, fit settings, diagnostics summary, package versions), each written atomically with
:mod:`clvlab.io`.
"""

from __future__ import annotations

import inspect
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

from clvlab.choices import ALL_SEGMENTS, METHODS, MODEL_LABELS, POOLINGS, SAMPLERS, TIME_UNITS
from clvlab.errors import ClvlabInputError, ConvergenceWarning
from clvlab.features.validation import check_rfm, examples
from clvlab.io import atomic_dir, recover_dir, write_table
from clvlab.models.diagnostics import BFMI_MIN, ESS_MIN, RHAT_MAX, Convergence, convergence_report
from clvlab.models.fit_info import FitInfo, MapInfo
from clvlab.models.hierarchy import MIN_SEGMENTS_TO_CENTRE
from clvlab.models.inference import (
    DEFAULT_TARGET_ACCEPT,
    DEFAULT_TUNE,
    DEVICES,
    FEW_SEGMENTS_TARGET_ACCEPT,
    MAP_MODE,
    NUTPIE_TUNE,
    device_name,
    map_posterior,
    sample_nuts,
)  # fmt: skip
from clvlab.stats import HDI_PROB, hdi
from clvlab.versions import data_hash, package_versions

__all__ = [
    "BFMI_MIN",
    "DEFAULT_TUNE",
    "ESS_MIN",
    "MAP_MODE",
    "NUTPIE_TUNE",
    "RHAT_MAX",
    "BayesianEstimator",
    "Convergence",
    "FitInfo",
    "MapInfo",
    "convergence_report",
    "data_hash",
    "examples",
    "package_versions",
]

POSTERIOR_FILE = "posterior.nc"
METADATA_FILE = "metadata.json"
DATA_FILE = "data.parquet"
DIAGNOSTICS_FILE = "diagnostics.csv"
MODEL_FILES = (POSTERIOR_FILE, METADATA_FILE, DATA_FILE, DIAGNOSTICS_FILE)
"""What a saved model's folder holds (a folder with anything else is not replaced)."""
ALL = ALL_SEGMENTS  # the single segment name when a model has no segment column
MIN_FIT_ROWS = 30
"""Fewer customers than this in a fit: a warning (a converged sampler then describes the prior)."""


class BayesianEstimator:
    """Base class: ``fit`` / diagnostics / ``save`` / ``load``. See the module docstring."""

    model_name: ClassVar[str] = "base"
    diagnostic_vars: ClassVar[tuple[str, ...]] = ()
    summary_vars: ClassVar[tuple[str, ...]] = ()  # default rows of summary(), those in the posterior
    rfm_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    default_priors: ClassVar[dict[str, Any]] = {}
    mean_centred_: bool = False
    """Set by ``fit``: partial pooling sampled in the mean-centred form (:mod:`.hierarchy`)."""

    # ---- settings ------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        """The constructor arguments as plain JSON values (saved; passed back on load)."""
        out: dict[str, Any] = {}
        for name in inspect.signature(type(self).__init__).parameters:
            if name == "self":
                continue
            value = getattr(self, name)
            if hasattr(value, "items"):  # priors: {name: {loc, scale, ...}}
                value = {k: dict(v) if hasattr(v, "items") else v for k, v in value.items()} if value else None
            elif isinstance(value, tuple | list):
                value = list(value) or None
            out[name] = value
        return out

    def _settings_problems(self) -> list[str]:
        """A subclass's own settings checks (messages); the base checks pooling and priors."""
        return []

    def _check_settings(self) -> None:
        problems = []
        if self.pooling not in POOLINGS:
            problems.append(f"pooling={self.pooling!r}: expected one of {POOLINGS}")
        bad = set(self.priors or {}) - set(self.default_priors)
        if bad:
            problems.append(f"priors: unknown parameters {sorted(bad)}; expected {sorted(self.default_priors)}")
        problems += self._settings_problems()
        if problems:
            raise ClvlabInputError(problems, what=f"{type(self).__name__} settings")

    # ---- validation ------------------------------------------------------------------------
    def _numeric_columns(self) -> list[str]:
        """Further numeric input columns (covariates)."""
        return list(getattr(self, "covariates", None) or [])

    def _fit_rules(self, df: pd.DataFrame) -> list[str]:
        """Problems only fitting data can have (the table is already cast; listed with the others)."""
        return [] if len(df) else ["no rows"]

    def _after_validate(self, df: pd.DataFrame, fitting: bool) -> pd.DataFrame:
        """Normalise the checked table or warn (subclass hook)."""
        return df

    def _validate(self, data: pd.DataFrame, *, fitting: bool = True) -> pd.DataFrame:
        """Check an RFM table with the shared validator and the model's fit rules.

        Returns ``customer_id``, the model's RFM columns, covariates and the segment column;
        raises one :class:`ClvlabInputError` listing every problem (column, example rows).
        """
        self._check_settings()
        df = check_rfm(data, columns=self.rfm_columns, segment=self.segment, numeric=self._numeric_columns(),
                       rules=self._fit_rules if fitting else None)  # fmt: skip
        if fitting and 0 < len(df) < MIN_FIT_ROWS:
            warnings.warn(
                f"{self.model_name}: only {len(df)} customer(s) to fit: the posterior is mostly the prior, "
                "whatever the sampler diagnostics say", UserWarning, stacklevel=3,
            )  # fmt: skip
        return self._after_validate(df, fitting)

    def _data_or_fit_data(self, data: pd.DataFrame | None) -> pd.DataFrame:
        """``data``, or the data the model was fitted on (kept in the run folder by :meth:`save`)."""
        if data is not None:
            return data
        if getattr(self, "data_", None) is None:
            raise ClvlabInputError("no data: pass the RFM table (the run folder holds no fit data)", what="argument")
        return self.data_

    # ---- model and state hooks ----------------------------------------------------------
    def _build_model(self, data: pd.DataFrame) -> Any:
        raise NotImplementedError

    def _extra_state(self) -> dict[str, Any]:
        """JSON-serialisable fitted state of a subclass besides segments, patterns and unit."""
        return {}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def _get_state(self) -> dict[str, Any]:
        return dict(segments=list(self.segments_), n_patterns=int(getattr(self, "n_patterns_", 0)),
                    time_unit=getattr(self, "time_unit_", None), **self._extra_state())  # fmt: skip

    def _set_state(self, state: dict[str, Any]) -> None:
        self.segments_ = list(state["segments"])
        self.n_patterns_ = int(state.get("n_patterns", 0))
        self.time_unit_ = state.get("time_unit")
        self._set_extra_state(state)

    # ---- fitting ----------------------------------------------------------------------
    def _prepare_backend(self, backend: str) -> None:
        """Hook run before the model is compiled for ``backend`` ("jax"): custom ops register there."""

    def _before_build(self, data: pd.DataFrame, method: str, seed: int) -> dict[str, Any]:
        """Hook run on the validated data before :meth:`_build_model` (e.g. a pilot fit that picks
        the parameterisation), with ``segments_`` already set; returns :class:`FitInfo` fields
        (``centered``, ``centering_s``)."""
        return {}

    def _set_segments_and_form(self, data: pd.DataFrame, method: str) -> None:
        """Set ``segments_`` and ``mean_centred_`` (NUTS with partial pooling; MAP keeps the plain
        form, as a mode is not invariant under the mean-centring change of variables)."""
        self._segment_codes(data, fitting=True)
        self.mean_centred_ = method == "nuts" and self.effective_pooling == "partial"

    def _default_target_accept(self) -> float:
        """NUTS target acceptance when the caller gives none (``fit(target_accept=None)``).

        Partial pooling over few segments (fewer than :data:`MIN_SEGMENTS_TO_CENTRE`) leaves the
        between-segment sds weakly identified, and their posteriors reach down to zero: smaller
        steps are what removes the divergences there (measured: :data:`FEW_SEGMENTS_TARGET_ACCEPT`).
        """
        if self.effective_pooling == "partial" and len(self.segments_) < MIN_SEGMENTS_TO_CENTRE:
            return FEW_SEGMENTS_TARGET_ACCEPT
        return DEFAULT_TARGET_ACCEPT

    def _nutpie_adaptation(self) -> str:
        """nutpie's mass-matrix adaptation for this fit (called after :meth:`_before_build`):
        "diag" (nutpie's default) unless a model knows better (BG/NBD: ``BGNBD._nutpie_adaptation``)."""
        return "diag"

    def build_model(self, data: pd.DataFrame) -> Any:
        """Validate ``data`` and return the PyMC model that ``fit(method="nuts")`` would sample (for inspection)."""
        clean = self._validate(data)
        self._set_segments_and_form(clean, "nuts")
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
        target_accept: float | None = None,
        nutpie_backend: str = "numba",
        sampler_kwargs: dict[str, Any] | None = None,
        time_unit: str | None = None,
        device: str = "cpu",
    ) -> BayesianEstimator:
        """Fit by NUTS or MAP.

        Parameters
        ----------
        data : DataFrame
            RFM table (one row per customer; see :func:`clvlab.features.calibration_holdout`).
        method : {"nuts", "map"}
            NUTS sampling, or the posterior mode (one chain with one draw, so every prediction
            works unchanged).
        sampler : {"nutpie", "numpyro", "pymc"}
            NUTS implementation.
        chains, draws : int
            Number of chains and of kept draws per chain.
        tune : int, optional
            Warm-up iterations per chain; None = the sampler's default (nutpie
            :data:`NUTPIE_TUNE`, whose mass-matrix adaptation needs fewer; pymc / numpyro 1000).
        seed : int
            Random seed: the same seed gives bit-identical draws.
        progressbar : bool
            Show the sampler's progress and print the diagnostics line.
        target_accept : float, optional
            NUTS target acceptance rate (higher: smaller steps). None: 0.8, or
            :data:`FEW_SEGMENTS_TARGET_ACCEPT` for partial pooling over fewer than
            :data:`~clvlab.models.hierarchy.MIN_SEGMENTS_TO_CENTRE` segments (the chosen value
            is in ``fit_info_.target_accept``).
        nutpie_backend : {"numba", "jax"}
            nutpie's compile backend ("numba": fastest end to end on CDNOW-size data, measured).
        sampler_kwargs : dict, optional
            Passed to ``nutpie.sample`` / ``pm.sample`` unchanged; with nutpie, ``adaptation``
            defaults to the model's choice (``fit_info_.nutpie_adaptation``).
        time_unit : {"D", "W", "M"}, optional
            Unit of recency and T. Default: ``data.attrs["time_unit"]``, set by clvlab's feature
            functions. Stored as ``time_unit_`` (saved with the model), so CLV and predictions
            need not be told again; None when unknown.
        device : {"cpu", "gpu"}
            Where ``sampler="numpyro"`` runs (JAX; "gpu" needs a CUDA build of jax and a GPU, else a
            clear error); the JAX device used is in ``fit_info_.device``. The other samplers
            run on the CPU only.

        Returns
        -------
        self
        """
        problems = []
        if method not in METHODS:
            problems.append(f"method={method!r}: expected one of {METHODS}")
        if method == "nuts" and sampler not in SAMPLERS:
            problems.append(f"sampler={sampler!r}: expected one of {SAMPLERS}")
        for name, value, low in (("chains", chains, 1), ("draws", draws, 1), ("tune", tune, 0), ("seed", seed, 0)):
            if name == "tune" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                problems.append(f"{name}={value!r}: expected a whole number >= {low}")
        if target_accept is not None and (
            isinstance(target_accept, bool) or not isinstance(target_accept, int | float) or not 0 < target_accept < 1
        ):
            problems.append(f"target_accept={target_accept!r}: expected a probability in (0, 1)")
        if device not in DEVICES:
            problems.append(f"device={device!r}: expected one of {DEVICES}")
        elif device != "cpu" and (method != "nuts" or sampler != "numpyro"):
            problems.append(f"device={device!r} needs method='nuts' with sampler='numpyro' (JAX); "
                            f"got method={method!r}, sampler={sampler!r}")  # fmt: skip
        unit = time_unit if time_unit is not None else getattr(data, "attrs", {}).get("time_unit")
        if unit is not None and unit not in TIME_UNITS:
            problems.append(f"time_unit={unit!r}: expected one of {TIME_UNITS} (the unit of recency and T)")
        if problems:
            raise ClvlabInputError(problems, what="argument")
        if tune is None:
            tune = NUTPIE_TUNE if sampler == "nutpie" else DEFAULT_TUNE
        clean = self._validate(data)
        self._set_segments_and_form(clean, method)
        if target_accept is None:
            target_accept = self._default_target_accept()
        pre_info = self._before_build(clean, method, seed)
        t0 = time.perf_counter()
        model = self._build_model(clean)
        build_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        map_info: MapInfo | None = None
        if method == "map":
            idata, map_info = map_posterior(model, seed)
            compile_s = map_info.compile_s
        else:
            if sampler == "numpyro" or (sampler == "nutpie" and nutpie_backend == "jax"):
                self._prepare_backend("jax")
            sampler_kwargs = dict(sampler_kwargs or {})
            if sampler == "nutpie":
                sampler_kwargs.setdefault("adaptation", self._nutpie_adaptation())
                pre_info["nutpie_adaptation"] = sampler_kwargs["adaptation"]
            idata, compile_s = sample_nuts(
                model, sampler, chains, draws, tune, seed, progressbar, target_accept, nutpie_backend,
                sampler_kwargs, device,
            )  # fmt: skip
        fit_s = time.perf_counter() - t1
        self.model_ = model
        self.time_unit_ = unit
        self.data_ = clean  # validated fit data: the default for predictions
        self.idata_ = idata
        self.posterior_ = idata["posterior"].to_dataset()
        self.fit_info_: FitInfo | None = FitInfo(
            method=method, sampler=sampler if method == "nuts" else None, chains=chains, draws=draws,
            tune=tune, seed=seed, target_accept=target_accept, mean_centred=self.mean_centred_,
            nutpie_backend=nutpie_backend if (method == "nuts" and sampler == "nutpie") else None,
            device=device_name(device) if (method == "nuts" and sampler == "numpyro") else "cpu",
            n_rows=len(clean), data_hash=data_hash(clean), build_s=build_s, compile_s=compile_s, fit_s=fit_s,
            map=map_info, **pre_info,
        )  # fmt: skip
        self.diagnostics_ = None
        self.convergence_: Convergence | None = None
        if map_info is not None and not map_info.converged:
            warnings.warn(
                f"{self.model_name}: MAP optimiser did not converge ({map_info.message}, {map_info.n_eval} evaluations)",
                ConvergenceWarning, stacklevel=2,
            )  # fmt: skip
        if method == "nuts":
            self.diagnostics_, self.convergence_ = convergence_report(idata, self.diagnostic_vars)
            problems = self.convergence_.problems()
            if progressbar:
                print(f"{self.model_name}: {self.convergence_.describe()}")
            if problems:
                warnings.warn(
                    f"{self.model_name}: sampler diagnostics: " + "; ".join(problems), ConvergenceWarning, stacklevel=2
                )
        return self

    @property
    def effective_pooling(self) -> str:
        """The pooling actually used: without a segment column there is one population."""
        return self.pooling if self.segment is not None else "pooled"

    def segment_codes(self, df: pd.DataFrame) -> np.ndarray:
        """Integer code of each row's segment, indexing ``segments_``.

        Parameters
        ----------
        df : DataFrame
            Rows with the model's ``segment`` column (any rows when the model has none).

        Returns
        -------
        ndarray of int64
            One code per row; a segment the fit did not see is a clear error naming it.
        """
        self._check_fitted()
        return self._segment_codes(df, fitting=False)

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
    def summary(self, var_names: Sequence[str] | None = None, prob: float = HDI_PROB) -> pd.DataFrame:
        """Tidy posterior summary.

        Parameters
        ----------
        var_names : sequence of str, optional
            Variables to summarise (default: ``summary_vars`` present in the posterior).
        prob : float
            HDI mass.

        Returns
        -------
        DataFrame
            parameter, segment ("" for population-level), mean, sd, hdi_low, hdi_high, and
            r_hat, ess_bulk, ess_tail after NUTS.
        """
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

    def summary_header(self) -> str:
        """The lines above :meth:`print_summary`'s table: model, pooling, data, sampler, diagnostics."""
        self._check_fitted()
        label = MODEL_LABELS.get(self.model_name, self.model_name)
        info, conv = self.fit_info_, self.convergence_
        pooling = self.effective_pooling
        if self.segment:
            pooling += f" across {len(self.segments_):,} segments of {self.segment!r}"
        data = f"{info.n_rows:,} rows" if info else "?"
        if self.time_unit_:
            data += f", time unit {self.time_unit_!r}"
        if info:
            data += f", data hash {info.data_hash[:12]}"
        lines = [f"<clvlab.{type(self).__name__}: {label}, {pooling}>", ("model", label), ("pooling", pooling),
                 ("data", data), ("fit", info.describe() if info else "?"),
                 ("diagnostics", conv.describe() if conv else "none (MAP fit)")]  # fmt: skip
        if conv and conv.problems():
            lines.append(("warnings", "; ".join(conv.problems())))
        width = max(len(k) for k, _ in lines[1:])
        return "\n".join([lines[0], *(f"{k:>{width + 3}} = {v}" for k, v in lines[1:])])

    def print_summary(self, prob: float = HDI_PROB) -> None:
        """Print the fit in the manner of lifelines: a header (:meth:`summary_header`), then
        :meth:`summary`'s table.

        Parameters
        ----------
        prob : float
            HDI mass of the table's intervals.
        """
        table = self.summary(prob=prob)
        print(self.summary_header())
        print("---")
        print(table.to_string(index=False, float_format=lambda v: f"{v:,.4g}"))

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
    def fit_record(self) -> dict[str, Any]:
        """``fit_info_`` and ``convergence_`` as JSON values, keyed ``fit`` and ``convergence``
        (as ``metadata.json`` holds them; None where there is none, e.g. no diagnostics after MAP)."""
        info, conv = self.fit_info_, self.convergence_
        return dict(fit=info.to_dict() if info else None, convergence=conv.to_dict() if conv else None)

    def save(self, run_dir: str | os.PathLike, *, extra: dict[str, Any] | None = None) -> Path:
        """Write the run folder: ``posterior.nc``, ``data.parquet`` (fit data) and ``metadata.json``.

        Parameters
        ----------
        run_dir : path
            Folder to write (created); each file is written atomically.
        extra : dict, optional
            JSON values stored under ``metadata["extra"]`` (e.g. the pipeline's cache key).

        Returns
        -------
        Path
            ``run_dir``.
        """
        self._check_fitted()
        run_dir = Path(run_dir)
        groups = {"posterior": self.posterior_}
        if "sample_stats" in self.idata_.children:
            stats = self.idata_["sample_stats"].to_dataset()
            groups["sample_stats"] = stats[[v for v in stats.data_vars if stats[v].dtype != object]]
        tree = xr.DataTree.from_dict(groups)
        meta = dict(
            model=self.model_name,
            config=self._config(),
            state=self._get_state(),
            **self.fit_record(),
            versions=package_versions(),
            saved_at=pd.Timestamp.now(tz="UTC").isoformat(),
            extra=extra or {},
        )
        # the whole folder is built beside run_dir and swapped in: a reader (or a killed writer)
        # never leaves a posterior of one fit next to the metadata of another
        with atomic_dir(run_dir, allowed=set(MODEL_FILES)) as tmp:
            tree.to_netcdf(tmp / POSTERIOR_FILE, engine="h5netcdf")
            if getattr(self, "data_", None) is not None:
                write_table(self.data_, tmp / DATA_FILE)
            if self.diagnostics_ is not None:
                write_table(self.diagnostics_, tmp / DIAGNOSTICS_FILE)
            (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
        return run_dir

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> BayesianEstimator:
        """Rebuild a fitted estimator from a run folder written by :meth:`save`.

        Parameters
        ----------
        run_dir : path
            A folder written by :meth:`save`.

        Returns
        -------
        BayesianEstimator
            Fitted: posterior, diagnostics, state, the data's time unit (``time_unit_``) and the
            fit data (``data_``, when the folder has it), so predictions need no arguments.
        """
        run_dir = recover_dir(run_dir)  # a swap a killed writer left half done
        if not (run_dir / METADATA_FILE).exists():
            raise ClvlabInputError(f"{run_dir}: no {METADATA_FILE} (not a saved model, or an unfinished save)",
                                   what="run folder")  # fmt: skip
        try:
            meta = json.loads((run_dir / METADATA_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise ClvlabInputError(f"{run_dir / METADATA_FILE}: unreadable ({exc}); the file is damaged or truncated: "
                                   "save or fit the model again", what="run folder") from None  # fmt: skip
        if meta.get("model") != cls.model_name:
            raise ClvlabInputError(
                f"{run_dir / METADATA_FILE}: model {meta.get('model')!r}, expected {cls.model_name!r}",
                what="run folder",
            )
        obj = cls(**meta["config"])
        try:
            with xr.open_datatree(run_dir / POSTERIOR_FILE, engine="h5netcdf") as tree:
                tree = tree.load()
        except (OSError, ValueError) as exc:  # h5py: truncated or not HDF5; a missing file is an OSError
            raise ClvlabInputError(
                f"{run_dir / POSTERIOR_FILE}: unreadable ({type(exc).__name__}: {exc}); the file is "
                "damaged or truncated: save or fit the model again",
                what="run folder",
            ) from None
        if "posterior" not in tree.children:
            raise ClvlabInputError(f"{run_dir / POSTERIOR_FILE}: no posterior group (not written by clvlab)",
                                   what="run folder")  # fmt: skip
        obj.idata_ = tree
        obj.posterior_ = tree["posterior"].to_dataset()
        obj.fit_info_ = FitInfo.from_dict(meta.get("fit"))
        obj.convergence_ = Convergence.from_dict(meta.get("convergence"))
        diag = run_dir / DIAGNOSTICS_FILE
        obj.diagnostics_ = pd.read_csv(diag, keep_default_na=False) if diag.exists() else None
        obj._set_state(meta.get("state", {}))
        obj.data_ = pd.read_parquet(run_dir / DATA_FILE) if (run_dir / DATA_FILE).exists() else None
        obj.saved_extra_ = meta.get("extra", {})
        return obj
