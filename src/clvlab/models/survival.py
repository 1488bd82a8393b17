"""Survival models of customer lapse (lifelines): Kaplan-Meier by segment and a Cox model.

Input is a lapse table (:func:`clvlab.features.lapse.lapse_table`): one row per customer
with ``duration`` (time units from first purchase), ``event`` (1 = lapsed) and covariates.

* :class:`KaplanMeierBySegment` -- product-limit curves S_g(t) with pointwise
  (exponential Greenwood) bands per segment, and the multivariate log-rank test of
  H0: h_1(t) = ... = h_G(t), as tidy tables.
* :class:`CoxChurnModel` -- h(t | x, s) = h0_s(t) exp(x'beta) (CoxPHFitter), segment as
  strata (``segment=``: own baseline h0_s) or as dummies; hazard ratios exp(beta) with intervals;
  Schoenfeld-residual test of proportional hazards; held-out concordance; lapse
  probabilities 1 - S(d + h | x) / S(d | x).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test, proportional_hazard_test

from ..choices import ALL_SEGMENTS
from ..errors import ClvlabInputError
from ..features.lapse import EARLY_COLUMNS

ALL = ALL_SEGMENTS  # the one "all segments" label
"""Segment label used for pooled (all-customer) rows in tidy outputs."""


def check_survival_table(
    table: pd.DataFrame,
    columns: Sequence[str] = (),
    *,
    duration_col: str = "duration",
    event_col: str = "event",
    what: str = "lapse table",
    require_positive: bool = True,
) -> None:
    """Raise one ClvlabInputError listing every problem with a survival table."""
    if not isinstance(table, pd.DataFrame):
        raise ClvlabInputError([f"expected a pandas DataFrame, got {type(table).__name__}"], what=what)
    problems: list[str] = []
    missing = [c for c in (duration_col, event_col, *columns) if c not in table]
    if missing:
        problems.append(f"missing column(s) {missing}; have {list(table.columns)}")
    if len(table) == 0:
        problems.append("no rows")
    if duration_col in table:
        d = pd.to_numeric(table[duration_col], errors="coerce")
        bad = d.isna() | ~np.isfinite(d) | (d < 0)
        if require_positive:
            bad |= d <= 0
        if bad.any():
            problems.append(
                f"column {duration_col!r}: {int(bad.sum())} value(s) not finite and "
                f"{'> 0' if require_positive else '>= 0'}, e.g. rows {list(table.index[bad][:3])}"
            )
    if event_col in table:
        e = table[event_col]
        bad = ~e.isin([0, 1, True, False])
        if bad.any():
            problems.append(f"column {event_col!r}: expected 0/1, got e.g. {e[bad].unique()[:3].tolist()}")
        elif len(e) and int(pd.Series(e).astype(int).sum()) == 0:
            problems.append(f"column {event_col!r}: no events (every customer censored); nothing to fit")
    for c in columns:
        if c in table and table[c].isna().all():
            problems.append(f"covariate column {c!r}: all values are NaN/missing")
        elif c in table and table[c].isna().any():
            bad = table[c].isna()
            problems.append(
                f"covariate column {c!r}: {int(bad.sum())} missing value(s), e.g. rows {list(table.index[bad][:3])}"
            )
    if problems:
        raise ClvlabInputError(problems, what=what)


# --------------------------------------------------------------------------- Kaplan-Meier


@dataclass
class KaplanMeierBySegment:
    """Kaplan-Meier curves per segment plus a multivariate log-rank test.

    Fitted state: ``survival_`` (tidy: segment, time, survival, lower, upper, at_risk,
    events), ``median_`` (segment, n, events, median_duration), ``logrank_`` (one row:
    test_statistic, df, p_value, n_groups), ``fitters_`` (lifelines fitters by segment).
    ``alpha`` is 1 - confidence level of the bands.
    """

    alpha: float = 0.05

    def fit(
        self,
        table: pd.DataFrame,
        segment: str | None = None,
        *,
        duration_col: str = "duration",
        event_col: str = "event",
    ) -> KaplanMeierBySegment:
        cols = [segment] if segment else []
        check_survival_table(table, cols, duration_col=duration_col, event_col=event_col, require_positive=False)
        groups = table[segment].astype(str) if segment else pd.Series(ALL, index=table.index)
        curves, medians, fitters = [], [], {}
        for seg, idx in groups.groupby(groups, sort=True).groups.items():
            sub = table.loc[idx]
            kmf = KaplanMeierFitter(alpha=self.alpha, label=str(seg))
            kmf.fit(sub[duration_col], sub[event_col].astype(int))
            ci = kmf.confidence_interval_survival_function_
            ev = kmf.event_table
            curves.append(
                pd.DataFrame(
                    {
                        "segment": str(seg),
                        "time": kmf.survival_function_.index.to_numpy(float),
                        "survival": kmf.survival_function_.iloc[:, 0].to_numpy(),
                        "lower": ci.iloc[:, 0].to_numpy(),
                        "upper": ci.iloc[:, 1].to_numpy(),
                        "at_risk": ev["at_risk"].reindex(kmf.survival_function_.index).to_numpy(),
                        "events": ev["observed"].reindex(kmf.survival_function_.index).to_numpy(),
                    }
                )
            )
            medians.append(
                {
                    "segment": str(seg),
                    "n": len(sub),
                    "events": int(sub[event_col].sum()),
                    "median_duration": float(kmf.median_survival_time_),
                }
            )
            fitters[str(seg)] = kmf
        self.fitters_ = fitters
        self.survival_ = pd.concat(curves, ignore_index=True)
        self.median_ = pd.DataFrame(medians)
        if groups.nunique() > 1:
            res = multivariate_logrank_test(table[duration_col], groups, table[event_col].astype(int))
            self.logrank_ = pd.DataFrame(
                {
                    "test": ["multivariate_logrank"],
                    "test_statistic": [float(res.test_statistic)],
                    "df": [int(res.degrees_of_freedom)],
                    "p_value": [float(res.p_value)],
                    "n_groups": [int(groups.nunique())],
                }
            )
        else:
            self.logrank_ = None
        self.segment_ = segment
        self.time_unit_ = table.attrs.get("time_unit")
        return self


# --------------------------------------------------------------------------- Cox model


def default_covariates(table: pd.DataFrame) -> list[str]:
    """The numeric early covariates of a lapse table that vary (constant columns carry no information)."""
    return [c for c in EARLY_COLUMNS if c in table and table[c].nunique(dropna=True) > 1]


def train_test_split_customers(
    table: pd.DataFrame, test_size: float = 0.3, *, seed: int = 0, id_col: str = "customer_id"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows by customer (all rows of a customer on one side), seeded."""
    if not 0 < test_size < 1:
        raise ClvlabInputError([f"test_size={test_size!r}: expected a fraction in (0, 1)"], what="argument")
    if id_col not in table:
        raise ClvlabInputError([f"missing column {id_col!r}"], what="table")
    ids = np.sort(table[id_col].astype(str).unique())
    rng = np.random.default_rng(seed)
    test_ids = rng.choice(ids, size=max(1, round(test_size * len(ids))), replace=False)
    is_test = table[id_col].astype(str).isin(test_ids)
    return table[~is_test].copy(), table[is_test].copy()


@dataclass
class CoxChurnModel:
    """Cox proportional-hazards model of time to lapse: h(t|x,s) = h0_s(t) exp(x'beta).

    Parameters
    ----------
    covariates : numeric columns (default: the varying early covariates of the lapse table).
    categorical : columns coded as dummies (first level, sorted, is the reference).
    segment : a segment column given its own baseline hazard h0_s (Cox strata); to enter a segment
        as dummies instead, list it in ``categorical``.
    log1p : covariates replaced by log(1 + x) (skewed money amounts), same at predict time.
    penalizer, l1_ratio : passed to ``CoxPHFitter`` (elastic-net penalty on beta).
    alpha : 1 - confidence level of hazard-ratio intervals (0.05 -> 95%).
    """

    covariates: Sequence[str] | None = None
    categorical: Sequence[str] = ()
    segment: str | None = None
    log1p: Sequence[str] = ()
    penalizer: float = 0.0
    l1_ratio: float = 0.0
    alpha: float = 0.05
    fit_options: Mapping[str, object] = field(default_factory=dict)

    # ----------------------------------------------------------------- design
    def _design(self, table: pd.DataFrame, *, fitting: bool) -> pd.DataFrame:
        X = pd.DataFrame(index=table.index)
        for c in self.covariates_:
            x = pd.to_numeric(table[c], errors="coerce").astype(float)
            X[f"log1p_{c}" if c in self.log1p else c] = np.log1p(x) if c in self.log1p else x
        for c in self.categorical:
            values = table[c].astype(str)
            if fitting:
                self.levels_[c] = sorted(values.unique())
            levels = self.levels_[c]
            unknown = ~values.isin(levels)
            if unknown.any():
                raise ClvlabInputError(
                    [f"column {c!r}: level(s) {values[unknown].unique()[:3].tolist()} not seen in fit ({levels})"],
                    what="Cox model input",
                )
            for lev in levels[1:]:
                X[f"{c}[{lev}]"] = (values == lev).astype(float)
        if self.segment:
            X[self.segment] = table[self.segment].astype(str)
        return X

    def fit(self, table: pd.DataFrame, *, duration_col: str = "duration", event_col: str = "event") -> CoxChurnModel:
        self.covariates_ = list(self.covariates) if self.covariates is not None else default_covariates(table)
        problems = []
        if self.segment and self.segment in self.categorical:
            problems.append(
                f"segment={self.segment!r} is also in categorical: use it as strata (segment=) or as dummies (categorical=), not both"
            )
        if not (self.penalizer >= 0):
            problems.append(f"penalizer={self.penalizer!r}: expected >= 0")
        if not self.covariates_ and not self.categorical:
            problems.append("no covariates: give covariates= or categorical=")
        bad_log = [c for c in self.log1p if c not in self.covariates_]
        if bad_log:
            problems.append(f"log1p columns {bad_log} are not among the covariates {self.covariates_}")
        if problems:
            raise ClvlabInputError(problems, what="CoxChurnModel settings")
        cols = [*self.covariates_, *self.categorical, *([self.segment] if self.segment else [])]
        check_survival_table(table, cols, duration_col=duration_col, event_col=event_col)
        self.levels_: dict[str, list[str]] = {}
        X = self._design(table, fitting=True)
        const = [c for c in X.columns if c != self.segment and X[c].nunique() < 2]
        if const:
            raise ClvlabInputError(
                [f"covariate {c!r} is constant in the training data" for c in const], what="lapse table"
            )
        if self.segment:
            for lev, sub in table.groupby(table[self.segment].astype(str)):
                if int(sub[event_col].sum()) == 0:
                    raise ClvlabInputError([f"stratum {self.segment}={lev!r} has no events"], what="lapse table")
        df = X.assign(_duration=table[duration_col].astype(float), _event=table[event_col].astype(int))
        fitter = CoxPHFitter(penalizer=self.penalizer, l1_ratio=self.l1_ratio, alpha=self.alpha)
        fitter.fit(
            df,
            duration_col="_duration",
            event_col="_event",
            strata=[self.segment] if self.segment else None,
            **dict(self.fit_options),
        )
        self.fitter_ = fitter
        self.training_data_ = df
        self.duration_col_, self.event_col_ = duration_col, event_col
        self.time_unit_ = table.attrs.get("time_unit")
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "fitter_"):
            raise RuntimeError("CoxChurnModel is not fitted: call fit() first")

    # ----------------------------------------------------------------- results
    def hazard_ratios(self) -> pd.DataFrame:
        """Tidy table: covariate, coef, se, hazard_ratio, hr_lower, hr_upper, z, p_value, ci_level."""
        self._check_fitted()
        s = self.fitter_.summary
        level = 1 - self.alpha
        pct = f"{round(level * 100)}%"
        return pd.DataFrame(
            {
                "covariate": s.index.astype(str),
                "coef": s["coef"].to_numpy(),
                "se": s["se(coef)"].to_numpy(),
                "hazard_ratio": s["exp(coef)"].to_numpy(),
                "hr_lower": s[f"exp(coef) lower {pct}"].to_numpy(),
                "hr_upper": s[f"exp(coef) upper {pct}"].to_numpy(),
                "z": s["z"].to_numpy(),
                "p_value": s["p"].to_numpy(),
                "ci_level": level,
            }
        )

    def check_proportional_hazards(self, p_threshold: float = 0.05, time_transform: str = "rank") -> pd.DataFrame:
        """Schoenfeld-residual test per covariate (lifelines ``proportional_hazard_test``).

        Tidy table: covariate, test_statistic, p_value, violates (p < p_threshold), sorted
        by p-value; offending covariates come first.
        """
        self._check_fitted()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = proportional_hazard_test(self.fitter_, self.training_data_, time_transform=time_transform)
        out = pd.DataFrame(
            {
                "covariate": [str(n) for n in res.name],
                "test_statistic": np.asarray(res.test_statistic, float),
                "p_value": np.asarray(res.p_value, float),
                "time_transform": time_transform,
            }
        )
        out["violates"] = out["p_value"] < p_threshold
        return out.sort_values("p_value", ignore_index=True)

    def concordance(self, table: pd.DataFrame) -> float:
        """Harrell's concordance on (held-out) customers: higher hazard should mean earlier lapse."""
        self._check_fitted()
        check_survival_table(
            table,
            self._input_columns(),
            duration_col=self.duration_col_,
            event_col=self.event_col_,
            require_positive=False,
        )
        df = self._design(table, fitting=False).assign(
            _duration=table[self.duration_col_].astype(float), _event=table[self.event_col_].astype(int)
        )
        return float(self.fitter_.score(df, scoring_method="concordance_index"))

    def _input_columns(self) -> list[str]:
        return [*self.covariates_, *self.categorical, *([self.segment] if self.segment else [])]

    def survival_at(self, table: pd.DataFrame, times: np.ndarray, *, extrapolate: bool = False) -> np.ndarray:
        """S(t_i | x_i) = exp(-H0_s(t_i) exp((x_i - xbar)'beta)) at one time per row.

        H0_s is lifelines' Breslow baseline (a step function).  Beyond the last training
        time of the stratum it is held flat (lifelines' behaviour: no lapses after the
        data); with ``extrapolate=True`` it grows linearly instead, at the average
        baseline hazard of the last quarter of the observed time range (a constant-hazard
        tail).  On CDNOW the flat tail gave the better Brier score (see the report).
        """
        self._check_fitted()
        X = self._design(table, fitting=False)
        ph = self.fitter_.predict_partial_hazard(X).to_numpy(float)
        times = np.broadcast_to(np.asarray(times, float), (len(table),))
        H = np.empty(len(table))
        base = self.fitter_.baseline_cumulative_hazard_
        if self.segment:
            keys = X[self.segment].to_numpy()
            columns = {str(c[0] if isinstance(c, tuple) else c): c for c in base.columns}
        else:
            keys = np.full(len(table), ALL, dtype=object)
            columns = {ALL: base.columns[0]}
        for key in np.unique(keys):
            rows = keys == key
            if key not in columns:
                raise ClvlabInputError([f"stratum {self.segment}={key!r} not seen in fit"], what="Cox model input")
            h = base[columns[key]].dropna()
            H[rows] = _cumulative_hazard(h.index.to_numpy(float), h.to_numpy(float), times[rows], extrapolate)
        return np.exp(-H * ph)

    def predict_lapse_probability(
        self,
        table: pd.DataFrame,
        horizon: float,
        *,
        conditional: bool = True,
        extrapolate: bool = False,
        age_col: str = "age",
        lapsed_col: str = "lapsed_now",
    ) -> pd.Series:
        """Per-customer probability of being lapsed ``horizon`` time units from now.

        ``conditional=True`` (prediction at the cut-off of a lapse table): a customer
        lapsed at the cut-off (``lapsed_now = 1``) has probability 1; an active customer of
        age a (time since first purchase) lapses by a + h with probability
        1 - S(a + h | x) / S(a | x).  A customer who lapsed earlier and came back is scored
        like an active one of the same age (approximation: the model describes the first
        lapse).  ``conditional=False``: 1 - S(h | x), from the first purchase.
        Returns a Series indexed by ``customer_id`` named ``p_lapse``.
        """
        self._check_fitted()
        if not (np.isfinite(horizon) and horizon > 0):
            raise ClvlabInputError([f"horizon={horizon!r}: expected > 0"], what="argument")
        need = self._input_columns() + ["customer_id"] + ([age_col, lapsed_col] if conditional else [])
        missing = [c for c in need if c not in table]
        if missing:
            raise ClvlabInputError([f"missing column(s) {missing}"], what="Cox model input")
        if conditional:
            a = table[age_col].to_numpy(float)
            s0 = self.survival_at(table, a, extrapolate=extrapolate)
            s1 = self.survival_at(table, a + horizon, extrapolate=extrapolate)
            p = 1.0 - np.divide(s1, s0, out=np.zeros_like(s1), where=s0 > 0)
            p = np.where(table[lapsed_col].to_numpy(int) == 1, 1.0, p)
        else:
            p = 1.0 - self.survival_at(table, np.full(len(table), float(horizon)), extrapolate=extrapolate)
        index = pd.Index(table["customer_id"].astype(str), name="customer_id")
        return pd.Series(np.clip(p, 0.0, 1.0), index=index, name="p_lapse")


def _cumulative_hazard(grid: np.ndarray, H: np.ndarray, t: np.ndarray, extrapolate: bool) -> np.ndarray:
    """Right-continuous step function H(t) on ``grid`` (0 before the first point), optional linear tail."""
    idx = np.searchsorted(grid, t, side="right") - 1
    out = np.where(idx >= 0, H[np.clip(idx, 0, None)], 0.0)
    t_max = grid[-1]
    if extrapolate and np.any(t > t_max):
        t_start = grid[0] + 0.75 * (t_max - grid[0])
        h_start = H[max(np.searchsorted(grid, t_start, side="right") - 1, 0)]
        rate = (H[-1] - h_start) / (t_max - t_start) if t_max > t_start else 0.0
        out = np.where(t > t_max, H[-1] + rate * (t - t_max), out)
    return out
