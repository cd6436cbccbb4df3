# regsandbox: the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup system engine base-image demo test test-unit test-reliability lint clean bench

# Idempotent and fast when nothing changed: pip only runs when pyproject.toml is newer
# than the stamp left by the last install.
setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Debian packages beside Python (PDF rendering, fonts, firewall, browser for the report test).
system:
	@bash scripts/ensure-system-deps.sh

# A running Docker engine and the offline sandbox base image (see README, "Docker engine").
engine:
	@bash scripts/ensure-docker.sh

base-image: engine
	@bash scripts/build-base-image.sh

demo: system setup base-image
	$(BIN)/python -m examples.train_candidate
	$(BIN)/regsandbox trial run examples/trials/diabetes-risk.yaml

# The reliability tier (faults injected into real components, fuzzing, load) is slower and has
# its own target; .ci/run runs both. docs/reliability.md lists what each test proves.
RELIABILITY := tests/faults tests/fuzz tests/load

test: system setup base-image
	$(BIN)/python -m pytest -p no:cacheprovider $(foreach d,$(RELIABILITY),--ignore=$(d)) $(PYTEST_ARGS)

test-reliability: system setup base-image
	$(BIN)/python -m pytest -p no:cacheprovider $(RELIABILITY) $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/python -m pytest -p no:cacheprovider tests/unit tests/api tests/portal $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check orchestrator monitors flows
	$(BIN)/mypy

# Runs every bench/bench_*.py one after another and writes docs/benchmarks.md: one table of
# figures, each a ratio against a baseline measured in the same run (bench/summary.py).
bench: setup base-image
	$(BIN)/python bench/table.py --out docs/benchmarks.md $(BENCH_ARGS)

clean:
	-$(BIN)/regsandbox reap 2>/dev/null
	rm -rf .regsandbox build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
