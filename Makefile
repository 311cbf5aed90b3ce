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

# The whole suite, slow (real-process crash) tests included. CI runs exactly this. The tests
# start a private redis-server and create a fresh PostgreSQL database per session; the script
# installs or starts what is missing for that.
test: lint
	./scripts/ensure-test-services.sh
	$(BIN)/pytest

# The inner loop: everything but the slow suites.
test-quick: $(VENV)/.installed
	./scripts/ensure-test-services.sh
	$(BIN)/pytest -m "not slow"

bench: $(VENV)/.installed
	$(BIN)/conveyor bench
