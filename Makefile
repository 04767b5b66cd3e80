# QI workbooks for clinical microsystems. `make help` lists the targets.
# Everything installs into .venv from the pinned lock files, so the same versions run everywhere.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.DEFAULT_GOAL := help
.PHONY: help venv demo test lint format lab lock bench clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# uv installs the locked versions in seconds where pip takes minutes; pinned here.
UV_VERSION := 0.13.9
$(UV): | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# --compile-bytecode: every worker, kernel and `qi` process imports pandas, scipy and matplotlib;
# compiled once here, they start in half the time where Python may not write its own cache
# (PYTHONDONTWRITEBYTECODE, read-only installs).
$(STAMP_RUN): requirements.lock pyproject.toml | $(UV)
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	rm -f $(STAMP_DEV)
	touch $@

$(STAMP_DEV): requirements-dev.lock pyproject.toml | $(UV)
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-dev.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	rm -f $(STAMP_RUN)
	touch $@

venv: $(STAMP_RUN) ## Create .venv with the project and its pinned dependencies

demo: ## Generate the demo data, run all workbooks and publish the site
	@test -f $(STAMP_DEV) || $(MAKE) --no-print-directory $(STAMP_RUN)
	$(BIN)/qi run

test: $(STAMP_DEV) ## Install with the dev extra, then run ruff, deptry and pytest
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/deptry src
	$(BIN)/python -m pytest

lint: $(STAMP_DEV) ## Run ruff (lint and format check) and deptry (declared dependencies)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/deptry src

format: $(STAMP_DEV) ## Format the code with ruff
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

lab: $(STAMP_DEV) ## Start JupyterLab on the workbooks (demo data and workbook 01 run if missing)
	$(BIN)/qi lab -- $(LAB_ARGS)

lock: $(UV) ## Refresh the lock files from pyproject.toml (then sync environment.yml)
	$(UV) pip compile --quiet --python-version 3.11 pyproject.toml -o requirements.lock
	$(UV) pip compile --quiet --python-version 3.11 pyproject.toml --extra dev --extra cluster -o requirements-dev.lock
	$(BIN)/python -m qi_helpers.envfile requirements-dev.lock environment.yml

bench: $(STAMP_DEV) ## Run the benchmarks in benchmarks/
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean: ## Remove generated outputs and demo data (keeps .venv)
	rm -rf outputs/* data/demo
	touch outputs/.gitkeep
