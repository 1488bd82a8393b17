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
# # 02 — Hierarchical BG/NBD on CDNOW acquisition cohorts
#
# Each acquisition cohort gets its own BG/NBD parameters (r, alpha) for purchasing and
# (a, b) for dropout. *Pooled* forces one set on everybody, *unpooled* fits every cohort on
# its own, *partial* pooling lets cohorts borrow strength through population
# hyperparameters (log r_g ~ N(mu_r, sigma_r); the dropout pair as mean phi = a/(a+b) and
# concentration kappa = a+b). Customer heterogeneity stays integrated out, so NUTS only sees
# segment- and population-level parameters.
#
# The fits are the main job's (`models/configs/cdnow.yaml`, `bgnbd` section with
# `compare_pooling: true`): after `make run` this notebook reuses them from the run folder.

# %% tags=["parameters"]
quick = False  # CI: the 1/10 sample and few draws
config = "models/configs/cdnow.yaml"  # from the project root (the tests pass their own copy)

# %%
# %matplotlib inline
from pathlib import Path

from clvlab.comparison import Candidate, loo_table
from clvlab.plots.bgnbd import plot_frequency_recency, plot_repeat_purchase_ppc, plot_segment_forest
from clvlab.study import Study

ROOT = Path.cwd().parent
study = Study(ROOT / config, quick=quick, root=ROOT, progress=False)
rfm = study.features().rfm
rfm.groupby("cohort").agg(customers=("customer_id", "size"), repeat_rate=("frequency", lambda f: (f > 0).mean()))

# %% [markdown]
# ## Three fits: pooled, unpooled, partial

# %%
purchase = study.purchase()
fits = purchase.pooling_fits
for pooling, fit in fits.items():
    print(f"{pooling:9s}", fit.convergence_.describe())

# %% [markdown]
# ## Shrinkage
# Small cohorts' unpooled estimates are wide and scattered; partial pooling pulls them
# toward the population value (dashed line) while large cohorts keep their own values.

# %%
plot_segment_forest(fits, segment_sizes=rfm["cohort"].value_counts().to_dict())

# %%
purchase.model.summary().round(3)

# %% [markdown]
# ## Model comparison (PSIS-LOO over customers; notebook 05 compares purchase models)

# %%
loo_table([Candidate(f"BG/NBD {k}", m, k) for k, m in fits.items()])

# %% [markdown]
# ## P(alive) and expected purchases over frequency x recency, per cohort

# %%
plot_frequency_recency(purchase.model, "p_alive", thin=10)

# %%
plot_frequency_recency(purchase.model, "expected_purchases", t=purchase.holdout_duration, thin=10)

# %% [markdown]
# ## Holdout check: the 39 weeks after calibration

# %%
check = purchase.holdout_check
check[check["by"] != "cohort"].round(3)

# %%
mean, low, high = purchase.holdout_total(0.94)
print(f"predicted total (mean, 94% HDI): {mean:.0f} [{low:.0f}, {high:.0f}]", "actual:", int(rfm["frequency_holdout"].sum()))
plot_repeat_purchase_ppc(rfm["frequency_holdout"], purchase.holdout_draws,
                         title="Holdout repeat purchases: observed vs posterior predictive")
