"""Set-up contract: environment.yml and pyproject.toml name the same runtime dependencies,
the Makefile finds a Python >= 3.12, and CI calls the README's test command."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI names.
CONDA_TO_PYPI = {"python-duckdb": "duckdb"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = {_name(r) for r in pyproject["project"]["dependencies"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = set()
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            name = _name(dep)
            if name not in {"python", "pip"}:
                conda.add(CONDA_TO_PYPI.get(name, name))
    assert conda == runtime, f"only in environment.yml: {conda - runtime}; only in pyproject: {runtime - conda}"
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert python == "python=3.12"


def test_oracles_are_dev_only():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = {_name(r) for r in pyproject["project"]["dependencies"]}
    dev = {_name(r) for r in pyproject["dependency-groups"]["dev"]}
    assert {"lifetimes", "pymc-marketing"} <= dev
    assert not {"lifetimes", "pymc-marketing"} & runtime
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "src").rglob("*.py")
        if re.search(r"^\s*(import|from)\s+(lifetimes|pymc_marketing)\b", p.read_text(), re.M)
    ]
    assert not offenders


def test_find_python_returns_312_or_newer():
    out = subprocess.run(["bash", str(ROOT / "scripts/find_python.sh")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    version = subprocess.run(
        [out.stdout.strip(), "-c", "import sys; print(sys.version_info[:2] >= (3, 12))"], capture_output=True, text=True
    )
    assert version.stdout.strip() == "True"


def test_find_python_fails_clearly_without_candidates(tmp_path):
    # An empty PATH and no pyenv/uv: the script must exit non-zero (the Makefile prints the message).
    out = subprocess.run(
        ["/bin/bash", str(ROOT / "scripts/find_python.sh")], capture_output=True, text=True, env={"PATH": str(tmp_path)}
    )
    assert out.returncode == 1 and out.stdout == ""


def test_ci_calls_readme_test_command():
    assert "make test" in (ROOT / ".ci/run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme


def test_running_interpreter_is_312_or_newer():
    assert sys.version_info >= (3, 12)
