# Everything bootstraps itself from a fresh clone: a .venv with the package and its dev extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint docs run bench clean venv browser promtool

# The editable install also compiles the C extensions in place (setup.py): the book's core
# and the WebSocket add_order frame. Editing any of their C files or the book's header
# re-runs it, so `make test` never tests a stale build.
BOOKCORE_SRC := $(wildcard bot/market/_bookcore*.c bot/market/_bookcore.h)
WSFRAME_SRC := bot/execution/_wsframe.c
$(STAMP): pyproject.toml setup.py $(BOOKCORE_SRC) $(WSFRAME_SRC)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The browser tier (tests/browser) drives Debian's chromium package; Playwright (a dev
# extra) never downloads a browser of its own. Installs chromium when it is missing (as
# root, or with sudo); elsewhere the tier skips with the reason.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@if [ -x "$(CHROMIUM)" ]; then echo "chromium: $$($(CHROMIUM) --version 2>/dev/null)"; \
	else $(SUDO) apt-get update -qq \
	  && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi

# promtool checks deploy/grafana's alert rules, runs their unit tests and parses the Grafana
# dashboard's queries (tests/unit/service/test_deploy.py; without it those tests skip).
# It comes with Debian's prometheus package, which also brings the server: on a machine
# with systemd, `systemctl disable --now prometheus` if you do not want one running.
promtool:
	@if command -v promtool >/dev/null; then promtool --version 2>&1 | head -1; \
	else $(SUDO) apt-get update -qq \
	  && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	       --no-install-recommends prometheus; fi

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check bot strategies tests bench docs/_hooks
	$(BIN)/ruff format --check bot strategies tests bench docs/_hooks
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layers contract: [tool.importlinter] in pyproject.toml
	$(BIN)/hadolint Dockerfile

# The documentation site (mkdocs.yml): --strict turns every warning into a failure, so a broken
# link or anchor, a nav entry without its page, or a page left out of the nav fails the build.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

run: $(STAMP)
	$(BIN)/krakenbot run

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/krakenbot bench all

clean:
	rm -rf $(VENV) site .mypy_cache .ruff_cache .pytest_cache .import_linter_cache .grimp_cache
