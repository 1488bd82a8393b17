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
# # 04 — Survival churn (Cox) against the BG/NBD P(alive)
#
# Non-contractual customers never announce that they left. The survival view defines a
# *lapse* (no purchase within L weeks of a purchase), builds a lapse table with covariates
# known early in each customer's life, and fits Kaplan-Meier curves and a Cox model. We then
# ask both models the same question: which calibration customers make no purchase in the
# 39-week holdout? Everything comes from the main job's `churn` stage
# (`models/configs/cdnow.yaml`, section `survival`).

# %% tags=["parameters"]
quick = False  # CI: the 1/10 sample and a short BG/NBD run
config = "models/configs/cdnow.yaml"  # from the project root (the tests pass their own copy)

# %%
# %matplotlib inline
from pathlib import Path

from clvlab.plots.survival import plot_calibration_curves, plot_hazard_ratios, plot_km_by_segment, plot_roc_curves
from clvlab.study import Study

ROOT = Path.cwd().parent
study = Study(ROOT / config, quick=quick, root=ROOT, progress=False)
study.config.survival

# %% [markdown]
# ## The lapse threshold, from the inter-purchase times

# %%
churn = study.churn()
print(churn.lapse_explanation)
churn.lapse_table.head()

# %% [markdown]
# ## Kaplan-Meier by acquisition cohort (log-rank test)

# %%
display(churn.km.logrank_)
plot_km_by_segment(churn.km, time_unit=study.config.features.time_unit)

# %% [markdown]
# ## Cox proportional hazards (strata = cohort)

# %%
print("held-out concordance:", round(churn.concordance, 3))
display(churn.hazard_ratios.round(3))
plot_hazard_ratios(churn.hazard_ratios)

# %%
churn.ph_check.round(4)

# %% [markdown]
# ## Who buys nothing in the holdout? Cox against BG/NBD
#
# Two BG/NBD scores: 1 - P(alive), the textbook churn score, and P(no purchase in the
# holdout window) = 1 - P(alive) + P(alive) ((alpha+T)/(alpha+T+t))^(r+x). The first ranks
# one-time buyers as *least* likely to churn (BG/NBD lets nobody drop out before a repeat
# purchase, so their P(alive) is 1) — the second accounts for their low purchase rate.

# %%
comparison = churn.comparison
comparison[comparison["segment"] == "all"].round(3)

# %%
plot_roc_curves(churn.roc, comparison)

# %%
plot_calibration_curves(churn.calibration, comparison)

# %%
comparison.pivot(index="segment", columns="score", values="auc").round(3)
