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
# hyperparameters (non-centred: log r_g = mu_r + sigma_r z_g; the dropout pair as mean
# phi = a/(a+b) and concentration kappa = a+b). Customer heterogeneity stays integrated out,
# so NUTS only sees segment- and population-level parameters.

# %% tags=["parameters"]
quick = False  # CI: the 1/10 sample, monthly cohorts, few draws

# %%
# %matplotlib inline
import pandas as pd

from clvlab.data import load_cdnow
from clvlab.evaluate import holdout_check, loo_compare
from clvlab.features import calibration_holdout
from clvlab.models.bgnbd import BGNBD
from clvlab.plots.bgnbd import plot_frequency_recency, plot_repeat_purchase_ppc, plot_segment_forest

DRAWS, TUNE, CHAINS = (200, 300, 2) if quick else (1000, 1000, 4)
COHORT = "M" if quick else "W"

tx = load_cdnow(sample=quick)
rfm = calibration_holdout(tx, "1997-09-30", "1998-06-30", time_unit="W", cohort_freq=COHORT)
rfm.groupby("cohort").agg(customers=("customer_id", "size"), repeat_rate=("frequency", lambda f: (f > 0).mean()))

# %% [markdown]
# ## Three fits: pooled, unpooled, partial

# %%
fits = {}
for pooling in ("pooled", "unpooled", "partial"):
    fits[pooling] = BGNBD(pooling=pooling, segment="cohort").fit(
        rfm, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=1, progressbar=False)
    print(f"{pooling:9s}", fits[pooling].convergence_)

# %% [markdown]
# ## Shrinkage
# Small cohorts' unpooled estimates are wide and scattered; partial pooling pulls them
# toward the population value (dashed line) while large cohorts keep their own values.

# %%
plot_segment_forest(fits, segment_sizes=rfm["cohort"].value_counts().to_dict())

# %%
fits["partial"].summary().round(3)

# %% [markdown]
# ## Model comparison (PSIS-LOO over customers)

# %%
loo_compare(fits)

# %% [markdown]
# ## P(alive) and expected purchases over frequency x recency, per cohort

# %%
partial = fits["partial"]
plot_frequency_recency(partial, "p_alive", thin=10)

# %%
plot_frequency_recency(partial, "expected_purchases", t=39.0, thin=10)

# %% [markdown]
# ## Holdout check: 39 weeks after calibration

# %%
expected = partial.expected_purchases(39.0, thin=4).mean(("chain", "draw")).to_series()
check = holdout_check(rfm, expected, segment="cohort")
check[check["by"] != "cohort"].round(3)

# %%
plot_repeat_purchase_ppc(rfm["frequency_holdout"], partial.sample_holdout_purchases(39.0, thin=4, seed=2),
                         title="Holdout repeat purchases: observed vs posterior predictive")
