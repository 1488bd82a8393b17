"""Figures of acquisition economics: a new customer's cumulative value against its CAC (payback)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from clvlab.choices import unit_name
from clvlab.clv.acquisition import payback_periods
from clvlab.plots import interval_label, segment_colors, styled
from clvlab.stats import hdi_sorted

__all__ = ["plot_budget", "plot_payback"]


@styled
def plot_payback(ncv, cac: Mapping[str, float], *, currency: str = "$") -> Figure:  # type: ignore[no-untyped-def]
    """Cumulative discounted margin of one new customer per channel, with its HDI, against the CAC.

    One panel per channel: the posterior mean and HDI band of the value accumulated by the end
    of each period (period 0 = the first order), the channel's CAC as a dashed line, and the
    posterior median payback period (where the mean curve meets the CAC) marked.

    Parameters
    ----------
    ncv : NewCustomerValue
        From :func:`clvlab.clv.new_customer_value`.
    cac : Mapping
        Acquisition cost per customer by channel.
    currency : str
        Currency symbol of the axis.

    Returns
    -------
    Figure
    """
    st = ncv.settings
    segs = ncv.segments
    n = len(segs)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(4.2 * cols + 0.6, 3.3 * rows + 0.8))
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, squeeze=False)).ravel()
    colors = dict(zip(segs, segment_colors(n), strict=True))
    period = np.arange(st.horizon + 1)
    cum = ncv.cumulative.values  # (draw, segment, period)
    top = max(float(np.quantile(cum[:, :, -1], 0.99)), max(float(cac[g]) for g in segs)) * 1.08
    unit = unit_name(st.period)  # singular
    for j, g in enumerate(segs):
        ax = axes[j]
        c = cum[:, j, :]
        lo, hi = hdi_sorted(np.sort(c, axis=0), st.hdi_prob, axis=0)
        mean = c.mean(0)
        ax.fill_between(period, lo, hi, color=colors[g], alpha=0.25, lw=0, label=interval_label(st.hdi_prob))
        ax.plot(period, mean, color=colors[g], lw=2, label="posterior mean")
        cost = float(cac[g])
        ax.axhline(cost, color="#1F2937", ls="--", lw=1.2, label=f"CAC {currency}{cost:,.0f}")
        paid = payback_periods(cum[:, j : j + 1, :], np.array([cost]))[:, 0]
        med = float(np.quantile(paid, 0.5, method="inverted_cdf"))
        p_pay = float(np.isfinite(paid).mean())
        if med == 0:
            note = f"the first order pays the CAC, P {p_pay:.2f}"
        elif np.isfinite(med):
            ax.axvline(med, color=colors[g], ls=":", lw=1.2)
            note = f"payback ~{med:.0f} {unit}{'' if med == 1 else 's'}, P(within {st.horizon}) {p_pay:.2f}"
        else:
            note = f"no payback within {st.horizon} {unit}s (P {p_pay:.2f})"
        ax.set_title(f"{g}: {note}", fontsize=10)
        ax.set_ylim(0, top)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{currency}{v:,.0f}"))
        ax.grid(axis="y")
        if j % cols == 0:
            ax.set_ylabel("cumulative margin per customer")
        if j >= n - cols:  # the lowest panel of its column: its x axis is labelled
            ax.set_xlabel(f"{unit}s since acquisition (0 = first order)")
            ax.tick_params(labelbottom=True)
        if j == 0:
            ax.legend(loc="lower right", fontsize=8, frameon=False)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(f"A new customer's discounted margin against its acquisition cost "
                 f"(margin {st.margin:.0%}, discount {st.discount_rate:.1%} a {unit})")  # fmt: skip
    return fig


@styled
def plot_budget(result, *, currency: str = "$") -> Figure:  # type: ignore[no-untyped-def]
    """The budget decision: the frontier of expected net value against its 5% quantile, and the
    chosen allocation with each channel's net contribution interval.

    Parameters
    ----------
    result : BudgetAllocation
        From :func:`clvlab.clv.budget.allocate_budget`.
    currency : str
        Currency symbol of the axes.

    Returns
    -------
    Figure
    """
    from clvlab.clv.budget import RISK_QUANTILE

    f, a = result.frontier, result.allocation
    seg = a.columns[0]

    def cash(v: float) -> str:
        return f"{'-' if v < 0 else ''}{currency}{abs(v):,.0f}"

    money = FuncFormatter(lambda v, _: cash(v))
    fig = Figure(figsize=(12.5, 4.8))
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw=dict(width_ratios=[1.2, 1.0]))
    rand = f[f["allocation"] == "random"]
    ax1.scatter(
        rand["net_value_q05"],
        rand["expected_net_value"],
        s=6,
        color="#9CA3AF",
        alpha=0.5,
        label="random allocations of the budget",
    )
    eff = f[f["efficient"]].sort_values("net_value_q05")
    if len(eff) > 1:  # else one allocation beats every other on both counts
        ax1.plot(eff["net_value_q05"], eff["expected_net_value"], color="#1F2937", lw=1.5, label="efficient frontier")
    for _, row in f[f["allocation"] != "random"].iterrows():
        star = row["allocation"] == "optimal"
        ax1.scatter(row["net_value_q05"], row["expected_net_value"], s=140 if star else 40, marker="*" if star else "s",
                    color="#C44E52" if star else "#4C72B0", zorder=3)  # fmt: skip
        ax1.annotate(row["allocation"], (row["net_value_q05"], row["expected_net_value"]), xytext=(6, 4),
                     textcoords="offset points", fontsize=9)  # fmt: skip
    ax1.axvline(0.0, color="grey", ls="--", lw=1)
    ax1.xaxis.set_major_locator(MaxNLocator(6))
    ax1.xaxis.set_major_formatter(money)
    ax1.yaxis.set_major_formatter(money)
    ax1.set_xlabel(f"{RISK_QUANTILE:.0%} quantile of net value (bad case)")
    ax1.set_ylabel("expected net value (value of customers - spend)")
    ax1.set_title("Return against risk" + ("" if len(eff) > 1 else " (the optimum dominates)"))
    ax1.legend(loc="lower right", fontsize=8, frameon=False)
    ax1.grid(True)
    y = np.arange(len(a))
    colors = segment_colors(len(a))
    ax2.barh(y, a["spend"], color=colors, alpha=0.85)
    for yi, (_, row) in zip(y, a.iterrows(), strict=True):
        ax2.annotate(f"{row['share']:.0%} · {row['customers']:,.0f} customers · net {cash(row['net_mean'])} "
                     f"({cash(row['net_q05'])} – {cash(row['net_q95'])})", (row["spend"], yi),
                     xytext=(6, 0), textcoords="offset points", va="center", fontsize=9)  # fmt: skip
    ax2.set_yticks(y, a[seg].astype(str))
    ax2.set_xlim(0, max(float(a["spend"].max()), 1.0) * 2.2)
    ax2.xaxis.set_major_locator(MaxNLocator(4))
    ax2.xaxis.set_major_formatter(money)
    ax2.set_xlabel(f"spend (net contribution: mean and {1 - 2 * RISK_QUANTILE:.0%} interval)")
    ax2.set_ylabel(seg)
    ax2.set_title("The allocation that maximises expected net value")
    ax2.grid(axis="x")
    return fig
