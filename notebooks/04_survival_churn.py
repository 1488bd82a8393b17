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
# # 04 — Survival churn (Cox) against the BG/NBD P(alive)
#
# Non-contractual customers never announce that they left. The survival view defines a
# *lapse* (no purchase within L weeks of a purchase), builds a lapse table with covariates
# known early in each customer's life, and fits Kaplan-Meier curves and a Cox model. We then
# ask both models the same question: which calibration customers make no purchase in the
# 39-week holdout?

# %% tags=["parameters"]
quick = False  # CI: the 1/10 sample and a short BG/NBD run

# %%
# %matplotlib inline
import pandas as pd

from clvlab.data import load_cdnow
from clvlab.evaluate import calibration_curve, churn_comparison, holdout_churn_labels, roc_table
from clvlab.features import calibration_holdout
from clvlab.features.lapse import lapse_table, suggest_lapse_threshold
from clvlab.models.bgnbd import BGNBD
from clvlab.models.survival import CoxChurnModel, KaplanMeierBySegment, train_test_split_customers
from clvlab.plots.survival import plot_calibration_curves, plot_hazard_ratios, plot_km_by_segment, plot_roc_curves

CAL, END = pd.Timestamp("1997-09-30"), pd.Timestamp("1998-06-30")
HORIZON = (END - CAL).days / 7
tx = load_cdnow(sample=quick)

# %% [markdown]
# ## The lapse threshold, from the inter-purchase times

# %%
suggestion = suggest_lapse_threshold(tx, 0.9, "W", cutoff=CAL)
print(suggestion.explanation)
table = lapse_table(tx, CAL, suggestion.lapse_after, "W", cohort_freq="M")
table.head()

# %% [markdown]
# ## Kaplan-Meier by acquisition month (log-rank test)

# %%
km = KaplanMeierBySegment().fit(table, "cohort")
display(km.logrank_)
plot_km_by_segment(km, time_unit="W")

# %% [markdown]
# ## Cox proportional hazards (strata = cohort)

# %%
cox_kwargs = dict(strata="cohort", penalizer=0.01, log1p=["first_amount", "early_monetary"])
train, test = train_test_split_customers(table, 0.3, seed=0)
print("held-out concordance:", round(CoxChurnModel(**cox_kwargs).fit(train).concordance(test), 3))
cox = CoxChurnModel(**cox_kwargs).fit(table)
display(cox.hazard_ratios().round(3))
plot_hazard_ratios(cox.hazard_ratios())

# %%
cox.check_proportional_hazards().round(4)

# %% [markdown]
# ## Who buys nothing in the holdout? Cox against BG/NBD
#
# Two BG/NBD scores: 1 - P(alive), the textbook churn score, and P(no purchase in the
# holdout window) = 1 - P(alive) + P(alive) ((alpha+T)/(alpha+T+t))^(r+x). The first ranks
# one-time buyers as *least* likely to churn (BG/NBD lets nobody drop out before a repeat
# purchase, so their P(alive) is 1) — the second accounts for their low purchase rate.

# %%
rfm = calibration_holdout(tx, CAL, END, time_unit="W", cohort_freq="M")
bg = BGNBD(pooling="partial", segment="cohort").fit(
    rfm, draws=200 if quick else 1000, tune=300 if quick else 1000, chains=2 if quick else 4, seed=3,
    progressbar=False)
labels = holdout_churn_labels(tx, CAL, END)
scores = {
    "Cox P(lapse)": cox.predict_lapse_probability(table, HORIZON),
    "BG/NBD 1 - P(alive)": 1 - bg.p_alive().mean(("chain", "draw")).to_series(),
    "BG/NBD P(no purchase)": bg.p_no_purchase(HORIZON).mean(("chain", "draw")).to_series(),
}
comparison = churn_comparison(labels, scores, segments=table.set_index("customer_id")["cohort"])
comparison[comparison["segment"] == "all"].round(3)

# %%
plot_roc_curves(roc_table(labels, scores), comparison)

# %%
plot_calibration_curves(calibration_curve(labels, scores, n_bins=10), comparison)

# %%
comparison.pivot(index="segment", columns="score", values="auc").round(3)
