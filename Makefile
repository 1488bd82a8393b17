# clvlab — two commands on a fresh machine: `make run` and `make test`.
# The environment is .venv, built with uv from uv.lock, on a Python >= 3.12 found here.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
UV        := $(VENV)/bin/uv
STAMP     := $(VENV)/.synced
CONFIG    ?= models/configs/cdnow.yaml
PYTEST_ARGS ?=

.PHONY: help env run test lint format bench notebooks lab lock clean

help:
	@echo "make run      create .venv (Python >= 3.12, locked deps) and run the main CDNOW job"
	@echo "make test     create .venv, check lint and format (ruff), run the test suite"
	@echo "make format   apply ruff's fixes and formatting"
	@echo "make bench    benchmarks (speed/memory ratios against lifetimes / pymc-marketing)"
	@echo "make notebooks  execute every notebook (full mode) and refresh the .ipynb"
	@echo "make lab      JupyterLab on the project's environment (notebooks/)"
	@echo "make lock     re-resolve uv.lock after editing pyproject.toml"

# Find a Python >= 3.12: PATH first, then pyenv's versions, then `uv python find`.
$(VENV)/bin/python:
	@set -e; py=$$(bash scripts/find_python.sh) || { \
	  echo "error: clvlab needs Python >= 3.12. Install one (e.g. 'pyenv install 3.12'," >&2; \
	  echo "       'uv python install 3.12') or put it on PATH, then re-run make." >&2; exit 1; }; \
	echo "using $$py ($$($$py -V))"; \
	$$py -m venv $(VENV)

$(STAMP): $(VENV)/bin/python pyproject.toml uv.lock
	@set -e; [ -x $(UV) ] || $(PY) -m pip install --quiet --disable-pip-version-check uv; \
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --all-extras --python $(PY) --quiet; \
	touch $(STAMP)

env: $(STAMP)

run: env
	$(VENV)/bin/clvlab run --config $(CONFIG)

# Lint and format checks first (seconds; settings in pyproject.toml [tool.ruff]); `make format` fixes.
lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: env
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: env lint
	@set -o pipefail; $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench: env
	$(PY) benchmarks/run_all.py

notebooks: env
	$(PY) -m clvlab.notebooks --all

# The venv's own jupyter: its python3 kernel is the project's interpreter.
lab: env
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

lock: $(VENV)/bin/python
	@[ -x $(UV) ] || $(PY) -m pip install --quiet uv
	$(UV) lock --python $(PY)

clean:
	rm -rf $(VENV) .pytest_cache
