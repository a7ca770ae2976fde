# ssm-detect: every target sets up what it needs. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml src/requirements.txt | sha1sum | cut -c1-12)
EVENTS ?= events/
EVENT ?= events/send_command_success.json

export PIP_DISABLE_PIP_VERSION_CHECK := 1
# This machine's pip configuration names local package mirrors that may be absent; pip warns
# for every package. Drop those lines only (pipefail keeps pip's own exit status).
QUIET_PIP := { grep -v 'is ignored: it is neither a file nor a directory' || true; }

.PHONY: help setup run test lint typecheck unit invoke bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml src/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.1.1 2>&1 | $(QUIET_PIP)
	@# The Lambda's locked runtime dependencies first (hash-checked), so the tests run on the
	@# exact versions `sam build` packages; then the project and its dev tools around them.
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r src/requirements.txt 2>&1 | $(QUIET_PIP)
	$(BIN)/python -m pip install --quiet -e '.[dev]' 2>&1 | $(QUIET_PIP)
	@rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP) ## Create .venv with the pinned dependencies

run: $(STAMP) ## Replay the bundled sample events through the detections and print findings
	$(BIN)/ssm-detect replay $(EVENTS)

lint: $(STAMP) ## ruff format check, ruff lint, bandit
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/bandit -q -c pyproject.toml -r src

typecheck: $(STAMP) ## mypy --strict
	$(BIN)/mypy

unit: $(STAMP) dynamodb-local ## The pytest suite (DynamoDB Local included)
	$(BIN)/pytest -q

test: lint typecheck unit ## Everything CI runs: lint, types, tests

invoke: $(STAMP) ## Run the real Lambda handler on one event file: make invoke EVENT=events/x.json
	$(BIN)/ssm-detect invoke $(EVENT)

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# validate / build / deploy: SAM, cfn-lint and checkov, each in its own venv under .tools/
include mk/sam.mk
# DynamoDB Local for the reliability tests, and the benchmarks
include mk/dynamodb-local.mk mk/bench.mk mk/chaos.mk
# lock: src/requirements.txt, the Lambda's hash-pinned dependencies (uv, from pyproject.toml)
include mk/lock.mk
