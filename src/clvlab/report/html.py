"""The run report: one static HTML page (no JavaScript, no external resources) plus its figures."""

from __future__ import annotations

import base64
import datetime as _dt
import re
import struct
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from markupsafe import Markup

from clvlab import __version__
from clvlab.io import atomic_path, write_text
from clvlab.report.tables import TEMPLATES, format_table  # one template environment

__all__ = ["STANDALONE_NAME", "Badge", "Headline", "Report", "save_figure"]

STANDALONE_NAME = "report_standalone.html"
"""File name of the self-contained variant written by ``Report.write(self_contained=True)``."""

_STATUS = {"pass": "\u2713", "warn": "!", "fail": "\u2715"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def save_figure(fig: Any, directory: str | Path, name: str, *, dpi: int = 130) -> list[Path]:
    """Save ``fig`` as ``name.png`` and ``name.svg`` in ``directory`` (atomically) and close it.

    Parameters
    ----------
    fig : matplotlib Figure
    directory : path
        Created if missing.
    name : str
        File stem (letters, digits, ``_``, ``-``, ``.``).
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    list of Path
        ``[png, svg]``. Each file is written to a temporary name and renamed, so a reader
        never sees half a figure. Saved under the clvlab style (:func:`clvlab.plots.use_style`).
    """
    import matplotlib.pyplot as plt

    from clvlab.plots import use_style

    if not _NAME_RE.match(name):
        raise ValueError(f"figure name {name!r}: use letters, digits, '_', '-' and '.' only")
    directory = Path(directory)
    paths = []
    try:
        with use_style():
            for ext in ("png", "svg"):
                path = directory / f"{name}.{ext}"
                with atomic_path(path) as tmp:
                    fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight")
                paths.append(path)
    finally:
        plt.close(fig)
    return paths


@dataclass(frozen=True)
class Headline:
    """A headline number (KPI card) on the first screen of the report.

    Parameters
    ----------
    label : str
        What it is, e.g. ``"Customers"`` or ``"Total CLV, 12 months"``.
    value : str
        The number as people read it, e.g. ``"23,570"`` or ``"$1.23M"`` (see
        :func:`clvlab.report.format_number`, :func:`clvlab.report.format_compact`).
    detail : str
        A short qualifier under it, e.g. ``"calibration to 1997-09-30"``.
    interval : str
        Its uncertainty, e.g. ``"94% HDI $1.18M – $1.29M"`` (shown between value and detail).
    """

    label: str
    value: str
    detail: str = ""
    interval: str = ""


@dataclass(frozen=True)
class Badge:
    """A diagnostics check shown as a coloured badge on the first screen.

    Parameters
    ----------
    name : str
        The check, e.g. ``"BG/NBD sampler"``.
    status : {"pass", "warn", "fail"}
        Shown by colour *and* by a word and symbol (readable in black-and-white print).
    detail : str
        The evidence, e.g. ``"max R-hat 1.002 (r[3]), min ESS 2,595, 0 divergences"``.
    """

    name: str
    status: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.status not in _STATUS:
            raise ValueError(f"Badge status {self.status!r}: expected one of {sorted(_STATUS)}")


@dataclass
class _Section:
    heading: str
    id: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


def _slug(text: str, taken: set[str]) -> str:
    base = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-") or "section"
    if base[0].isdigit():
        base = "s-" + base
    slug, i = base, 2
    while slug in taken:
        slug, i = f"{base}-{i}", i + 1
    taken.add(slug)
    return slug


def _png_size(path: Path) -> tuple[int, int] | None:
    with open(path, "rb") as fh:
        head = fh.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", head[16:24])


def _looks_preformatted(text: str) -> bool:
    """Aligned columns or indentation (e.g. ``str(validation_report)``): keep it as <pre>."""
    return any(re.search(r"\S {2,}\S", line) or line.startswith(("  ", "\t")) for line in text.splitlines())


class Report:
    """A run report: headline cards, diagnostics badges, sections of text / tables / figures, a footer.

    Parameters
    ----------
    title : str
        Page title, e.g. ``"clvlab run: cdnow"``.
    directory : path
        Where ``index.html`` and the figures (PNG + SVG) go; created when needed.
    subtitle : str
        A line under the title (e.g. the data set and the calibration period).

    Notes
    -----
    Sections appear in the order they are first used. The page is static HTML with inline
    CSS, no JavaScript and no external resources (system fonts), so it reads offline, in an
    e-mail attachment and in print. Everything passed as text is HTML-escaped.

    Examples
    --------
    >>> rep = Report(title="clvlab run: cdnow", directory=Path("reports/cdnow"))  # doctest: +SKIP
    >>> rep.set_headline([Headline("Customers", "23,570", detail="calibration to 1997-09-30")])  # doctest: +SKIP
    >>> rep.add_badge(Badge("BG/NBD sampler", "pass", "max R-hat 1.002"))  # doctest: +SKIP
    >>> rep.add_table("RFM", describe_table(rfm), caption="RFM summary")  # doctest: +SKIP
    >>> rep.add_figure("RFM", fig, "rfm_segments", caption="RFM-score segments")  # doctest: +SKIP
    >>> rep.write(self_contained=True)  # doctest: +SKIP
    PosixPath('reports/cdnow/report_standalone.html')
    """

    def __init__(self, title: str, directory: str | Path, *, subtitle: str = "") -> None:
        self.title = title
        self.directory = Path(directory)
        self.subtitle = subtitle
        self.headline: list[Headline] = []
        self.badges: list[Badge] = []
        self._sections: list[_Section] = []
        self._ids: set[str] = {"run-details"}
        self._footer: dict[str, Any] | None = None
        self._figure_names: set[str] = set()

    def __repr__(self) -> str:
        return f"Report(title={self.title!r}, directory={str(self.directory)!r}, sections={self.section_names})"

    # ------------------------------------------------------------------ structure
    @property
    def section_names(self) -> list[str]:
        """Section headings in page order."""
        return [s.heading for s in self._sections]

    def section(self, heading: str) -> list[dict[str, Any]]:
        """The blocks of section ``heading``, creating the section (at the end) on first use."""
        for s in self._sections:
            if s.heading == heading:
                return s.blocks
        s = _Section(heading, _slug(heading, self._ids))
        self._sections.append(s)
        return s.blocks

    # ------------------------------------------------------------------ first screen
    def set_headline(self, items: Sequence[Headline]) -> None:
        """Set the headline cards (replaces earlier ones); shown first, in this order.

        Parameters
        ----------
        items : sequence of Headline
            Four to six cards read best.
        """
        items = list(items)
        bad = [type(h).__name__ for h in items if not isinstance(h, Headline)]
        if bad:
            raise TypeError(f"set_headline expects Headline items, got {bad}")
        self.headline = items

    def add_badge(self, badge: Badge) -> None:
        """Add a diagnostics badge (shown under the headline cards, in the order added).

        Parameters
        ----------
        badge : Badge
        """
        if not isinstance(badge, Badge):
            raise TypeError(f"add_badge expects a Badge, got {type(badge).__name__}")
        self.badges.append(badge)

    # ------------------------------------------------------------------ content
    def add_text(self, section: str, text: str) -> None:
        """Add a paragraph of text (escaped) to ``section``.

        Parameters
        ----------
        section : str
            Section heading (created on first use).
        text : str
            Blank lines separate paragraphs; single newlines are line breaks. Text that
            looks preformatted (aligned columns or indented lines, e.g. a ``str()`` of a
            report object) is shown as code instead, so older callers stay readable.
        """
        if _looks_preformatted(text):
            self.add_code(section, text)
            return
        paras = [p.strip("\n").split("\n") for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
        self.section(section).append({"kind": "text", "paragraphs": paras})

    def add_note(self, section: str, text: str, *, tone: str = "info") -> None:
        """Add a short highlighted note (escaped) to ``section``.

        Parameters
        ----------
        section : str
        text : str
        tone : {"info", "warn"}
            Blue (default) or amber.
        """
        if tone not in ("info", "warn"):
            raise ValueError(f"tone={tone!r}: expected 'info' or 'warn'")
        self.section(section).append({"kind": "note", "text": text, "tone": "warn" if tone == "warn" else ""})

    def add_code(self, section: str, text: str) -> None:
        """Add preformatted text (escaped), e.g. the config YAML, to ``section``."""
        self.section(section).append({"kind": "code", "text": text.rstrip("\n")})

    def add_table(
        self,
        section: str,
        df: pd.DataFrame | pd.Series,
        *,
        caption: str = "",
        max_rows: int = 40,
        index: bool | None = None,
        pivot: Sequence[str] | None = None,
    ) -> None:
        """Add a table formatted for people (see :func:`clvlab.report.format_table`).

        Parameters
        ----------
        section : str
            Section heading (created on first use).
        df : DataFrame or Series
        caption : str
            Shown above the table.
        max_rows : int
            Rows shown; the rest are counted ("Showing 40 of 8,685 rows").
        index : bool, optional
            None (default): show the index as the first column only when it means
            something (named, or labels such as after a pivot or ``describe().T``); a
            positional integer index is dropped. True / False: always / never.
        pivot : (row, column, value), optional
            Reshape a tidy long table first: e.g. ``("segment", "parameter", "mean")``
            turns a posterior summary (columns parameter, segment, mean, sd, ...) into a
            segment x parameter table of means; rows without a segment (population
            parameters) are labelled ``(population)``. See :func:`clvlab.report.pivot_table`.
        """
        html = format_table(df, caption=caption, max_rows=max_rows, index=index, pivot=pivot)
        self.section(section).append({"kind": "table", "html": html})

    def add_figure(self, section: str, fig: Any, name: str, *, caption: str = "", alt: str | None = None) -> list[Path]:
        """Save ``fig`` as ``name.png`` + ``name.svg`` (atomically, then close it) and show it in ``section``.

        Parameters
        ----------
        section : str
        fig : matplotlib Figure
        name : str
            File stem, unique within the report (letters, digits, ``_``, ``-``, ``.``).
        caption : str
            Shown under the figure.
        alt : str, optional
            Alternative text; default the caption, else the name.

        Returns
        -------
        list of Path
            The PNG and SVG paths.
        """
        if name in self._figure_names:
            raise ValueError(f"figure name {name!r} used twice in the report")
        paths = save_figure(fig, self.directory, name)
        self._figure_names.add(name)
        size = _png_size(paths[0])
        # shown at 100 px per inch of the 130-dpi PNG (crisp on high-density screens), at most the page width
        width, height = (round(size[0] / 1.3), round(size[1] / 1.3)) if size else (None, None)
        self.section(section).append(
            {
                "kind": "figure",
                "name": name,
                "png": paths[0],
                "caption": caption,
                "alt": alt or caption or name,
                "width": width,
                "height": height,
            }
        )
        return paths

    def set_footer(
        self,
        config_yaml: str = "",
        data_hash: str = "",
        versions: Mapping[str, str] | None = None,
        timings: Mapping[str, float] | None = None,
    ) -> None:
        """Set the "Run details" footer: config, data hash, package versions and stage timings.

        Parameters
        ----------
        config_yaml : str
            The run's configuration, shown as code.
        data_hash : str
            Hash of the input data.
        versions : mapping of str to str
            Package -> version (a two-column table).
        timings : mapping of str to float
            Stage -> seconds, in stage order; a ``"total"`` entry is shown last. Shown as a
            table with the share of the total.
        """
        self._footer = {
            "config": config_yaml or "",
            "data_hash": data_hash or "",
            "versions": dict(versions or {}),
            "timings": dict(timings or {}),
        }

    # ------------------------------------------------------------------ output
    def _footer_context(self) -> dict[str, Any] | None:
        if self._footer is None:
            return None
        f = self._footer
        timings_html = versions_html = Markup("")
        if f["timings"]:
            t = dict(f["timings"])
            total = t.pop("total", None)
            denom = total if total else sum(t.values())
            rows = [(k, float(v), float(v) / denom if denom else float("nan")) for k, v in t.items()]
            if total is not None:
                rows.append(("total", float(total), 1.0))
            df = pd.DataFrame(rows, columns=["stage", "seconds", "share"])
            timings_html = format_table(
                df,
                caption="Stage timings",
                max_rows=None,
                formats={"seconds": lambda v: f"{v:,.1f}", "share": lambda v: f"{v:.0%}"},
            )
        if f["versions"]:
            df = pd.DataFrame(
                sorted(f["versions"].items(), key=lambda kv: kv[0].lower()), columns=["package", "version"]
            )
            versions_html = format_table(df, caption="Package versions", max_rows=None)
        return {
            "id": "run-details",
            "config": f["config"].rstrip("\n"),
            "data_hash": f["data_hash"],
            "timings": timings_html,
            "versions": versions_html,
        }

    def render(self, *, self_contained: bool = False) -> str:
        """The page as a string (figures linked by file name, or embedded as data URIs)."""
        sections = []
        for s in self._sections:
            blocks = []
            for b in s.blocks:
                if b["kind"] == "figure":
                    b = dict(b)
                    if self_contained:
                        data = base64.b64encode(Path(b["png"]).read_bytes()).decode("ascii")
                        b["src"] = "data:image/png;base64," + data
                    else:
                        b["src"] = f"{b['name']}.png"
                blocks.append(b)
            sections.append({"heading": s.heading, "id": s.id, "blocks": blocks})
        footer = self._footer_context()
        toc = [{"heading": s["heading"], "id": s["id"]} for s in sections]
        if footer is not None:
            toc.append({"heading": "Run details", "id": footer["id"]})
        badges = [
            {"name": b.name, "status": b.status, "detail": b.detail, "symbol": _STATUS[b.status]} for b in self.badges
        ]
        return TEMPLATES.get_template("report.html.j2").render(
            title=self.title,
            subtitle=self.subtitle,
            headline=self.headline,
            badges=badges,
            toc=toc,
            sections=sections,
            footer=footer,
            self_contained=self_contained,
            version=__version__,
            generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        )

    def write(self, self_contained: bool = False) -> Path:
        """Write the report into ``directory`` (atomically).

        Parameters
        ----------
        self_contained : bool
            False: write ``index.html``, which links the figure files next to it.
            True: also write ``report_standalone.html`` with every PNG embedded as a
            base64 data URI (one file to e-mail or archive; no links to the SVGs).

        Returns
        -------
        Path
            ``index.html``, or ``report_standalone.html`` when ``self_contained`` is True
            (``index.html`` is written in both cases).
        """
        index = write_text(self.directory / "index.html", self.render(self_contained=False))
        if not self_contained:
            return index
        return write_text(self.directory / STANDALONE_NAME, self.render(self_contained=True))
