"""Run configuration: a YAML file -> typed dataclasses, with unknown keys rejected.

A run (``clvlab run --config FILE``) is fully described by its config plus the data; the
config is stored with every run's metadata so a run can be reproduced from its folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import ClvlabInputError


@dataclass
class DataConfig:
    source: str = "cdnow"  # "cdnow" | "cdnow_sample" | path to CSV/Parquet
    customer_col: str = "customer_id"
    date_col: str = "date"
    amount_col: str = "amount"
    segment_cols: list[str] = field(default_factory=list)
    pseudonymise: bool = False


@dataclass
class FeaturesConfig:
    calibration_end: str = "1997-09-30"
    observation_end: str = "1998-06-30"
    time_unit: Literal["D", "W", "M"] = "W"
    segment: str | None = "cohort"
    cohort_freq: Literal["W", "M"] = "W"
    whole_periods: bool = False


@dataclass
class ModelConfig:
    pooling: Literal["pooled", "unpooled", "partial"] = "partial"
    method: Literal["nuts", "map"] = "nuts"
    sampler: Literal["nutpie", "numpyro", "pymc"] = "nutpie"
    chains: int = 4
    draws: int = 1000
    tune: int | None = None  # None: the sampler's default (nutpie 400, pymc / numpyro 1000)
    target_accept: float = 0.8
    compare_pooling: bool = False  # also fit pooled + unpooled (forest plot of shrinkage)
    parameterization: Literal["auto", "noncentered", "centered"] = "auto"  # BG/NBD partial pooling only


@dataclass
class CLVConfig:
    horizon: int = 12
    time_unit: Literal["D", "W", "M"] = "M"
    discount_rate: float = 0.01
    margin: float = 1.0
    cac: dict[str, float] = field(default_factory=dict)


@dataclass
class SurvivalConfig:
    lapse_after: float | None = None
    penalizer: float = 0.01


@dataclass
class OutputsConfig:
    runs_dir: str = "models/runs"
    reports_dir: str = "reports"


@dataclass
class RunConfig:
    name: str
    seed: int = 0
    quick: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    bgnbd: ModelConfig = field(default_factory=ModelConfig)
    gamma_gamma: ModelConfig = field(default_factory=ModelConfig)
    clv: CLVConfig = field(default_factory=CLVConfig)
    survival: SurvivalConfig = field(default_factory=SurvivalConfig)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def run_dir(self) -> Path:
        return Path(self.outputs.runs_dir) / self.name

    @property
    def report_dir(self) -> Path:
        return Path(self.outputs.reports_dir) / self.name


def _build(cls: type, raw: Any, where: str, problems: list[str]):
    if raw is None:
        return cls() if _has_defaults(cls) else None
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping, got {type(raw).__name__}")
        return cls() if _has_defaults(cls) else None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        problems.append(f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    kwargs = {}
    for name, value in raw.items():
        if name not in fields:
            continue
        sub = _SECTIONS.get(name) if cls is RunConfig else None
        kwargs[name] = _build(sub, value, f"{where}.{name}", problems) if sub else value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        problems.append(f"{where}: {exc}")
        return None


def _has_defaults(cls: type) -> bool:
    return all(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in dataclasses.fields(cls)
    )


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "features": FeaturesConfig,
    "bgnbd": ModelConfig,
    "gamma_gamma": ModelConfig,
    "clv": CLVConfig,
    "survival": SurvivalConfig,
    "outputs": OutputsConfig,
}

_CHOICES = {
    ("features", "time_unit"): ("D", "W", "M"),
    ("features", "cohort_freq"): ("W", "M"),
    ("bgnbd", "pooling"): ("pooled", "unpooled", "partial"),
    ("gamma_gamma", "pooling"): ("pooled", "unpooled", "partial"),
    ("bgnbd", "method"): ("nuts", "map"),
    ("bgnbd", "parameterization"): ("auto", "noncentered", "centered"),
    ("gamma_gamma", "method"): ("nuts", "map"),
    ("bgnbd", "sampler"): ("nutpie", "numpyro", "pymc"),
    ("gamma_gamma", "sampler"): ("nutpie", "numpyro", "pymc"),
    ("clv", "time_unit"): ("D", "W", "M"),
}


def load_config(path: str | Path | dict[str, Any], **overrides: Any) -> RunConfig:
    """Read a run config (YAML path or dict); ``overrides`` replace top-level keys (e.g. quick=True)."""
    raw = yaml.safe_load(Path(path).read_text()) if not isinstance(path, dict) else dict(path)
    if not isinstance(raw, dict):
        raise ClvlabInputError([f"{path}: expected a YAML mapping at top level"], what="config")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    problems: list[str] = []
    if "name" not in raw:
        problems.append("config: missing required key 'name' (the run folder name)")
        raw["name"] = "unnamed"
    cfg = _build(RunConfig, raw, "config", problems)
    if cfg is not None:
        for (section, key), allowed in _CHOICES.items():
            value = getattr(getattr(cfg, section), key)
            if value not in allowed:
                problems.append(f"config.{section}.{key}={value!r}: expected one of {list(allowed)}")
        for section in ("bgnbd", "gamma_gamma"):
            m = getattr(cfg, section)
            for key in ("chains", "draws", "tune"):
                if key == "tune" and m.tune is None:
                    continue
                if not isinstance(getattr(m, key), int) or getattr(m, key) < 1:
                    problems.append(f"config.{section}.{key}={getattr(m, key)!r}: expected a positive integer")
    if problems:
        raise ClvlabInputError(problems, what=f"config {path if not isinstance(path, dict) else ''}".strip())
    return cfg
