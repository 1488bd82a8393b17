"""The HTML run report (clvlab.report), tables for people, the validation table, and the figure style.

No browser here (see test_report_browser.py) and no model fits: figures get small synthetic inputs.
"""

from __future__ import annotations

import re
import warnings
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from clvlab.plots import STYLE_PATH, category_ticks, interval_label, use_style
from clvlab.report import (
    MISSING,
    STANDALONE_NAME,
    Badge,
    Headline,
    Report,
    describe_table,
    format_compact,
    format_number,
    format_table,
    pivot_table,
    save_figure,
)
from clvlab.stats import HDI_PROB, hdi


# --------------------------------------------------------------------------- helpers
class _Cells(HTMLParser):
    """Rows of (tag, class, text) cells of every <tr> in an HTML string."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[tuple[str, str, str]]] = []
        self._cell: list | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = [tag, dict(attrs).get("class") or "", ""]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[2] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(tuple(self._cell))
            self._cell = None


def cells(html: str) -> list[list[tuple[str, str, str]]]:
    p = _Cells()
    p.feed(str(html))
    return p.rows


def texts(html: str) -> list[list[str]]:
    return [[c[2] for c in row] for row in cells(html)]


def _fig(title: str = "x"):
    fig = matplotlib.figure.Figure(figsize=(4, 3))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1])
    ax.set_title(title)
    return fig


# --------------------------------------------------------------------------- numbers
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (23570, "23,570"), (2.357e4, "23,570"), (np.int64(1234567), "1,234,567"), (1234567.8, "1,234,568"),
        (0.245784, "0.2458"), (12.3456, "12.35"), (0.001, "0.001"), (5e8, "500,000,000"), (2.0, "2"),
        (-0.5, "-0.5"), (float("nan"), MISSING), (None, MISSING), (True, "yes"), (0, "0"), (1.2e-5, "1.2e-05"),
    ],
)  # fmt: skip
def test_format_number(value, text):
    assert format_number(value) == text


def test_format_number_never_uses_e_notation_between_1e_3_and_1e9():
    for v in np.geomspace(1e-3, 1e9, 400):
        assert "e" not in format_number(v), v
        assert "e" not in format_number(-v), v


def test_format_compact():
    assert format_compact(1234567, "$") == "$1.23M"
    assert format_compact(-45600) == "-45.6k"
    assert format_compact(987.4) == "987"
    assert format_compact(float("nan")) == MISSING


# --------------------------------------------------------------------------- tables
def test_table_drops_positional_index_and_formats_numbers():
    df = pd.DataFrame(
        {
            "segment": ["a", "b", "c"],
            "n_customers": [23570, 1200, 5],
            "clv_mean": [2.357e4, 0.012345, np.nan],
            "share": [0.5, 0.25, 0.25],
        }
    )
    rows = texts(format_table(df))
    assert rows[0] == ["segment", "n_customers", "clv_mean", "share"]  # no index column
    assert rows[1][:2] == ["a", "23,570"] and rows[2][1] == "1,200"
    assert rows[1][2] == "23,570" and rows[3][2] == MISSING
    assert not any("e+" in t or "e-" in t for row in rows for t in row)
    assert rows[1][3] == "0.5000" and rows[2][3] == "0.2500"  # one number of decimals per column


def test_table_filtered_integer_index_is_still_positional():
    df = pd.DataFrame({"x": [1, 2, 3]}).iloc[[0, 2]]
    assert texts(format_table(df))[0] == ["x"]


def test_numeric_columns_are_right_aligned():
    df = pd.DataFrame({"name": ["a"], "n": [3], "mean": [0.5], "when": [pd.Timestamp("1997-09-30")]})
    head, row = cells(format_table(df))
    assert [c[1] for c in head] == ["", "num", "num", ""]
    assert [c[1] for c in row] == ["", "num", "num", ""]


def test_meaningful_index_is_the_first_column():
    df = pd.DataFrame({"n": [1, 2]}, index=pd.Index(["x", "y"], name="stage"))
    assert texts(format_table(df)) == [["stage", "n"], ["x", "1"], ["y", "2"]]
    desc = pd.DataFrame({"mean": [1.0]}, index=["frequency"])  # unnamed label index, as describe().T
    assert texts(format_table(desc))[1][0] == "frequency"
    assert texts(format_table(desc, index=False))[0] == ["mean"]
    assert texts(format_table(pd.DataFrame({"x": [5]}), index=True))[0] == ["", "x"]


def test_dates_and_mixed_timestamp_columns():
    df = pd.DataFrame({
        "date": pd.to_datetime(["1997-09-30", "1998-06-30"]),
        "stamp": pd.to_datetime(["1997-01-01 13:45", None]),
        "mixed": [pd.Timestamp("1997-02-12"), "n/a"],
    })  # fmt: skip
    rows = texts(format_table(df))
    assert rows[1] == ["1997-09-30", "1997-01-01 13:45", "1997-02-12"]
    assert rows[2] == ["1998-06-30", MISSING, "n/a"]


def test_html_is_escaped_and_rows_are_truncated():
    df = pd.DataFrame({"<b>col</b>": ["<script>alert(1)</script>"] * 50})
    html = str(format_table(df, caption="a < b", max_rows=10))
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>col" not in html
    assert "<caption>a &lt; b</caption>" in html
    assert len(cells(html)) == 11 and "Showing 10 of 50 rows" in html


def _posterior_summary() -> pd.DataFrame:
    rows = []
    for p, base in (("r", 0.24), ("alpha", 4.4), ("a", 0.8)):
        for i, s in enumerate(("1997-02", "1997-01", "1997-03")):
            rows.append(
                dict(
                    parameter=p,
                    segment=s,
                    mean=base + i / 100,
                    sd=0.01,
                    hdi_low=base - 0.02,
                    hdi_high=base + 0.02,
                    r_hat=1.001,
                )
            )
    rows.append(dict(parameter="r_pop", segment="", mean=0.244, sd=0.02, hdi_low=0.2, hdi_high=0.28, r_hat=1.0))
    return pd.DataFrame(rows)


def test_pivot_long_summary_to_segment_by_parameter():
    wide = pivot_table(_posterior_summary(), ("segment", "parameter", "mean"))
    assert list(wide.index) == ["1997-02", "1997-01", "1997-03", "(population)"]  # order of first appearance
    assert list(wide.columns) == ["r", "alpha", "a", "r_pop"]
    assert wide.loc["1997-01", "alpha"] == pytest.approx(4.41)
    assert np.isnan(wide.loc["1997-01", "r_pop"]) and wide.loc["(population)", "r_pop"] == pytest.approx(0.244)
    rows = texts(format_table(_posterior_summary(), pivot=("segment", "parameter", "mean")))
    assert rows[0] == ["segment", "r", "alpha", "a", "r_pop"]
    assert rows[2][:3] == ["1997-01", "0.2500", "4.410"] and rows[4][1] == MISSING
    with pytest.raises(ValueError, match="not in the table"):
        pivot_table(_posterior_summary(), ("segment", "param", "mean"))


def test_describe_table_drops_non_numeric_rows(cdnow_sample_tx):
    from clvlab.features import calibration_holdout

    rfm = calibration_holdout(cdnow_sample_tx, "1997-09-30", "1998-06-30", time_unit="W")
    for source in (rfm.describe().T, rfm.describe(), rfm):
        d = describe_table(source)
        assert "first_purchase" not in d.index and "frequency" in d.index
        assert list(d.columns) == ["n", "mean", "sd", "min", "25%", "median", "75%", "max"]
        assert d["n"].dtype == np.int64
    rows = texts(format_table(describe_table(rfm.describe().T)))
    assert rows[0][0] == "column" and rows[1][:2] == ["frequency", "2,357"]


# --------------------------------------------------------------------------- validation report
def test_validation_report_as_a_table_for_people():
    from clvlab.data import load_transactions

    raw = pd.DataFrame({
        "customer_id": ["a", "a", "a", "b", "c", "c"],
        "date": ["2020-01-01", "2020-01-01", "2020-01-01", "2020-01-05", "2020-02-01 10:30", "2020-03-01"],
        "amount": [10.0, 10.0, 5.0, 0.0, 2.5, 1.0],
        "channel": ["web", "web", "web", "shop", "web", "shop"],
    })  # fmt: skip
    _, rep = load_transactions(raw, segment_cols=["channel"])
    frame = rep.to_frame(readable=True)
    assert list(frame.columns) == ["check", "value"]
    assert frame["value"].map(type).eq(str).all()
    values = dict(zip(frame["check"], frame["value"], strict=True))
    assert values["Input rows"] == "6"
    assert values["Rows merged into a same-day purchase"].startswith("2 (33.3% of input rows)")
    assert values["Purchases (output rows)"] == "4" and values["Customers"] == "3"
    assert values["Dates"] == "2020-01-01 to 2020-03-01"
    assert values["Customers whose channel changed (first value kept)"] == "1"
    assert values["Customer ids pseudonymised"] == "no"
    assert list(rep.to_frame().columns) == ["item", "value"]  # the raw form is unchanged
    rows = texts(format_table(frame))
    assert rows[0] == ["check", "value"] and ["Input rows", "6"] in rows


# --------------------------------------------------------------------------- the report
def _sample_report(directory: Path) -> Report:
    rep = Report(title="clvlab run: <test>", directory=directory, subtitle="unit test")
    rep.set_headline(
        [
            Headline("Customers", "23,570", detail="calibration to 1997-09-30"),
            Headline("Total CLV", "$1.23M", interval="94% HDI $1.18M \u2013 $1.29M"),
        ]
    )
    rep.add_badge(Badge("BG/NBD sampler", "pass", "max R-hat 1.002 (r[3]), min ESS 2,595"))
    rep.add_badge(Badge("Gamma-Gamma sampler", "fail", "12 divergences"))
    rep.add_text("Data", "First paragraph & more.\n\nSecond <paragraph>.")
    rep.add_table("RFM", pd.DataFrame({"n": [1, 2]}), caption="counts")
    rep.add_note("Data", "Heads up: <b>not bold</b>")
    rep.add_figure("RFM", _fig(), "fig_one", caption="A figure")
    rep.add_code("BG/NBD", "pooling: partial\nsegment: cohort")
    rep.add_table("Data", pd.DataFrame({"x": [0.5]}))
    rep.set_footer(
        config_yaml="name: test\n",
        data_hash="abc123",
        versions={"pymc": "5.0", "clvlab": "0.1.0"},
        timings={"data": 1.5, "rfm": 0.5, "total": 2.0},
    )
    return rep


def test_report_page_structure(tmp_path):
    rep = _sample_report(tmp_path / "rep")
    index = rep.write()
    assert index == tmp_path / "rep" / "index.html"
    html = index.read_text()
    assert rep.section_names == ["Data", "RFM", "BG/NBD"]  # order of first use
    ids = re.findall(r'<section class="stage" id="([^"]+)"', html)
    toc = re.findall(r'<li><a href="#([^"]+)">', html)
    assert toc == ids + ["run-details"] and 'id="run-details"' in html
    # first screen before the TOC, which comes before the sections, the footer last
    order = [html.index(s) for s in ('class="kpis"', 'class="checks"', 'class="toc"', 'id="data"', 'id="run-details"')]
    assert order == sorted(order)
    assert "<title>clvlab run: &lt;test&gt;</title>" in html
    assert "23,570" in html and "94% HDI $1.18M \u2013 $1.29M" in html
    assert 'class="badge pass"' in html and 'class="badge fail"' in html and "FAIL" in html
    assert "<p>First paragraph &amp; more.</p>" in html and "<p>Second &lt;paragraph&gt;.</p>" in html
    assert "<pre>" not in html.split('id="data"')[1].split("</section>")[0]  # text is not preformatted
    assert "Heads up: &lt;b&gt;not bold&lt;/b&gt;" in html
    assert "<pre><code>pooling: partial\nsegment: cohort</code></pre>" in html
    assert 'src="fig_one.png"' in html and 'href="fig_one.svg"' in html
    assert "<script" not in html and not re.search(r'(src|href)="(https?:)?//', html)  # static, offline
    assert "abc123" in html and "name: test" in html and "@media print" in html
    footer = html.split('id="run-details"')[1]
    assert ["data", "1.5", "75%"] in texts(footer) and ["total", "2.0", "100%"] in texts(footer)
    assert ["clvlab", "0.1.0"] in texts(footer)


def test_self_contained_variant_embeds_figures(tmp_path):
    rep = _sample_report(tmp_path)
    path = rep.write(self_contained=True)
    assert path == tmp_path / STANDALONE_NAME and (tmp_path / "index.html").exists()
    html = path.read_text()
    assert 'src="data:image/png;base64,' in html and 'src="fig_one.png"' not in html
    assert 'src="fig_one.png"' in (tmp_path / "index.html").read_text()


def test_add_figure_writes_png_and_svg_atomically_and_closes(tmp_path):
    rep = Report(title="t", directory=tmp_path)
    fig = plt.figure()
    plt.plot([1, 2])
    paths = rep.add_figure("S", fig, "pyplot_fig")
    assert [p.name for p in paths] == ["pyplot_fig.png", "pyplot_fig.svg"] and all(p.stat().st_size for p in paths)
    assert not plt.fignum_exists(fig.number)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyplot_fig.png", "pyplot_fig.svg"]  # no temp files
    with pytest.raises(ValueError, match="used twice"):
        rep.add_figure("S", _fig(), "pyplot_fig")
    with pytest.raises(ValueError, match="letters, digits"):
        save_figure(_fig(), tmp_path, "../escape")


def test_old_report_calls_keep_working(tmp_path):
    """What runs.py did before the pipeline rewrite."""
    rep = Report(title="clvlab run: old", directory=tmp_path)
    rep.add_text("Data", "Transaction validation report\nn_input_rows        6919\nn_customers         2357")
    rep.add_table("RFM", pd.DataFrame({"a": range(100)}), caption="RFM summary", max_rows=40)
    rep.add_figure("RFM", _fig(), "rfm_segments", caption="RFM-score segments")
    html = rep.write().read_text()
    assert "<pre><code>Transaction validation report\nn_input_rows        6919" in html  # aligned text stays aligned
    assert "Showing 40 of 100 rows" in html and "RFM summary" in html and "rfm_segments.png" in html


def test_badge_and_headline_are_checked():
    with pytest.raises(ValueError, match="status"):
        Badge("x", "ok")
    rep = Report(title="t", directory=Path("."))
    with pytest.raises(TypeError):
        rep.set_headline([("Customers", "1")])
    with pytest.raises(TypeError):
        rep.add_badge("pass")


def test_duplicate_headings_get_unique_ids(tmp_path):
    rep = Report(title="t", directory=tmp_path)
    rep.add_text("Run details", "a")  # clashes with the footer id
    rep.add_text("Résumé 1", "b")
    rep.add_text("résumé-1", "c")
    html = rep.write().read_text()
    ids = re.findall(r'<section class="stage" id="([^"]+)"', html)
    assert len(set(ids)) == 3 and "run-details" not in ids


# --------------------------------------------------------------------------- figures: style, labels, intervals
def test_style_file_ships_and_applies():
    assert STYLE_PATH.is_file() and STYLE_PATH.parent.name == "plots"
    before = matplotlib.rcParams["axes.spines.top"]
    with use_style():
        assert matplotlib.rcParams["axes.spines.top"] is False
        assert matplotlib.rcParams["figure.constrained_layout.use"] is True
        assert matplotlib.rcParams["xtick.labelsize"] >= 11
    assert matplotlib.rcParams["axes.spines.top"] == before  # no global change
    assert interval_label(0.94) == "94% HDI" and interval_label(0.9, "equal-tailed") == "90% equal-tailed interval"


def _fake_clv_result(n_groups: int, col: str = "cohort"):
    rng = np.random.default_rng(1)
    groups = [f"1997-W{i + 1:02d}" for i in range(n_groups)]
    cust = pd.DataFrame({col: rng.choice(groups, 500), "clv_mean": rng.lognormal(2, 1, 500)})
    draws = rng.normal(10, 1, (200, n_groups))

    class Result:
        customers = cust
        settings = {"horizon": 12, "time_unit": "M", "hdi_prob": HDI_PROB}

        def group_means(self, segment):  # positional, like both the old and the new API
            if segment == "all":
                return xr.DataArray(draws[:, :1], dims=("draw", "all"), coords={"all": ["all"]})
            return xr.DataArray(draws, dims=("draw", segment), coords={segment: groups})

    return Result()


def _no_overlap(labels) -> bool:
    boxes = [t.get_window_extent() for t in labels if t.get_text() and t.get_visible()]
    return all(not a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def _all_axes_labelled(fig) -> list[str]:
    bad = []
    for ax in fig.axes:
        if not ax.get_visible() or ax.get_label() == "<colorbar>":
            continue
        has_x = ax.get_xlabel() or (fig.get_supxlabel() if hasattr(fig, "get_supxlabel") else "")
        has_y = ax.get_ylabel() or (fig.get_supylabel() if hasattr(fig, "get_supylabel") else "")
        xt = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        yt = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        if xt and not has_x:
            bad.append(f"{ax.get_title()!r}: x")
        if yt and not has_y and not ax.yaxis.get_label_position() == "right":
            shared = any(o.get_ylabel() for o in ax.get_shared_y_axes().get_siblings(ax))
            if not shared:
                bad.append(f"{ax.get_title()!r}: y")
    return bad


def test_clv_distribution_many_cohorts_is_readable_and_accepts_segment_and_by():
    from clvlab.plots.clv import plot_clv_distribution

    res = _fake_clv_result(14)
    fig = plot_clv_distribution(res, segment="cohort")
    fig.canvas.draw()
    ax0, ax1 = fig.axes
    assert _no_overlap(ax0.get_yticklabels()) and _no_overlap(ax0.get_xticklabels())
    assert "CLV over 12 months ($)" in ax0.get_xlabel() and "94% HDI" in ax1.get_title()
    assert not _all_axes_labelled(fig)
    # intervals are HDIs from clvlab.stats
    lo, hi = hdi(res.group_means("cohort").values[:, 0], HDI_PROB)
    segs = ax1.collections[0].get_segments()
    top = max(segs, key=lambda s: s[0][1])  # first group is drawn at the top
    assert top[0][0] == pytest.approx(lo) and top[1][0] == pytest.approx(hi)
    with pytest.warns(DeprecationWarning, match="segment="):
        plot_clv_distribution(res, by="cohort")
    plot_clv_distribution(res, "cohort")  # positional, as before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_clv_distribution(_fake_clv_result(2))  # "all": histograms
    with pytest.raises(TypeError):
        plot_clv_distribution(res, segment="cohort", by="channel")


def test_cohort_sizes_with_many_cohorts_has_no_overlapping_ticks():
    from clvlab.plots.rfm import plot_cohort_sizes

    sizes = pd.DataFrame(
        {
            "cohort": [f"1997-{m:02d}" for m in range(1, 13)] + [f"1998-{m:02d}" for m in range(1, 13)],
            "n_customers": np.arange(24) + 100,
            "first_purchase_amount": np.arange(24) * 10.0,
        }
    )
    fig = plot_cohort_sizes(sizes, freq="M")
    fig.canvas.draw()
    assert _no_overlap(fig.axes[0].get_xticklabels())
    assert fig.axes[0].get_xlabel() == "cohort (month of first purchase)"
    assert "($)" in fig.axes[1].get_ylabel()
    assert fig.axes[0].spines["top"].get_visible() is False


def test_category_ticks_thin_and_rotate():
    fig = matplotlib.figure.Figure(figsize=(5, 3))
    ax = fig.subplots()
    labels = [f"segment-{i}" for i in range(40)]
    category_ticks(ax, range(40), labels, max_labels=10)
    shown = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert len(shown) <= 10 and shown[0] == "segment-0"
    assert ax.get_xticklabels()[0].get_rotation() == 45


class _FakeBGNBD:
    """Just enough of a fitted BG/NBD for the figures (no fit)."""

    def __init__(self, segments=("1997-01", "1997-02", "1997-03"), pooling="partial", seed=0):
        rng = np.random.default_rng(seed)
        self.segment, self.segments_, self.effective_pooling = "cohort", list(segments), pooling
        self.time_unit_ = "W"
        self.data_ = pd.DataFrame({"frequency": rng.poisson(1, 200).astype(float), "T": 39.0})
        coords = {"chain": [0, 1], "draw": np.arange(50), "segment": self.segments_}
        shape = (2, 50, len(segments))
        self.posterior_ = xr.Dataset(
            {
                p: (("chain", "draw", "segment"), rng.lognormal(np.log(v), 0.1, shape))
                for p, v in (("r", 0.25), ("alpha", 4.4), ("a", 0.8), ("b", 2.4))
            }
            | {"r_pop": (("chain", "draw"), rng.lognormal(np.log(0.25), 0.05, (2, 50)))},
            coords=coords,
        )

    def _vals(self, data):
        return xr.DataArray(
            np.random.default_rng(0).uniform(size=(1, 4, len(data))), dims=("chain", "draw", "customer_id")
        )

    def p_alive(self, data, thin=1):
        return self._vals(data)

    def expected_purchases(self, t, data, thin=1):
        return 3 * self._vals(data)


def test_bgnbd_figures_label_units_and_use_hdis():
    from clvlab.plots import bgnbd as pb

    m = _FakeBGNBD()
    fig = pb.plot_frequency_recency(m, "expected_purchases", t=39.0)
    assert "weeks" in fig.get_supxlabel() and "E[purchases in next 39 weeks]" in fig._suptitle.get_text()
    models = {"partial": m, "unpooled": _FakeBGNBD(pooling="unpooled", seed=1)}
    fig = pb.plot_segment_forest(models, segment_sizes={"1997-01": 1200, "1997-02": 5, "1997-03": 7})
    assert "94% HDI" in fig._suptitle.get_text()
    assert fig.axes[1].get_xlabel() == "alpha (weeks; log scale)"
    assert "1997-01 (n=1,200)" in [t.get_text() for t in fig.axes[0].get_yticklabels()]
    mean, lo, hi = pb._interval(m.posterior_["r"], 0.94)
    exp_lo, exp_hi = hdi(m.posterior_["r"].stack(s=("chain", "draw")).transpose("segment", "s").values, 0.94, axis=1)
    np.testing.assert_allclose(lo, exp_lo)
    np.testing.assert_allclose(hi, exp_hi)
    sim = xr.DataArray(np.random.default_rng(0).poisson(1, (2, 20, 300)), dims=("chain", "draw", "customer_id"))
    fig = pb.plot_repeat_purchase_ppc(np.random.default_rng(1).poisson(1, 300), sim, period="in the 39-week holdout")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("94% equal-tailed interval" in t for t in legend)
    assert fig.axes[0].get_xlabel() == "repeat purchases per customer in the 39-week holdout"


def test_every_figure_has_labelled_axes():
    from clvlab.plots import clv as pc
    from clvlab.plots import rfm as pr
    from clvlab.plots import survival as ps

    rng = np.random.default_rng(0)
    figs = {}
    figs["interpurchase"] = pr.plot_interpurchase_times(pd.DataFrame({"gap_days": rng.integers(1, 300, 500)}))
    scored = pd.DataFrame(
        {
            "rfm_segment": rng.choice(["champions", "lost", "at risk"], 300),
            "R": rng.integers(1, 6, 300),
            "F": rng.integers(1, 6, 300),
            "monetary_value": rng.gamma(2, 10, 300),
            "frequency": rng.integers(0, 5, 300),
        }
    )
    figs["rfm"] = pr.plot_rfm_segments(scored)
    figs["cohorts"] = pr.plot_cohort_sizes(pd.DataFrame({"cohort": ["a", "b"], "n_customers": [3, 4]}))
    figs["clv"] = pc.plot_clv_distribution(_fake_clv_result(5), "cohort")
    cac = pd.DataFrame(
        {
            "channel": ["search", "email"],
            "ratio_mean": [1.5, 0.8],
            "ratio_hdi_low": [1.1, 0.5],
            "ratio_hdi_high": [2.0, 1.2],
            "p_ratio_gt_1": [0.99, 0.2],
            "p_rank_1": [0.9, 0.1],
            "expected_rank": [1.1, 1.9],
        }
    )
    figs["cac"] = pc.plot_cac_ratio(cac, segment="channel")
    with pytest.warns(DeprecationWarning):
        pc.plot_cac_ratio(cac, by="channel")
    sens = pd.DataFrame(
        [
            dict(
                discount_rate=d,
                margin=m,
                group="all",
                total_mean=100 * m / (1 + d),
                total_hdi_low=90 * m,
                total_hdi_high=110 * m,
            )
            for d in (0.0, 0.01, 0.02)
            for m in (0.3, 1.0)
        ]
    )
    whatif = pd.DataFrame(
        [
            dict(
                dropout_scale=s,
                segment=g,
                total_mean=100 + 10 * (1 - s),
                uplift_mean=10 * (1 - s),
                uplift_hdi_low=8 * (1 - s),
                uplift_hdi_high=12 * (1 - s),
                uplift_pct=10 * (1 - s),
            )
            for s in (0.8, 1.0, 1.1)
            for g in ("a", "b")
        ]
    )
    figs["sens"] = pc.plot_sensitivity(sens, whatif, horizon="12 months", period="month")
    assert figs["sens"].axes[0].get_ylabel() == "total CLV over 12 months ($)"
    figs["spend"] = pc.plot_spend_ppc(rng.gamma(2, 10, 100), rng.gamma(2, 10, (20, 100)))
    km = SimpleNamespace(
        survival_=pd.DataFrame(
            {
                "segment": ["a"] * 3 + ["b"] * 3,
                "time": [0, 5, 10] * 2,
                "survival": [1, 0.6, 0.3, 1, 0.7, 0.4],
                "lower": [1, 0.5, 0.2, 1, 0.6, 0.3],
                "upper": [1, 0.7, 0.4, 1, 0.8, 0.5],
                "at_risk": [50, 30, 10, 60, 40, 20],
            }
        ),
        alpha=0.05,
        logrank_=None,
        time_unit_="W",
    )
    figs["km"] = ps.plot_km_by_segment(km)
    assert figs["km"].axes[0].get_xlabel() == "time since first purchase (weeks)"
    hr = pd.DataFrame(
        {
            "covariate": ["x", "y"],
            "hazard_ratio": [0.8, 1.2],
            "hr_lower": [0.7, 1.1],
            "hr_upper": [0.9, 1.3],
            "p_value": [0.01, 0.02],
        }
    )
    figs["hr"] = ps.plot_hazard_ratios(hr)
    roc = pd.DataFrame({"score": ["s"] * 3, "fpr": [0, 0.5, 1], "tpr": [0, 0.8, 1]})
    figs["roc"] = ps.plot_roc_curves(roc)
    calib = pd.DataFrame(
        {
            "score": ["s"] * 3,
            "mean_predicted": [0.2, 0.5, 0.8],
            "observed_rate": [0.25, 0.5, 0.7],
            "se": [0.05] * 3,
            "n": [100, 100, 100],
        }
    )
    figs["calib"] = ps.plot_calibration_curves(calib)
    for name, fig in figs.items():
        fig.canvas.draw()
        assert not _all_axes_labelled(fig), (name, _all_axes_labelled(fig))
        for ax in fig.axes:
            assert _no_overlap(ax.get_xticklabels()), name
            assert _no_overlap(ax.get_yticklabels()), name
            if ax.get_label() != "<colorbar>" and ax.yaxis.get_label_position() == "left":
                assert ax.spines["top"].get_visible() is False, name


def test_independence_table_for_people():
    from clvlab.models.gamma_gamma import independence_check
    from clvlab.run_report import independence_table

    rng = np.random.default_rng(3)
    rfm = pd.DataFrame({"frequency": rng.integers(0, 6, 400), "monetary_value": rng.gamma(2.0, 10.0, 400),
                        "cohort": rng.choice(["A", "B", "C"], 400)})  # fmt: skip
    check = independence_check(rfm, "cohort")
    tab = independence_table(check, "cohort")
    assert list(tab.columns) == ["cohort", "repeat customers", "Pearson r", "95% CI", "Spearman \u03c1"]
    assert tab["repeat customers"].tolist() == check["n"].tolist()
    row = check.iloc[0]
    want = f"{row['pearson_r']:+.2f}".replace("-", "\u2212")
    assert tab["Pearson r"].iloc[0] == want
    assert re.fullmatch(r"[+\u2212]\d\.\d\d \u2013 [+\u2212]\d\.\d\d", tab["95% CI"].iloc[0])
    # a segment too small for a correlation shows a dash, not "nan"
    tiny = independence_table(independence_check(rfm.iloc[:3].assign(frequency=1), "cohort"), "cohort")
    assert (tiny["Pearson r"] == "–").all() and (tiny["95% CI"] == "–").all()
