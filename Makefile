# The whole set-up is `make run` and `make test`; everything else is for developers.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 5000

.PHONY: install run test test-fast lint format bench clean frontend

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Create the venv, the SQLite database with demo users, and serve http://127.0.0.1:5000
run: install
	$(BIN)/csi init-db
	$(BIN)/csi seed-demo
	$(BIN)/csi serve --port $(PORT)

## The whole suite: SQLite always, PostgreSQL when CSI_TEST_DATABASE_URL is set,
## browser tests in Debian's /usr/bin/chromium when it is installed.
test: install
	$(BIN)/pytest -q -p no:cacheprovider -n auto --maxprocesses 4

## No database server, no browser, no package index: the tier to run while editing.
test-fast: install
	$(BIN)/pytest -q -x -m "not e2e and not postgres and not bench and not packaging"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench

## Rebuild web/static/vendor/modeler/ from the npm packages package-lock.json pins
## (needs Node.js and the npm registry; the built files are committed, so `make run`
## needs neither).
frontend:
	npm ci
	node frontend/build.mjs

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache test-artifacts
