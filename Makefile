# `make run`: set up and serve Hermes (embedded: SQLite, no Redis). `make test`: set up and run everything CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test unit integration lint services bench lock clean conformance

$(BIN)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/hermes init
	$(BIN)/hermes db upgrade
	$(BIN)/hermes serve --host $(HOST) --port $(PORT)

services:
	bash scripts/ensure-services.sh

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: install
	$(BIN)/python -m pytest tests/unit -q

integration: install services
	$(BIN)/python -m pytest tests/integration -q

test: install services lint
	$(BIN)/python -m pytest -q

# The official MCP conformance suite on Node 22 (both cached in .cache/ by scripts/ensure-node22.sh); also part of `make test`.
conformance: install services
	$(BIN)/python -m pytest tests/integration/test_conformance.py -q

# Short try: make bench BENCH_ARGS="--duration 2 --runs 1 --load-duration 5 --profile-seconds 2"
bench: install services
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)

# Regenerate the pinned lock file after editing pyproject.toml dependencies.
lock:
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra otel --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .cache
