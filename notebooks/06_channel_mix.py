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
# # 06 — Which acquisition channel pays, how sure are we, and where should the budget go?
#
# A simulated multi-channel business with a known truth (`models/configs/channels.yaml`): a
# premium channel (dear, valuable customers), search, a cheap mass channel and social, which does
# not pay back its CAC. BG/NBD and Gamma-Gamma are fitted with partial pooling across channels;
# each channel's **new customer** is valued from the first order on (not the residual value of the
# customers already acquired), put against its CAC, and the budget is allocated under the
# posterior. The logic lives in `clvlab.clv.acquisition` and `clvlab.clv.budget`.

# %% tags=["parameters"]
quick = False  # CI: a quarter of the simulated customers
config = "models/configs/channels.yaml"  # from the project root

# %%
# %matplotlib inline
from pathlib import Path

import pandas as pd

from clvlab.clv import new_customer_value
from clvlab.clv.draws import ParamDraws
from clvlab.features import cohorts
from clvlab.plots import acquisition as pa
from clvlab.plots import kpis as pk
from clvlab.plots.clv import plot_cac_ratio
from clvlab.run_report import acquisition_table
from clvlab.study import Study

ROOT = Path.cwd().parent
study = Study(ROOT / config, quick=quick, root=ROOT, progress=False)
acq = study.config.acquisition
truth = study.simulation().truth
truth

# %% [markdown]
# ## The channels as the log shows them (DuckDB: `clvlab.features.kpis`)

# %%
features = study.features()
features.kpis

# %%
pk.plot_retention_matrix(features.retention)

# %%
features.migration  # recency stages three months apart

# %% [markdown]
# ## A new customer's value against its CAC

# %%
clv = study.clv()
ncv, table = clv.new_customer, clv.cac
acquisition_table(table, "channel", study.config.clv.hdi_prob, "months")

# %%
plot_cac_ratio(table, segment="channel", what="new-customer value / CAC")

# %%
pa.plot_payback(ncv, acq.cac)

# %% [markdown]
# ## Against the truth
#
# The same value at the simulator's true parameters (the first orders as observed): each
# channel's posterior interval should hold it, and the ranking should match.

# %%
names = {"purchase": ("r", "alpha", "a", "b"), "spend": ("p", "q", "gamma")}
true_draws = {k: ParamDraws({p: truth[p].to_numpy(float)[None, :] for p in v}, list(truth.index), "channel",
                            "bgnbd" if k == "purchase" else None) for k, v in names.items()}
first = cohorts(study.data().transactions, segment_cols=["channel"],
                observation_end=study.config.features.calibration_end).customers
s = ncv.settings
true_value = new_customer_value(true_draws["purchase"], true_draws["spend"], first, segment="channel",
                                horizon=s.horizon, period=s.period, discount_rate=s.discount_rate, margin=s.margin,
                                time_unit=s.time_unit).summary().set_index("channel")["value_mean"]
check = ncv.summary().set_index("channel")[["value_mean", "value_hdi_low", "value_hdi_high"]]
check["true_value"] = true_value
check["covered"] = (check["value_hdi_low"] <= check["true_value"]) & (check["true_value"] <= check["value_hdi_high"])
check["true_ratio"] = check["true_value"] / pd.Series(acq.cac)
check.sort_values("true_ratio", ascending=False)

# %% [markdown]
# ## The budget decision
#
# Each channel's CAC rises with volume where a saturation N is configured:
# n(S) = N (1 - exp(-S / (CAC N))) customers for a spend S. The allocation maximises the posterior
# mean of the net value (value of the customers bought, less the spend); its risk is the 5%
# quantile of the net value across posterior draws.

# %%
budget = clv.budget
budget.summary

# %%
pa.plot_budget(budget)

# %%
budget.allocation.round(2)

# %% [markdown]
# ## The residual value of the base (a different question)
#
# The remaining CLV of customers already acquired, per channel, against CAC: what the existing
# base is still worth, not what buying a new customer yields.

# %%
clv.residual_cac[["channel", "cac", "clv_mean", "ratio_mean", "ratio_hdi_low", "ratio_hdi_high"]]
