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
#
# Every number here comes from the pipeline of the main job (`clvlab.study.Study` on
# `models/configs/cdnow.yaml`), the same code `make run` runs: the notebook and the report
# agree by construction.

# %% tags=["parameters"]
quick = False  # CI runs this notebook with quick=True (the 1/10 sample, few draws)
config = "models/configs/cdnow.yaml"  # from the project root (the tests pass their own copy)

# %%
# %matplotlib inline
from pathlib import Path

from clvlab.plots.rfm import plot_cohort_sizes, plot_interpurchase_times, plot_rfm_segments
from clvlab.report import describe_table
from clvlab.study import Study

ROOT = Path.cwd().parent  # the project root (notebooks/ is its child)
study = Study(ROOT / config, quick=quick, root=ROOT, progress=False)
study.config.features

# %% [markdown]
# ## Validation
# Same-day transactions of a customer are one purchase (spend summed). The report counts every
# merged row, so nothing disappears silently.

# %%
data = study.data()
display(data.validation.to_frame())
data.transactions.head()

# %% [markdown]
# ## Calibration / holdout RFM table, RFM scores and named segments

# %%
features = study.features()
print(f"{len(features.rfm):,} customers, {features.n_repeaters / len(features.rfm):.1%} repeat in calibration")
describe_table(features.rfm[["frequency", "recency", "T", "monetary_value", "frequency_holdout"]])

# %%
display(features.rfm_segments)
plot_rfm_segments(features.rfm)

# %% [markdown]
# ## Acquisition cohorts

# %%
display(features.cohort_sizes)
plot_cohort_sizes(features.cohort_sizes)

# %% [markdown]
# ## Inter-purchase times
# The distribution of gaps between purchases sets the lapse threshold of the survival models
# (notebook 04): a threshold at the 90% quantile misreads 10% of returns as lapses.

# %%
print(features.interpurchase["gap_days"].describe(percentiles=[0.5, 0.8, 0.9, 0.95]).round(1))
plot_interpurchase_times(features.interpurchase)
