# regsandbox: the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup system engine base-image chat-image platform-image demo demo-chat test test-chat-slow test-k8s test-unit test-reliability lint clean bench

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

# The SmolLM2 chat candidate's image, offline. llama-cpp-python is built from source the first
# time (about 12 minutes on 2 cores) and cached under ~/.cache/regsandbox/wheels; after that the
# image builds in about 25 s, and not at all while its inputs are unchanged.
chat-image: base-image setup
	@PYTHON=$(BIN)/python bash scripts/build-smollm2-image.sh

# The image the Helm chart runs (deploy/Dockerfile.platform), built offline (helm/README.md).
platform-image: engine setup
	PYTHON=$(BIN)/python bash scripts/build-platform-image.sh

demo: system setup base-image
	$(BIN)/python -m examples.train_candidate
	$(BIN)/regsandbox trial run examples/trials/diabetes-risk.yaml

# The chat sample: a rule-based multilingual health assistant with some weaknesses switched on.
demo-chat: system setup base-image
	$(BIN)/python -m examples.build_health_assistant
	$(BIN)/regsandbox trial run examples/trials/health-assistant.yaml

# The reliability tier (faults injected into real components, fuzzing, load) is slower and has
# its own target; .ci/run runs both. docs/reliability.md lists what each test proves.
RELIABILITY := tests/faults tests/fuzz tests/load

# Tests that run a real language model (marker smollm2) are the slower target test-chat-slow;
# platform-image: tests/helm runs the chart's pods from it (built before pytest, so its first
# build, a few minutes, does not count against a test's time limit).
test: system setup base-image platform-image
	$(BIN)/python -m pytest -p no:cacheprovider -m "not smollm2" --ignore=tests/k8s $(foreach d,$(RELIABILITY),--ignore=$(d)) $(PYTEST_ARGS)

test-reliability: system setup base-image
	$(BIN)/python -m pytest -p no:cacheprovider -m "not smollm2" $(RELIABILITY) $(PYTEST_ARGS)

test-chat-slow: system setup chat-image
	$(BIN)/python -m pytest -p no:cacheprovider -m smollm2 $(PYTEST_ARGS)

# The kubernetes backend against a real control plane built here from Debian's kubernetes source
# (about 7 minutes the first time on 2 cores, cached under ~/.cache/regsandbox/k8s): start it,
# run tests/k8s, stop it whatever happened, then check the main engine's default bridge still works.
test-k8s: system setup base-image
	bash scripts/k8s-local.sh start || { bash scripts/k8s-local.sh stop; exit 1; }
	set -e; eval "$$(bash scripts/k8s-local.sh env)"; status=0; \
	  $(BIN)/python -m pytest -p no:cacheprovider tests/k8s $(PYTEST_ARGS) || status=$$?; \
	  bash scripts/k8s-local.sh stop; \
	  docker run --rm regsandbox/base:bookworm true || { echo "main engine's default bridge is broken" >&2; exit 1; }; \
	  exit $$status

test-unit: setup
	$(BIN)/python -m pytest -p no:cacheprovider tests/unit tests/api tests/portal tests/standard $(PYTEST_ARGS)

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
