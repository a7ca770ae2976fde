# mk/lock.mk: the Lambda package's dependency lock, src/requirements.txt (issue 15, point 7).
#
# Included by the top-level Makefile. `make lock` regenerates the lock from pyproject.toml's
# runtime dependencies with uv (pinned, in its own venv under .tools/uv like the SAM tools):
# every package the function imports, transitive ones included, pinned with the hashes of all
# their published files, for the Lambda runtime (Python 3.13, arm64 Linux). `sam build` installs
# exactly that (pip's hash-checking mode switches on by itself when a file has hashes), and
# `make setup` installs the same versions into .venv first, so the tests run on what ships.
#
# boto3 and what only it needs are left out (--no-emit-package): the Lambda runtime provides
# them, and bundling our own would add ~15 MB to every cold start. pyproject.toml still pins
# boto3 for local runs and tests. tests/test_lock.py fails when the lock and pyproject.toml
# disagree, when a line has no hash, or when a locked package needs one that is not locked.

UV_VERSION ?= 0.13.8
TOOLS_PYTHON ?= python3.11
TOOLS_DIR ?= .tools
UV := $(TOOLS_DIR)/uv/bin/uv
UV_STAMP := $(TOOLS_DIR)/uv/.installed-$(UV_VERSION)
LOCK_FILE := src/requirements.txt
# Provided by the Lambda python3.13 runtime: boto3 and its own dependencies.
LAMBDA_PROVIDED := boto3 botocore s3transfer urllib3 python-dateutil six

.PHONY: lock tools-uv

tools-uv: $(UV_STAMP) ## Install the pinned uv into .tools/uv (for `make lock`)

$(UV_STAMP):
	@command -v $(TOOLS_PYTHON) >/dev/null || { echo "needs $(TOOLS_PYTHON) on PATH" >&2; exit 1; }
	rm -rf $(TOOLS_DIR)/uv
	$(TOOLS_PYTHON) -m venv $(TOOLS_DIR)/uv
	$(TOOLS_DIR)/uv/bin/python -m pip install -qq --disable-pip-version-check uv==$(UV_VERSION)
	touch $@

lock: $(UV_STAMP) ## Regenerate src/requirements.txt (hashes, transitive pins) from pyproject.toml
	$(UV) pip compile pyproject.toml --quiet --generate-hashes \
		--python-version 3.13 --python-platform aarch64-manylinux2014 \
		$(foreach p,$(LAMBDA_PROVIDED),--no-emit-package $(p)) \
		--custom-compile-command "make lock" --output-file $(LOCK_FILE)
