# Two entry points for a fresh machine: `make demo` and `make test`. Each installs what it needs
# into .venv first (Python 3.11+ and pip are all it assumes).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-quick lint bench chaos soak

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

# The reliability suite alone (part of `make test`), at CI size; docs/RELIABILITY.md has the
# figures. CHAOS_SCALE=1 is the documented full run (50,000 tasks, a 10-minute soak).
CHAOS_SCALE ?= 0.1
chaos: $(VENV)/.installed
	./scripts/ensure-test-services.sh
	CONVEYOR_CHAOS_SCALE=$(CHAOS_SCALE) $(BIN)/pytest tests/chaos -p no:randomly -s

# The long soak only, outside CI: SOAK_SECONDS=3600 for an hour.
SOAK_SECONDS ?= 600
soak: $(VENV)/.installed
	./scripts/ensure-test-services.sh
	CONVEYOR_CHAOS_SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/pytest tests/chaos/test_soak.py -p no:randomly -s
