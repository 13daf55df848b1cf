# Everything bootstraps itself from a fresh clone: a .venv with the package and its dev extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint run bench clean venv

# The editable install also compiles the book's C core in place (setup.py): editing the C
# source re-runs it, so `make test` never tests a stale build.
$(STAMP): pyproject.toml setup.py bot/market/_bookcore.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check bot strategies tests bench
	$(BIN)/ruff format --check bot strategies tests bench
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

run: $(STAMP)
	$(BIN)/krakenbot run

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/krakenbot bench all

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
