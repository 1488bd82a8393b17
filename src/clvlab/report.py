"""Writing a run's figures (PNG + SVG) and an HTML report that links them with the tables."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from .io import atomic_path, write_text


def save_figure(fig, directory: str | Path, name: str, *, dpi: int = 130) -> list[Path]:
    """Save ``fig`` as ``name.png`` and ``name.svg`` in ``directory`` (atomically) and close it."""
    directory = Path(directory)
    paths = []
    for ext in ("png", "svg"):
        path = directory / f"{name}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


@dataclass
class Report:
    """Accumulates sections (text, tables, figures) of a run and renders one HTML page."""

    title: str
    directory: Path
    sections: list[tuple[str, list[str]]] = field(default_factory=list)

    def section(self, heading: str) -> list[str]:
        parts: list[str] = []
        self.sections.append((heading, parts))
        return parts

    def add_text(self, heading: str, text: str) -> None:
        self._parts(heading).append(f"<pre>{html.escape(text)}</pre>")

    def add_table(self, heading: str, df: pd.DataFrame, *, caption: str = "", max_rows: int = 40) -> None:
        shown = df.head(max_rows)
        table = shown.to_html(float_format=lambda v: f"{v:,.4g}", border=0, classes="tbl")
        more = f"<p><i>{len(df) - max_rows:,} more rows in the run folder</i></p>" if len(df) > max_rows else ""
        cap = f"<p>{html.escape(caption)}</p>" if caption else ""
        self._parts(heading).append(cap + table + more)

    def add_figure(self, heading: str, fig, name: str, *, caption: str = "") -> None:
        save_figure(fig, self.directory, name)
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._parts(heading).append(f'<figure><img src="{name}.png" alt="{name}">{cap}</figure>')

    def _parts(self, heading: str) -> list[str]:
        for h, parts in self.sections:
            if h == heading:
                return parts
        return self.section(heading)

    def write(self) -> Path:
        body = "\n".join(f"<h2>{html.escape(h)}</h2>\n" + "\n".join(parts) for h, parts in self.sections)
        page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} img{{max-width:100%}}
.tbl{{border-collapse:collapse;font-size:0.85em}} .tbl td,.tbl th{{padding:2px 8px;border-bottom:1px solid #ddd}}
pre{{background:#f6f6f6;padding:0.6em}}</style></head>
<body><h1>{html.escape(self.title)}</h1>
{body}
</body></html>
"""
        return write_text(self.directory / "index.html", page)
