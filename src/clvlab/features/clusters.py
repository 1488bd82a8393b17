"""Behavioural segments: K-means (scikit-learn) on standardised behaviour features.

:class:`BehaviouralSegments` standardises the inputs of :func:`clvlab.features.behaviour_matrix`
(log(1 + RFM and early-behaviour features)), clusters them with K-means and labels the
clusters ``B1 .. Bk``, from the least to the most engaged (the mean of a centre's standardised
features, time since the last purchase counted negatively). The label is an ordinary segment
column: every hierarchical model takes it as ``segment=``.

Choosing k (``k=None``), over ``k_range``:

* **silhouette**: mean silhouette width on a random sample (``silhouette_sample`` customers);
  higher means tighter, better separated clusters.
* **stability**: refit on ``stability_replicates`` random subsamples of ``subsample`` of the
  customers, assign everyone with the subsample's centres, and average the adjusted Rand index
  against the full fit (1: the same partition every time; near 0: chance). A k whose clusters
  move when a fifth of the customers is left out is not a segmentation to act on.

The rule: the k with the highest silhouette among those with stability >= ``min_stability``;
if none reaches it, the most stable k. The whole table is kept (``selection_``) and reported.
Selection runs on at most ``selection_sample`` customers; the final fit uses all of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvlab.choices import BEHAVIOUR_COLUMN as SEGMENT_COLUMN
from clvlab.errors import ClvlabInputError

__all__ = ["BehaviouralSegments", "SEGMENT_COLUMN"]
_WORDS = {  # feature -> (word when the centre is >= +0.5 sd, word when <= -0.5 sd)
    "frequency": ("frequent", "one-off"),
    "gap": ("lapsed", "recent"),
    "monetary_value": ("high repeat spend", "low repeat spend"),
    "first_amount": ("big first order", "small first order"),
    "early_purchases": ("fast start", "slow start"),
}
_DESCRIBE_AT = 0.5
_REPLICATE_N_INIT = 3  # restarts of each stability refit (the full fit uses n_init)


class BehaviouralSegments:
    """K-means behavioural segments with k chosen by silhouette and stability.

    Parameters
    ----------
    k : int, optional
        Number of segments; None chooses it over ``k_range``.
    k_range : (int, int)
        Smallest and largest k tried when ``k`` is None (inclusive, 2 <= low <= high).
    stability_replicates : int
        Subsample refits per k for the stability score.
    subsample : float
        Share of customers in each stability refit, in (0, 1).
    min_stability : float
        Mean adjusted Rand index a k needs to be chosen on silhouette.
    silhouette_sample : int
        Customers the silhouette is computed on (it is quadratic in their number).
    selection_sample : int
        Most customers the choice of k is made on.
    n_init : int
        K-means restarts (best inertia kept).
    seed : int
        Seed of every random step; the same seed and data give the same labels.
    """

    def __init__(self, k: int | None = None, *, k_range: tuple[int, int] = (2, 8), stability_replicates: int = 10,
                 subsample: float = 0.8, min_stability: float = 0.8, silhouette_sample: int = 5000,
                 selection_sample: int = 10000, n_init: int = 10, seed: int = 0):  # fmt: skip
        self.k, self.k_range = k, tuple(k_range)
        self.stability_replicates, self.subsample, self.min_stability = stability_replicates, subsample, min_stability
        self.silhouette_sample, self.selection_sample = silhouette_sample, selection_sample
        self.n_init, self.seed = n_init, seed

    # ---- fit ---------------------------------------------------------------------------------
    def fit(self, features: pd.DataFrame) -> BehaviouralSegments:
        """Standardise ``features``, choose k (when not given) and cluster every customer.

        Parameters
        ----------
        features : DataFrame
            One row per customer (index: customer_id), numeric columns (``behaviour_matrix``).

        Returns
        -------
        BehaviouralSegments
            Self, with ``k_``, ``rule_`` (why that k), ``selection_`` (k, inertia, silhouette,
            stability, stability_min, chosen), ``segments_`` (B1 .. Bk), ``labels_`` (Series by
            customer), ``centres_`` (standardised), ``feature_means_`` (each segment's mean of
            ``expm1(feature)``, i.e. on the feature's own scale), ``descriptions_``, ``scaler_``
            and ``kmeans_`` set.
        """
        from sklearn.preprocessing import StandardScaler

        self._check(features)
        self.features_ = list(features.columns)
        self.scaler_ = StandardScaler().fit(features.to_numpy(float))
        z = self.scaler_.transform(features.to_numpy(float))
        ks = [self.k] if self.k is not None else list(range(self.k_range[0], self.k_range[1] + 1))
        rng = np.random.default_rng(self.seed)
        sel = z if len(z) <= self.selection_sample else z[rng.choice(len(z), self.selection_sample, replace=False)]
        rows = [self._score(sel, k, rng) for k in ks]
        table = pd.DataFrame(rows, columns=["k", "inertia", "silhouette", "stability", "stability_min"])
        self.k_, self.rule_ = self._choose(table)
        table["chosen"] = table["k"] == self.k_
        self.selection_ = table
        self.kmeans_ = self._kmeans(self.k_).fit(z)
        order = np.argsort(self._engagement(self.kmeans_.cluster_centers_), kind="stable")
        self._rank = np.empty(self.k_, dtype=int)
        self._rank[order] = np.arange(self.k_)
        names = [f"B{i + 1}" for i in range(self.k_)]
        self.segments_ = names
        centres = self.kmeans_.cluster_centers_[order]
        self.centres_ = pd.DataFrame(centres, index=pd.Index(names, name=SEGMENT_COLUMN), columns=self.features_)
        self.descriptions_ = pd.Series([self._describe(c) for c in centres], index=self.centres_.index,
                                       name="description")  # fmt: skip
        self.labels_ = self._labels(self.kmeans_.labels_, features.index)
        self.feature_means_ = np.expm1(features).groupby(self.labels_.to_numpy()).mean().reindex(names)
        self.feature_means_.index.name = SEGMENT_COLUMN
        return self

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Segment label of each row of ``features`` (same columns as in ``fit``): the nearest centre."""
        self._fitted()
        if list(features.columns) != self.features_:
            raise ClvlabInputError([f"features columns {list(features.columns)}: expected {self.features_} "
                                    "(the columns fit saw)"], what="behaviour features")  # fmt: skip
        self._check(features, need_k=False)
        z = self.scaler_.transform(features.to_numpy(float))
        return self._labels(self.kmeans_.predict(z), features.index)

    # ---- profile -----------------------------------------------------------------------------
    def profile(self, rfm: pd.DataFrame, early: pd.DataFrame | None = None,
                clv: pd.DataFrame | None = None) -> pd.DataFrame:  # fmt: skip
        """One row per segment: size, RFM means, revenue share and (optionally) CLV.

        Parameters
        ----------
        rfm : DataFrame
            The customers of ``fit`` (customer_id, frequency, recency, T, monetary_value; with
            frequency_holdout and monetary_value_holdout, the holdout revenue share too).
        early : DataFrame, optional
            :func:`clvlab.features.early_behaviour`: adds first-order spend, early purchases and
            the calibration revenue share.
        clv : DataFrame, optional
            ``CLVResult.by_segment["behaviour"]`` (``PosteriorCLV.summary``): adds mean CLV per
            customer with its interval and the segment's share of total CLV.

        Returns
        -------
        DataFrame
            Columns behaviour, description, customers, share, repeat_rate, frequency, gap,
            monetary_value (mean over repeaters), then the optional blocks.
        """
        self._fitted()
        t = rfm.set_index("customer_id")
        lab = self.labels_.reindex(t.index)
        if lab.isna().any():
            miss = t.index[lab.isna()]
            raise ClvlabInputError([f"rfm has {len(miss):,} customer(s) fit did not see (e.g. {list(miss[:3])})"],
                                   what="behaviour profile")  # fmt: skip
        t = t.assign(**{SEGMENT_COLUMN: lab, "gap": t["T"] - t["recency"], "repeater": t["frequency"] > 0})
        g = t.groupby(SEGMENT_COLUMN, observed=True)
        out = pd.DataFrame({"description": self.descriptions_, "customers": g.size()}).reindex(self.segments_)
        out["share"] = out["customers"] / out["customers"].sum()
        out["repeat_rate"] = g["repeater"].mean()
        out["frequency"] = g["frequency"].mean()
        out["gap"] = g["gap"].mean()
        out["monetary_value"] = t[t["repeater"]].groupby(SEGMENT_COLUMN, observed=True)["monetary_value"].mean()
        if early is not None:
            e = early.set_index("customer_id").reindex(t.index)
            e[SEGMENT_COLUMN] = lab
            ge = e.groupby(SEGMENT_COLUMN, observed=True)
            out["first_amount"] = ge["first_amount"].mean()
            out["early_purchases"] = ge["early_purchases"].mean()
            out["revenue_share"] = ge["revenue"].sum() / e["revenue"].sum()
        if {"frequency_holdout", "monetary_value_holdout"} <= set(t.columns):
            rev = t["frequency_holdout"] * t["monetary_value_holdout"]
            out["holdout_revenue_share"] = rev.groupby(lab).sum() / rev.sum() if rev.sum() > 0 else np.nan
        if clv is not None:
            c = clv.set_index(SEGMENT_COLUMN) if SEGMENT_COLUMN in clv.columns else clv
            out["clv_mean"] = c["mean_mean"]
            out["clv_low"], out["clv_high"] = c["mean_hdi_low"], c["mean_hdi_high"]
            out["clv_share"] = c["total_mean"] / c["total_mean"].sum()
        return out.rename_axis(SEGMENT_COLUMN).reset_index()

    # ---- internals ---------------------------------------------------------------------------
    def _kmeans(self, k: int, n_init: int | None = None, seed: int | None = None) -> Any:
        from sklearn.cluster import KMeans

        return KMeans(n_clusters=k, n_init=n_init or self.n_init, random_state=self.seed if seed is None else seed)

    def _score(self, z: np.ndarray, k: int, rng: np.random.Generator) -> tuple[int, float, float, float, float]:
        from sklearn.metrics import adjusted_rand_score, silhouette_score

        full = self._kmeans(k).fit(z)
        n_sil = min(len(z), self.silhouette_sample)
        sil = float(silhouette_score(z, full.labels_, sample_size=n_sil, random_state=self.seed))
        m = max(k + 1, int(round(self.subsample * len(z))))
        aris = []
        for _ in range(self.stability_replicates):
            idx = rng.choice(len(z), m, replace=False)
            sub = self._kmeans(k, n_init=_REPLICATE_N_INIT, seed=int(rng.integers(2**31 - 1))).fit(z[idx])
            aris.append(adjusted_rand_score(full.labels_, sub.predict(z)))
        stab = float(np.mean(aris)) if aris else np.nan
        return k, float(full.inertia_), sil, stab, float(np.min(aris)) if aris else np.nan

    def _choose(self, table: pd.DataFrame) -> tuple[int, str]:
        if self.k is not None:
            return int(self.k), f"k = {self.k} given"
        stable = table[table["stability"] >= self.min_stability]
        if len(stable):
            k = int(stable.loc[stable["silhouette"].idxmax(), "k"])
            return k, f"highest silhouette among k with stability >= {self.min_stability:g}"
        k = int(table.loc[table["stability"].idxmax(), "k"])
        return k, f"no k reached stability {self.min_stability:g}: the most stable k"

    def _engagement(self, centres: np.ndarray) -> np.ndarray:
        sign = np.array([-1.0 if f == "gap" else 1.0 for f in self.features_])
        return (centres * sign).mean(axis=1)

    def _describe(self, centre: np.ndarray) -> str:
        words = [_WORDS[f][0 if z > 0 else 1] for f, z in zip(self.features_, centre)
                 if f in _WORDS and abs(z) >= _DESCRIBE_AT]  # fmt: skip
        return ", ".join(words) if words else "average"

    def _labels(self, raw: np.ndarray, index: pd.Index) -> pd.Series:
        names = np.asarray(self.segments_, dtype=object)[self._rank[raw]]
        return pd.Series(names, index=index, name=SEGMENT_COLUMN)

    def _fitted(self) -> None:
        if not hasattr(self, "kmeans_"):
            raise RuntimeError("BehaviouralSegments is not fitted: call fit(features) first")

    def _check(self, features: pd.DataFrame, need_k: bool = True) -> None:
        problems = []
        if not isinstance(features, pd.DataFrame) or features.shape[1] == 0:
            raise ClvlabInputError(["features: expected a DataFrame with one numeric column per feature"],
                                   what="behaviour features")  # fmt: skip
        values = features.to_numpy(float)
        if not np.isfinite(values).all():
            rows = features.index[~np.isfinite(values).all(axis=1)]
            problems.append(f"features not finite for {len(rows):,} customer(s) (e.g. {list(rows[:3])})")
        if features.index.has_duplicates:
            problems.append(
                f"features index repeats customers (e.g. {list(features.index[features.index.duplicated()][:3])})"
            )
        if need_k:
            ks = [self.k] if self.k is not None else list(self.k_range)
            if self.k is None and (len(self.k_range) != 2 or not 2 <= self.k_range[0] <= self.k_range[1]):
                problems.append(f"k_range={self.k_range}: expected (low, high) with 2 <= low <= high")
            elif any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2 for k in ks):
                problems.append(f"k={self.k!r}: expected a whole number >= 2 (or None to choose it)")
            else:
                distinct = len(np.unique(values, axis=0)) if np.isfinite(values).all() else len(values)
                if max(ks) >= distinct:
                    problems.append(f"k up to {max(ks)} but only {distinct:,} distinct customer(s): expected more "
                                    "distinct rows than k (the silhouette compares each customer with another "
                                    "segment's)")  # fmt: skip
            if not 0 < self.subsample < 1:
                problems.append(f"subsample={self.subsample!r}: expected a share in (0, 1)")
            if self.stability_replicates < 1:
                problems.append(f"stability_replicates={self.stability_replicates!r}: expected >= 1")
        if problems:
            raise ClvlabInputError(problems, what="behaviour features")
