"""Every notebook runs end to end in quick mode, and its .ipynb pair matches the jupytext source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clvlab.notebooks import NOTEBOOK_DIR, execute, sources, to_notebook

NOTEBOOKS = sources()


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks/NN_*.py in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_ipynb_pair_in_sync(source):
    pair = source.with_suffix(".ipynb")
    assert pair.exists(), f"{pair.name} missing: run `python -m clvlab.notebooks --sync-only {source}`"
    stored = [
        ("".join(c["source"]) if isinstance(c["source"], list) else c["source"], c["cell_type"])
        for c in json.loads(pair.read_text())["cells"]
    ]
    expected = [(c.source, c.cell_type) for c in to_notebook(source).cells]
    assert stored == expected, f"{pair.name} is out of date with {source.name}: re-run `make notebooks`"


def _with_outputs(source, root):  # type: ignore[no-untyped-def]
    """The notebook's own config, its outputs moved under ``root``."""
    import re

    rel = re.search(r'^config = "([^"]+)"', source.read_text(), re.M).group(1)
    text = (source.parents[1] / rel).read_text()
    text = text.replace("runs_dir: models/runs", f"runs_dir: {root}/runs").replace(
        "reports_dir: reports", f"reports_dir: {root}/reports"
    )
    assert str(root) in text, f"{rel}'s outputs section changed: update this helper"
    out = root / Path(rel).name
    out.write_text(text)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(source, tmp_path, quick_run):
    # a CDNOW notebook runs on the quick run's config (outputs in its temporary folder), reusing its
    # cached fits; another writes its runs next to it
    cdnow = 'config = "models/configs/cdnow.yaml"' in source.read_text()
    cfg = quick_run[2] if cdnow else _with_outputs(source, quick_run[2].parent)
    out = execute(source, tmp_path / source.with_suffix(".ipynb").name, quick=True, parameters={"config": str(cfg)})
    nb = json.loads(out.read_text())
    errors = [
        o
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    # quick mode samples clean: no ConvergenceWarning (divergences, R-hat >= 1.01, low ESS) in any output
    text = "".join(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])
                   for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))  # fmt: skip
    assert "sampler diagnostics" not in text and "ConvergenceWarning" not in text, text[-2000:]
    # papermill injected quick=True after the parameters cell
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "quick = True" in "".join(injected[0]["source"])
    assert str(cfg) in "".join(injected[0]["source"])
