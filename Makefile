# Every target sets up what it needs: `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# No PORT here: gunicorn.conf.py reads it from the environment, else .env, else 8000. A default set here
# would be exported to every recipe and hide the one in .env.

.DEFAULT_GOAL := help

.PHONY: help run test lint readme-session format bench bench-switches bench-estimator bench-models profile soak fuzz browser curl deploy-tools clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

.env:
	@# Made once, from .env.example with a fresh random SECRET_KEY; git-ignored. Edit it to change settings.
	sed "s|^SECRET_KEY=.*|SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')|" .env.example > .env
	@echo "Wrote .env from .env.example, with a new SECRET_KEY."

run: $(VENV)/.runtime-installed .env ## Install, index, train the default model if none is active, serve on PORT (.env; default 8000)
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@# Without MONGO_URI (from the environment or .env) these two say "Nothing to do here": the server
	@# indexes its embedded store and trains the default model into it when it starts.
	$(BIN)/python manage.py ensure_indexes --at-start
	$(BIN)/python manage.py train_model --if-no-active
	$(BIN)/gunicorn --config estimator_project/gunicorn.conf.py estimator_project.wsgi

browser: ## Debian's chromium for the browser tests: installed when missing (as root), else they are skipped
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: the browser tests will be skipped (sudo apt-get install chromium)"; fi; }

curl: ## curl, which the README session test runs: installed when missing (as root)
	@command -v curl >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq curl >/dev/null; \
	  else echo "curl is missing: the README session test will fail (sudo apt-get install curl)"; fi; }

deploy-tools: ## Debian's nginx and python3.11-venv for the deployment tests: installed when missing (as root), else they are skipped
	@missing=; command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || missing=" nginx"; \
	test -d /usr/lib/python3.11/ensurepip || missing="$$missing python3.11-venv"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    guard=; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; guard=1; }; \
	    apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; status=$$?; \
	    [ -z "$$guard" ] || rm -f /usr/sbin/policy-rc.d; exit $$status; \
	  else echo "missing:$$missing; the deployment tests will be skipped (sudo apt-get install$$missing)"; fi; \
	fi

test: lint browser curl deploy-tools ## Lint, type-check and run the whole test suite (unit on mongomock, integration over the wire, browser, deployment)
	$(BIN)/python -m pytest

lint: $(VENV)/.dev-installed ## Lint and type-check only
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy core ml estimations modelops estimator_project

readme-session: curl $(VENV)/.dev-installed ## Write the live answers of the README's curl session into README.md (after a model or field change)
	README_REWRITE=1 $(BIN)/python -m pytest -q tests/test_readme.py -k test_every_answer_is_as_the_readme_shows

format: $(VENV)/.dev-installed ## Reformat and fix what ruff can
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.dev-installed ## Side-by-side benchmarks against Eve (~15 min; fails when a target is missed); bench/results/
	DJANGO_ENV_FILE=/dev/null $(BIN)/python -m bench.harness

bench-switches: $(VENV)/.dev-installed ## CPU per request with each speed switch of core/runtime/__init__.py off against all on (~15 min); bench/results/
	DJANGO_ENV_FILE=/dev/null $(BIN)/python -m bench.switches

bench-estimator: $(VENV)/.dev-installed ## In-process estimation speed and 1M-row training (~1 min); bench/results/
	DJANGO_ENV_FILE=/dev/null $(BIN)/python -m bench.estimator

bench-models: $(VENV)/.dev-installed ## The candidate model fits on three curve shapes (~1 min); bench/results/models.md
	DJANGO_ENV_FILE=/dev/null $(BIN)/python -m bench.model_choice

profile: $(VENV)/.dev-installed ## py-spy on the workers under each benchmark load, by package (~2 min); bench/results/
	DJANGO_ENV_FILE=/dev/null $(BIN)/python -m bench.profile

soak: $(VENV)/.dev-installed ## 60 s mixed load at 16 connections: no errors, nothing lost, memory flat
	DJANGO_ENV_FILE=/dev/null $(BIN)/python -m bench.soak

fuzz: $(VENV)/.dev-installed ## Schemathesis at length (500 examples per operation, five seeds) and the input properties at 2,000 random examples each (~10 min)
	FUZZ_EXAMPLES=500 FUZZ_SEEDS=1,2,3,4,5 PROPERTY_EXAMPLES=2000 PROPERTY_RANDOM=1 \
	  $(BIN)/python -m pytest tests/estimations/test_fuzz.py tests/estimations/test_input_properties.py -q

clean: ## Remove the virtual environment and generated files
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
