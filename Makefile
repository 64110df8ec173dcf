# FastHook: `make run` starts the embedded stack, `make test` runs every test. Both build .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint format bench package clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "pip<26.3"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m local.run

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q -p no:cacheprovider tests

lint: $(STAMP)
	$(BIN)/ruff check chalicelib app.py local infra tests
	$(BIN)/ruff format --check chalicelib app.py local infra tests

format: $(STAMP)
	$(BIN)/ruff format chalicelib app.py local infra tests

# SAM template + zips for a stage (STAGE=prod make package); chalice needs a region even to package.
STAGE ?= dev
package: $(STAMP)
	rm -rf build/package
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(BIN)/chalice package --stage $(STAGE) --merge-template infra/api_extras.json build/package

clean:
	rm -rf $(VENV) .pytest_cache
