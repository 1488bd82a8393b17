"""Run configuration: a YAML file -> typed, validated settings (pydantic), checked on read.

A run (``clvlab run --config FILE``) is fully described by its config plus the data; the
config is stored with every run's metadata so a run can be reproduced from its folder. Every
constant a pipeline stage uses is a field here, with its documented default; unknown keys,
wrong types and out-of-range values are all reported at once, before any work starts, as one
:class:`~clvlab.errors.ClvlabInputError` naming ``config.<section>.<key>``.

``quick: true`` (or ``clvlab run --quick``) gives a smoke run: the CDNOW 1/10 sample when the
source is CDNOW, and the chains / draws / warm-up of ``quick_settings`` for every sampled
model, in the run folder ``<name>_quick`` (:meth:`RunConfig.resolved`); the resolved config
is what the run records.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from .choices import (
    BASELINE_MODELS,
    BEHAVIOUR_COLUMN,
    BEHAVIOUR_FEATURE_NAMES,
    COHORT_FREQS,
    METHODS,
    MIN_CAC,
    PARAMETERIZATIONS,
    POOLINGS,
    PURCHASE_MODELS,
    SAMPLERS,
    TIME_UNITS,
)
from .errors import ClvlabInputError

__all__ = [
    "BehaviourConfig", "CLVConfig", "CompareConfig", "DataConfig", "FeaturesConfig", "OutputsConfig", "PurchaseConfig", "QuickConfig", "RunConfig",
    "SparkConfig", "SpendConfig", "SurvivalConfig", "load_config",
]  # fmt: skip

TimeUnit = Literal[TIME_UNITS]  # type: ignore[valid-type]


def _a_number(value: Any) -> Any:
    """Numbers stay numbers: text and booleans are refused, also inside lists and mappings."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, str):
        raise ValueError(f"expected a number, got the text {value!r}")
    return value


Positive = Annotated[int, Field(gt=0), BeforeValidator(_a_number)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False), BeforeValidator(_a_number)]
"""A finite number > 0 (infinity and NaN are refused)."""
Probability = Annotated[float, Field(gt=0.0, lt=1.0), BeforeValidator(_a_number)]


class Section(BaseModel):
    """A config section: unknown keys are errors; values are checked by type and range, with
    no silent coercion of text to numbers or of numbers to text."""

    model_config = ConfigDict(extra="forbid", strict=False, validate_default=True, frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_text_for_numbers(cls, value: Any, info: Any) -> Any:
        field = cls.model_fields.get(info.field_name)
        ann = str(field.annotation) if field is not None else ""
        number = any(t in ann for t in ("int", "float"))
        if number and (isinstance(value, str) and "str" not in ann or isinstance(value, bool) and "bool" not in ann):
            _a_number(value)  # raises: the same words as inside lists and mappings
        return value


class ChannelSimulation(Section):
    """One simulated channel: its customers and population parameters (weekly rates;
    :class:`clvlab.data.simulate.SegmentParams`, BG/NBD dropout)."""

    customers: Positive
    r: PositiveFloat
    alpha: PositiveFloat
    a: PositiveFloat
    b: PositiveFloat
    p: PositiveFloat = 6.0
    q: Annotated[float, Field(gt=1.0)] = 4.0
    gamma: PositiveFloat = 15.0


class SimulationConfig(Section):
    """A simulated multi-channel business (a known truth to check a run against)."""

    channels: dict[str, ChannelSimulation]
    start: dt.date = dt.date(2020, 1, 1)
    acquisition_days: Positive = 84
    observation_days: Positive = 546
    seed: Annotated[int, Field(ge=0)] = 0


class DataConfig(Section):
    """Where the transaction log comes from and what its columns are called."""

    source: str = "cdnow"
    """"cdnow" (full CDNOW log), "cdnow_sample" (its 1/10 sample), "simulated" (``simulation``)
    or a CSV / Parquet path."""
    customer_col: str = "customer_id"
    date_col: str = "date"
    amount_col: str = "amount"
    segment_cols: list[str] = Field(default_factory=list)
    """Segment columns carried to every customer table (value at the first purchase)."""
    pseudonymise: bool = False
    simulation: SimulationConfig | None = None
    """The business simulated when ``source`` is "simulated" (:func:`clvlab.data.simulate`)."""

    @model_validator(mode="after")
    def _simulation_when_simulated(self) -> DataConfig:
        if (self.source == "simulated") != (self.simulation is not None):
            raise ValueError('source: "simulated" and a simulation section go together')
        return self


class BehaviourConfig(Section):
    """Behavioural segments (:class:`clvlab.features.BehaviouralSegments`): K-means on
    standardised log behaviour features, added to the customer table as the column
    ``behaviour`` (``features.segment: behaviour`` pools every model across them)."""

    k: Annotated[int, Field(ge=2)] | None = None
    """Number of segments; None: chosen over ``k_range`` by silhouette and stability."""
    k_range: tuple[Annotated[int, Field(ge=2)], Annotated[int, Field(ge=2)]] = (2, 8)
    features: list[Literal[BEHAVIOUR_FEATURE_NAMES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(BEHAVIOUR_FEATURE_NAMES), min_length=1
    )
    early_days: Positive = 90
    """Early window after the first purchase (days) of ``early_purchases``."""
    stability_replicates: Positive = 10
    min_stability: Probability = 0.8
    """Mean adjusted Rand index over subsample refits that a k needs to be chosen on silhouette."""

    @field_validator("k_range")
    @classmethod
    def _range_ordered(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] > value[1]:
            raise ValueError(f"k_range {list(value)}: expected [low, high] with low <= high")
        return value

    @field_validator("features")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"features {value}: a name repeats")
        return value


class SparkConfig(Section):
    """The Spark session of ``features.engine: spark`` (:func:`clvlab.features.spark.spark_session`)."""

    master: str | None = None
    """``spark.master``: ``local[2]``, ``spark://host:7077``, ``yarn``, ``k8s://...``; None: the
    active session (``spark-submit``), else Spark's default ``local[*]``."""
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)
    """Further Spark settings, e.g. ``spark.executor.memory: 8g``."""


class FeaturesConfig(Section):
    """Calibration / holdout split and customer features."""

    calibration_end: dt.date = dt.date(1997, 9, 30)
    observation_end: dt.date = dt.date(1998, 6, 30)
    time_unit: TimeUnit = "W"
    """Unit of recency, T and the holdout duration (D, W or M)."""
    segment: str | None = "cohort"
    """Segment column of the hierarchical models (None: one population)."""
    cohort_freq: Literal[COHORT_FREQS] = "W"  # type: ignore[valid-type]
    whole_periods: bool = False
    behaviour: BehaviourConfig | None = None
    """Behavioural segments (None: none); ``segment: behaviour`` pools the models across them."""
    engine: Literal["duckdb", "spark"] = "duckdb"
    """Engine of the feature queries (RFM, holdout, cohorts, KPIs, lapse table, early behaviour):
    embedded DuckDB, or Apache Spark (``spark``; the same queries, the same bits)."""
    spark: SparkConfig | None = None
    """The Spark session when ``engine: spark`` (None: ``SparkConfig()``'s defaults)."""

    @model_validator(mode="after")
    def _holdout_after_calibration(self) -> FeaturesConfig:
        if self.observation_end <= self.calibration_end:
            raise ValueError(f"observation_end {self.observation_end} must be after calibration_end "
                             f"{self.calibration_end}")  # fmt: skip
        if self.spark is not None and self.engine != "spark":
            raise ValueError(f"a spark section is set but engine is {self.engine!r}: set engine: spark or drop it")
        if self.segment == BEHAVIOUR_COLUMN and self.behaviour is None:
            raise ValueError(f"segment: {BEHAVIOUR_COLUMN} needs a features.behaviour section (the clustering)")
        return self


class ModelConfig(Section):
    """How a Bayesian model is fitted (shared by the purchase and spend models)."""

    pooling: Literal[POOLINGS] = "partial"  # type: ignore[valid-type]
    parameterization: Literal[PARAMETERIZATIONS] = "auto"  # type: ignore[valid-type]
    """Partial pooling under NUTS: centred / non-centred segment parameters ("auto": per
    (segment, parameter) from a pilot fit of the segments separately, ``models.centering``)."""
    method: Literal[METHODS] = "nuts"  # type: ignore[valid-type]
    sampler: Literal[SAMPLERS] = "nutpie"  # type: ignore[valid-type]
    chains: Positive = 4
    draws: Positive = 1000
    tune: Positive | None = None
    """Warm-up per chain; None: the sampler's default (nutpie 400, pymc / numpyro 1000)."""
    target_accept: Probability | None = None
    """None: 0.8, or 0.99 for partial pooling over fewer than 10 segments (``BayesianEstimator.fit``)."""
    device: Literal["cpu", "gpu"] = "cpu"
    """Where ``sampler: numpyro`` runs (JAX): "gpu" needs a CUDA build of jax and a GPU. CPU is the
    default and all CI uses; the other samplers run on the CPU only."""
    prediction_draws: Positive = 250
    """Draws per chain (evenly thinned) behind per-customer predictions, checks and figures."""

    @model_validator(mode="after")
    def _gpu_needs_numpyro(self) -> ModelConfig:
        if self.device == "gpu" and (self.method != "nuts" or self.sampler != "numpyro"):
            raise ValueError(f"device: gpu needs method: nuts with sampler: numpyro (JAX); got method: "
                             f"{self.method}, sampler: {self.sampler}")  # fmt: skip
        return self


class PurchaseConfig(ModelConfig):
    """The purchase model: BG/NBD, MBG/NBD or Pareto/NBD (its CLV, churn scores and figures)."""

    model: Literal[PURCHASE_MODELS] = "bgnbd"  # type: ignore[valid-type]
    compare_pooling: bool = False
    """Also fit the other two poolings (the shrinkage forest plot)."""
    heatmap_horizon: Annotated[float, Field(gt=0)] | None = None
    """t of the expected-purchases heat map, in ``features.time_unit``; None: the holdout length."""
    heatmap_draws: Positive = 100
    """Draws per chain behind the frequency x recency heat maps."""


class CompareConfig(Section):
    """The model comparison (``compare`` stage): models x poolings scored on the same holdout.

    Sampler settings are the ``purchase`` section's; a (model, pooling) equal to the purchase
    model's, or one of its ``compare_pooling`` fits, is reused.
    """

    models: list[Literal[PURCHASE_MODELS]] = Field(default_factory=list)  # type: ignore[valid-type]
    """Purchase models to compare (empty: no comparison stage)."""
    poolings: list[Literal[POOLINGS]] = Field(default_factory=lambda: ["partial", "pooled"])  # type: ignore[valid-type]
    mle: bool = True
    """Add each model's pooled maximum-likelihood fit (a flat-prior MAP): the classic row."""
    baseline: Literal[BASELINE_MODELS] | None = "nbd"  # type: ignore[valid-type]
    """A model without dropout, fitted pooled: the floor every model must beat (None: none)."""
    draws_per_chain: Positive = 250
    """Draws per chain (evenly thinned) behind the comparison's predictions and bands."""


class SpendConfig(ModelConfig):
    """The spend model (Gamma-Gamma)."""


class CLVConfig(Section):
    """Posterior CLV: horizon, discounting, margin, CAC and the derived analyses."""

    horizon: Positive = 12
    """Number of CLV periods."""
    period: TimeUnit = "M"
    """Unit of one CLV period (D, W or M); the data's unit is ``features.time_unit``."""
    discount_rate: Annotated[float, Field(ge=0.0, allow_inf_nan=False), BeforeValidator(_a_number)] = 0.01
    """Per-period discount rate d (a fraction: 0.01 = 1% a period)."""
    margin: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    """Profit margin on revenue (a fraction in (0, 1])."""
    thresholds: list[Annotated[float, Field(ge=0)]] = Field(default_factory=lambda: [100.0])
    """Values c of the per-customer P(CLV > c) columns."""
    hdi_prob: Probability = 0.94
    sensitivity_draws: Positive = 200
    sensitivity_discount_rates: list[
        Annotated[float, Field(ge=0.0, allow_inf_nan=False), BeforeValidator(_a_number)]
    ] = Field(default_factory=lambda: [0.0, 0.005, 0.01, 0.02, 0.03])
    sensitivity_margins: list[Annotated[float, Field(gt=0.0, le=1.0)]] = Field(
        default_factory=lambda: [0.2, 0.3, 0.5, 1.0]
    )
    new_tenure: Annotated[float, Field(ge=0)] = 8.0
    """Lifecycle stage "new": tenure T below this, in ``features.time_unit``."""
    active_p_alive: Annotated[float, Field(ge=0.0, le=1.0)] = 0.7
    lapsed_p_alive: Annotated[float, Field(ge=0.0, le=1.0)] = 0.3

    @model_validator(mode="after")
    def _stages_ordered(self) -> CLVConfig:
        if self.lapsed_p_alive > self.active_p_alive:
            raise ValueError(f"lapsed_p_alive ({self.lapsed_p_alive}) must be <= active_p_alive "
                             f"({self.active_p_alive})")  # fmt: skip
        return self


class AcquisitionConfig(Section):
    """Acquisition economics: a new customer's value per channel against CAC, and the budget
    decision (:mod:`clvlab.clv.acquisition`, :mod:`clvlab.clv.budget`; the ``clv`` stage)."""

    cac: dict[str, Annotated[float, Field(ge=MIN_CAC, allow_inf_nan=False), BeforeValidator(_a_number)]] = Field(
        default_factory=dict)  # fmt: skip
    """Acquisition cost per customer by channel (empty: no acquisition economics); at least
    :data:`clvlab.choices.MIN_CAC`."""
    segment: str | None = None
    """Channel column of ``cac`` (None: the first ``data.segment_cols``, else ``features.segment``)."""
    horizon: Positive | None = None
    """Periods of ``clv.period`` a new customer is valued over (None: ``clv.horizon``)."""
    budget: PositiveFloat | None = None
    """Total acquisition budget to allocate across the channels (None: no allocation)."""
    saturation: dict[str, PositiveFloat] = Field(default_factory=dict)
    """Most customers a channel can bring (its CAC rises with spend; left out: a fixed CAC)."""

    @model_validator(mode="after")
    def _consistent(self) -> AcquisitionConfig:
        problems = [f"saturation of {g!r}, which has no CAC" for g in self.saturation if g not in self.cac]
        if self.budget is not None and not self.cac:
            problems.append("budget without a cac table")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class SurvivalConfig(Section):
    """Lapse table, Kaplan-Meier, Cox and the churn-score comparison."""

    lapse_after: Annotated[float, Field(gt=0)] | None = None
    """A lapse: no purchase within this many ``features.time_unit``; None: from the data."""
    lapse_quantile: Probability = 0.9
    """With ``lapse_after`` None: this quantile of the inter-purchase times."""
    penalizer: Annotated[float, Field(ge=0)] = 0.01
    test_fraction: Probability = 0.3
    """Share of customers held out for the Cox model's concordance."""
    log1p: list[str] = Field(default_factory=lambda: ["first_amount", "early_monetary"])
    """Skewed covariates entered as log(1 + x)."""
    calibration_bins: Positive = 10


class QuickConfig(Section):
    """What ``quick: true`` changes (a run in about a minute: the data, not the sampler, is cut).

    Full-length chains on the 1/10 sample: 2 x 200 draws gave max R-hat 1.02-1.03 and bulk ESS
    120-330 on every model, so a quick run always warned; 4 x 1000 (measured, seeds 1-3) gives
    1.002-1.007 and ESS above 1,100, the purchase stage in 14-24 s against 21 s, the spend stage
    8-10 s against 5 s (its warm-up and compilation dominate on the sample).
    """

    chains: Positive = 4
    draws: Positive = 1000
    tune: Positive | None = None
    sample: bool = True
    """Use the CDNOW 1/10 sample when the source is the full CDNOW log, and a quarter of each
    channel's customers when it is a simulated business."""
    compare_poolings: list[Literal[POOLINGS]] = Field(default_factory=lambda: ["pooled"])  # type: ignore[valid-type]
    """``compare.poolings`` of a quick run (the pooled fits compile and sample in seconds)."""


class OutputsConfig(Section):
    runs_dir: str = "models/runs"
    reports_dir: str = "reports"
    self_contained: bool = True
    """Also write ``report_standalone.html`` with the images embedded (one file to e-mail)."""


class RunConfig(Section):
    """A whole run. ``resolved()`` applies ``quick``; ``to_dict()`` is what metadata records."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    """Run folder name (letters, digits, '_', '-', '.')."""
    seed: Annotated[int, Field(ge=0)] = 0
    quick: bool = False
    data: DataConfig = Field(default_factory=DataConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    purchase: PurchaseConfig = Field(default_factory=PurchaseConfig)
    gamma_gamma: SpendConfig = Field(default_factory=SpendConfig)
    clv: CLVConfig = Field(default_factory=CLVConfig)
    acquisition: AcquisitionConfig = Field(default_factory=AcquisitionConfig)
    survival: SurvivalConfig = Field(default_factory=SurvivalConfig)
    compare: CompareConfig = Field(default_factory=CompareConfig)
    quick_settings: QuickConfig = Field(default_factory=QuickConfig)
    outputs: OutputsConfig = Field(default_factory=OutputsConfig)
    _source_file: str | None = PrivateAttr(default=None)

    @property
    def source_file(self) -> str | None:
        """The YAML file the config was read from (absolute path; None for a mapping)."""
        return self._source_file

    def resolved(self) -> RunConfig:
        """The config the stages run: with ``quick``, the quick sampler settings and data."""
        if not self.quick:
            return self
        q = self.quick_settings
        name = self.name if self.name.endswith("_quick") else f"{self.name}_quick"  # never the full run's folder
        sampling = dict(chains=q.chains, draws=q.draws, tune=q.tune)
        data = self.data
        if q.sample and data.source == "cdnow":
            data = data.model_copy(update=dict(source="cdnow_sample"))
        if q.sample and data.simulation is not None:
            chans = {g: ch.model_copy(update=dict(customers=max(1, ch.customers // 4)))
                     for g, ch in data.simulation.channels.items()}  # fmt: skip
            data = data.model_copy(update=dict(simulation=data.simulation.model_copy(update=dict(channels=chans))))
        return self.model_copy(update=dict(
            name=name, data=data, purchase=self.purchase.model_copy(update=sampling),
            gamma_gamma=self.gamma_gamma.model_copy(update=sampling),
            compare=self.compare.model_copy(update=dict(poolings=list(q.compare_poolings)))))  # fmt: skip

    @model_validator(mode="after")
    def _behaviour_column_free(self) -> RunConfig:
        if self.features.behaviour is not None and BEHAVIOUR_COLUMN in self.data.segment_cols:
            raise ValueError(f"data.segment_cols has a column {BEHAVIOUR_COLUMN!r}, the name features.behaviour "
                             "gives its segments: rename that column")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _cac_needs_models_by_channel(self) -> RunConfig:
        channel = self.cac_segment
        if self.acquisition.cac and channel != self.features.segment:
            unpooled = [k for k, sec in (("purchase", self.purchase), ("gamma_gamma", self.gamma_gamma))
                        if sec.pooling != "pooled"]  # fmt: skip
            if unpooled:
                raise ValueError(
                    f"acquisition.cac: a new customer's value per {channel!r} needs models pooled or segmented "
                    f"by {channel!r}, but features.segment is {self.features.segment!r} and {unpooled} "
                    f"are not pooled (set features.segment: {channel} or acquisition.segment)")  # fmt: skip
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def run_dir(self) -> Path:
        return Path(self.outputs.runs_dir) / self.name

    @property
    def report_dir(self) -> Path:
        return Path(self.outputs.reports_dir) / self.name

    @property
    def cac_segment(self) -> str | None:
        """The channel column acquisition economics are computed by."""
        if self.acquisition.segment:
            return self.acquisition.segment
        return self.data.segment_cols[0] if self.data.segment_cols else self.features.segment


RENAMED = {
    ("clv", "time_unit"): "clv.period (the unit of one CLV period; the data's unit is features.time_unit)",
    ("bgnbd",): "purchase (with purchase.model: bgnbd, mbgnbd or pareto_nbd)",
    ("clv", "cac"): "acquisition.cac",
    ("clv", "cac_segment"): "acquisition.segment",
}
"""Keys of older configs, and what they are called now (named in the error)."""


def _problems(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        where = ".".join(["config", *map(str, err["loc"])])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            new = RENAMED.get(tuple(map(str, err["loc"])))
            msg = f"unknown key: renamed to {new}" if new else "unknown key"
        elif err["type"] == "missing":
            msg = "missing required key"
        got = (
            ""
            if err["type"] == "missing" or isinstance(err["input"], dict) or "got" in msg
            else f" (got {err['input']!r})"
        )
        out.append(f"{where}: {msg}{got}")
    return out


def load_config(path: str | Path | dict[str, Any], **overrides: Any) -> RunConfig:
    """Read and check a run config.

    Parameters
    ----------
    path : path or dict
        A YAML file, or the same mapping as a dict.
    **overrides
        Top-level keys to replace (e.g. ``quick=True``); None values are ignored.

    Returns
    -------
    RunConfig
        As written (call :meth:`RunConfig.resolved` for what the stages run).

    Raises
    ------
    ClvlabInputError
        A missing or unreadable file, or every invalid key / value, each named
        ``config.<section>.<key>``.
    """
    what = "config" if isinstance(path, dict) else f"config {path}"
    if isinstance(path, dict):
        raw: Any = dict(path)
    else:
        p = Path(path)
        if not p.is_file():
            raise ClvlabInputError([f"{p}: no such config file"], what="config")
        try:
            raw = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise ClvlabInputError([f"{p}: not valid YAML ({exc})"], what="config") from None
    if not isinstance(raw, dict):
        raise ClvlabInputError([f"{path}: expected a YAML mapping at top level"], what=what)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        cfg = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ClvlabInputError(_problems(exc), what=what) from None
    if not isinstance(path, dict):
        cfg._source_file = str(Path(path).resolve())
    return cfg
