"""AWS.SSM.DistributedCommand: the fan-out item stays bounded, and past its bounds it still decides.

The item of a busy principal is seeded directly in the detection's member format (what that many
calls leave behind), then real events go through the pipeline, on the memory and SQLite stores
(DynamoDB Local: tests/test_dynamodb_local_limits.py). The numbers come from the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detections import members
from detections.distributed_command import (
    CALLS,
    INSTANCES,
    KEEP_MEMBERS,
    MEMBER_LIMITS,
    STORED_PER_CALL,
    DistributedCommandDetection,
)
from ssm_detect.findings import Finding
from ssm_detect.models.event_time import to_epoch
from ssm_detect.pipeline import Pipeline
from ssm_detect.settings import Settings
from ssm_detect.state import StateSnapshot, StateStore, StateUpdate
from ssm_detect.state.block import LATENESS
from ssm_detect.state.memory import MemoryStateStore
from ssm_detect.state.sqlite import SqliteStateStore
from tests.builders import T0, parse, send_command

DETECTION = "AWS.SSM.DistributedCommand"
KEY = "fanout#111122223333#arn:aws:iam::111122223333:role/PlatformOps"
PER_PRUNE = 32  # the prune batches at least this many members (the module's `_PRUNE_AT_STALE`)


class Run:
    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.pipeline = Pipeline([DistributedCommandDetection()], store, Settings())

    def fired(self, record: dict[str, Any]) -> list[Finding]:
        findings = self.pipeline.process(parse(record)).findings
        return [f for f in findings if f.detection_id == DETECTION]

    def held(self) -> StateSnapshot:
        return self.store.apply(StateUpdate(key=KEY, add={}, retention=timedelta(hours=2)))

    def seed(self, count: int, end: datetime, *, instances: bool = True) -> None:
        """`count` one-instance calls, one a second, the last at `end`, in the detection's format;
        written in one go, past any limit (as an item grown before the bounds)."""
        calls, reached = set(), set()
        for n in range(count):
            epoch = to_epoch(end - timedelta(seconds=count - 1 - n))
            calls.add(members.encode(epoch, f"seed-{n:05d}"))
            reached.add(members.encode(epoch, f"seed-{n:05d}|i-seed{n:012x}"))
        add = {CALLS: frozenset(calls)} | ({INSTANCES: frozenset(reached)} if instances else {})
        self.store.apply(StateUpdate(key=KEY, add=add, retention=timedelta(hours=2)))


@pytest.fixture(params=["memory", "sqlite"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Run]:
    if request.param == "memory":
        yield Run(MemoryStateStore())
    else:
        store = SqliteStateStore(tmp_path / "state.sqlite")
        yield Run(store)
        store.close()


def call(n: int, at: datetime, instances: list[str] | None = None) -> dict[str, Any]:
    return send_command(instances or [f"i-0{n:016x}"], event_id=f"call-{n:05d}", at=at)


def test_distributed_bounds_are_well_below_dynamodb_item_limit() -> None:
    """At the limits, with CloudTrail's shapes (module comment), the item is under 210 KB."""
    call_member, instance_member, target_member = 60, 68, 305
    largest = (
        MEMBER_LIMITS[CALLS] * call_member
        + (MEMBER_LIMITS[INSTANCES] + STORED_PER_CALL[INSTANCES]) * instance_member
        + (MEMBER_LIMITS["unbounded"] + STORED_PER_CALL["unbounded"]) * target_member
    )
    assert largest < 210 * 1024
    # a lone writer never meets a limit: the bound, a prune batch short of one, and a call
    per_call = {CALLS: 1} | STORED_PER_CALL
    for name, keep in KEEP_MEMBERS.items():
        assert keep + PER_PRUNE - 1 + per_call[name] < MEMBER_LIMITS[name], name


def test_distributed_busy_principal_keeps_its_newest_members_within_the_bound(run: Run) -> None:
    """GIVEN a principal at the eviction bound WHEN it goes on, one new instance a second THEN
    every call fires, each set stays between the bound and the bound plus one prune batch,
    and what is held is the newest calls."""
    start = T0 + timedelta(hours=1)
    run.seed(KEEP_MEMBERS[CALLS], start - timedelta(seconds=1))

    for n in range(200):
        assert len(run.fired(call(n, start + timedelta(seconds=n)))) == 1, n
        held = run.held()
        for name in (CALLS, INSTANCES):
            assert KEEP_MEMBERS[name] <= len(held[name]) <= KEEP_MEMBERS[name] + PER_PRUNE, n

    last = to_epoch(start + timedelta(seconds=n))
    # a call member keeps the call's region (for per-event links) and document (for the finding)
    assert max(run.held()[CALLS]) == members.encode(
        last, f"call-{n:05d}|us-west-2|AWS-RunShellScript"
    )
    assert min(run.held()[CALLS]) > members.encode(last - KEEP_MEMBERS[CALLS] - PER_PRUNE, "")


def test_distributed_update_refused_at_the_limit_is_still_decided_and_not_stored(
    run: Run,
) -> None:
    """GIVEN an item holding more calls than the limit (grown before the bounds) WHEN a call
    reaches three new instances THEN it fires on them with the state flagged as capped, is not
    stored, and the prune takes the item back toward the bound."""
    at = T0 + timedelta(hours=1)
    run.seed(MEMBER_LIMITS[CALLS] + 100, at - timedelta(seconds=1), instances=False)
    record = call(1, at, ["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2", "i-0aaaaaaaaaaaaaaa3"])

    (finding,) = run.fired(record)

    assert finding.context["distinct_instances"] == 3
    assert "state_capped" in finding.context
    assert finding.context["contributing_event_ids"][-1] == "call-00001"
    held = run.held()
    assert INSTANCES not in held
    assert len(held[CALLS]) == KEEP_MEMBERS[CALLS]  # evicted down to the bound, oldest first
    assert all("|call-00001|" not in m for m in held[CALLS])


def test_distributed_redelivery_at_the_limit_gives_the_same_finding(run: Run) -> None:
    at = T0 + timedelta(hours=1)
    record = call(1, at, ["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2", "i-0aaaaaaaaaaaaaaa3"])
    run.seed(MEMBER_LIMITS[CALLS] + 2000, at - timedelta(seconds=1), instances=False)

    first, again = run.fired(record), run.fired(record)

    assert [f.id for f in first] == [f.id for f in again]
    assert first[0].context["distinct_instances"] == again[0].context["distinct_instances"] == 3


def test_distributed_busy_principal_on_at_most_threshold_instances_never_fires(run: Run) -> None:
    """The bounds drop calls, never invent instances: a principal that keeps to two instances
    stays silent however many calls it makes; a third instance fires at once."""
    pair = ["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"]
    calls = KEEP_MEMBERS[CALLS] // 2 + 100  # two instances a call: instances pass their bound
    for n in range(calls):
        assert run.fired(call(n, T0 + timedelta(seconds=n), pair)) == [], n
    assert len(run.held()[INSTANCES]) >= KEEP_MEMBERS[INSTANCES]

    third = call(calls, T0 + timedelta(seconds=calls), ["i-0aaaaaaaaaaaaaaa3"])
    (finding,) = run.fired(third)
    assert finding.context["distinct_instances"] == 3


def test_distributed_item_held_at_its_limit_still_ages(run: Run) -> None:
    """GIVEN an item at its limit whose calls are all older than the retention WHEN the principal
    calls again THEN the prune measures age from that call (which the store refused), so the
    old members go and the next call is stored."""
    run.seed(MEMBER_LIMITS[CALLS], T0, instances=False)
    later = T0 + timedelta(hours=1) + LATENESS + timedelta(hours=1)  # past the retention

    run.fired(call(1, later))
    run.fired(call(2, later + timedelta(seconds=1)))
    run.fired(call(3, later + timedelta(seconds=2)))

    held = run.held()[CALLS]
    assert (
        members.encode(
            to_epoch(later + timedelta(seconds=2)), "call-00003|us-west-2|AWS-RunShellScript"
        )
        in held
    )
    assert len(held) < MEMBER_LIMITS[CALLS]


def test_distributed_call_with_more_instances_than_stored_counts_them_all(run: Run) -> None:
    many = [f"i-0{n:016x}" for n in range(300)]

    (finding,) = run.fired(call(1, T0, many))

    assert finding.context["distinct_instances"] == 300
    assert "state_capped" not in finding.context
    assert len(run.held()[INSTANCES]) == STORED_PER_CALL[INSTANCES]


def test_distributed_principal_below_the_bounds_is_not_flagged_capped(run: Run) -> None:
    run.seed(KEEP_MEMBERS[CALLS] - 10, T0 - timedelta(seconds=1))
    (finding,) = run.fired(call(1, T0))
    assert "state_capped" not in finding.context


def test_distributed_tag_targeting_principal_is_bounded_and_never_refused(run: Run) -> None:
    """Unknown-size targets (the largest members) have their own, smaller bound: a principal
    targeting by tag once a second stays within it, and a lone writer is never refused."""
    for n in range(KEEP_MEMBERS["unbounded"] * 3):
        record = send_command(
            [],
            event_id=f"tag-{n:05d}",
            at=T0 + timedelta(seconds=n),
            targets=[{"Key": "tag:Env", "Values": [f"prod-{n}"]}],
        )
        assert len(run.fired(record)) == 1, n
        held = run.held()
        assert any(f"|tag-{n:05d}|" in m for m in held[CALLS]), n  # stored, not refused
        assert len(held["unbounded"]) <= KEEP_MEMBERS["unbounded"] + PER_PRUNE, n
