# mitigator: `make demo` runs the main job, `make test` runs the whole suite.
# Both install what they need (Debian packages, Python packages, the Go-built control plane).
SHELL := /bin/bash
PYTHON ?= python3
export GOTOOLCHAIN := local
export PYTHONPATH := $(CURDIR)/operator:$(CURDIR)/tools:$(CURDIR)
CACHE := $(or $(MITIGATOR_CACHE),$(HOME)/.cache/mitigator)
PYTEST := $(PYTHON) -m pytest -p no:cacheprovider
DEPS_STAMP := $(CACHE)/stamps/deps-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: help deps build lint unit integration e2e test test-existing-cluster bench \
        cluster-up cluster-down demo demo-down clean

help:
	@echo "make demo          local control plane + service + bad deploy, operator mitigates it"
	@echo "make test          lint, type-check and the whole test suite (installs what it needs)"
	@echo "make cluster-up    leave a local control plane running (prints export KUBECONFIG=...)"
	@echo "make cluster-down  stop it"
	@echo "make bench         benchmarks; figures go to docs/BENCHMARKS.md"

deps: $(DEPS_STAMP)
$(DEPS_STAMP): pyproject.toml
	@command -v prometheus >/dev/null && command -v prometheus-alertmanager >/dev/null || { \
	  echo "installing Debian packages prometheus, prometheus-alertmanager"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends prometheus prometheus-alertmanager >/dev/null; }
	$(PYTHON) -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[dev]'
	@mkdir -p $(dir $@) && touch $@

build: deps
	$(PYTHON) -m localkube build

lint: deps
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy
	lint-imports
	hadolint Dockerfile

unit: deps
	$(PYTEST) tests/unit -q

integration: build
	$(PYTEST) tests/integration -q

e2e: build
	$(PYTEST) tests/e2e -q

test: build lint
	$(PYTEST) tests -q --durations=15
	$(MAKE) --no-print-directory test-existing-cluster

# The suite against a cluster it did not start (as on kind): proves MITIGATOR_TEST_KUBECONFIG.
test-existing-cluster: build
	scripts/test-existing-cluster.sh

bench: build
	rm -f $(CACHE)/bench-results.jsonl $(CACHE)/scenario-figures.jsonl
	@# A failed measurement still leaves the others on the page (it says "not measured").
	-MITIGATOR_BENCH_RESULTS=$(CACHE)/bench-results.jsonl $(PYTEST) benchmarks -q -s
	-MITIGATOR_FIGURES_FILE=$(CACHE)/scenario-figures.jsonl $(PYTEST) tests/e2e/test_scenarios.py -q
	test ! -s $(CACHE)/scenario-figures.jsonl || \
	  $(PYTHON) scripts/render_scenarios.py $(CACHE)/scenario-figures.jsonl docs/scenarios.md
	$(PYTHON) -m benchmarks.render $(CACHE)/bench-results.jsonl \
	  $(CACHE)/scenario-figures.jsonl docs/BENCHMARKS.md

cluster-up: build
	@$(PYTHON) -m localkube up

cluster-down:
	@$(PYTHON) -m localkube down

demo: build
	$(PYTHON) -m localkube.demo

demo-down:
	$(PYTHON) -m localkube.demo --down

clean:
	rm -rf build *.egg-info .mypy_cache .ruff_cache
