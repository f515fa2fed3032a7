# mitigator: `make demo` runs the main job, `make test` runs the whole suite.
# Both install what they need: Debian packages, the project's own virtual environment (.venv,
# from the committed lock requirements/dev.lock) and the Go-built control plane. The machine's
# own Python is never installed into; `make test` checks that.
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
# The interpreter that creates .venv: python3 on PATH, leaving out .venv/bin that goes on it below.
BASE_PYTHON := $(shell PATH="$$(tr : '\n' <<<"$$PATH" | grep -vx '$(VENV)/bin' | paste -sd:)" \
  command -v python3)
PYTHON := $(VENV)/bin/python
LOCK := requirements/dev.lock
# Every recipe and the scripts/ they run use the environment's python3, pytest, lint-imports.
export PATH := $(VENV)/bin:$(PATH)
export PYTHON
export GOTOOLCHAIN := local
export PYTHONPATH := $(CURDIR)/operator:$(CURDIR)/tools:$(CURDIR)
CACHE := $(or $(MITIGATOR_CACHE),$(HOME)/.cache/mitigator)
PYTEST := $(PYTHON) -m pytest -p no:cacheprovider
# Reinstall when the lock or the project's metadata changes; removing .venv starts afresh.
VENV_STAMP := $(VENV)/.installed-$(shell cat $(LOCK) pyproject.toml | sha256sum | cut -c1-12)
PROGRESS := scripts/progress.sh

.PHONY: help deps debian venv lock build lint unit integration e2e test test-suite \
        test-existing-cluster bench cluster-up cluster-down demo demo-down clean clean-cache

help:
	@echo "make demo          local control plane + service + bad deploy, operator mitigates it"
	@echo "make test          lint, type-check and the whole test suite (installs what it needs)"
	@echo "make cluster-up    leave a local control plane running (prints export KUBECONFIG=...)"
	@echo "make cluster-down  stop it"
	@echo "make bench         benchmarks; figures go to docs/BENCHMARKS.md"
	@echo "make lock          refresh requirements/dev.lock (UPGRADE=1: newest allowed versions)"
	@echo "make clean-cache   remove .venv and the control plane's caches (see README)"

deps: debian venv

debian:
	@command -v prometheus >/dev/null && command -v prometheus-alertmanager >/dev/null || \
	  $(PROGRESS) "installing Debian packages prometheus, prometheus-alertmanager" 60 -- \
	    bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends prometheus prometheus-alertmanager >/dev/null'

# ---------------------------------------------------------------- the project's environment
# uv installs the lock (seconds, where pip took minutes) and refreshes it; it runs from a small
# environment of its own in the cache, itself installed from a hash-pinned requirements/uv.txt.
UV_ENV := $(CACHE)/tools/uv-$(shell grep -o '^uv==[^ ]*' requirements/uv.txt | cut -d= -f3)
UV := $(UV_ENV)/bin/uv
export UV_CACHE_DIR := $(CACHE)/uv
export UV_PYTHON_DOWNLOADS := never

# Order-only: the path names the version, so only a missing uv (or a new version) installs it.
$(UV): | requirements/uv.txt
	@$(BASE_PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "installing Debian package python3-venv (python3 -m venv needs it)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends python3-venv >/dev/null; }
	@rm -rf $(UV_ENV) && $(BASE_PYTHON) -m venv $(UV_ENV)
	@$(PROGRESS) "installing uv (the installer) into $(UV_ENV)" 20 -- \
	  $(UV_ENV)/bin/python -m pip install -q --disable-pip-version-check --require-hashes \
	    --no-deps -r requirements/uv.txt

venv: $(VENV_STAMP)
$(VENV_STAMP): $(LOCK) pyproject.toml | $(UV)
	@test -x $(PYTHON) || $(UV) venv --quiet --python $(BASE_PYTHON) $(VENV)
	@rm -f $(VENV)/.installed-*
	@# Exactly the lock: its versions and hashes, nothing resolved here, nothing else kept.
	@$(PROGRESS) "installing Python packages into .venv from $(LOCK)" 30 -- \
	  $(UV) pip sync --quiet --python $(PYTHON) --require-hashes $(LOCK)
	@# Then the project itself, editable, with the lock's setuptools (nothing fetched).
	@$(UV) pip install --quiet --python $(PYTHON) --no-deps --no-build-isolation -e .
	@# A dependency added to pyproject.toml but not to the lock: say so now, not as an
	@# ImportError in a test. (Offline, no cache: only what .venv holds may satisfy it.)
	@$(UV) pip install --dry-run --offline --no-cache --python $(PYTHON) --no-build-isolation \
	  -e '.[dev]' 2>&1 | grep -v -e '^ [-+] mitigator' | grep -e '^ + ' -e 'unsatisfiable' \
	  -e 'error' && { echo "$(LOCK) does not cover pyproject.toml: run make lock" >&2; \
	  exit 1; } || true
	@touch $@

# Keeps the pinned versions unless pyproject.toml asks otherwise; UPGRADE=1 takes the newest.
LOCK_FLAGS = --universal --python-version 3.11 --generate-hashes \
  --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade) --quiet
lock: $(UV)
	$(UV) pip compile pyproject.toml requirements/build.in --extra dev $(LOCK_FLAGS) -o $(LOCK)
	$(UV) pip compile requirements/uv.in $(LOCK_FLAGS) -o requirements/uv.txt
	@# The image's lock (Dockerfile): the runtime dependencies alone, at the dev lock's versions.
	$(UV) pip compile pyproject.toml -c $(LOCK) $(LOCK_FLAGS) -o requirements/runtime.txt

# ---------------------------------------------------------------- build, lint, tests
build: deps
	$(PYTHON) -m localkube build

lint: deps
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint Dockerfile

unit: deps
	$(PYTEST) tests/unit -q

integration: build
	$(PYTEST) tests/integration -q

e2e: build
	$(PYTEST) tests/e2e -q

# The whole suite, and proof that it left the machine's own Python as it found it.
test:
	@scripts/system-python-unchanged.sh $(MAKE) --no-print-directory test-suite

# The fault tier (tests/faults) kills and restarts its own control plane: it runs beside the
# rest of the suite (one control plane each), its output printed when both are done.
FAULTS_LOG := $(CACHE)/logs/faults.log
test-suite: build lint
	@mkdir -p $(dir $(FAULTS_LOG))
	@$(PYTEST) tests/faults -q --durations=5 >$(FAULTS_LOG) 2>&1 & faults=$$!; \
	  $(PYTEST) tests -q --durations=15 --ignore=tests/faults; suite=$$?; \
	  wait $$faults; faulted=$$?; \
	  echo "---------------- tests/faults (beside the rest) ----------------"; \
	  cat $(FAULTS_LOG); \
	  echo "suite exit $$suite, fault tier exit $$faulted"; \
	  test $$suite -eq 0 -a $$faulted -eq 0
	$(MAKE) --no-print-directory test-existing-cluster

# The suite against a cluster it did not start (as on kind): proves MITIGATOR_TEST_KUBECONFIG.
test-existing-cluster: build
	scripts/test-existing-cluster.sh

# Two lanes at once, each on a control plane of its own (about 14 minutes on 2 cores; one
# after the other they took 25): time to first action, scale and the bridge in one; the
# end-to-end scenarios, then the unrelated objects (whose 15,000 setup writes happen while
# its operator is stopped) in the other. Each figure carries the load average it was taken
# under, and the ratios are to baselines taken in the same lane at the same time.
BENCH_LANE2_LOG := $(CACHE)/logs/bench-lane2.log
bench: build
	rm -f $(CACHE)/bench-results.jsonl $(CACHE)/scenario-figures.jsonl
	@mkdir -p $(dir $(BENCH_LANE2_LOG))
	@# A failed measurement still leaves the others on the page (it says "not measured").
	@started=$$(date +%s); \
	( MITIGATOR_FIGURES_FILE=$(CACHE)/scenario-figures.jsonl $(PYTEST) \
	    tests/e2e/test_scenarios.py -q -k "not flapping"; \
	  MITIGATOR_BENCH_RESULTS=$(CACHE)/bench-results.jsonl $(PYTEST) \
	    benchmarks/test_7_unrelated.py -q -s ) > $(BENCH_LANE2_LOG) 2>&1 & lane2=$$!; \
	MITIGATOR_BENCH_RESULTS=$(CACHE)/bench-results.jsonl $(PYTEST) benchmarks/test_1_reaction.py \
	  benchmarks/test_4_scale.py benchmarks/test_8_bridge.py -q -s; \
	wait $$lane2; \
	echo "---------------- scenarios and unrelated objects (beside the rest) ----------------"; \
	cat $(BENCH_LANE2_LOG); \
	PYTHONPATH=operator:tools:. MITIGATOR_BENCH_RESULTS=$(CACHE)/bench-results.jsonl $(PYTHON) -c "import sys; \
	  from benchmarks.harness import record; record('bench_run', seconds=int(sys.argv[1]))" \
	  $$(( $$(date +%s) - started ))
	test ! -s $(CACHE)/scenario-figures.jsonl || \
	  $(PYTHON) scripts/render_scenarios.py $(CACHE)/scenario-figures.jsonl docs/scenarios.md
	$(PYTHON) -m benchmarks.render $(CACHE)/bench-results.jsonl \
	  $(CACHE)/scenario-figures.jsonl docs/BENCHMARKS.md

cluster-up: build
	@$(PYTHON) -m localkube up

cluster-down: venv
	@$(PYTHON) -m localkube down

demo: build
	$(PYTHON) -m localkube.demo

demo-down: venv
	$(PYTHON) -m localkube.demo --down

clean:
	rm -rf build *.egg-info .mypy_cache .ruff_cache

# What a first run made for this project; the next `make demo` pays the first-run cost again.
# Go's module and build caches are shared with every Go project: README says how to clear them.
clean-cache:
	rm -rf $(VENV) $(CACHE)
