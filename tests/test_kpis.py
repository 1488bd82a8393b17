"""KPI layer (clvlab.features.kpis) against brute-force pandas counts on small hand-made logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvlab.errors import ClvlabInputError
from clvlab.features.kpis import channel_kpis, retention_matrix, value_concentration

END = "2021-06-30"


def _log(seed: int = 0, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        first = pd.Timestamp("2020-01-01") + pd.Timedelta(days=int(rng.integers(0, 400)))
        chan = rng.choice(["a", "b", "c"])
        k = rng.poisson(2.0)
        days = [first] + sorted(first + pd.Timedelta(days=int(d)) for d in rng.integers(0, 500, k))
        for j, d in enumerate(days):
            rows.append(dict(customer_id=f"c{i}", date=d, amount=float(rng.gamma(2, 20)),
                             channel=chan if j == 0 else rng.choice(["a", "b", "c"])))  # fmt: skip
    tx = pd.DataFrame(rows)
    return pd.concat([tx, tx.iloc[:5].assign(amount=1.0)], ignore_index=True)  # same-day rows: one purchase


def _brute(tx: pd.DataFrame) -> pd.DataFrame:
    tx = tx[tx["date"] <= END].copy()
    tx["day"] = tx["date"].dt.normalize()
    days = tx.groupby(["customer_id", "day"], as_index=False).agg(amount=("amount", "sum"), channel=("channel", "min"))
    days = days.sort_values(["customer_id", "day"])
    first = days.groupby("customer_id").first()
    rows = []
    for g, ids in first.groupby("channel").groups.items():
        d = days[days["customer_id"].isin(ids)]
        per = d.groupby("customer_id")
        second = per["day"].apply(lambda s: s.iloc[1] if len(s) > 1 else pd.NaT)
        f = first.loc[ids, "day"]
        row = dict(channel=g, customers=len(ids), revenue=d["amount"].sum(), orders=len(d),
                   repeat_rate=float((per.size() >= 2).mean()))  # fmt: skip
        for w in (90, 180):
            elig = f <= pd.Timestamp(END) - pd.Timedelta(days=w)
            ret = (second[elig.index] <= f + pd.Timedelta(days=w)) & elig
            row[f"eligible_{w}d"] = int(elig.sum())
            row[f"retention_{w}d"] = ret.sum() / elig.sum() if elig.sum() else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def test_channel_kpis_equal_brute_force_counts():
    tx = _log()
    got = channel_kpis(tx, END, segment="channel").set_index("channel")
    want = _brute(tx).set_index("channel")
    for col in want.columns:
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float), rtol=1e-12, err_msg=col)
    np.testing.assert_allclose(got["aov"], want["revenue"] / want["orders"], rtol=1e-12)
    one = channel_kpis(tx, END, segment=None)
    assert len(one) == 1 and one["customers"].iloc[0] == got["customers"].sum()


def test_retention_matrix_equals_brute_force_counts():
    tx = _log(1)
    got = retention_matrix(tx, END, cohort_freq="M", period="M")
    t = tx[tx["date"] <= END].copy()
    t["day"] = t["date"].dt.normalize()
    first = t.groupby("customer_id")["day"].min().rename("first")
    t = t.join(first, on="customer_id")
    t["cohort"] = t["first"].dt.strftime("%Y-%m")
    t["k"] = (t["day"].dt.to_period("M") - t["first"].dt.to_period("M")).apply(lambda p: p.n)
    sizes = first.dt.strftime("%Y-%m").value_counts()
    rep = t[t["day"] > t["first"]].groupby(["cohort", "k"])["customer_id"].nunique()
    for cohort, row in got.iterrows():
        assert row["customers"] == sizes[cohort]
        last = (pd.Period(END, "M") - pd.Period(cohort, "M")).n  # June 2021 is complete on June 30
        for k in got.columns[1:]:
            if k > last:
                assert np.isnan(row[k]), (cohort, k)
            else:
                assert row[k] == pytest.approx(rep.get((cohort, k), 0) / sizes[cohort]), (cohort, k)
    # an incomplete last month is not shown
    mid = retention_matrix(tx, "2021-06-15")
    assert np.isnan(mid.loc["2021-01", (pd.Period("2021-06", "M") - pd.Period("2021-01", "M")).n])


def test_value_concentration():
    v = np.array([0.0, 1.0, 1.0, 2.0, 6.0])
    curve, table = value_concentration(v, shares=(0.2, 0.4))
    assert curve["value_share"].iloc[0] == 0 and curve["value_share"].iloc[-1] == pytest.approx(1.0)
    assert np.all(np.diff(curve["value_share"]) >= 0)
    np.testing.assert_allclose(table["value_share"], [0.6, 0.8])  # top 1 of 5 holds 6/10, top 2 hold 8/10
    # Gini of n values: 1 - 2 * (trapezoid area under the Lorenz curve)
    cum = np.concatenate([[0], np.cumsum(np.sort(v))]) / v.sum()
    assert table["gini"].iloc[0] == pytest.approx(1 - (cum[:-1] + cum[1:]).sum() / len(v))
    equal = value_concentration(np.ones(50))[1]
    assert equal["gini"].iloc[0] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(equal["value_share"], [0.1, 0.2, 0.3])
    with pytest.raises(ClvlabInputError, match="not finite and >= 0"):
        value_concentration([1.0, -2.0])
    with pytest.raises(ClvlabInputError, match="expected fractions"):
        value_concentration([1.0, 2.0], shares=(1.5,))


def test_kpi_input_errors_name_the_problem():
    tx = _log()
    with pytest.raises(ClvlabInputError, match="column 'region' missing"):
        channel_kpis(tx, END, segment="region")
    with pytest.raises(ClvlabInputError, match="retention_days"):
        channel_kpis(tx, END, retention_days=(0,))
    with pytest.raises(ClvlabInputError, match="cohort_freq='W'"):
        retention_matrix(tx, END, cohort_freq="W")


def test_kpi_figures_are_labelled():
    from clvlab.plots.kpis import plot_lorenz, plot_retention_matrix

    fig = plot_retention_matrix(retention_matrix(_log(2), END))
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("months since the cohort's start") and "cohort" in ax.get_ylabel()
    fig = plot_lorenz({"revenue": value_concentration(np.arange(1.0, 50.0))})
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and "Gini" in ax.get_legend().get_texts()[1].get_text()


def test_stage_migration_equals_brute_force_stages():
    from clvlab.features.kpis import STAGES, stage_migration

    tx = _log(3)
    a, b = pd.Timestamp("2020-09-30"), pd.Timestamp("2021-03-31")
    got = stage_migration(tx, a, b, new_days=60, active_days=90, lapsed_days=180)
    days = tx.assign(day=tx["date"].dt.normalize())[["customer_id", "day"]].drop_duplicates()

    def stages(snap: pd.Timestamp) -> pd.Series:
        d = days[days["day"] <= snap].groupby("customer_id")["day"]
        first, last = (snap - d.min()).dt.days, (snap - d.max()).dt.days
        return pd.Series(np.select([first < 60, last < 90, last < 180], ["new", "active", "at risk"], "lapsed"),
                         index=first.index)  # fmt: skip

    to, frm = stages(b), stages(a).reindex(stages(b).index).fillna("not acquired")
    want = pd.crosstab(frm, to).reindex(index=["not acquired", *STAGES], columns=list(STAGES), fill_value=0)
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())
    assert got.to_numpy().sum() == days.loc[days["day"] <= b, "customer_id"].nunique()
    assert got.loc["new"].sum() > 0 and got.loc["not acquired", "new"] > 0
    with pytest.raises(ClvlabInputError) as e:
        stage_migration(tx, b, a, active_days=200, lapsed_days=100)
    assert "must be before" in str(e.value) and "must be below" in str(e.value)
