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
# # 01 — CDNOW: from transactions to RFM
#
# The CDNOW log (Fader, Hardie & Lee 2005): every purchase of the 23,570 customers who first
# bought in Q1 1997, up to 1998-06-30. We validate the log, build the calibration/holdout RFM
# table of the paper (39 weeks + 39 weeks, time in weeks = days / 7), score customers into RFM
# segments and look at acquisition cohorts and inter-purchase times.

# %% tags=["parameters"]
quick = False  # CI runs this notebook with quick=True (the 1/10 sample)

# %%
# %matplotlib inline

from clvlab.data import load_cdnow_with_report
from clvlab.features import calibration_holdout, cohorts, interpurchase_times, rfm_scores
from clvlab.plots.rfm import plot_cohort_sizes, plot_interpurchase_times, plot_rfm_segments

CALIBRATION_END, OBSERVATION_END = "1997-09-30", "1998-06-30"

# %% [markdown]
# ## Validation
# Same-day transactions of a customer are one purchase (spend summed). The report counts every
# merged row, so nothing disappears silently.

# %%
tx, report = load_cdnow_with_report(sample=quick)
print(report)
tx.head()

# %% [markdown]
# ## Calibration / holdout RFM table

# %%
rfm = calibration_holdout(tx, CALIBRATION_END, OBSERVATION_END, time_unit="W", cohort_freq="M")
print(f"{len(rfm):,} customers, {(rfm.frequency > 0).mean():.1%} repeat in calibration")
rfm[["frequency", "recency", "T", "monetary_value", "frequency_holdout"]].describe().round(2)

# %% [markdown]
# ## RFM scores and named segments

# %%
scored = rfm_scores(rfm)
display(scored["rfm_segment"].value_counts().to_frame("customers"))
plot_rfm_segments(scored)

# %% [markdown]
# ## Acquisition cohorts (week of first purchase)

# %%
sizes = cohorts(tx, "W", observation_end=CALIBRATION_END).sizes
display(sizes)
plot_cohort_sizes(sizes)

# %% [markdown]
# ## Inter-purchase times
# The distribution of gaps between purchases sets the lapse threshold of the survival models
# (notebook 04): a threshold at the 90% quantile misreads 10% of returns as lapses.

# %%
gaps = interpurchase_times(tx)
print(gaps["gap_days"].describe(percentiles=[0.5, 0.8, 0.9, 0.95]).round(1))
plot_interpurchase_times(gaps)
