"""The run report: a static HTML page with headline cards, diagnostics badges, tables and figures.

API (what a pipeline calls)::

    from clvlab.report import Badge, Headline, Report

    rep = Report(title="clvlab run: cdnow", directory=Path("reports/cdnow"))
    rep.set_headline([Headline("Customers", "23,570", detail="calibration to 1997-09-30"), ...])
    rep.add_badge(Badge("BG/NBD sampler", "pass", "max R-hat 1.002, min ESS 2,595, 0 divergences"))
    rep.add_text(section, text)          # paragraphs (escaped)
    rep.add_note(section, text)          # a short highlighted note
    rep.add_table(section, df, caption="", max_rows=40, index=None, pivot=None)
    rep.add_figure(section, fig, name, caption="")   # name.png + name.svg, atomically; closes fig
    rep.add_code(section, text)          # preformatted, e.g. config YAML
    rep.set_footer(config_yaml, data_hash, versions, timings)
    rep.write()                          # -> directory / "index.html" (figures linked)
    rep.write(self_contained=True)       # -> directory / "report_standalone.html" (PNGs embedded);
                                         #    index.html is written too

Tables are formatted for people by :func:`format_table` (thousands separators, ~4
significant digits, dates, "–" for missing, numeric columns right-aligned, optional pivot);
:func:`describe_table` makes a ``describe()`` readable; :func:`format_number` and
:func:`format_compact` format headline values. :func:`save_figure` saves a figure without a
report.
"""

from clvlab.report.html import STANDALONE_NAME, Badge, Headline, Report, save_figure
from clvlab.report.tables import (
    MISSING,
    describe_table,
    format_compact,
    format_number,
    format_table,
    format_value,
    markdown_table,
    pivot_table,
)

__all__ = [
    "MISSING",
    "STANDALONE_NAME",
    "Badge",
    "Headline",
    "Report",
    "describe_table",
    "format_compact",
    "format_number",
    "format_table",
    "markdown_table",
    "format_value",
    "pivot_table",
    "save_figure",
]
