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
# # 05 — Which purchase model predicts best? BG/NBD, MBG/NBD, Pareto/NBD, pooled and by cohort
#
# BG/NBD lets nobody drop out before a first repeat purchase, so the 60% one-time buyers of
# CDNOW all look alive. MBG/NBD (Batislam et al. 2007) lets them leave at time zero; Pareto/NBD
# (Schmittlein et al. 1987) lets everyone leave at any time. Here every model is fitted on the same
# calibration customers, with partial pooling by acquisition cohort and pooled, next to each
# model's classic maximum-likelihood fit and an NBD without dropout (the floor), and scored on
# the same 39-week holdout: leave-one-out fit, holdout tracking, conditional expectations,
# per-customer errors and churn scores. Everything comes from the main job's `compare` stage
# (`models/configs/cdnow.yaml`, section `compare`); the logic lives in `clvlab.comparison`.

# %% tags=["parameters"]
quick = False  # CI: the 1/10 sample and the pooled fits only
config = "models/configs/cdnow.yaml"  # from the project root (the tests pass their own copy)

# %%
# %matplotlib inline
from pathlib import Path

from clvlab.comparison import headline_labels
from clvlab.plots import compare as pk
from clvlab.run_report import comparison_tables
from clvlab.study import Study

ROOT = Path.cwd().parent
study = Study(ROOT / config, quick=quick, root=ROOT, progress=False)
study.config.compare

# %% [markdown]
# ## The verdict

# %%
result = study.compare()
cmp = result.comparison
print(cmp.verdict)

# %% [markdown]
# ## Leave-one-out fit of the calibration data
#
# PSIS-LOO per customer (ArviZ). Differences are paired: their standard error comes from the
# per-customer differences, so two models whose elpd intervals overlap can still differ clearly.
# MLE rows show log L - k (AIC / -2) on the same scale.

# %%
tables = comparison_tables(cmp)
display(tables["loo"])
pk.plot_loo(cmp.loo)

# %% [markdown]
# ## Holdout: per-customer error and the total

# %%
display(tables["errors"])
pk.plot_holdout_totals(cmp.holdout, cmp.hdi_prob)

# %% [markdown]
# ## Tracking weekly and cumulative repeat purchases (Fader, Hardie & Lee 2005, fig. 2)
#
# The actual series is counted from the transaction log; each model's is the sum over customers of
# the new-customer expectation E[X(t)] from their first purchase, with a posterior band.

# %%
shown = headline_labels(cmp.tracking["label"])  # each model at its richest pooling, and the NBD floor
pk.plot_tracking(cmp.tracking, cmp.hdi_prob, labels=shown, time_unit=study.config.features.time_unit)

# %% [markdown]
# ## Conditional expectations by calibration frequency (FHL 2005, fig. 4)

# %%
pk.plot_conditional_expectations(cmp.conditional, cmp.hdi_prob, labels=shown)

# %% [markdown]
# ## Per cohort: does each model's interval of the holdout total cover the actual?

# %%
h = cmp.holdout[cmp.holdout["segment"] != "all"]
h.pivot(index="segment", columns="label", values="covered").replace({True: "yes", False: "no"})

# %% [markdown]
# ## Churn scores: ROC AUC and Brier score on the holdout

# %%
tables["churn"]
