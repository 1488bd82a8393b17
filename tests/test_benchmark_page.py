"""benchmarks/RESULTS.md is generated from benchmarks/results/*.json, never edited by hand."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _results_md():
    spec = importlib.util.spec_from_file_location("results_md", BENCH / "results_md.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_results_page_is_the_rendering_of_the_committed_results():
    page = (BENCH / "RESULTS.md").read_text()
    assert _results_md().render() == page, "RESULTS.md differs from its JSON: run benchmarks/results_md.py"


def test_a_missing_run_is_said_to_be_missing():
    md = _results_md()
    lines = md.scale_section({"settings": {"chains": 4, "draws": 1000, "budget_s": 900.0},
                              "environment": {"cpus": 2, "machine": "x86_64", "python": "3.12"},
                              "sizes": {"10000": {"clvlab_nuts_partial": {"finished": False,
                                                                          "reason": "did not finish within the 900 s budget"}}}})  # fmt: skip
    text = "\n".join(lines)
    assert "did not finish within the 900 s budget" in text
    assert "not run" in text  # the baselines of that size were never started
    assert "Posterior CLV at each size: not measured in this run." in text
