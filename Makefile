# The project's verbs. Everything runs from .venv, which `make install` builds.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help install run cluster nginx wrk migrate migrate-status test test-browser test-gateway fuzz lint format token bench openapi sdk test-sdk clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,embedded]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the service with its dev tools

run: install ## serve on HOST:PORT (127.0.0.1:8000), embedded PostgreSQL if DATABASE_URL is unset
	MIGRATE_ON_START=1 $(VENV)/bin/gunicorn --config gunicorn.conf.py wsgi:app

cluster: install nginx ## REPLICAS (3) replicas behind nginx on 127.0.0.1:8080, one PostgreSQL, one Redis
	$(PY) -m app.cluster

nginx: ## install Debian's nginx if it is missing (the gateway of make cluster)
	@sh deploy/install-nginx.sh

migrate: install ## apply pending migrations
	$(PY) -m app.migrate up

migrate-status: install ## list migrations and when each was applied
	$(PY) -m app.migrate status

test: install ## the whole suite (embedded PostgreSQL unless TEST_DATABASE_URL is set)
	$(PY) -m pytest --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

BROWSER_NODE := tests/browser/node_modules/.package-lock.json

# axe-core for the accessibility checks, from tests/browser/package-lock.json.
$(BROWSER_NODE): tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

test-browser: install $(BROWSER_NODE) ## /docs and the invite page in headless Chromium (axe-core WCAG 2.1 AA)
	$(PY) -m pytest -m browser -p no:cacheprovider tests/browser

test-gateway: install nginx ## the cluster tests: replicas behind nginx, faults injected
	$(PY) -m pytest -m gateway -p no:cacheprovider tests/gateway

fuzz: install ## Schemathesis against gunicorn + PostgreSQL for FUZZ_SECONDS (120), every phase and check
	$(PY) -m pytest -m fuzz -s -p no:cacheprovider tests/fuzz

lint: install ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

token: install ## print a token for trying the API (NAME=Alice SUB=<uuid> optional)
	@$(PY) -m app.token $(if $(NAME),--name "$(NAME)") $(if $(SUB),--sub "$(SUB)")

openapi: install ## rewrite docs/openapi.json from the code (commit the diff with the change)
	$(PY) -m app.api.document docs/openapi.json

sdk: install ## generate a Python client from docs/openapi.json into build/sdk
	rm -rf build/sdk
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/openapi-python-client generate \
		--path docs/openapi.json --output-path build/sdk --meta setup --config sdk-config.yaml

SDK_NODE := sdk/node_modules/.package-lock.json

# The TypeScript generators, openapi-fetch, tsc and Ajv, from sdk/package-lock.json.
$(SDK_NODE): sdk/package.json sdk/package-lock.json
	cd sdk && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

test-sdk: install $(SDK_NODE) ## clients from each generator's defaults: Python, TypeScript x3, Kotlin, Swift
	$(PY) -m pytest -m "sdk or slow" -p no:cacheprovider tests/test_sdk.py tests/sdk

bench: install wrk ## the service against bare floors with wrk: ratios (SIZE=1000000: latency at 10k vs SIZE)
	$(PY) bench/run.py $(if $(SIZE),--size $(SIZE)) $(BENCH_ARGS)

wrk: ## install Debian's wrk if it is missing (the load generator of make bench)
	@command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null 2>&1 \
		|| { apt-get update -qq && apt-get install -y -qq wrk; }

clean: ## remove the virtual environment and local data
	rm -rf $(VENV) .data build .pytest_cache .ruff_cache .hypothesis .coverage
