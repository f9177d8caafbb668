# Two commands on a fresh machine:  `make demo`  and  `make test`.
.PHONY: setup demo demo-labelstudio test lint typecheck unit integration clean

VENV := .venv
BIN := $(VENV)/bin

setup:
	@scripts/setup.sh

demo: setup
	$(BIN)/privacy-gateway demo

# the demo, then a local Label Studio with the synced, redacted project (Ctrl-C stops it)
demo-labelstudio: setup
	$(BIN)/privacy-gateway demo --labelstudio

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports  # the import contracts in pyproject.toml (layers; redaction stands alone)

typecheck: setup
	$(BIN)/mypy

# The whole suite: linters, type checks, unit + integration tiers (benchmarks never run here).
# Set GATEWAY_TEST_POSTGRES_URL to run every database test on PostgreSQL as well as SQLite.
test: lint typecheck
	$(BIN)/pytest

# The quick tier only (no model loading, no subprocess services).
unit: setup
	$(BIN)/pytest -m "not integration"

clean:
	rm -rf var/demo .pytest_cache .mypy_cache .ruff_cache .grimp_cache .import_linter_cache
