"""The three shared state blocks, on every store: memory, SQLite, DynamoDB (moto here; DynamoDB
Local in tests/test_dynamodb_local_blocks.py, which imports every `test_block_*` below and adds
the concurrency tests a real engine can judge).

Each test drives a block exactly as the pipeline does: one `apply` of the block's update (the
one atomic round trip), the block's pure read of what came back, then its prune if it asks.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Generic, TypeVar

import boto3
import pytest

from ssm_detect.state import StateStore
from ssm_detect.state.block import LATENESS, Block, StateKey
from ssm_detect.state.correlate import (
    DEFAULT_KEEP,
    CorrelateThroughResource,
    Correlation,
    Mention,
    Side,
    bounded_data,
)
from ssm_detect.state.distinct_window import (
    EVENTS,
    MEMBERS,
    UNKNOWN,
    Bounds,
    Contribution,
    DistinctInWindow,
    Window,
)
from ssm_detect.state.dynamodb import DynamoDbStateStore
from ssm_detect.state.first_seen import FirstSeen, FirstSeenReading, Sighting
from ssm_detect.state.memory import MemoryStateStore
from ssm_detect.state.sqlite import SqliteStateStore
from tests.conftest import REGION, TABLE
from tests.test_state_contract import FIXED_NOW

Obs = TypeVar("Obs")
R = TypeVar("R")
HOUR = 3600
DAY = 24 * HOUR
T = 1_741_600_800  # 2025-03-10T10:00:00Z
KEY = StateKey("k", "111122223333", "name")


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    kind = request.param
    if kind == "memory":
        yield MemoryStateStore()
    elif kind == "sqlite":
        sqlite = SqliteStateStore(tmp_path / "state.sqlite", clock=lambda: FIXED_NOW)
        yield sqlite
        sqlite.close()
    else:
        request.getfixturevalue("aws")
        client = boto3.client("dynamodb", region_name=REGION)
        yield DynamoDbStateStore(client, TABLE, clock=lambda: FIXED_NOW)


class Run(Generic[Obs, R]):
    """One block on one store, driven as the pipeline drives it; counts round trips."""

    def __init__(self, block: Block[Obs, R], store: StateStore, key: StateKey = KEY) -> None:
        self.block, self.store, self.key = block, store, key
        self.applies = 0
        self.prunes = 0

    def __call__(self, observation: Obs) -> R:
        snapshot = self.store.apply(self.block.update(self.key, observation))
        self.applies += 1
        reading = self.block.read(observation, snapshot)
        prune = self.block.prune(self.key, observation, snapshot)
        if prune:
            self.store.prune(prune)
            self.prunes += 1
        return reading


# --- keys -----------------------------------------------------------------------------------


def test_block_key_is_regional_only_when_asked() -> None:
    assert str(StateKey("fanout", "111122223333", "arn:aws:iam::1:role/R")) == (
        "fanout#111122223333#arn:aws:iam::1:role/R"
    )
    assert str(StateKey("document", "111122223333", "Doc", region="us-west-2")) == (
        "document#111122223333#us-west-2#Doc"
    )


# --- first-seen -----------------------------------------------------------------------------

HISTORY = timedelta(days=10)


def first_seen(store: StateStore) -> Run[Sighting, FirstSeenReading]:
    return Run(FirstSeen(HISTORY, keep=8), store)


def test_block_first_seen_first_then_seen(store: StateStore) -> None:
    run = first_seen(store)
    assert run(Sighting(T, "a")).first
    again = run(Sighting(T + HOUR, "b"))
    assert not again.first
    assert again.previous == Sighting(T, "a")
    assert run.applies == 2  # one round trip per event


def test_block_first_seen_history_edge(store: StateStore) -> None:
    run = first_seen(store)
    run(Sighting(T, "a"))
    assert not run(Sighting(T + 10 * DAY, "b")).first  # exactly at the edge: still seen
    assert run(Sighting(T + 20 * DAY + 1, "c")).first


def test_block_first_seen_retry_is_idempotent(store: StateStore) -> None:
    run = first_seen(store)
    assert run(Sighting(T, "a")).first
    assert run(Sighting(T, "a")).first  # a retried event reads what its first attempt read
    assert not run(Sighting(T + 1, "b")).first


def test_block_first_seen_same_second_in_either_order_gives_one_first(store: StateStore) -> None:
    run = first_seen(store)
    late_id_first = run(Sighting(T, "b"))
    early_id_second = run(Sighting(T, "a"))
    # (T, "a") orders first: it is first; "b" judged alone was first too (never retracted).
    assert early_id_second.first
    assert late_id_first.first
    assert not run(Sighting(T, "b")).first  # re-judged with both known: only "a" is first


def test_block_first_seen_every_order_finds_the_in_order_firsts(store: StateStore) -> None:
    """Whatever the arrival order, every sighting that is first in time order is judged first
    (an out-of-order run can add firsts, never lose one)."""
    times = [T, T + 2 * DAY, T + 15 * DAY, T + 16 * DAY]
    in_order = {
        t
        for t, prev in zip(times, [None, *times], strict=False)
        if prev is None or t - prev > 10 * DAY
    }
    for n, order in enumerate(itertools.permutations(times)):
        run = Run(FirstSeen(HISTORY, keep=8), store, StateKey("k", "1", f"perm-{n}"))
        firsts = {t for t in order if run(Sighting(t, f"e{t}")).first}
        assert in_order <= firsts, order


def test_block_first_seen_is_bounded(store: StateStore) -> None:
    run = first_seen(store)
    for n in range(40):
        run(Sighting(T + n, f"e{n:03d}"))
    held = store.apply(run.block.update(KEY, Sighting(T + 100, "last")))
    assert len(held["seen"]) <= 8 + 1
    assert run.prunes > 0


# --- distinct-in-window ---------------------------------------------------------------------

WINDOW = timedelta(hours=1)
SMALL = Bounds(
    keep={EVENTS: 40, MEMBERS: 40, UNKNOWN: 8},
    limits={EVENTS: 80, MEMBERS: 80, UNKNOWN: 16},
    stored_per_event={MEMBERS: 5, UNKNOWN: 2},
)


def distinct(store: StateStore, bounds: Bounds = SMALL) -> Run[Contribution, tuple[Window, ...]]:
    return Run(DistinctInWindow(WINDOW, bounds=bounds), store)


def own(windows: tuple[Window, ...], event_id: str) -> Window:
    return next(w for w in windows if w.end.event_id == event_id)


def test_block_distinct_counts_members_within_the_sliding_window(store: StateStore) -> None:
    run = distinct(store)
    run(Contribution(T, "a", ("i-1", "i-2"), origin="us-east-1"))
    (window,) = run(Contribution(T + 59 * 60, "b", ("i-2", "i-3"), origin="us-west-2"))
    assert window.members == ("i-1", "i-2", "i-3")
    assert [(e.event_id, e.origin) for e in window.events] == [
        ("a", "us-east-1"),
        ("b", "us-west-2"),
    ]
    assert window.member_events["i-1"].origin == "us-east-1"
    (later,) = run(Contribution(T + 61 * 60, "c", ("i-4",)))
    assert later.members == ("i-2", "i-3", "i-4")  # "a" left the window


def test_block_distinct_unknown_reaches_are_kept_apart(store: StateStore) -> None:
    run = distinct(store)
    (window,) = run(Contribution(T, "a", (), ("tag:Env=prod",)))
    assert window.members == ()
    assert window.unknown == ("tag:Env=prod",)


def test_block_distinct_late_event_completes_later_windows(store: StateStore) -> None:
    """Arrival b, c, then a (earliest): a's reading holds its own window and those of b and c,
    each with a in it, as in time order."""
    run = distinct(store)
    run(Contribution(T + 600, "b", ("i-2",)))
    run(Contribution(T + 1200, "c", ("i-3",)))
    windows = run(Contribution(T, "a", ("i-1",)))
    assert [w.end.event_id for w in windows] == ["a", "b", "c"]
    assert own(windows, "c").members == ("i-1", "i-2", "i-3")


def test_block_distinct_every_order_gives_the_same_windows(store: StateStore) -> None:
    calls = [
        (T, "a", "i-1"),
        (T + 1800, "b", "i-2"),
        (T + 3000, "c", "i-3"),
        (T + 5000, "d", "i-4"),
    ]
    expected: dict[str, tuple[str, ...]] | None = None
    for n, order in enumerate(itertools.permutations(calls)):
        run = Run(DistinctInWindow(WINDOW, bounds=SMALL), store, StateKey("k", "1", f"p{n}"))
        seen: dict[str, tuple[str, ...]] = {}
        for epoch, event_id, instance in order:
            for window in run(Contribution(epoch, event_id, (instance,))):
                seen[window.end.event_id] = tuple(sorted(window.members))
        # a window is final once all its events arrived: compare the last reading of each
        if expected is None:
            expected = seen
        assert seen == expected, order


def test_block_distinct_event_later_than_twice_the_window_is_judged_on_its_own_window(
    store: StateStore,
) -> None:
    """Calls at 10:00 and, hours later, busy traffic (enough to prune); then a call of 10:30
    arrives: its window still holds the 10:00 call (members live window + LATENESS)."""
    run = distinct(store, Bounds(keep={}, limits={}, stored_per_event={}))
    run(Contribution(T, "early", ("i-1", "i-2")))
    for n in range(40):
        run(Contribution(T + 5 * HOUR + n, f"busy-{n:02d}", (f"i-b{n}",)))
    windows = run(Contribution(T + 1800, "late", ("i-3",)))
    assert own(windows, "late").members == ("i-1", "i-2", "i-3")


def test_block_distinct_members_past_the_lateness_bound_are_pruned(store: StateStore) -> None:
    run = distinct(store, Bounds(keep={}, limits={}, stored_per_event={}))
    for n in range(40):  # enough stale members to be worth a prune
        run(Contribution(T + n, f"old-{n:02d}", ("i-1",)))
    horizon = T + int((WINDOW + LATENESS).total_seconds()) + 60
    for n in range(3):
        run(Contribution(horizon + n, f"new-{n:02d}", (f"i-n{n}",)))
    held = store.apply(run.block.update(KEY, Contribution(horizon + 99, "probe")))
    assert not any("|old" in m for m in held[EVENTS])


def test_block_distinct_retry_is_idempotent(store: StateStore) -> None:
    run = distinct(store)
    run(Contribution(T, "a", ("i-1",)))
    first = run(Contribution(T + 60, "b", ("i-2",)))
    again = run(Contribution(T + 60, "b", ("i-2",)))
    assert first == again


def test_block_distinct_is_bounded_and_decides_past_its_limit(store: StateStore) -> None:
    """A busy key stays within keep + one prune batch; an update refused at the limit is still
    judged with its own members and marked capped."""
    run = distinct(store)
    for n in range(90):
        run(Contribution(T + n, f"e{n:03d}", (f"i-{n}",)))
    held = store.apply(run.block.update(KEY, Contribution(T + 89, "e089", ("i-89",))))
    assert SMALL.keep[EVENTS] <= len(held[EVENTS]) <= SMALL.keep[EVENTS] + 32
    assert run.prunes > 0
    # an item grown past the limit (before the bounds): the next update is refused
    grown = Bounds(keep=SMALL.keep, limits={EVENTS: 1}, stored_per_event=SMALL.stored_per_event)
    refused = Run(DistinctInWindow(WINDOW, bounds=grown), store)(
        Contribution(T + 400, "refused", ("i-x", "i-y", "i-z"))
    )
    window = own(refused, "refused")
    assert window.capped
    assert {"i-x", "i-y", "i-z"} <= set(window.members)


def test_block_distinct_stores_at_most_its_per_event_share(store: StateStore) -> None:
    run = distinct(store)
    (window,) = run(Contribution(T, "big", tuple(f"i-{n}" for n in range(12))))
    assert len(window.members) == 12  # its own window counts them all
    held = store.apply(run.block.update(KEY, Contribution(T + 1, "probe")))
    assert len(held[MEMBERS]) == SMALL.stored_per_event[MEMBERS]


# --- correlate-through-resource -------------------------------------------------------------

CHAIN = timedelta(hours=24)


def correlate(store: StateStore) -> Run[Mention, Correlation]:
    return Run(CorrelateThroughResource(CHAIN, keep=16, limit=24), store)


def first(epoch: int, event_id: str, **data: object) -> Mention:
    return Mention(epoch, event_id, Side.FIRST, data)


def second(epoch: int, event_id: str, **data: object) -> Mention:
    return Mention(epoch, event_id, Side.SECOND, data)


def pairs(reading: Correlation) -> list[tuple[str, str]]:
    return [(p.first.event_id, p.second.event_id) for p in reading.pairs]


def test_block_correlate_links_in_order(store: StateStore) -> None:
    run = correlate(store)
    assert pairs(run(first(T, "c", who="creator"))) == []
    reading = run(second(T + HOUR, "e", who="executor"))
    assert pairs(reading) == [("c", "e")]
    assert reading.pairs[0].first.data == {"who": "creator"}


def test_block_correlate_links_in_reverse_order(store: StateStore) -> None:
    run = correlate(store)
    assert pairs(run(second(T + HOUR, "e"))) == []
    assert pairs(run(first(T, "c"))) == [("c", "e")]


def test_block_correlate_every_second_before_the_first_gets_its_pair(store: StateStore) -> None:
    """Issue 17.1: two runs arrive before the creation; the creation links both."""
    run = correlate(store)
    run(second(T + 600, "e1"))
    run(second(T + 900, "e2"))
    run(second(T + 25 * HOUR, "e-outside"))
    run(second(T - 60, "e-before"))
    assert pairs(run(first(T, "c"))) == [("c", "e1"), ("c", "e2")]


def test_block_correlate_window_edges(store: StateStore) -> None:
    run = correlate(store)
    run(first(T, "c"))
    assert pairs(run(second(T + 24 * HOUR, "edge"))) == [("c", "edge")]
    assert pairs(run(second(T + 24 * HOUR + 1, "past"))) == []


def test_block_correlate_second_links_to_its_latest_first(store: StateStore) -> None:
    run = correlate(store)
    run(first(T, "c1"))
    run(first(T + HOUR, "c2"))
    assert pairs(run(second(T + 2 * HOUR, "e"))) == [("c2", "e")]
    # c1 arriving again (a retry) claims no second whose latest first is c2
    assert pairs(run(first(T, "c1"))) == []


def test_block_correlate_every_order_gives_every_second_a_pair(store: StateStore) -> None:
    events = [first(T, "c"), second(T + 60, "e1"), second(T + 120, "e2"), second(T + 180, "e3")]
    for n, order in enumerate(itertools.permutations(events)):
        run = Run(CorrelateThroughResource(CHAIN), store, StateKey("k", "1", f"p{n}"))
        found = {pair for event in order for pair in pairs(run(event))}
        assert found == {("c", "e1"), ("c", "e2"), ("c", "e3")}, order


def test_block_correlate_retry_is_idempotent(store: StateStore) -> None:
    run = correlate(store)
    run(first(T, "c", ids=["i-1"]))
    reading = run(second(T + 60, "e"))
    assert run(second(T + 60, "e")) == reading
    held = store.apply(run.block.update(KEY, second(T + 60, "e")))
    assert len(held["second"]) == 1


def test_block_correlate_is_bounded(store: StateStore) -> None:
    run = correlate(store)
    for n in range(60):
        run(second(T + n, f"e{n:03d}", ua="x" * 10_000))
    held = store.apply(run.block.update(KEY, second(T + 99, "probe")))
    assert len(held["second"]) <= 24
    assert max(len(m.encode()) for m in held["second"]) < 2_300


def test_block_correlate_data_is_bounded_whatever_it_holds() -> None:
    huge = {f"field{n}": "y" * 5_000 for n in range(50)} | {"ids": [str(n) for n in range(99)]}
    assert len(str(bounded_data(huge)).encode()) < 2_300
    assert DEFAULT_KEEP * 2 * 2_300 < 400 * 1024
