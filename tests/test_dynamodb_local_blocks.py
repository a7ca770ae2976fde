"""The state blocks against DynamoDB Local, a real DynamoDB engine: every `test_block_*` of
tests/test_state_blocks.py again (imported, so a block test added there runs here too), and the
concurrency tests moto cannot judge (it does not lock items)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from ssm_detect.state import StateStore
from ssm_detect.state.block import StateKey
from ssm_detect.state.correlate import CorrelateThroughResource, Mention, Side
from ssm_detect.state.distinct_window import Contribution, DistinctInWindow
from ssm_detect.state.dynamodb import DynamoDbStateStore
from ssm_detect.state.first_seen import FirstSeen, Sighting
from tests import test_state_blocks as blocks
from tests.test_state_blocks import CHAIN, HISTORY, SMALL, WINDOW, Run, T
from tests.test_state_contract import FIXED_NOW

if TYPE_CHECKING:
    from tests.dynamodb_local import DynamoDbLocal

pytest_plugins = ["tests.dynamodb_local"]

BLOCK_CONTRACT: dict[str, Callable[..., None]] = {
    name: getattr(blocks, name) for name in dir(blocks) if name.startswith("test_block_")
}
globals().update(BLOCK_CONTRACT)
WRITERS = 8


@pytest.fixture
def store(dynamodb_local: DynamoDbLocal, local_table: str) -> StateStore:
    return DynamoDbStateStore(dynamodb_local.client(), local_table, clock=lambda: FIXED_NOW)


def stores(dynamodb_local: DynamoDbLocal, table: str) -> list[StateStore]:
    """One client per writer, as separate Lambda invocations have."""
    return [
        DynamoDbStateStore(dynamodb_local.client(), table, clock=lambda: FIXED_NOW)
        for _ in range(WRITERS)
    ]


def test_dynamodb_local_blocks_run_the_whole_contract() -> None:
    assert len(BLOCK_CONTRACT) >= 20


def in_parallel(jobs: list[Callable[[], object]]) -> list[object]:
    barrier = threading.Barrier(len(jobs))

    def run(job: Callable[[], object]) -> object:
        barrier.wait()
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


def test_dynamodb_local_first_seen_concurrent_sightings_give_exactly_one_first(
    dynamodb_local: DynamoDbLocal, local_table: str
) -> None:
    """8 sightings of one key at once, in 8 invocations: exactly the earliest is first (each
    read holds at least its own write, and the earliest's read cannot hold an earlier one)."""
    key = StateKey("creator", "111122223333", "role")
    runs = [Run(FirstSeen(HISTORY), s, key) for s in stores(dynamodb_local, local_table)]
    sightings = [Sighting(T + n, f"e{n}") for n in range(WRITERS)]
    readings = in_parallel(
        [lambda r=r, s=s: r(s) for r, s in zip(runs, sightings, strict=True)]  # type: ignore[misc]
    )
    firsts = [s.event_id for s, r in zip(sightings, readings, strict=True) if r.first]  # type: ignore[attr-defined]
    assert "e0" in firsts
    # later ones may be first only when judged before every earlier one was written
    assert runs[0](Sighting(T + 100, "after")).first is False


def test_dynamodb_local_distinct_concurrent_calls_cannot_both_miss_the_threshold(
    dynamodb_local: DynamoDbLocal, local_table: str
) -> None:
    """8 calls of one principal, one instance each, all at once: the last writer's window holds
    all 8, so some reading crosses a threshold of 2 (read-then-write would let all miss)."""
    key = StateKey("fanout", "111122223333", "role")
    runs = [
        Run(DistinctInWindow(WINDOW, bounds=SMALL), s, key)
        for s in stores(dynamodb_local, local_table)
    ]
    readings = in_parallel(
        [
            lambda r=r, n=n: r(Contribution(T + n, f"e{n}", (f"i-{n}",)))  # type: ignore[misc]
            for n, r in enumerate(runs)
        ]
    )
    sizes = [max(len(w.members) for w in windows) for windows in readings]  # type: ignore[attr-defined]
    assert max(sizes) == WRITERS
    assert all(size >= 1 for size in sizes)


def test_dynamodb_local_correlate_concurrent_halves_always_link(
    dynamodb_local: DynamoDbLocal, local_table: str
) -> None:
    """A creation and 7 runs of its document at once, 10 rounds: every run's pair is found by
    at least one of the two halves' readings, however the writes interleave."""
    for round_ in range(10):
        key = StateKey("document", "111122223333", f"Doc{round_}", region="us-east-1")
        runs = [
            Run(CorrelateThroughResource(CHAIN), s, key)
            for s in stores(dynamodb_local, local_table)
        ]
        halves = [Mention(T, "c", Side.FIRST, {})] + [
            Mention(T + n, f"e{n}", Side.SECOND, {}) for n in range(1, WRITERS)
        ]
        readings = in_parallel(
            [lambda r=r, h=h: r(h) for r, h in zip(runs, halves, strict=True)]  # type: ignore[misc]
        )
        found = {
            (p.first.event_id, p.second.event_id)
            for reading in readings
            for p in reading.pairs  # type: ignore[attr-defined]
        }
        assert found == {("c", f"e{n}") for n in range(1, WRITERS)}, round_
