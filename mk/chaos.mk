# mk/chaos.mk: the arrival-order property test at a size `make test` cannot afford.
#
# `make test` runs tests/test_arrival_order_property.py with a few generated streams
# (SSM_DETECT_ORDER_EXAMPLES defaults to 3). `make chaos` runs it with CHAOS_EXAMPLES streams
# per property (default 60) and also runs the full-equality check for the stateful detections
# (fan-outs, creations, chains), which is skipped in `make test` (see the test's docstring).

CHAOS_EXAMPLES ?= 60

.PHONY: chaos
chaos: $(STAMP) dynamodb-local ## Arrival-order property test, many streams (CHAOS_EXAMPLES=60)
	SSM_DETECT_ORDER_EXAMPLES=$(CHAOS_EXAMPLES) SSM_DETECT_CHAOS=1 \
		$(BIN)/pytest -q -p no:randomly tests/test_arrival_order_property.py
