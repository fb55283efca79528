# The project's commands. `make test` works on a fresh machine with only python3 and pip:
# it installs uv when missing, syncs the workspace, starts the real services and runs pytest.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
PACKAGES := $(wildcard packages/*)
SRC_DIRS := $(foreach p,$(PACKAGES),$(p)/src)
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: uv
uv: ## Install uv with pip when it is missing
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
		$(PYTHON) -m pip install --quiet --disable-pip-version-check uv 2>/dev/null || \
		$(PYTHON) -m pip install --quiet --disable-pip-version-check --user uv 2>/dev/null || \
		$(PYTHON) -m pip install --quiet --disable-pip-version-check --user \
			--break-system-packages uv
	@$(UV) --version

.PHONY: sync
sync: uv ## Install every package and the dev tools into .venv (from uv.lock)
	$(UV) sync --all-packages --locked

.PHONY: services
services: ## Install (if needed) and start PostgreSQL, Kafka, FerretDB and Toxiproxy
	scripts/services up

.PHONY: services-down
services-down: ## Stop the services started by `make services`
	scripts/services down

.PHONY: services-status
services-status: ## Show each service and its URL
	scripts/services status

.PHONY: test
test: sync services ## The whole suite, integration tests included, against real services
	$(UV) run --no-sync pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: sync ## Only the tests that need no service (integration tests skip, or fail in CI)
	$(UV) run --no-sync pytest -m "not integration" $(PYTEST_ARGS)

.PHONY: lint
lint: sync ## ruff and mypy --strict on every package's src
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .
	$(UV) run --no-sync mypy --strict $(SRC_DIRS)

.PHONY: bench
bench: sync services ## Run every benchmark in benchmarks/ (connector versus raw driver)
	@set -e; for b in benchmarks/*.py; do echo "== $$b"; $(UV) run --no-sync python $$b; done

.PHONY: build
build: sync ## Build every package without workspace sources
	$(UV) build --all-packages --no-sources --out-dir dist

.PHONY: docs
docs: sync ## The API reference from the docstrings, into site/ (strict: a broken reference fails)
	$(UV) run --no-sync mkdocs build --strict
	@echo "open site/index.html"

DEMO_ARGS ?=

.PHONY: demo
demo: sync ## The main job end to end: mock Chatwoot over HTTP -> PostgreSQL, with events (DEMO_ARGS=--help)
	scripts/services up postgres
	$(UV) run --no-sync python examples/demo.py $(DEMO_ARGS)

.PHONY: demo-salesforce
demo-salesforce: sync ## The demo with the Salesforce mock -> PostgreSQL
	scripts/services up postgres
	$(UV) run --no-sync python examples/demo.py --integration salesforce $(DEMO_ARGS)
