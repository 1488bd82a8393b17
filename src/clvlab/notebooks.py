"""Notebook tooling: the jupytext ``.py`` (percent format) is the reviewed source, the
``.ipynb`` its pair. ``sync`` rebuilds the pair; ``execute`` runs a notebook with papermill,
in quick mode for CI (the notebook's ``parameters`` cell has ``quick``).

    python -m clvlab.notebooks --all            # sync + execute every notebook (full mode)
    python -m clvlab.notebooks --all --quick    # what CI does, outputs into a temp folder
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"


def sources(directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """The jupytext sources, ``notebooks/NN_*.py``, in order."""
    return sorted(p for p in directory.glob("[0-9][0-9]_*.py"))


def to_notebook(source: Path):
    import jupytext

    nb = jupytext.read(source)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    return nb


def sync(source: Path) -> Path:
    """Write ``source``'s paired ``.ipynb`` (no outputs) atomically and return its path."""
    import jupytext

    from .io import atomic_path

    target = source.with_suffix(".ipynb")
    with atomic_path(target) as tmp:
        tmp.write_text(jupytext.writes(to_notebook(source), fmt="ipynb"))
    return target


def execute(source: Path, output: Path, *, quick: bool, cwd: Path | None = None, timeout: int = 1200,
            parameters: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """Execute the notebook made from ``source`` with papermill; ``quick`` and any other
    ``parameters`` (e.g. ``config``, the run config's path) are passed as parameters."""
    import jupytext
    import papermill

    from .io import atomic_path

    with tempfile.TemporaryDirectory() as tmp:
        unexecuted = Path(tmp) / source.with_suffix(".ipynb").name
        jupytext.write(to_notebook(source), unexecuted, fmt="ipynb")
        executed = Path(tmp) / "executed.ipynb"
        papermill.execute_notebook(
            str(unexecuted),
            str(executed),
            parameters={**({"quick": True} if quick else {}), **(parameters or {})},  # full: as written
            cwd=str(cwd or source.parent),
            kernel_name="python3",
            execution_timeout=timeout,
            progress_bar=False,
        )
        with atomic_path(output) as final:
            final.write_bytes(executed.read_bytes())
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clvlab.notebooks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help="notebook sources (default with --all: every notebooks/NN_*.py)")
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--quick", action="store_true", help="quick mode; executed copies go to a temp folder")
    parser.add_argument("--sync-only", action="store_true", help="only rebuild the .ipynb pairs")
    args = parser.parse_args(argv)
    paths = sources() if args.all or not args.names else [Path(n) for n in args.names]
    for src in paths:
        target = sync(src)
        print(f"synced {target}")
        if args.sync_only:
            continue
        out = Path(tempfile.mkdtemp()) / target.name if args.quick else target
        execute(src, out, quick=args.quick)
        print(f"executed {src.name} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
