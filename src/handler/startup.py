"""Cold start: keep Python's cyclic garbage collector off the objects the start-up creates.

Importing the handler, boto3 and pydantic creates about 90,000 long-lived objects (modules,
classes, validators, service models). While they are being created the collector runs dozens
of times and walks them again and again, roughly a tenth of a cold start (`make bench`,
docs/performance.md). None of them is garbage: they live as long as the execution environment.
So the collector is paused while they are made, and then `gc.freeze()` moves them to the
permanent generation, which the collector never walks again (also a saving on every warm
invocation's collections). Garbage cycles made during start-up stay with them (a one-time
amount; the handler's memory over 10,000 invocations is in the benchmark).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with the collector off, then freeze what exists and restore its state."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
