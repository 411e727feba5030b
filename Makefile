# Two commands from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export FLASK_APP := wsgi.py

.PHONY: install migrate seed run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/alembic upgrade head

seed: migrate
	$(BIN)/flask demo seed

## Migrate, seed the demo once, then serve the app (with the Stripe emulator and the worker).
## Development mode: one generated secret in instance/secret_key, /dev/mail, the test banner.
run: seed
	$(BIN)/python -m devtools.run_local

seed run: export APP_ENV := development

## Check the code (lint, format, the layer contract, types), then run the whole test suite
## (TEST_DATABASE_URL=postgresql://... for PostgreSQL).
test: lint
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

## The benchmarks (docs/performance.md): the HTTP pages under gunicorn beside a one-route Flask
## app and the member floor app (SQLite and PostgreSQL, wrk; about 10 minutes), the instructions
## each page executes (callgrind), then the outbox with four workers against the Stripe emulator.
## BENCH_ARGS="--quick" for a short HTTP run.
bench: install
	$(BIN)/python -m bench.http $(BENCH_ARGS)
	$(BIN)/python -m bench.instructions
	$(BIN)/python -m bench.worker

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
