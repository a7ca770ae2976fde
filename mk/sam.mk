# mk/sam.mk: the deployable SAM application's tooling (template.yaml, templates/*.yaml).
#
# Included by the top-level Makefile, and usable on its own from the repository root:
#     make -f mk/sam.mk validate build
#
# Each tool lives in its own virtual environment under .tools/<tool>/, never in the app's
# .venv: aws-sam-cli pins boto3 and pydantic, checkov pins boto3 lower, and either would
# otherwise downgrade the versions the application is tested with. A stamp file named after
# the pinned version makes a re-run a no-op and a version bump a reinstall. Only the tools are
# pinned here; their own dependencies resolve to what those releases allow.
#
# Works with /bin/sh and with the top-level Makefile's bash -eu -o pipefail.

SAM_CLI_VERSION  ?= 1.170.0
CFN_LINT_VERSION ?= 1.58.0
CHECKOV_VERSION  ?= 3.3.30

# The interpreter the tool venvs are made with (python3.11 is on every machine of this kind).
TOOLS_PYTHON ?= python3.11
TOOLS_DIR    ?= .tools

# This file's own path, for the parallel sub-make below (set before anything else is included).
SAM_MK := $(lastword $(MAKEFILE_LIST))

SAM_TEMPLATE        ?= template.yaml
SAM_EXTRA_TEMPLATES ?= $(wildcard templates/*.yaml)
SAM_BUILD_DIR       ?= .aws-sam/build
# Extra arguments for `make deploy`, e.g. SAM_DEPLOY_ARGS=--guided or "--config-env prod".
SAM_DEPLOY_ARGS     ?=

SAM      := $(TOOLS_DIR)/sam/bin/sam
CFN_LINT := $(TOOLS_DIR)/cfn-lint/bin/cfn-lint
CHECKOV  := $(TOOLS_DIR)/checkov/bin/checkov

SAM_STAMP      := $(TOOLS_DIR)/sam/.installed-$(SAM_CLI_VERSION)
CFN_LINT_STAMP := $(TOOLS_DIR)/cfn-lint/.installed-$(CFN_LINT_VERSION)
CHECKOV_STAMP  := $(TOOLS_DIR)/checkov/.installed-$(CHECKOV_VERSION)

# No telemetry from any SAM command run through this file. `sam validate` wants a region only
# to build the transform's context; the caller's wins, us-east-1 otherwise.
SAM_ENV = SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_REGION:-$${AWS_DEFAULT_REGION:-us-east-1}}

# `sam build` without Docker looks the function's runtime (python3.13) up on PATH and checks
# its version. A pyenv shim for a version that is installed but not selected fails that check,
# so find a python3.13 that really runs and put its directory first on PATH. Override with
# LAMBDA_PYTHON=/path/to/python3.13. Recursively expanded: only computed when `build` runs.
LAMBDA_PYTHON ?= $(shell for p in "$$(command -v python3.13)" $(HOME)/.pyenv/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13 /usr/bin/python3.13; do if [ -x "$$p" ] && "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then echo "$$p"; break; fi; done)

.PHONY: tools tools-sam tools-cfn-lint tools-checkov validate build deploy clean-tools clean-build

# The three installs are independent and mostly wait on downloads: run them side by side even
# when make itself was started without -j (with -j, its job server decides). A no-op once the
# stamps exist.
tools: ## Install the pinned SAM CLI, cfn-lint and checkov into .tools/ (in parallel)
	@$(MAKE) --no-print-directory -s -f $(SAM_MK) $(if $(findstring -j,$(MAKEFLAGS)),,-j3) $(SAM_STAMP) $(CFN_LINT_STAMP) $(CHECKOV_STAMP)

tools-sam: $(SAM_STAMP) ## Install the pinned aws-sam-cli into .tools/sam
tools-cfn-lint: $(CFN_LINT_STAMP) ## Install the pinned cfn-lint into .tools/cfn-lint
tools-checkov: $(CHECKOV_STAMP) ## Install the pinned checkov into .tools/checkov

# $(call tool_venv,<dir>,<requirement>,<stamp>): a fresh venv, the pinned tool, then the stamp.
define tool_venv
	@command -v $(TOOLS_PYTHON) >/dev/null || { echo "needs $(TOOLS_PYTHON) on PATH (or TOOLS_PYTHON=...)" >&2; exit 1; }
	@echo "== installing $(2) into $(TOOLS_DIR)/$(1)"
	rm -rf $(TOOLS_DIR)/$(1)
	$(TOOLS_PYTHON) -m venv $(TOOLS_DIR)/$(1)
	$(TOOLS_DIR)/$(1)/bin/python -m pip install -qq --disable-pip-version-check $(2)
	touch $(3)
endef

$(SAM_STAMP):
	$(call tool_venv,sam,aws-sam-cli==$(SAM_CLI_VERSION),$@)

$(CFN_LINT_STAMP):
	$(call tool_venv,cfn-lint,cfn-lint==$(CFN_LINT_VERSION),$@)

$(CHECKOV_STAMP):
	$(call tool_venv,checkov,checkov==$(CHECKOV_VERSION),$@)

# cfn-lint fails on errors and warnings (and on informational findings, which are kept at zero
# too); checkov fails on any check that is neither passed nor skipped in the template itself
# with a written reason (Metadata: checkov: skip:).
validate: tools ## Lint the templates: sam validate (+ --lint), cfn-lint, checkov
	@echo "== sam validate ($(SAM_CLI_VERSION))"
	$(SAM_ENV) $(SAM) validate --template-file $(SAM_TEMPLATE)
	$(SAM_ENV) $(SAM) validate --lint --template-file $(SAM_TEMPLATE)
	@echo "== cfn-lint ($(CFN_LINT_VERSION))"
	$(CFN_LINT) --include-checks I -- $(SAM_TEMPLATE) $(SAM_EXTRA_TEMPLATES)
	@echo "== checkov ($(CHECKOV_VERSION))"
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation \
		$(foreach t,$(SAM_TEMPLATE) $(SAM_EXTRA_TEMPLATES),--file $(t))

# After `sam build`, the package's bytecode, compiled by the runtime's own interpreter (its
# magic number is the one Lambda checks) as unchecked hash-based .pyc files, then verified:
# every module of src/ and of the dependencies. Lambda's code directory is read-only, so a
# module without its .pyc is compiled again at every cold start (tools/bytecode.py says why
# hash-based). `sam deploy` zips the build folder as it is, __pycache__ included.
build: tools ## sam build into .aws-sam/ without Docker (arm64 wheels; needs a python3.13), + bytecode
	@test -n "$(LAMBDA_PYTHON)" || { echo "sam build: no working python3.13 found; set LAMBDA_PYTHON=/path/to/python3.13" >&2; exit 1; }
	PATH="$(dir $(LAMBDA_PYTHON)):$$PATH" $(SAM_ENV) $(SAM) build --template-file $(SAM_TEMPLATE) --build-dir $(SAM_BUILD_DIR)
	$(LAMBDA_PYTHON) tools/bytecode.py compile $(SAM_BUILD_DIR) --runtime python3.13

deploy: build ## sam deploy the built stack (AWS credentials; SAM_DEPLOY_ARGS=--guided the first time)
	SAM_CLI_TELEMETRY=0 $(SAM) deploy --template-file $(SAM_BUILD_DIR)/template.yaml $(SAM_DEPLOY_ARGS)

clean-build: ## Remove .aws-sam/
	rm -rf .aws-sam

clean-tools: ## Remove the tool virtualenvs in .tools/
	rm -rf $(TOOLS_DIR)
