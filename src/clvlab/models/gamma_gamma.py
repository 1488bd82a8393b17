"""Hierarchical Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV") in PyMC.

Fitted on repeat customers only (x > 0, mean repeat spend zbar > 0). Segment g has
population parameters (p_g, q_g, gamma_g); the customer's nu is integrated out in closed
form (:func:`~clvlab.models.gamma_gamma_math.gg_logpdf`, the one log-likelihood shared with
the tests and :meth:`GammaGamma.log_likelihood`). The sampler evaluates it through the fused
op of :mod:`.gamma_gamma_kernel` (value and analytic gradient in one numba pass over the
(segment, x) table, one log1p per spend pattern and per-segment sums of ln zbar; tested equal to
the formula and to its autodiff gradient; a JAX twin for numpyro).

Parameterisation. (p, q, gamma) are strongly correlated in the posterior: only the
population mean spend E[z] = p gamma / (q - 1) is sharply identified. The sampler therefore
works on
    p (log link), q - 1 (log link: q > 1, so E[z] is finite), mean_spend = p gamma/(q-1) (log link)
each built by :func:`~clvlab.models.hierarchy.segment_parameter` (pooled / unpooled /
partial), with gamma = mean_spend (q - 1) / p as a deterministic. Priors (link scale,
overridable through ``priors``): log p ~ N(1, 2), log(q-1) ~ N(1, 2), and log mean_spend ~
N(log of the observed mean repeat spend, 2) -- the only data-scaled prior: it just sets the
currency unit, sd 2 spans a factor e^4 either way.

Partial pooling under NUTS centres the (segment, parameter) pairs the data pin down well
inside the between-segment spread, chosen by the pilot the purchase models use
(``parameterization="auto"``, :mod:`.centering`; large segments of a spread population), and
samples the rest mean-centred non-centred (:mod:`.hierarchy`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from clvlab.choices import ALL_SEGMENTS
from clvlab.errors import ClvlabInputError
from clvlab.features.validation import examples
from clvlab.models import gamma_gamma_math as gm
from clvlab.models.base import BayesianEstimator
from clvlab.models.centering import SegmentCentring
from clvlab.models.hierarchy import ParamPrior, segment_parameter
from clvlab.models.new_segments import NewSegments
from clvlab.stats import HDI_PROB, hdi_sorted

__all__ = ["GammaGamma", "independence_check", "DEFAULT_PRIORS"]

SEGMENT_PARAMS = ("p", "q", "gamma")
DEFAULT_PRIORS: dict[str, ParamPrior] = {
    "p": ParamPrior("p", "log", loc=1.0, scale=2.0, sigma_scale=1.0),
    "q_minus_1": ParamPrior("q_minus_1", "log", loc=1.0, scale=2.0, sigma_scale=1.0),
    # loc None -> log(mean observed repeat spend), set at fit time
    "mean_spend": ParamPrior("mean_spend", "log", loc=0.0, scale=2.0, sigma_scale=1.0),
}


class GammaGamma(NewSegments, SegmentCentring, BayesianEstimator):
    """Hierarchical Gamma-Gamma estimator of mean spend per transaction.

    Parameters
    ----------
    pooling : "pooled" | "unpooled" | "partial"
        How segments share (p, q, gamma). Without ``segment`` it is always pooled.
    segment : str, optional
        Segment column of the RFM table.
    priors : dict, optional
        Overrides per parameter ("p", "q_minus_1", "mean_spend") of
        ``{"loc", "scale", "sigma_scale"}`` on the log scale (see :class:`ParamPrior`).
    parameterization : "auto" | "noncentered" | "centered"
        Partial pooling only (NUTS): how the segment parameters are sampled. "auto" fits the
        segments separately first (a MAP, seconds) and centres the (segment, parameter) pairs
        whose data are informative next to the between-segment spread (:mod:`.centering`); the
        choice is in ``centered_`` and ``fit_info_.centered``.
    """

    model_name: ClassVar[str] = "gamma_gamma"
    rfm_columns: ClassVar[tuple[str, ...]] = ("frequency", "monetary_value")
    default_priors: ClassVar[dict[str, ParamPrior]] = DEFAULT_PRIORS
    link_params: ClassVar[tuple[str, ...]] = ("p", "q_minus_1", "mean_spend")
    params: ClassVar[tuple[str, ...]] = SEGMENT_PARAMS
    summary_vars: ClassVar[tuple[str, ...]] = (
        "p", "q", "gamma", "mean_spend", "p_pop", "q_minus_1_pop", "mean_spend_pop",
        "p_sigma", "q_minus_1_sigma", "mean_spend_sigma",
    )  # fmt: skip
    diagnostic_vars: ClassVar[tuple[str, ...]] = (
        "p", "q", "gamma", "mean_spend", "p_mu", "q_minus_1_mu", "mean_spend_mu",
        "p_sigma", "q_minus_1_sigma", "mean_spend_sigma",
    )  # fmt: skip

    def __init__(
        self,
        pooling: str = "partial",
        segment: str | None = None,
        priors: Mapping[str, Mapping[str, float]] | None = None,
        parameterization: str = "auto",
    ):
        self.pooling = pooling
        self.segment = segment
        self.priors = priors
        self.parameterization = parameterization
        self.centered_: dict[str, list[str]] = {}

    # ---- settings and validation ----------------------------------------------------------
    def _prior(self, name: str, spend_scale: float) -> ParamPrior:
        base = DEFAULT_PRIORS[name]
        if name == "mean_spend":
            base = base.updated({"loc": float(np.log(spend_scale))})
        over = (self.priors or {}).get(name)
        return base.updated(dict(over) if over else None)

    def _fit_rules(self, df: pd.DataFrame) -> list[str]:
        """Fitting needs repeat customers with spend > 0; prediction accepts everyone (x = 0
        customers get their segment's population mean)."""
        x, m = df["frequency"].to_numpy(), df["monetary_value"].to_numpy()
        fin = np.isfinite(x) & np.isfinite(m)
        problems = []
        zero_x = fin & (x == 0)
        if zero_x.any():
            problems.append(
                f"column 'frequency': {int(zero_x.sum())} customer(s) without repeat purchases (frequency 0): "
                f"the Gamma-Gamma model is fitted on repeat customers only; pass data[data.frequency > 0], "
                f"{examples(df.index, zero_x)}"
            )
        zero_m = fin & (x > 0) & (m == 0)
        if zero_m.any():
            problems.append(
                f"column 'monetary_value': zero mean repeat spend for {int(zero_m.sum())} repeat customer(s): "
                f"the Gamma model needs spend > 0 (drop them or add a small floor), {examples(df.index, zero_m)}"
            )
        if len(df) == 0:
            problems.append("no rows")
        return problems

    def _after_validate(self, df: pd.DataFrame, fitting: bool) -> pd.DataFrame:
        df["monetary_value"] = np.where(df["frequency"].to_numpy() > 0, df["monetary_value"].to_numpy(), 0.0)
        return df

    # ---- model -------------------------------------------------------------------------
    def _build_model(self, df: pd.DataFrame) -> Any:
        import pymc as pm

        from clvlab.models.gamma_gamma_kernel import gg_fused_loglik

        seg = self._segment_codes(df, fitting=True)
        pat = gm.compress_spend_patterns(seg, df["frequency"].to_numpy(), df["monetary_value"].to_numpy())
        self.n_patterns_ = pat.n_patterns
        spend_scale = float(np.mean(df["monetary_value"]))
        self.spend_scale_ = spend_scale
        pooling = self.effective_pooling
        with pm.Model(coords={"segment": self.segments_}) as model:
            p, qm1, mean_spend = (
                segment_parameter(self._prior(k, spend_scale), pooling, centered=self._centered_mask(k),
                                  mean_centred=self.mean_centred_)
                for k in self.link_params
            )  # fmt: skip
            q_, gamma_ = gm.gg_natural(p, qm1, mean_spend)
            q = pm.Deterministic("q", q_, dims="segment")
            gamma = pm.Deterministic("gamma", gamma_, dims="segment")
            # the fused op: log-gammas on the (segment, x) table, ln zbar as per-segment sums,
            # one log1p per pattern, analytic gradient (gamma_gamma_kernel)
            pm.Potential("loglik", gg_fused_loglik(p, q, gamma, pat, len(self.segments_)))
        return model

    def _segment_loglik(self, df: pd.DataFrame, post: Any) -> Any:
        """Each segment's log-likelihood as a function of its link-scale (p, q - 1, mean_spend)
        (the centring pilot, :mod:`.centering`)."""
        seg = self._segment_codes(df, fitting=False)
        pat = gm.compress_spend_patterns(seg, df["frequency"].to_numpy(), df["monetary_value"].to_numpy())
        n_seg = len(self.segments_)

        def segment_loglik(eta: np.ndarray) -> np.ndarray:
            v = self._link_values(eta)
            q, gamma = gm.gg_natural(v["p"], v["q_minus_1"], v["mean_spend"])
            g = pat.segment
            per = gm.gg_logpdf(pat.x, pat.zbar, v["p"][g], q[g], gamma[g])
            return np.bincount(g, weights=pat.weight * per, minlength=n_seg)

        return segment_loglik

    def _nutpie_adaptation(self) -> str:
        """The centring rule's choice (:meth:`SegmentCentring._nutpie_adaptation`), except unpooled:
        "diag". Measured on full CDNOW repeaters (4 x 1000, seeds 1-2): pooled, "low_rank" 3.0
        leapfrog steps per draw vs 5.1 and min bulk ESS 5,071-5,612 vs 1,505-1,770; unpooled by
        12 cohorts, "low_rank" 7.2 steps vs 14.9 but min bulk ESS 1,264-1,304 vs 3,050-3,825, so
        300-310 ESS/s against 517-535 with "diag"."""
        if self.effective_pooling == "unpooled":
            return "diag"
        return super()._nutpie_adaptation()

    def _natural(self, link: dict[str, Any]) -> dict[str, Any]:
        """(p, q, gamma) from the sampled (p, q - 1, mean spend) (:func:`~.gamma_gamma_math.gg_natural`)."""
        q, gamma = gm.gg_natural(link["p"], link["q_minus_1"], link["mean_spend"])
        return {"p": link["p"], "q": q, "gamma": gamma}

    def _prepare_backend(self, backend: str) -> None:
        if backend == "jax":  # the fused likelihood op needs its JAX implementation registered
            from clvlab.models.gamma_gamma_kernel import register_jax

            register_jax()

    # ---- posterior quantities ------------------------------------------------------------
    def _prepare(self, data: pd.DataFrame | None, thin: int, fitting: bool = False):
        self._check_fitted()
        df = self._validate(self._data_or_fit_data(data), fitting=fitting)
        seg = self._segment_codes(df, fitting=False)
        par = {k: self.posterior_[k].values[:, ::thin][:, :, seg] for k in SEGMENT_PARAMS}
        return df, par

    def expected_spend(self, data: pd.DataFrame | None = None, thin: int = 1) -> xr.DataArray:
        """Posterior E[M | x, zbar] per customer (FHL 2005 eq. 5), dims (chain, draw, customer_id).

        Customers with x = 0 get their segment's population mean p gamma / (q - 1).
        """
        df, par = self._prepare(data, thin)
        x, m = df["frequency"].to_numpy(), df["monetary_value"].to_numpy()
        val = gm.gg_conditional_mean_spend(x, m, par["p"], par["q"], par["gamma"])
        return self._customer_da(val, df, "expected_spend")

    def expected_spend_summary(
        self, data: pd.DataFrame | None = None, thin: int = 1, prob: float = HDI_PROB
    ) -> pd.DataFrame:
        """Tidy per-customer summary of :meth:`expected_spend`: mean, sd, hdi_low, hdi_high."""
        da = self.expected_spend(data, thin)
        v = da.stack(_s=("chain", "draw")).transpose("customer_id", "_s").values
        lo, hi = hdi_sorted(np.sort(v, axis=1), prob)
        out = pd.DataFrame({"customer_id": da["customer_id"].values, "mean": v.mean(1),
                            "sd": v.std(1, ddof=1) if v.shape[1] > 1 else 0.0, "hdi_low": lo, "hdi_high": hi})  # fmt: skip
        if self.segment:
            src = self.data_ if data is None else data
            out.insert(1, self.segment, src[self.segment].astype(str).to_numpy())
        return out

    def population_mean_spend(self) -> xr.DataArray:
        """Posterior population mean spend per transaction p gamma / (q - 1), dims (chain, draw, segment)."""
        self._check_fitted()
        post = self.posterior_
        return gm.gg_population_mean_spend(post["p"], post["q"], post["gamma"]).rename("population_mean_spend")

    def log_likelihood(self, data: pd.DataFrame | None = None, thin: int = 1) -> xr.DataArray:
        """Pointwise log-likelihood per repeat customer (for LOO), dims (chain, draw, customer_id)."""
        df, par = self._prepare(data, thin, fitting=True)
        val = gm.gg_logpdf(
            df["frequency"].to_numpy(), df["monetary_value"].to_numpy(), par["p"], par["q"], par["gamma"]
        )
        return self._customer_da(val, df, "log_likelihood")

    def sample_mean_spend(self, data: pd.DataFrame | None = None, thin: int = 1, seed: int = 0) -> xr.DataArray:
        """Posterior predictive replicate of each repeat customer's mean spend given x, dims (chain, draw, customer_id)."""
        df, par = self._prepare(data, thin, fitting=True)
        rng = np.random.default_rng(seed)
        val = gm.gg_sample_mean_spend(df["frequency"].to_numpy(), par["p"], par["q"], par["gamma"], rng)
        return self._customer_da(val, df, "mean_spend_rep")

    # ---- persistence hooks -------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "spend_scale": float(getattr(self, "spend_scale_", float("nan")))}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        super()._set_extra_state(state)
        self.spend_scale_ = float(state.get("spend_scale", float("nan")))


def independence_check(rfm: pd.DataFrame, segment: str | None = None, prob: float = 0.95) -> pd.DataFrame:
    """Gamma-Gamma's key assumption: spend is independent of purchase frequency.

    Per segment (and overall), Pearson correlation of frequency and mean repeat spend over
    repeat customers, with a Fisher-z confidence interval; also Spearman's rho.

    Parameters
    ----------
    rfm : DataFrame
        RFM table with ``frequency`` and ``monetary_value`` (and the ``segment`` column).
    segment : str, optional
        Also check each segment of this column.
    prob : float
        Confidence of the interval.

    Returns
    -------
    DataFrame
        segment ("all" first), n, pearson_r, ci_low, ci_high, spearman_rho (NaN below 4 repeat
        customers).
    """
    from scipy import stats

    need = ["frequency", "monetary_value"] + ([segment] if segment else [])
    missing = [c for c in need if c not in rfm.columns]
    if missing:
        raise ClvlabInputError([f"missing column {c!r}" for c in missing], what="RFM data")
    rep = rfm[rfm["frequency"] > 0]
    groups: list[tuple[str, pd.DataFrame]] = [(ALL_SEGMENTS, rep)]
    if segment:
        groups += [(str(g), d) for g, d in rep.groupby(segment, sort=True)]
    zq = stats.norm.ppf(0.5 + prob / 2)
    rows = []
    for name, d in groups:
        n = len(d)
        if n < 4:
            r = rho = lo = hi = float("nan")
        else:
            r = float(np.corrcoef(d["frequency"], d["monetary_value"])[0, 1])
            rho = float(stats.spearmanr(d["frequency"], d["monetary_value"]).statistic)
            z, se = np.arctanh(np.clip(r, -0.999999, 0.999999)), 1.0 / np.sqrt(n - 3)
            lo, hi = float(np.tanh(z - zq * se)), float(np.tanh(z + zq * se))
        rows.append(dict(segment=name, n=n, pearson_r=r, ci_low=lo, ci_high=hi, spearman_rho=rho))
    return pd.DataFrame(rows)
