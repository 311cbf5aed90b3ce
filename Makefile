# Two entry points for a fresh machine: `make demo` and `make test`. Each installs what it needs
# into .venv first (Python 3.11+ and pip are all it assumes).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-quick lint bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/conveyor demo

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests
	$(BIN)/mypy src

# The whole suite, slow (real-process crash) tests included. CI runs exactly this.
test: lint
	$(BIN)/pytest

# The inner loop: everything but the slow suites.
test-quick: $(VENV)/.installed
	$(BIN)/pytest -m "not slow"

bench: $(VENV)/.installed
	$(BIN)/conveyor bench
