"""The README's ten-line CDNOW example runs as written, and runs clean on seeds 1-3."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from clvlab.errors import ConvergenceWarning
from clvlab.models.diagnostics import ESS_MIN, RHAT_MAX

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    return blocks[0]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_readme_example_runs_clean(capsys, seed):
    """No sampler warning: 0 divergences, max R-hat < 1.01, min ESS >= 400 (measured margin: README)."""
    example = _example()
    assert len([line for line in example.splitlines() if line.strip()]) <= 10
    assert "seed=1" in example
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        exec(compile(example.replace("seed=1", f"seed={seed}"), "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "champions" in out and "max_r_hat" in out
    c = namespace["model"].convergence_
    assert c["divergences"] == 0 and c["max_r_hat"] < RHAT_MAX and c["min_ess_bulk"] >= ESS_MIN, c
