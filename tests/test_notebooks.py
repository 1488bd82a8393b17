"""Every notebook runs end to end in quick mode, and its .ipynb pair matches the jupytext source."""

from __future__ import annotations

import json

import pytest

from clvlab.notebooks import NOTEBOOK_DIR, execute, sources, to_notebook

NOTEBOOKS = sources()


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks/NN_*.py in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_ipynb_pair_in_sync(source):
    pair = source.with_suffix(".ipynb")
    assert pair.exists(), f"{pair.name} missing: run `python -m clvlab.notebooks --sync-only {source}`"
    stored = [("".join(c["source"]) if isinstance(c["source"], list) else c["source"], c["cell_type"])
              for c in json.loads(pair.read_text())["cells"]]
    expected = [(c.source, c.cell_type) for c in to_notebook(source).cells]
    assert stored == expected, f"{pair.name} is out of date with {source.name}: re-run `make notebooks`"


@pytest.mark.slow
@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(source, tmp_path):
    out = execute(source, tmp_path / source.with_suffix(".ipynb").name, quick=True)
    nb = json.loads(out.read_text())
    errors = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    # quick mode samples clean: no ConvergenceWarning (divergences, R-hat >= 1.01, low ESS) in any output
    text = "".join(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])
                   for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))  # fmt: skip
    assert "sampler diagnostics" not in text and "ConvergenceWarning" not in text, text[-2000:]
    # papermill injected quick=True after the parameters cell
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "quick = True" in "".join(injected[0]["source"])
