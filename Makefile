# icewatch: the two commands of the quick start are `make run` and `make test`.
# Each installs what it needs (virtualenv in .venv, Debian packages when root, Kafka jars).
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
# two workers, a whole test file each (module fixtures and in-file order stay as written); PYTEST_ARGS= for one process
PYTEST_ARGS ?= -n 2 --dist loadfile -p no:randomly

.PHONY: run demo test lint typecheck unit bench bootstrap clean screenshots

bootstrap:
	bash deploy/local/bootstrap.sh

run: export ICEWATCH_INVENTORY ?= deploy/inventory.example.yaml
run:
	bash deploy/local/bootstrap.sh --runtime
	$(BIN)/icewatch run

lint:
	$(BIN)/ruff check collector processors dashboards alerts tests
	$(BIN)/lint-imports --no-cache

typecheck:
	$(BIN)/mypy collector processors dashboards alerts tests

# A simulated fleet through the whole pipeline, a normal period then a TURN outage (about 2 minutes).
demo: bootstrap
	bash deploy/local/demo.sh

test: bootstrap lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit:
	$(BIN)/python -m pytest tests/unit -q

# The built-in dashboards in headless Chromium on simulated data: var/screenshots/<uid>.png, and the
# README's docs/img/dashboard-overview.png.
screenshots:
	bash deploy/local/bootstrap.sh --venv --charts
	ICEWATCH_DOCS_SCREENSHOT=1 $(BIN)/python -m pytest tests/integration/test_dashboard_pages.py -q -k renders

bench: bootstrap
	$(BIN)/python -m tests.bench.run_all

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
