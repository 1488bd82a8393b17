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
# %% [markdown]
# # 03 — Spend (Gamma-Gamma) and posterior CLV
#
# Part 1, CDNOW by acquisition cohort, from the main job's pipeline (`models/configs/cdnow.yaml`):
# a hierarchical Gamma-Gamma spend model on repeat customers, then posterior CLV per customer
# and per cohort — every posterior draw of both models goes through the discounted sum, so
# totals carry their uncertainty.
#
# Part 2, a simulated multi-channel business with a known truth and an acquisition-cost
# table: the posterior of CLV/CAC per channel and the channel ranking an acquisition
# budget depends on.

# %% tags=["parameters"]
quick = False  # CI: the 1/10 sample and few draws
config = "models/configs/cdnow.yaml"  # from the project root (the tests pass their own copy)

# %%
# %matplotlib inline
from pathlib import Path

from clvlab.clv import cac_ratio, customer_lifetime_value, retention_whatif
from clvlab.data import simulate
from clvlab.features import rfm_summary
from clvlab.models.bgnbd import BGNBD
from clvlab.models.gamma_gamma import GammaGamma
from clvlab.plots.clv import plot_cac_ratio, plot_clv_distribution, plot_sensitivity, plot_spend_ppc
from clvlab.study import Study

ROOT = Path.cwd().parent
study = Study(ROOT / config, quick=quick, root=ROOT, progress=False)
c = study.config.clv
rfm = study.features().rfm

# %% [markdown]
# ## Is spend independent of frequency? (the Gamma-Gamma assumption)

# %%
spend = study.spend()
spend.independence.round(3)

# %% [markdown]
# ## Spend model

# %%
spend.model.print_summary()

# %%
plot_spend_ppc(spend.fit_data["monetary_value"].to_numpy(), spend.spend_replicates)

# %% [markdown]
# ## Posterior CLV over the configured horizon, discount and margin

# %%
clv = study.clv()
print(f"{c.horizon} {c.period}, discount {c.discount_rate:.1%} a period, margin {c.margin:.0%}")
clv.by_segment["cohort"].round(1)

# %%
plot_clv_distribution(clv.posterior, segment="cohort")

# %% [markdown]
# ## CRM export: lifecycle stage and value tier

# %%
clv.stage_tier

# %% [markdown]
# ## Sensitivity: discount rate x margin, and a retention what-if

# %%
bg, gg = study.purchase().model, spend.model
whatif = retention_whatif(bg, gg, rfm, scales=(0.8, 0.9, 1.0), horizon=c.horizon, period=c.period,
                          margin=c.margin, max_draws=c.sensitivity_draws)
plot_sensitivity(clv.sensitivity, whatif)

# %% [markdown]
# ## Part 2 — channels and CLV/CAC on simulated data
# Four acquisition channels with their own purchase, dropout and spend parameters and a known
# acquisition cost. Which channel pays back its CAC, and how sure are we? (CLV/CAC here is the
# remaining value of customers already acquired; a new customer's value is the next step.)

# %%
m = study.config.purchase
# Four well-separated channels: the between-channel sds mix slowly (bulk ESS ~500 per 4,000 draws,
# R-hat up to 1.02 measured), so both modes take 4 x 2000 (quick, seeds 1-6: max R-hat 1.0012-1.0040, bulk ESS
# 1,527-1,799; 4 x 1000 reached 1.0126 on a clean clone); target_accept: the default for 4 segments.
FIT = dict(draws=2 * m.draws, tune=m.tune, chains=m.chains, progressbar=False)
sim = simulate(n_customers={"search": 1500, "social": 1200, "email": 500, "affiliate": 300} if not quick
               else {"search": 400, "social": 300, "email": 200, "affiliate": 100}, seed=7)
display(sim.truth)
srfm = rfm_summary(sim.transactions, sim.observation_end, time_unit="W", segment_cols=["channel"])
sbg = BGNBD(pooling="partial", segment="channel").fit(srfm, seed=3, **FIT)
sgg = GammaGamma(pooling="partial", segment="channel").fit(srfm[srfm["frequency"] > 0], seed=4, **FIT)
sclv = customer_lifetime_value(sbg, sgg, srfm, horizon=c.horizon, period=c.period, discount_rate=c.discount_rate,
                               margin=c.margin, segment="channel")
ratio = cac_ratio(sclv, sim.truth["cac"].to_dict(), segment="channel")
ratio.round(3)

# %%
plot_cac_ratio(ratio, segment="channel")
