# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 — Spend (Gamma-Gamma) and posterior CLV
#
# Part 1, CDNOW by acquisition cohort: a hierarchical Gamma-Gamma spend model on repeat
# customers, then posterior CLV per customer and per cohort — every posterior draw of both
# models goes through the discounted sum, so totals carry their uncertainty.
#
# Part 2, a simulated multi-channel business with a known truth and an acquisition-cost
# table: the posterior of CLV/CAC per channel and the channel ranking an acquisition
# budget depends on.

# %% tags=["parameters"]
quick = False  # CI: the 1/10 sample and few draws

# %%
# %matplotlib inline
import pandas as pd

from clvlab.clv import cac_ratio, customer_lifetime_value, lifecycle_stage, retention_whatif, sensitivity
from clvlab.data import load_cdnow, simulate
from clvlab.features import calibration_holdout, rfm_summary
from clvlab.models.bgnbd import BGNBD
from clvlab.models.gamma_gamma import GammaGamma, independence_check
from clvlab.plots.clv import plot_cac_ratio, plot_clv_distribution, plot_sensitivity, plot_spend_ppc

FIT = dict(draws=200, tune=300, chains=2) if quick else dict(draws=1000, tune=1000, chains=4)
tx = load_cdnow(sample=quick)
rfm = calibration_holdout(tx, "1997-09-30", "1998-06-30", time_unit="W", cohort_freq="M")
repeaters = rfm[rfm["frequency"] > 0]

# %% [markdown]
# ## Is spend independent of frequency? (the Gamma-Gamma assumption)

# %%
independence_check(repeaters, "cohort").round(3)

# %% [markdown]
# ## Spend model

# %%
gg = GammaGamma(pooling="partial", segment="cohort").fit(repeaters, seed=1, progressbar=False, **FIT)
print(gg.convergence_)
gg.summary().round(3)

# %%
plot_spend_ppc(repeaters["monetary_value"].to_numpy(), gg.sample_mean_spend(thin=4, seed=2).values)

# %% [markdown]
# ## Posterior CLV: 12 months, 1% monthly discount, 30% margin

# %%
bg = BGNBD(pooling="partial", segment="cohort").fit(rfm, seed=2, progressbar=False, **FIT)
clv = customer_lifetime_value(bg, gg, rfm, horizon=12, time_unit="M", discount_rate=0.01, margin=0.3,
                              by=["cohort"], threshold=[50.0])
clv.summary("cohort").round(1)

# %%
plot_clv_distribution(clv, by="cohort")

# %% [markdown]
# ## CRM export: lifecycle stage and value tier

# %%
crm = lifecycle_stage(clv, rfm)
crm.groupby(["stage", "value_tier"], observed=True).size().unstack(fill_value=0)

# %% [markdown]
# ## Sensitivity: discount rate x margin, and a retention what-if

# %%
sens = sensitivity(bg, gg, rfm, by="cohort", horizon=12, time_unit="M", max_draws=200)
whatif = retention_whatif(bg, gg, rfm, scales=(0.8, 0.9, 1.0), horizon=12, time_unit="M", margin=0.3,
                          max_draws=200)
plot_sensitivity(sens, whatif)

# %% [markdown]
# ## Part 2 — channels and CLV/CAC on simulated data
# Four acquisition channels with their own purchase, dropout and spend parameters and a known
# acquisition cost. Which channel pays back its CAC, and how sure are we?

# %%
sim = simulate(n_customers={"search": 1500, "social": 1200, "email": 500, "affiliate": 300} if not quick
               else {"search": 400, "social": 300, "email": 200, "affiliate": 100}, seed=7)
display(sim.truth)
srfm = rfm_summary(sim.transactions, sim.observation_end, time_unit="W", segment_cols=["channel"])
sbg = BGNBD(pooling="partial", segment="channel").fit(srfm, seed=3, progressbar=False, **FIT)
sgg = GammaGamma(pooling="partial", segment="channel").fit(srfm[srfm["frequency"] > 0], seed=4,
                                                           progressbar=False, **FIT)
sclv = customer_lifetime_value(sbg, sgg, srfm, horizon=12, time_unit="M", discount_rate=0.01, margin=0.3,
                               by=["channel"])
ratio = cac_ratio(sclv, sim.truth["cac"].to_dict(), by="channel")
ratio.round(3)

# %%
plot_cac_ratio(ratio, by="channel")
