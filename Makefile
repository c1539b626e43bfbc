# Two entry points: `make run` and `make test`. Each installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench deps fuzz

deps: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

run: deps
	$(BIN)/wallet run

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy wallet chains custody fiat
	$(BIN)/lint-imports
	@# alembic check: the models and wallet/sql/ against a freshly migrated scratch database
	if [ -n "$$WALLET_TEST_DATABASE_URL" ]; then \
	    WALLET_DATABASE_URL="$$WALLET_TEST_DATABASE_URL" $(BIN)/python -m wallet db check; \
	else $(BIN)/python -m wallet db check; fi

# Three test processes (most tests wait on blocks, timers and other processes, not the CPU), each
# with its own database and Redis db; the coverage of the test processes and of every process
# they start, gated in pyproject.toml; the fifteen slowest tests are listed at the end.
test: lint
	$(BIN)/pytest -n 3 --dist worksteal --cov --durations=15

# Random exploration (new seeds, more examples): the property tests, then Schemathesis
# against the API; not a gate.
fuzz: deps
	WALLET_FUZZ=1 $(BIN)/pytest -m hypothesis tests -p no:cacheprovider
	WALLET_FUZZ=1 $(BIN)/pytest tests/wallet/api/test_schemathesis.py -p no:cacheprovider -s

bench: deps
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/watcher.py
	$(BIN)/python bench/derivation.py
	$(BIN)/python bench/chain_fetch.py
	$(BIN)/python bench/withdrawals.py
	$(BIN)/python bench/fiat.py
