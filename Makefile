# Two commands for a new user: `make run` (NNO embedded on http://127.0.0.1:8787) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# First-party feature packages: separate distributions under features/, found through nno.features.
FEATURES := $(wildcard features/*/pyproject.toml)

# The Better Auth client the conformance suite drives (tests/conformance), installed from its lock file.
CONFORMANCE_NPM := tests/conformance/better-auth/node_modules/.package-lock.json

.PHONY: run test test-embedded test-scaled lint typecheck install bench clean

$(STAMP): pyproject.toml $(FEATURES)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' $(foreach f,$(FEATURES),-e $(dir $(f)))
	touch $(STAMP)

install: $(STAMP)

$(CONFORMANCE_NPM): tests/conformance/better-auth/package-lock.json
	npm ci --prefix tests/conformance/better-auth --no-audit --no-fund
	touch $@

run: $(STAMP)
	$(BIN)/nno serve

# The whole suite on the embedded backend, then again on PostgreSQL + Redis, plus lint and types.
test: $(STAMP) lint typecheck test-embedded test-scaled

test-embedded: $(STAMP) $(CONFORMANCE_NPM)
	NNO_TEST_BACKEND=embedded $(BIN)/pytest -q -p no:cacheprovider

test-scaled: $(STAMP) $(CONFORMANCE_NPM)
	NNO_TEST_BACKEND=scaled $(BIN)/pytest -q -p no:cacheprovider -m "not embedded_only"

lint: $(STAMP)
	$(BIN)/ruff check $(wildcard src tests bench scripts features)

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/gateway.py

clean:
	rm -rf $(VENV) .nno-data
