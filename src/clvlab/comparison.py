"""Compare purchase models honestly: LOO, holdout tracking, conditional expectations, errors, churn.

Every fitted purchase model (BG/NBD, MBG/NBD, Pareto/NBD, the NBD baseline; any pooling; NUTS
posteriors and point fits alike) is scored on the same customers and the same holdout:

* **LOO** (PSIS, ArviZ): elpd, its se, p_loo and the Pareto-k warnings, the difference to the
  best model with the se of the pointwise difference. A point fit (MAP / MLE) has no posterior
  to leave one out of; its row holds log L - k (AIC / -2, k parameters) so it sits on the same
  scale, marked in ``criterion``.
* **Holdout** from posterior predictive draws: total repeat purchases overall and per segment
  (HDI vs actual), per-customer MAE / RMSE of the expected count (with the se of the paired
  difference to the best model), conditional expectations by calibration frequency 0..7+
  (FHL 2005 fig. 4), churn ROC AUC and Brier score of P(no purchase in the holdout) and of
  1 - P(alive).
* **Tracking** (FHL 2005 fig. 2): weekly and cumulative repeat purchases over calibration +
  holdout, actual (counted from the transaction log, :func:`tracking_actual`) against each
  model's sum over customers of E[X(t - birth)] (the new-customer expectation from each
  customer's first purchase), with posterior bands.

The result is a :class:`ModelComparison` of tidy tables plus a one-paragraph verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .choices import ALL_SEGMENTS, MODEL_LABELS
from .errors import ClvlabInputError
from .evaluate import churn_comparison
from .stats import HDI_PROB, hdi_sorted
from .units import unit_days

__all__ = ["Candidate", "ModelComparison", "compare_models", "headline_labels", "loo_table", "tracking_actual",
           "tracking_edges", "MODEL_LABELS"]  # fmt: skip

MAX_FREQUENCY = 7
PREDICTIVE_DRAWS_PER_CHAIN = 125
"""Draws per chain behind the posterior predictive holdout totals (one count per customer and draw)."""
TRACKING_DRAWS_PER_CHAIN = 100
"""Draws per chain behind the tracking bands (E[X(t)] over the whole calendar is the costliest part)."""
POINT_FIT_REPLICATES = 200
"""Posterior predictive replicates of a point fit's holdout counts (its interval has no parameter uncertainty)."""


def _one_draw(fit: Any) -> bool:
    post = fit.posterior_
    return int(post.sizes["chain"]) * int(post.sizes["draw"]) == 1


@dataclass(frozen=True)
class Candidate:
    """One fitted purchase model in a comparison.

    Parameters
    ----------
    label : str
        Row name in every table (e.g. "Pareto/NBD partial").
    fit : PurchaseModel
        The fitted model (NUTS posterior or a one-draw MAP).
    pooling : str
        "pooled", "unpooled", "partial" or "mle" (a flat-prior pooled MAP).
    """

    label: str
    fit: Any
    pooling: str

    @property
    def model(self) -> str:
        return str(self.fit.model_name)

    @classmethod
    def of(cls, fit: Any, pooling: str | None = None) -> Candidate:
        """The candidate of a fit, labelled the same way everywhere.

        Parameters
        ----------
        fit : PurchaseModel
            Fitted model.
        pooling : str, optional
            Its pooling (default: the fit's own); "mle" for a flat-prior pooled MAP.

        Returns
        -------
        Candidate
            Labelled "<model> <pooling>", "<model> MLE", or "<model> <pooling> MAP" for
            another one-draw fit (e.g. "Pareto/NBD partial", "BG/NBD MLE").
        """
        pooling = str(fit.pooling) if pooling is None else pooling
        name = MODEL_LABELS.get(fit.model_name, fit.model_name)
        label = f"{name} MLE" if pooling == "mle" else f"{name} {pooling}{' MAP' if _one_draw(fit) else ''}"
        return cls(label, fit, pooling)

    @property
    def point(self) -> bool:
        """A point fit (one draw): no LOO, no bands."""
        return _one_draw(self.fit)

    @property
    def n_params(self) -> int:
        """Free parameters of a point fit: the distinct segment values of each parameter (a
        pooled fit repeats one value over its segments) plus the covariate coefficients."""
        post = self.fit.posterior_
        k = sum(int(np.unique(post[name].values).size) for name in self.fit.params)
        coefs = [f"beta_{p}" for p in self.fit.covariate_sign] if self.fit.covariates else []
        return k + sum(int(post[v].size) for v in coefs if v in post)


@dataclass(frozen=True)
class ModelComparison:
    """Every comparison table (tidy, one row per candidate x group) and the verdict.

    Attributes
    ----------
    loo : DataFrame
        label, model, pooling, criterion, elpd, se, p_loo, elpd_diff, se_diff, n_k_gt_0.7, max_k.
    holdout : DataFrame
        label, segment, customers, actual_total, predicted_mean, predicted_hdi_low/high, covered.
    errors : DataFrame
        label, mae, rmse, mae_diff, mae_diff_se (paired, against the lowest MAE), total_error_pct.
    conditional : DataFrame
        label, frequency ("0".."7+"), customers, actual_mean, predicted_mean, predicted_hdi_low/high.
    churn : DataFrame
        label, score, auc, brier, n, churn_rate.
    tracking : DataFrame
        label, period, end (time units since the calibration end), date, kind ("weekly" or
        "cumulative"), actual, predicted_mean, predicted_hdi_low/high.
    verdict : str
        Which model and pooling predicts best, by how much and how sure.
    hdi_prob : float
    """

    loo: pd.DataFrame
    holdout: pd.DataFrame
    errors: pd.DataFrame
    conditional: pd.DataFrame
    churn: pd.DataFrame
    tracking: pd.DataFrame
    verdict: str
    hdi_prob: float


def headline_labels(labels: Sequence[str]) -> list[str]:
    """The candidates a figure with one line per model shows: each model at the richest pooling
    present (partial, else pooled, else all), plus the no-dropout baseline."""
    labels = list(dict.fromkeys(labels))
    base = [lab for lab in labels if lab.startswith(MODEL_LABELS["nbd"])]
    for pooling in ("partial", "pooled"):
        shown = [lab for lab in labels if lab.endswith(f" {pooling}") and lab not in base]
        if shown:
            return shown + base
    return labels


# ----------------------------------------------------------------------------------- LOO
def _thin(c: Candidate, draws_per_chain: int | None) -> int:
    """Step that keeps about ``draws_per_chain`` of each chain's draws (1: all)."""
    return 1 if draws_per_chain is None else max(1, int(c.fit.posterior_.sizes["draw"]) // draws_per_chain)


def loo_table(candidates: Sequence[Candidate], data: pd.DataFrame | None = None,
              draws_per_chain: int | None = None) -> pd.DataFrame:  # fmt: skip
    """PSIS-LOO of every NUTS candidate, log L - k for point fits, sorted best first.

    Parameters
    ----------
    candidates : sequence of Candidate
        Fitted on the same customers.
    data : DataFrame, optional
        RFM table (default: each model's fit data).
    draws_per_chain : int, optional
        Thin each chain evenly to about this many draws (default: all); PSIS needs a few hundred.

    Returns
    -------
    DataFrame
        See :class:`ModelComparison`.
    """
    import arviz as az
    import xarray as xr

    rows, pointwise = [], []
    for c in candidates:
        thin = _thin(c, draws_per_chain)
        ll, inverse = _pattern_loglik(c.fit, data, thin)  # (chain, draw, patterns), pattern of each customer
        n = len(inverse)
        if c.point:
            k = c.n_params
            pw = ll.reshape(-1)[inverse] - k / n
            rows.append(dict(label=c.label, model=c.model, pooling=c.pooling, criterion="log L - k (AIC/-2)",
                             elpd=float(pw.sum()), se=np.nan, p_loo=float(k), n_k_gt_07=0, max_k=np.nan))  # fmt: skip
        else:
            # PSIS-LOO of a customer depends on its log-likelihood draws only, so customers with one
            # (group, x, t_x, T) pattern share it: ArviZ runs on the patterns, the sums are weighted
            da = xr.DataArray(ll, dims=("chain", "draw", "pattern"))
            post = c.fit.posterior_.isel(draw=slice(None, None, thin))
            tree = xr.DataTree.from_dict({"log_likelihood": da.to_dataset(name="y"), "posterior": post})
            res = az.loo(tree, var_name="y", pointwise=True)
            k_hat = np.asarray(res.pareto_k).ravel()[inverse]
            pw = np.asarray(res.elpd_i).ravel()[inverse]
            flat = ll.reshape(-1, ll.shape[-1])
            lppd = (np.logaddexp.reduce(flat, axis=0) - np.log(flat.shape[0]))[inverse].sum()
            rows.append(dict(label=c.label, model=c.model, pooling=c.pooling, criterion="PSIS-LOO", elpd=float(pw.sum()),
                             se=float(np.sqrt(n * np.var(pw, ddof=1))), p_loo=float(lppd - pw.sum()),
                             n_k_gt_07=int((k_hat > 0.7).sum()), max_k=float(k_hat.max())))  # fmt: skip
        pointwise.append(pw)
    n = {len(p) for p in pointwise}
    if len(n) > 1:
        raise ClvlabInputError(f"candidates were scored on different numbers of customers {sorted(n)}", what="argument")
    out = pd.DataFrame(rows)
    # differences against the best PSIS-LOO row (a point fit's log L - k is an approximation)
    ref_pool = np.flatnonzero(out["criterion"].to_numpy() == "PSIS-LOO")
    ref_pool = ref_pool if len(ref_pool) else np.arange(len(out))
    ref = int(ref_pool[np.argmax(out["elpd"].to_numpy()[ref_pool])])
    best = pointwise[ref]
    out["elpd_diff"] = out["elpd"] - out["elpd"].iloc[ref]
    out["se_diff"] = [float(np.sqrt(len(best) * np.var(pw - best, ddof=1))) for pw in pointwise]
    out.loc[ref, "se_diff"] = 0.0
    order = np.argsort(-out["elpd"].to_numpy(), kind="stable")
    return out.iloc[order].rename(columns={"n_k_gt_07": "n_k_gt_0.7"}).reset_index(drop=True)


def _pattern_loglik(fit: Any, data: pd.DataFrame | None, thin: int) -> tuple[np.ndarray, np.ndarray]:
    """Log-likelihood draws per unique (group, x, t_x, T) pattern, (chain, draw, patterns), and
    each customer's pattern (the model's own compression)."""
    df, p, group = fit._prepare(data, thin)
    pat = fit._patterns(df, group)
    ll = fit.math.loglik(*(p[k][:, :, pat.group] for k in fit.params), pat.x, pat.t_x, pat.T)
    return np.asarray(ll), pat.inverse


# ----------------------------------------------------------------------------------- tracking
def tracking_edges(rfm: pd.DataFrame, duration: float) -> np.ndarray:
    """Period edges in time units relative to the calibration end: whole periods back to the
    earliest first purchase, 0 (the calibration end) and whole periods to ``duration``."""
    back = int(np.ceil(float(rfm["T"].max()) + 1e-9))
    fwd = np.arange(1, int(np.ceil(duration - 1e-9)) + 1, dtype=float)
    return np.concatenate([np.arange(-back, 1, dtype=float), np.minimum(fwd, duration)])


def tracking_actual(transactions: pd.DataFrame, rfm: pd.DataFrame, calibration_end: Any, edges: np.ndarray,
                    time_unit: str) -> np.ndarray:  # fmt: skip
    """Repeat purchases (purchase days after each customer's first) per period (edges[j-1], edges[j]].

    Parameters
    ----------
    transactions : DataFrame
        The validated log (``customer_id``, ``date``; one row per customer-day).
    rfm : DataFrame
        The customers tracked (those with a first purchase by the calibration end).
    calibration_end : date-like
        Time 0 of ``edges``.
    edges : ndarray
        Period edges in ``time_unit`` relative to ``calibration_end`` (:func:`tracking_edges`).
    time_unit : {"D", "W", "M"}
        Unit of ``edges``.

    Returns
    -------
    ndarray of int, shape (len(edges) - 1,)
    """
    missing = [c for c in ("customer_id", "date") if c not in transactions.columns]
    if missing:
        raise ClvlabInputError([f"transactions: columns {missing} missing"], what="tracking data")
    tx = transactions[transactions["customer_id"].isin(rfm["customer_id"])]
    first = tx.groupby("customer_id")["date"].transform("min")
    rep = tx.loc[tx["date"] > first, "date"]
    u = (rep - pd.Timestamp(calibration_end)) / pd.Timedelta(days=1) / unit_days(time_unit)
    j = np.searchsorted(edges, u.to_numpy(float), side="left")  # edges[j-1] < u <= edges[j]
    inside = (j >= 1) & (j < len(edges))
    return np.bincount(j[inside] - 1, minlength=len(edges) - 1)


def _tracking_expected(fit: Any, rfm: pd.DataFrame, edges: np.ndarray, thin: int) -> np.ndarray:
    """Cumulative expected repeat purchases at each edge, (draws, edges): sum_i E[X(max(0, e + T_i))]."""
    if fit.covariates:
        raise ClvlabInputError("tracking needs a model without covariates (E[X(t)] of a new customer)", what="argument")
    df = fit._validate(rfm, fitting=False)
    codes = fit.segment_codes(df)
    T = df["T"].to_numpy(float)
    out = 0.0
    for s in np.unique(codes):
        uT, n = np.unique(T[codes == s], return_counts=True)
        # (births, edges); on a day grid e + T repeats across births: rounding merges the float noise
        t = np.round(np.maximum(edges[None, :] + uT[:, None], 0.0), 12)
        ut, inv = np.unique(t, return_inverse=True)
        ex = fit.expected_purchases_new(ut, segment=fit.segments_[s], thin=thin).values  # (chain, draw, t)
        ex = ex.reshape(-1, len(ut))[:, inv.reshape(t.shape)]  # (draws, births, edges)
        out = out + np.einsum("dbe,b->de", ex, n.astype(float))
    return np.asarray(out)


def _simulate_holdout(c: Candidate, rfm: pd.DataFrame, duration: float, thin: int, seed: int) -> np.ndarray:
    """Posterior predictive holdout counts, (draws, customers): the model's ``sample_holdout`` from
    each customer's state at T; a point fit's one draw replicated POINT_FIT_REPLICATES times."""
    counts = c.fit.sample_holdout_purchases(duration, rfm, thin=thin, seed=seed,
                                            replicates=POINT_FIT_REPLICATES if c.point else 1)  # fmt: skip
    return counts.values.reshape(-1, counts.sizes["customer_id"]).astype(float)


def _band(v: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and HDI over axis 0."""
    lo, hi = hdi_sorted(np.sort(v, axis=0), prob, axis=0)
    return v.mean(0), np.asarray(lo), np.asarray(hi)


def _tracking_rows(c: Candidate, cum: np.ndarray, actual: np.ndarray, edges: np.ndarray, dates: pd.DatetimeIndex,
                   prob: float) -> list[pd.DataFrame]:  # fmt: skip
    weekly = np.diff(cum, axis=1)
    parts = []
    for kind, pred, act in (("weekly", weekly, actual), ("cumulative", cum[:, 1:], np.cumsum(actual))):
        m, lo, hi = _band(pred, prob)
        parts.append(pd.DataFrame(dict(label=c.label, period=np.arange(1, len(edges)), end=edges[1:], date=dates[1:],
                                       kind=kind, actual=act, predicted_mean=m, predicted_hdi_low=lo,
                                       predicted_hdi_high=hi)))  # fmt: skip
    return parts


# ----------------------------------------------------------------------------------- the comparison
def _fitted_on_other_customers(candidates: Sequence[Candidate], rfm: pd.DataFrame) -> list[str]:
    """A candidate fitted on other customers than ``rfm``'s: its log L rows and LOO are not comparable."""
    ids = set(rfm["customer_id"].astype(str))
    out = []
    for c in candidates:
        data = getattr(c.fit, "data_", None)
        if not isinstance(data, pd.DataFrame) or "customer_id" not in data.columns:
            continue
        fitted = set(data["customer_id"].astype(str))
        if fitted != ids:
            out.append(f"candidate {c.label!r} was fitted on {len(fitted):,} customers, rfm has {len(ids):,} "
                       f"({len(ids - fitted):,} of them not in its fit, e.g. {sorted(ids - fitted)[:3]}; "
                       f"{len(fitted - ids):,} fitted customers not in rfm): models are compared on the customers "
                       "they were all fitted on")  # fmt: skip
    return out


def _check_log_matches(transactions: pd.DataFrame, rfm: pd.DataFrame, calibration_end: Any, counts: np.ndarray,
                       edges: np.ndarray) -> None:  # fmt: skip
    """The log and ``calibration_end`` must be the ones behind ``rfm``: the same customers and the
    same repeat purchase days before and after the calibration end (else the tracking is wrong)."""
    problems = []
    absent = sorted(set(rfm["customer_id"].astype(str)) - set(transactions["customer_id"].astype(str)))
    if absent:
        problems.append(f"transactions: {len(absent):,} customer(s) of rfm are not in the log (e.g. {absent[:3]})")
    before, after = int(counts[edges[1:] <= 0].sum()), int(counts[edges[1:] > 0].sum())
    want_before, want_after = int(rfm["frequency"].sum()), int(round(float(rfm["frequency_holdout"].sum())))
    if (before, after) != (want_before, want_after):
        problems.append(
            f"calibration_end={pd.Timestamp(calibration_end).date()}: the log gives {before:,} repeat "
            f"purchase days before it and {after:,} in the holdout, the RFM table {want_before:,} "
            f"(frequency) and {want_after:,} (frequency_holdout): calibration_end or the log is not the "
            "one the RFM table was built from (one row per customer-day, as load_transactions gives)"
        )
    if problems:
        raise ClvlabInputError(problems, what="model comparison")


def compare_models(
    candidates: Sequence[Candidate],
    rfm: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    calibration_end: Any,
    time_unit: str,
    segment: str | None = None,
    draws_per_chain: int = 250,
    hdi_prob: float = HDI_PROB,
    seed: int = 0,
) -> ModelComparison:
    """Score every candidate on the same customers and holdout (module docstring).

    Parameters
    ----------
    candidates : sequence of Candidate
        Fitted purchase models; labels must be unique.
    rfm : DataFrame
        Calibration / holdout RFM table (``frequency``, ``recency``, ``T``, ``frequency_holdout``,
        ``duration_holdout``) the candidates were fitted on.
    transactions : DataFrame
        The transaction log behind ``rfm`` (for the actual tracking series).
    calibration_end : date-like
        End of the calibration period.
    time_unit : {"D", "W", "M"}
        Unit of the RFM table's recency / T (one tracking period).
    segment : str, optional
        Column of ``rfm`` for the per-segment holdout totals.
    draws_per_chain : int
        Posterior draws per chain (evenly thinned) behind predictions and bands.
    hdi_prob : float
        Credible mass of every interval.
    seed : int
        Seed of the posterior predictive holdout draws.

    Returns
    -------
    ModelComparison
    """
    problems = []
    labels = [c.label for c in candidates]
    if not candidates:
        problems.append("candidates: none given")
    if len(set(labels)) != len(labels):
        problems.append(f"candidates: labels {labels} are not unique")
    missing = [c for c in ("customer_id", "frequency", "recency", "T", "frequency_holdout", "duration_holdout")
               if c not in rfm.columns]  # fmt: skip
    if missing:
        problems.append(f"rfm: columns {missing} missing (a calibration/holdout table is needed)")
    if segment is not None and segment not in rfm.columns:
        problems.append(f"segment={segment!r}: not a column of rfm")
    if isinstance(draws_per_chain, bool) or not (
        isinstance(draws_per_chain, int | np.integer) and draws_per_chain >= 1
    ):
        problems.append(f"draws_per_chain={draws_per_chain!r}: expected a whole number >= 1")
    if not missing:
        problems += _fitted_on_other_customers(candidates, rfm)
    if problems:
        raise ClvlabInputError(problems, what="model comparison")
    duration = float(rfm["duration_holdout"].iloc[0])
    actual = rfm["frequency_holdout"].to_numpy(float)
    churned = pd.Series((actual == 0).astype(int), index=rfm["customer_id"].to_numpy())
    freq = np.minimum(rfm["frequency"].to_numpy(), MAX_FREQUENCY).astype(int)
    seg = rfm[segment].astype(str).to_numpy() if segment else None
    edges = tracking_edges(rfm, duration)
    dates = pd.DatetimeIndex(pd.Timestamp(calibration_end) + pd.to_timedelta(edges * unit_days(time_unit), unit="D"))
    act_track = tracking_actual(transactions, rfm, calibration_end, edges, time_unit)
    _check_log_matches(transactions, rfm, calibration_end, act_track, edges)

    holdout, errors, cond, churn, track, abs_err = [], [], [], [], [], {}
    for c in candidates:
        thin = _thin(c, draws_per_chain)
        exp = c.fit.expected_purchases(duration, rfm, thin=thin).values
        exp = exp.reshape(-1, exp.shape[-1])  # (draws, customers)
        sim = _simulate_holdout(c, rfm, duration, _thin(c, min(draws_per_chain, PREDICTIVE_DRAWS_PER_CHAIN)), seed)
        groups = [(ALL_SEGMENTS, np.ones(len(rfm), bool))]
        if seg is not None:
            groups += [(str(g), seg == g) for g in np.unique(seg)]
        for name, mask in groups:
            m, lo, hi = _band(sim[:, mask].sum(1, keepdims=True), hdi_prob)
            tot = float(actual[mask].sum())
            holdout.append(dict(label=c.label, segment=name, customers=int(mask.sum()), actual_total=tot,
                                predicted_mean=float(m[0]), predicted_hdi_low=float(lo[0]),
                                predicted_hdi_high=float(hi[0]), covered=bool(lo[0] <= tot <= hi[0])))  # fmt: skip
        mean_exp = exp.mean(0)
        err = mean_exp - actual
        abs_err[c.label] = np.abs(err)
        errors.append(dict(label=c.label, model=c.model, pooling=c.pooling, mae=float(np.abs(err).mean()),
                           rmse=float(np.sqrt((err**2).mean())),
                           total_error_pct=100.0 * (mean_exp.sum() / actual.sum() - 1.0)))  # fmt: skip
        for f in range(MAX_FREQUENCY + 1):
            mask = freq == f
            if not mask.any():
                continue
            m, lo, hi = _band(exp[:, mask].mean(1, keepdims=True), hdi_prob)
            cond.append(dict(label=c.label, frequency=f"{f}+" if f == MAX_FREQUENCY else str(f), customers=int(mask.sum()),
                             actual_mean=float(actual[mask].mean()), predicted_mean=float(m[0]),
                             predicted_hdi_low=float(lo[0]), predicted_hdi_high=float(hi[0])))  # fmt: skip
        ids = rfm["customer_id"].to_numpy()
        scores = {"P(no purchase in holdout)": pd.Series(c.fit.p_no_purchase(duration, rfm, thin=thin).values
                                                         .reshape(-1, len(rfm)).mean(0), index=ids),
                  "1 - P(alive)": pd.Series(1.0 - c.fit.p_alive(rfm, thin=thin).values.reshape(-1, len(rfm)).mean(0),
                                            index=ids)}  # fmt: skip
        ch = churn_comparison(churned, scores)
        churn.append(ch[ch["segment"] == ALL_SEGMENTS].drop(columns="segment").assign(label=c.label))
        cum = _tracking_expected(c.fit, rfm, edges, _thin(c, min(draws_per_chain, TRACKING_DRAWS_PER_CHAIN)))
        track += _tracking_rows(c, cum, act_track, edges, dates, hdi_prob)
        del exp, sim

    err_df = pd.DataFrame(errors)
    best = err_df["label"].iloc[int(err_df["mae"].to_numpy().argmin())]
    diffs = {lab: abs_err[lab] - abs_err[best] for lab in err_df["label"]}
    err_df["mae_diff"] = [float(diffs[lab].mean()) for lab in err_df["label"]]
    err_df["mae_diff_se"] = [float(diffs[lab].std(ddof=1) / np.sqrt(len(actual))) for lab in err_df["label"]]
    err_df = err_df.sort_values("mae", kind="stable", ignore_index=True)
    churn_df = pd.concat(churn, ignore_index=True)
    churn_df = churn_df[["label", "score", "auc", "brier", "n", "churn_rate"]]
    loo = loo_table(candidates, rfm, draws_per_chain)
    hold = pd.DataFrame(holdout)
    return ModelComparison(loo=loo, holdout=hold, errors=err_df, conditional=pd.DataFrame(cond), churn=churn_df,
                           tracking=pd.concat(track, ignore_index=True), hdi_prob=hdi_prob,
                           verdict=_verdict(loo, err_df, hold, churn_df, hdi_prob))  # fmt: skip


def _clear(diff: float, se: float) -> str:
    """Plain words for a paired difference and its standard error."""
    if not np.isfinite(se) or se <= 0:
        return "no standard error"
    z = diff / se
    return "a clear difference" if z > 4 else "likely real" if z > 2 else "within noise"


def _verdict(loo: pd.DataFrame, errors: pd.DataFrame, holdout: pd.DataFrame, churn: pd.DataFrame, prob: float) -> str:
    """Which model and pooling predicts best, by how much, with what uncertainty (plain words)."""
    parts = []
    bayes = loo[loo["criterion"] == "PSIS-LOO"].reset_index(drop=True)
    if len(bayes):
        b = bayes.iloc[0]
        s = f"On leave-one-out fit (PSIS-LOO) {b['label']} is best (elpd {b['elpd']:,.1f} ± {b['se']:,.1f})"
        if len(bayes) > 1:
            n2 = bayes.iloc[1]
            s += (
                f"; the runner-up, {n2['label']}, is {-n2['elpd_diff']:,.1f} lower (se of the paired difference "
                f"{n2['se_diff']:,.1f}: {_clear(-n2['elpd_diff'], n2['se_diff'])})"
            )
        parts.append(s + ".")
    e = errors.iloc[0]
    s = f"On the holdout, {e['label']} has the lowest per-customer error (MAE {e['mae']:.3f} purchases, RMSE {e['rmse']:.3f})"
    if len(errors) > 1:
        e2 = errors.iloc[1]
        s += (
            f"; next is {e2['label']} at {e2['mae']:.3f} (paired difference {e2['mae_diff']:.2g} ± "
            f"{e2['mae_diff_se']:.2g}: {_clear(e2['mae_diff'], e2['mae_diff_se'])})"
        )
    h = holdout[(holdout["label"] == e["label"]) & (holdout["segment"] == ALL_SEGMENTS)].iloc[0]
    s += (
        f". Its {prob:.0%} interval of total holdout purchases, {h['predicted_hdi_low']:,.0f}-"
        f"{h['predicted_hdi_high']:,.0f}, {'covers' if h['covered'] else 'misses'} the actual {h['actual_total']:,.0f}."
    )
    parts.append(s)
    pn = churn[churn["score"] == "P(no purchase in holdout)"].sort_values("auc", ascending=False)
    if len(pn):
        c = pn.iloc[0]
        parts.append(
            f"As a churn score, P(no purchase in the holdout) of {c['label']} ranks churners best "
            f"(ROC AUC {c['auc']:.3f}, Brier {c['brier']:.3f})."
        )
    return " ".join(parts)
