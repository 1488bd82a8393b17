"""The pipeline: one run config -> stages -> typed results. Read this file to read the whole run.

    study = Study("models/configs/cdnow.yaml")          # or Study(load_config(...), quick=True)
    results = study.run()                                # every stage, in order
    study.purchase().model.p_alive()                     # or one stage (and what it needs)

Stages, in order (each is a method of :class:`Study` of the same name, computed once and
kept; its inputs are the results of the stages before it and its section of the config):

=========  ====================================================  ==========================
stage      what it does                                          config section
=========  ====================================================  ==========================
data       load + validate the transaction log                   ``data``
features   calibration / holdout RFM (DuckDB), RFM scores,       ``features``
           cohorts, inter-purchase times
purchase   hierarchical BG/NBD, MBG/NBD or Pareto/NBD, holdout   ``purchase``
           check, posterior predictive holdout counts, churn scores
spend      hierarchical Gamma-Gamma on the repeat customers      ``gamma_gamma``
clv        posterior CLV per customer / segment, lifecycle       ``clv``
           stages, sensitivity, CLV/CAC
churn      lapse table, Kaplan-Meier, Cox, churn-score           ``survival``
           comparison (Cox against the purchase model's scores)
compare    purchase models x poolings (+ MLE rows, the NBD       ``compare``
           baseline) on LOO, holdout tracking, errors, churn
=========  ====================================================  ==========================

Fits are cached in the run folder (``<runs_dir>/<name>/<model>/``): a saved fit is reused
when its cache key — the model's config section, the seed, the hash of the data it is fitted
on, the clvlab version and a hash of the model code — equals the new one; ``force=True``
refits. :mod:`clvlab.runs` writes the results as artifacts and the report; notebooks call
the same methods, so a notebook and ``make run`` give the same numbers from the same config.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from .choices import ALL_SEGMENTS, BEHAVIOUR_COLUMN, MODEL_LABELS, POOLINGS
from .config import ModelConfig, RunConfig, load_config
from .results import (
    BehaviourResult,
    ChurnResult,
    CLVResult,
    CompareResult,
    DataResult,
    FeaturesResult,
    PurchaseResult,
    SpendResult,
    StudyResults,
)
from .run_folder import Staging, link_tree
from .units import unit_days
from .versions import data_hash, package_versions

__all__ = ["STAGES", "Study", "StudyResults", "DataResult", "FeaturesResult", "PurchaseResult", "SpendResult",
           "CLVResult", "ChurnResult", "CompareResult", "fit_cache_key", "run_key"]  # fmt: skip

STAGES: tuple[str, ...] = ("data", "features", "purchase", "spend", "clv", "churn", "compare")
PACKAGE = Path(__file__).resolve().parent
MLE_PRIOR_SCALE = 10.0
"""Prior sd on the link scale of the MLE rows' flat-prior MAP (reproduces the published MLEs)."""
MODEL_CODE = PACKAGE / "models"


# ----------------------------------------------------------------------------------- caching
def _code_hash(folder: Path = MODEL_CODE, pattern: str = "*.py") -> str:
    h = hashlib.sha256()
    for p in sorted(folder.glob(pattern)):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(folder)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def run_key(config: RunConfig, data_sha: str) -> str:
    """Key of a whole run: the resolved config, the data hash, the versions and a hash of all of
    clvlab's code and report templates. A run folder whose metadata holds the same key is up to date."""
    v = package_versions()
    payload = dict(config=config.to_dict(), data=data_sha, code=_code_hash(PACKAGE, "**/*"),
                   versions={k: v.get(k) for k in sorted(v)})  # fmt: skip
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def fit_cache_key(model: str, settings: dict[str, Any], seed: int, data_sha: str) -> str:
    """Key of a cached fit: the model and its settings, the seed, the data hash, the clvlab
    version, the versions of the sampling stack and a hash of the model code."""
    v = package_versions()
    payload = dict(model=model, settings=settings, seed=seed, data=data_sha, code=_code_hash(),
                   versions={k: v.get(k) for k in ("clvlab", "pymc", "pytensor", "nutpie", "numpy")})  # fmt: skip
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _saved_key(folder: Path) -> str | None:
    """The cache key a saved fit was written with (None: no readable metadata)."""
    try:
        return json.loads((folder / "metadata.json").read_text()).get("extra", {}).get("cache_key")
    except (OSError, ValueError):
        return None


def fit_options(m: ModelConfig) -> dict[str, Any]:
    """The ``fit()`` keyword arguments of a config section's sampler settings (also in the cache key)."""
    gpu = {"device": m.device} if m.device != "cpu" else {}  # a CPU fit keeps its cache key
    return dict(method=m.method, sampler=m.sampler, chains=m.chains, draws=m.draws, tune=m.tune,
                target_accept=m.target_accept, **gpu)  # fmt: skip


def _thin(m: ModelConfig, draws_per_chain: int) -> int:
    """Thinning step that keeps about ``draws_per_chain`` of each chain's draws."""
    return max(1, m.draws // draws_per_chain) if m.method == "nuts" else 1


# ----------------------------------------------------------------------------------- the pipeline
class Study:
    """The pipeline of one run config.

    Parameters
    ----------
    config : RunConfig, path or dict
        The run config (a YAML path or mapping is read with :func:`clvlab.config.load_config`).
    quick : bool, optional
        Override the config's ``quick`` (fewer draws, the CDNOW sample).
    force : bool
        Refit every model even when a cached fit matches.
    cache : bool
        Read and write cached fits in the run folder (False: fit in memory only).
    root : path, optional
        Folder that relative ``outputs`` paths are under (default: the working directory).
    log : callable
        Where progress lines go (default ``print``; ``lambda s: None`` for silence).
    progress : bool
        Samplers' progress bars.
    """

    def __init__(self, config: RunConfig | str | Path | dict[str, Any], *, quick: bool | None = None,
                 force: bool = False, cache: bool = True, root: str | Path | None = None,
                 log: Callable[[str], None] | None = None, progress: bool = True):  # fmt: skip
        if not isinstance(config, RunConfig):
            config = load_config(config, quick=quick)
        elif quick is not None:
            config = config.model_copy(update=dict(quick=quick))
        self.config = config.resolved()
        self.force, self.cache, self.progress = force, cache, progress
        self.root = Path(root) if root is not None else Path.cwd()
        self._log = log or (lambda msg: print(f"[{self.config.name}] {msg}", flush=True))
        self.timings: dict[str, float] = {}
        self.cached_fits: dict[str, bool] = {}
        self._done: dict[str, Any] = {}
        self._staging: Staging | None = None

    @property
    def run_dir(self) -> Path:
        """The run folder (``<runs_dir>/<name>``)."""
        return self.root / self.config.run_dir

    @property
    def report_dir(self) -> Path:
        """The report folder (``<reports_dir>/<name>``)."""
        return self.root / self.config.report_dir

    @property
    def out_dir(self) -> Path:
        """Where fits and tables are written now: the run folder, or its staging folder during
        :func:`clvlab.runs.run` (swapped in whole when the run completes)."""
        return self._staging.run_dir if self._staging else self.run_dir

    @property
    def out_report_dir(self) -> Path:
        """Where the report is written now (see :attr:`out_dir`)."""
        return self._staging.report_dir if self._staging else self.report_dir

    def stage(self, staging: Staging | None) -> None:
        """Write into ``staging``'s folders and take cached fits from its ``cache_dirs`` (None: back
        to writing the run folder in place)."""
        self._staging = staging

    def log(self, msg: str) -> None:
        self._log(msg)

    def _stage(self, name: str, compute: Callable[[], Any]) -> Any:
        """Compute a stage once; its timing excludes the earlier stages it pulled in."""
        if name not in self._done:
            t0, nested = time.perf_counter(), sum(self.timings.values())
            self._done[name] = compute()
            own = time.perf_counter() - t0 - (sum(self.timings.values()) - nested)
            self.timings[name] = round(own, 2)
            self.log(f"{name} done in {own:.1f} s")
        return self._done[name]

    def run(self) -> StudyResults:
        """Run every stage (those already computed are reused); returns all results."""
        t0 = time.perf_counter()
        parts = {name: getattr(self, name)() for name in STAGES}
        self.timings["total"] = round(time.perf_counter() - t0, 2)
        return StudyResults(config=self.config, timings=dict(self.timings), **parts)

    def _fit(self, folder: str, make: Callable[[], Any], data: pd.DataFrame, section: ModelConfig,
             seed: int, settings: dict[str, Any]) -> tuple[Any, bool]:  # fmt: skip
        """Fit ``make()`` on ``data``, or load the cached fit in ``run_dir/folder`` whose key matches."""
        model = make()
        if BEHAVIOUR_COLUMN in data.columns and settings.get("segment") != BEHAVIOUR_COLUMN:
            data = data.drop(columns=BEHAVIOUR_COLUMN)  # a model not by behaviour neither sees nor is keyed on it
        key = fit_cache_key(model.model_name, {**settings, **fit_options(section)}, seed, data_hash(data))
        path = self.out_dir / folder
        sources = (path, *(d / folder for d in self._staging.cache_dirs)) if self._staging else (path,)
        for src in sources if self.cache and not self.force else ():
            if _saved_key(src) != key:
                continue
            try:
                cached = type(model).load(src)
            except Exception as exc:  # an unreadable folder is refitted, and said so
                self.log(f"{folder}: cached fit unreadable ({exc}); refitting")
                continue
            if src != path:  # from the live run folder (or a killed run's) into the one being built
                link_tree(src, path)
            self.log(f"{folder}: cached fit reused ({src})")
            self.cached_fits[folder] = True
            return cached, True
        model.fit(data, seed=seed, progressbar=self.progress, time_unit=self.config.features.time_unit,
                  **fit_options(section))  # fmt: skip
        if self.cache:
            model.save(path, extra={"cache_key": key})
        self.cached_fits[folder] = False
        return model, False

    # ---- 1. data -----------------------------------------------------------------------------
    def data(self) -> DataResult:
        """Load and validate the transaction log (``config.data``)."""
        return self._stage("data", self._data)

    def _data(self) -> DataResult:
        from .data import load_cdnow_with_report, load_transactions

        d = self.config.data
        if d.source in ("cdnow", "cdnow_sample"):
            tx, report = load_cdnow_with_report(sample=d.source == "cdnow_sample", pseudonymise=d.pseudonymise)
        elif d.source == "simulated":
            tx, report = load_transactions(self.simulation().transactions, segment_cols=d.segment_cols,
                                           pseudonymise=d.pseudonymise)  # fmt: skip
        else:
            source = Path(d.source) if Path(d.source).is_absolute() else self.root / d.source
            tx, report = load_transactions(source, customer_col=d.customer_col, date_col=d.date_col,
                                           amount_col=d.amount_col, segment_cols=d.segment_cols,
                                           pseudonymise=d.pseudonymise)  # fmt: skip
        self.log(f"data: {len(tx):,} purchase days, {tx['customer_id'].nunique():,} customers")
        return DataResult(transactions=tx, validation=report, hash=data_hash(tx))

    def simulation(self) -> Any:
        """The simulated business of ``data.simulation`` (``data.source: simulated``), reproducible from its seed.

        Returns
        -------
        clvlab.data.simulate.Simulation
            Its transactions and, in ``.truth``, each channel's true parameters and CAC.
        """
        from .data.simulate import SegmentParams, simulate

        sim = self.config.data.simulation
        col = self.config.data.segment_cols[0] if self.config.data.segment_cols else "channel"
        chans = {g: SegmentParams(**ch.model_dump(exclude={"customers"})) for g, ch in sim.channels.items()}
        return simulate(chans, n_customers={g: ch.customers for g, ch in sim.channels.items()},
                        start=str(sim.start), acquisition_days=sim.acquisition_days,
                        observation_days=sim.observation_days, segment_col=col, seed=sim.seed,
                        cac=dict(self.config.acquisition.cac) or None)  # fmt: skip

    def feature_source(self) -> Any:
        """The validated log as the feature queries read it: the pandas table (DuckDB), or with
        ``features.engine: spark`` a :class:`clvlab.features.spark.SparkSource` of it, made once.

        Returns
        -------
        DataFrame or clvlab.features._sql.Source
        """
        tx = self.data().transactions
        if self.config.features.engine == "duckdb":
            return tx
        if "feature_source" not in self._done:
            from .features._sql import open_source
            from .features.spark import spark_session

            sc = self.config.features.spark
            session = spark_session(
                sc.master if sc else None, sc.conf if sc else None, app_name=f"clvlab {self.config.name}"
            )
            self.log(f"features: Spark {session.version} at {session.sparkContext.master}")
            self._done["feature_source"] = open_source(tx, "spark")  # on the session just made (the active one)
        return self._done["feature_source"]

    # ---- 2. features -------------------------------------------------------------------------
    def features(self) -> FeaturesResult:
        """Calibration / holdout RFM table, RFM scores, cohorts (``config.features``)."""
        return self._stage("features", self._features)

    def _features(self) -> FeaturesResult:
        from .features import (
            calibration_holdout,
            cohorts,
            interpurchase_times,
            rfm_scores,
        )

        f, d = self.config.features, self.config.data
        tx = self.feature_source()
        rfm = calibration_holdout(tx, f.calibration_end, f.observation_end, time_unit=f.time_unit,
                                  segment_cols=d.segment_cols, whole_periods=f.whole_periods,
                                  cohort_freq=f.cohort_freq)  # fmt: skip
        rfm = rfm_scores(rfm)
        behaviour = self._behaviour(tx, rfm) if f.behaviour is not None else None
        if behaviour is not None:
            rfm[BEHAVIOUR_COLUMN] = behaviour.segments.labels_.reindex(rfm["customer_id"]).to_numpy()
        counts = rfm["rfm_segment"].value_counts().rename_axis("rfm_segment").reset_index(name="customers")
        sizes = cohorts(tx, f.cohort_freq, observation_end=f.calibration_end).sizes
        kpis = retention = migration = None
        if self.config.acquisition.cac:  # the channel job's descriptive layer (DuckDB)
            from .features.kpis import channel_kpis, retention_matrix, stage_migration

            kpis = channel_kpis(tx, f.calibration_end, segment=self.config.cac_segment)
            retention = retention_matrix(tx, f.calibration_end, cohort_freq="M", period="M")
            migration = stage_migration(
                tx, pd.Timestamp(f.calibration_end) - pd.DateOffset(months=3), f.calibration_end
            )
        result = FeaturesResult(rfm=rfm, cohort_sizes=sizes, rfm_segments=counts, hash=data_hash(rfm),
                                interpurchase=interpurchase_times(tx, observation_end=f.calibration_end),
                                kpis=kpis, retention=retention, migration=migration, behaviour=behaviour)  # fmt: skip
        self.log(f"features: {len(rfm):,} customers ({result.n_repeaters:,} repeaters) in calibration "
                 f"to {f.calibration_end}")  # fmt: skip
        return result

    def _behaviour(self, tx: Any, rfm: pd.DataFrame) -> BehaviourResult:
        """K-means behavioural segments of the calibration customers (``config.features.behaviour``)."""
        from .features import BehaviouralSegments, behaviour_matrix, early_behaviour

        f = self.config.features
        b = f.behaviour
        early = early_behaviour(tx, f.calibration_end, early_days=b.early_days)
        matrix = behaviour_matrix(rfm, early, features=b.features)
        segments = BehaviouralSegments(k=b.k, k_range=b.k_range, stability_replicates=b.stability_replicates,
                                       min_stability=b.min_stability, seed=self.config.seed).fit(matrix)  # fmt: skip
        chosen = segments.selection_.loc[segments.selection_["chosen"]].iloc[0]
        self.log(f"features: {segments.k_} behavioural segments ({segments.rule_}; silhouette "
                 f"{chosen['silhouette']:.2f}, stability {chosen['stability']:.2f})")  # fmt: skip
        return BehaviourResult(segments=segments, early=early)

    # ---- 3. purchase model -------------------------------------------------------------------
    def purchase(self) -> PurchaseResult:
        """The hierarchical purchase model and its holdout predictions (``config.purchase``)."""
        return self._stage("purchase", self._purchase)

    def _purchase(self) -> PurchaseResult:
        from .evaluate import holdout_check

        m, f = self.config.purchase, self.config.features
        rfm = self.features().rfm
        model, cached = self._purchase_fit(m.model, m.pooling)
        fits = {m.pooling: model}
        if m.compare_pooling and f.segment:
            for pooling in POOLINGS:
                if pooling not in fits:
                    fits[pooling] = self._purchase_fit(m.model, pooling)[0]
        duration = float(rfm["duration_holdout"].iloc[0])
        thin = _thin(m, m.prediction_draws)
        expected = model.expected_purchases(duration, thin=thin).mean(("chain", "draw")).to_series()
        return PurchaseResult(
            model=model, pooling_fits=fits if len(fits) > 1 else {}, holdout_duration=duration,
            holdout_check=holdout_check(rfm, expected, segment=f.segment),
            holdout_draws=model.sample_holdout_purchases(duration, thin=thin, seed=self.config.seed),
            p_alive=model.p_alive(thin=thin).mean(("chain", "draw")).to_series(),
            p_no_purchase=model.p_no_purchase(duration, thin=thin).mean(("chain", "draw")).to_series(),
            summary=model.summary(prob=self.config.clv.hdi_prob), cached=cached,
        )  # fmt: skip

    def _purchase_fit(self, model_name: str, pooling: str, mle: bool = False) -> tuple[Any, bool]:
        """A purchase model fitted with the ``purchase`` section's sampler settings, cached in
        ``<model>`` (the config's pooling), ``<model>_<pooling>`` or ``<model>_mle`` (a pooled
        flat-prior MAP: the maximum-likelihood fit)."""
        from .models import purchase_model_class

        m, f, seed = self.config.purchase, self.config.features, self.config.seed
        cls = purchase_model_class(model_name)
        settings: dict[str, Any] = dict(pooling="pooled" if mle else pooling, segment=f.segment)
        if not mle:
            settings["parameterization"] = m.parameterization
        section = m
        if mle:
            settings["priors"] = {k: dict(scale=MLE_PRIOR_SCALE) for k in cls.link_params}
            section = m.model_copy(update=dict(method="map"))
        folder = f"{model_name}_mle" if mle else model_name if pooling == m.pooling else f"{model_name}_{pooling}"
        model, cached = self._fit(folder, lambda: cls(**settings), self.features().rfm, section, seed, settings)
        conv = model.convergence_
        self.log(f"{folder} ({settings['pooling']}, by {f.segment}): "
                 + ("cached" if cached else f"{model.fit_info_.fit_s:.1f} s")
                 + ("; " + conv.describe() if conv else ""))  # fmt: skip
        return model, cached

    # ---- 4. spend model ----------------------------------------------------------------------
    def spend(self) -> SpendResult:
        """Hierarchical Gamma-Gamma on the repeat customers (``config.gamma_gamma``)."""
        return self._stage("spend", self._spend)

    def _spend(self) -> SpendResult:
        from .models.gamma_gamma import GammaGamma, independence_check

        m, f = self.config.gamma_gamma, self.config.features
        rfm = self.features().rfm
        repeaters = rfm[rfm["frequency"] > 0]
        zero = repeaters["monetary_value"] <= 0  # the Gamma likelihood needs spend > 0
        if zero.any():
            self.log(
                f"gamma-gamma: {int(zero.sum())} repeat customer(s) with zero mean repeat spend left out of "
                f"the fit (e.g. {list(repeaters.loc[zero, 'customer_id'].head(3))}); their CLV is still computed"
            )
        fit_data = repeaters[~zero]
        settings = dict(pooling=m.pooling, segment=f.segment, parameterization=m.parameterization)
        model, cached = self._fit("gamma_gamma", lambda: GammaGamma(**settings), fit_data, m, self.config.seed + 1,
                                  settings)  # fmt: skip
        conv = model.convergence_
        self.log(f"gamma-gamma ({m.pooling}): " + ("cached" if cached else f"{model.fit_info_.fit_s:.1f} s")
                 + ("; " + conv.describe() if conv else ""))  # fmt: skip
        unseen = sorted(set(rfm[f.segment].astype(str)) - set(map(str, model.segments_))) if f.segment else []
        if unseen:
            self.log(f"gamma-gamma: {f.segment} {unseen} without a repeat buyer: their spend is a new draw from the "
                     f"population ({m.pooling} pooling)")  # fmt: skip
        replicates = model.sample_mean_spend(thin=_thin(m, m.prediction_draws), seed=self.config.seed).values
        return SpendResult(model=model, fit_data=fit_data, excluded=repeaters[zero],
                           independence=independence_check(fit_data, f.segment),
                           spend_replicates=replicates.reshape(-1, replicates.shape[-1]),
                           summary=model.summary(prob=self.config.clv.hdi_prob), cached=cached)  # fmt: skip

    # ---- 5. posterior CLV --------------------------------------------------------------------
    def segment_columns(self) -> list[str]:
        """Columns CLV is summarised by: the models' segment, the data's segment columns, the behavioural segments."""
        f = self.config.features
        cols = [f.segment] if f.segment else []
        extra = [*self.config.data.segment_cols, *([BEHAVIOUR_COLUMN] if f.behaviour is not None else [])]
        return cols + [c for c in extra if c not in cols]

    def clv(self) -> CLVResult:
        """Posterior CLV per customer and segment, lifecycle, sensitivity, CLV/CAC (``config.clv``)."""
        return self._stage("clv", self._clv)

    def _clv(self) -> CLVResult:
        from .clv import (
            cac_ratio,
            clv_cac,
            customer_lifetime_value,
            lifecycle_stage,
            new_customer_value,
            sensitivity,
        )
        from .clv.budget import allocate_budget
        from .features import cohorts

        c, rfm = self.config.clv, self.features().rfm
        bg, gg = self.purchase().model, self.spend().model
        segments = self.segment_columns()
        settings = dict(horizon=c.horizon, period=c.period, discount_rate=c.discount_rate)
        post = customer_lifetime_value(bg, gg, rfm, margin=c.margin, segment=segments, threshold=c.thresholds,
                                       hdi_prob=c.hdi_prob, **settings)  # fmt: skip
        crm = lifecycle_stage(post, rfm, new_tenure=c.new_tenure, active_p_alive=c.active_p_alive,
                              lapsed_p_alive=c.lapsed_p_alive)  # fmt: skip
        total = post.summary(ALL_SEGMENTS)["total_mean"].iloc[0]
        self.log(f"clv: {len(crm):,} customers, total {total:,.0f} over {c.horizon} {c.period} "
                 f"(margin {c.margin}, discount {c.discount_rate}/period)")  # fmt: skip
        sens = sensitivity(bg, gg, rfm, max_draws=c.sensitivity_draws,  # the whole base
                           discount_rates=c.sensitivity_discount_rates, margins=c.sensitivity_margins,
                           horizon=c.horizon, period=c.period)  # fmt: skip
        acq = self.config.acquisition
        channel, ncv, cac_table, budget = self.config.cac_segment, None, None, None
        if acq.cac:  # a new customer's value per channel, from each customer's first order on
            first = cohorts(self.feature_source(), observation_end=self.config.features.calibration_end).customers
            first = first[["customer_id", "first_amount"]].merge(rfm[["customer_id", channel]], on="customer_id")
            ncv = new_customer_value(bg, gg, first, segment=channel, margin=c.margin, hdi_prob=c.hdi_prob,
                                     seed=self.config.seed, **{**settings, "horizon": acq.horizon or c.horizon})  # fmt: skip
            cac_table = clv_cac(ncv, acq.cac)
            best = cac_table.iloc[0]
            self.log(f"clv: a new {channel} {best[channel]!r} customer is worth {best['value_mean']:,.2f} "
                     f"({best['ratio_mean']:.2f}x its CAC, P(best) {best['p_rank_1']:.2f})")  # fmt: skip
            if acq.budget is not None:
                budget = allocate_budget(ncv, acq.cac, acq.budget, saturation=acq.saturation, seed=self.config.seed)
                opt = budget.summary.iloc[0]
                self.log(f"clv: budget {acq.budget:,.0f}: expected net value {opt['expected_net_value']:,.0f} "
                         f"(5% quantile {opt['net_value_q05']:,.0f}, P(loss) {opt['p_loss']:.2f})")  # fmt: skip
        by_segment = {col: post.summary(col) for col in [ALL_SEGMENTS, *segments]}
        return CLVResult(
            posterior=post, customers=crm,
            by_segment=by_segment,
            stage_tier=crm.groupby(["stage", "value_tier"], observed=True).size().unstack(fill_value=0),
            sensitivity=sens, cac=cac_table, new_customer=ncv,
            residual_cac=cac_ratio(post, acq.cac, segment=channel) if acq.cac else None, budget=budget,
            behaviour_profile=self._behaviour_profile(by_segment),
        )  # fmt: skip

    def _behaviour_profile(self, by_segment: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
        """Each behavioural segment's profile with its posterior CLV (None without features.behaviour)."""
        feat = self.features()
        if feat.behaviour is None:
            return None
        return feat.behaviour.segments.profile(feat.rfm, feat.behaviour.early, clv=by_segment[BEHAVIOUR_COLUMN])

    # ---- 6. churn ----------------------------------------------------------------------------
    def churn(self) -> ChurnResult:
        """Lapse table, Kaplan-Meier, Cox and the churn-score comparison (``config.survival``)."""
        return self._stage("churn", self._churn)

    def _churn(self) -> ChurnResult:
        from .evaluate import (
            calibration_curve,
            churn_comparison,
            holdout_churn_labels,
            roc_table,
        )
        from .features.lapse import lapse_table, suggest_lapse_threshold
        from .models.survival import (
            CoxChurnModel,
            KaplanMeierBySegment,
            train_test_split_customers,
        )

        f, s, seed = self.config.features, self.config.survival, self.config.seed
        tx, source = self.data().transactions, self.feature_source()
        cal_end, obs_end = pd.Timestamp(f.calibration_end), pd.Timestamp(f.observation_end)
        if s.lapse_after is None:
            lapse_after, why = suggest_lapse_threshold(source, s.lapse_quantile, f.time_unit, cutoff=cal_end)
        else:
            lapse_after, why = s.lapse_after, f"lapse_after = {s.lapse_after:g} {f.time_unit} (from the config)"
        table = lapse_table(source, cal_end, lapse_after, f.time_unit, cohort_freq=f.cohort_freq,
                            segment_cols=self.config.data.segment_cols)  # fmt: skip
        if f.behaviour is not None:  # the behavioural segment of each calibration customer
            labels = self.features().behaviour.segments.labels_
            table[BEHAVIOUR_COLUMN] = labels.reindex(table["customer_id"]).to_numpy()
            if table[BEHAVIOUR_COLUMN].isna().any():
                raise RuntimeError("lapse table has customers the behavioural segments did not see")
        km = KaplanMeierBySegment().fit(table, f.segment)
        cox_settings = dict(segment=f.segment, penalizer=s.penalizer, log1p=list(s.log1p))
        train, test = train_test_split_customers(table, s.test_fraction, seed=seed)
        concordance = CoxChurnModel(**cox_settings).fit(train).concordance(test)
        cox = CoxChurnModel(**cox_settings).fit(table)
        self.log(f"churn: lapse after {lapse_after:g} {f.time_unit}, held-out concordance {concordance:.3f}")
        # churn in the holdout window: the Cox lapse probability against the BG/NBD posterior scores
        horizon = (obs_end - cal_end).days / unit_days(f.time_unit)
        labels = holdout_churn_labels(tx, cal_end, obs_end)
        purchase = self.purchase()
        name = MODEL_LABELS[self.config.purchase.model]
        scores = {"Cox P(lapse)": cox.predict_lapse_probability(table, horizon),
                  f"{name} 1 - P(alive)": 1.0 - purchase.p_alive,
                  f"{name} P(no purchase in holdout)": purchase.p_no_purchase}  # fmt: skip
        segment = table.set_index("customer_id")[f.segment] if f.segment else None
        return ChurnResult(
            lapse_after=float(lapse_after), lapse_explanation=why, lapse_table=table, km=km, cox=cox,
            concordance=float(concordance), hazard_ratios=cox.hazard_ratios(), ph_check=cox.check_proportional_hazards(),
            labels=labels, scores=scores, comparison=churn_comparison(labels, scores, segment=segment),
            calibration=calibration_curve(labels, scores, n_bins=s.calibration_bins), roc=roc_table(labels, scores),
        )  # fmt: skip

    # ---- 7. model comparison ----------------------------------------------------------------
    def compare(self) -> CompareResult:
        """Purchase models x poolings on LOO, holdout tracking, errors and churn (``config.compare``)."""
        return self._stage("compare", self._compare)

    def _compare(self) -> CompareResult:
        from .comparison import Candidate, compare_models

        cm, m, f = self.config.compare, self.config.purchase, self.config.features
        if not cm.models:
            return CompareResult(comparison=None, fits={}, cached={})
        purchase = self.purchase()
        wanted = [(name, pooling, False) for name in cm.models for pooling in cm.poolings]
        wanted += [(name, "mle", True) for name in cm.models if cm.mle]
        if cm.baseline:
            wanted.append((cm.baseline, "pooled", False))
        candidates, cached = [], {}
        for name, pooling, mle in wanted:
            if name == m.model and not mle and pooling in ({m.pooling} | set(purchase.pooling_fits)):
                fit, hit = purchase.pooling_fits.get(pooling, purchase.model), purchase.cached
            else:
                fit, hit = self._purchase_fit(name, pooling, mle=mle)
            candidates.append(Candidate.of(fit, "mle" if mle else pooling))
            cached[candidates[-1].label] = hit
        comparison = compare_models(candidates, self.features().rfm, self.data().transactions,
                                    calibration_end=f.calibration_end, time_unit=f.time_unit, segment=f.segment,
                                    draws_per_chain=cm.draws_per_chain, hdi_prob=self.config.clv.hdi_prob,
                                    seed=self.config.seed)  # fmt: skip
        self.log("compare: " + comparison.verdict)
        return CompareResult(comparison=comparison, fits={c.label: c.fit for c in candidates}, cached=cached)
