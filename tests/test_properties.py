"""Invariants over generated inputs: order, re-delivery, and a parser that never raises."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from detections.distributed_command import DistributedCommandDetection
from detections.rare_document_creator import RareCommandDocumentCreatorDetection
from ssm_detect.findings import finding_id
from ssm_detect.ingest import BadEvent, Ignored, records_in, to_event
from ssm_detect.models.event_time import parse_event_time
from ssm_detect.principal import PrincipalKeying
from ssm_detect.ssm_event import SsmEvent
from tests.builders import T0, Runner, create_document, load_payload, parse, send_command
from tests.conftest import EVENTS

DISTRIBUTED = "AWS.SSM.DistributedCommand"
SEND_COMMAND = "AWS.SSM.SendCommand"
POOL = tuple(f"i-0{n:016x}" for n in range(6))
WINDOW = 3600
THRESHOLD = 2  # the defaults of Settings(), restated for the oracle below
FAST = settings(max_examples=60, deadline=None)

Pair = tuple[str, str]


@dataclass(frozen=True)
class Call:
    offset: int
    """Seconds after T0."""
    instances: tuple[str, ...]
    tag_target: bool = False


@dataclass(frozen=True)
class Scenario:
    calls: tuple[Call, ...]
    order: tuple[int, ...]
    """A permutation of the calls' indexes: the order they are processed in."""
    prefix: int = 0
    """How many of the processed events are delivered a second time afterwards."""


calls_strategy = st.lists(
    st.builds(
        Call,
        offset=st.integers(0, 3 * 3600),
        instances=st.lists(st.sampled_from(POOL), min_size=1, max_size=3, unique=True).map(tuple),
        tag_target=st.sampled_from([False, False, False, False, True]),
    ),
    min_size=1,
    max_size=8,
)


@st.composite
def scenarios(draw: st.DrawFn, with_tags: bool = True) -> Scenario:
    calls = draw(calls_strategy)
    if not with_tags:
        calls = [Call(c.offset, c.instances) for c in calls]
    order = draw(st.permutations(range(len(calls))))
    prefix = draw(st.integers(1, len(calls)))
    return Scenario(tuple(calls), tuple(order), prefix)


def event_id(index: int) -> str:
    return f"e{index:02d}"


def events_of(calls: Sequence[Call]) -> list[SsmEvent]:
    events = []
    for index, spec in enumerate(calls):
        targets = [{"Key": "tag:Env", "Values": ["prod"]}] if spec.tag_target else None
        record = send_command(
            spec.instances,
            event_id=event_id(index),
            at=T0 + timedelta(seconds=spec.offset),
            targets=targets,
        )
        events.append(parse(record))
    return events


def time_order(calls: Sequence[Call]) -> list[int]:
    return sorted(range(len(calls)), key=lambda i: (calls[i].offset, event_id(i)))


def pairs(runner: Runner, events: Sequence[SsmEvent]) -> list[set[Pair]]:
    """The (detection, finding id) pairs each event produced, in processing order."""
    return [{(f.detection_id, f.id) for f in runner.pipeline.process(e).findings} for e in events]


def processed(events: Sequence[SsmEvent], order: Sequence[int]) -> tuple[Runner, set[Pair]]:
    runner = Runner()
    produced = pairs(runner, [events[i] for i in order])
    return runner, set().union(*produced)


def distributed(found: set[Pair]) -> set[str]:
    return {fid for detection, fid in found if detection == DISTRIBUTED}


def first_crossing(calls: Sequence[Call]) -> str | None:
    """Oracle: the decisive event of the earliest window (ending at a call) that crosses."""
    for end in sorted({c.offset for c in calls}):
        inside = [c for c in calls if end - WINDOW <= c.offset <= end]
        distinct = {i for c in inside for i in c.instances}
        if len(distinct) > THRESHOLD or any(c.tag_target for c in inside):
            return max(event_id(i) for i, c in enumerate(calls) if c.offset == end)
    return None


def distributed_id(events: Sequence[SsmEvent], decisive: str) -> str:
    event = events[0]
    return finding_id(DISTRIBUTED, event.account_id, event.principal.key, decisive)


# Late arrivals make c4's window cross only after c4 was judged (see the unit test
# test_distributed_finding_set_same_in_time_order_and_late_order).
LATE_ORDER_COUNTEREXAMPLE = Scenario(
    calls=(
        Call(0, (POOL[1],)),
        Call(600, (POOL[2],)),
        Call(1200, (POOL[3],)),
        Call(1800, (POOL[1],)),
    ),
    order=(3, 0, 1, 2),
    prefix=1,
)


# Order -------------------------------------------------------------------------------------


@FAST
@given(scenarios())
def test_properties_distributed_first_crossing_found_in_any_order(scenario: Scenario) -> None:
    events = events_of(scenario.calls)
    _, in_time = processed(events, time_order(scenario.calls))
    _, shuffled = processed(events, scenario.order)

    decisive = first_crossing(scenario.calls)

    if decisive is None:
        assert distributed(in_time) == distributed(shuffled) == set()
    else:
        wanted = distributed_id(events, decisive)
        assert wanted in distributed(in_time)
        assert wanted in distributed(shuffled)
    # Whatever arrives late can only hide a finding, never invent one.
    assert distributed(shuffled) <= distributed(in_time)


@FAST
@given(scenarios())
def test_properties_send_command_findings_independent_of_order(scenario: Scenario) -> None:
    events = events_of(scenario.calls)
    _, in_time = processed(events, time_order(scenario.calls))
    _, shuffled = processed(events, scenario.order)

    sigma = {p for p in in_time if p[0] == SEND_COMMAND}
    assert sigma == {p for p in shuffled if p[0] == SEND_COMMAND}
    assert len(sigma) == len(events)


@FAST
@example(LATE_ORDER_COUNTEREXAMPLE)
@given(scenarios())
def test_properties_distributed_finding_set_independent_of_order(scenario: Scenario) -> None:
    events = events_of(scenario.calls)
    _, in_time = processed(events, time_order(scenario.calls))
    _, shuffled = processed(events, scenario.order)

    assert shuffled == in_time


# Re-delivery -------------------------------------------------------------------------------


@FAST
@given(scenarios())
def test_properties_immediate_redelivery_changes_no_verdict(scenario: Scenario) -> None:
    events = [events_of(scenario.calls)[i] for i in scenario.order]
    once = Runner()
    twice = Runner()

    for event in events:
        first = pairs(once, [event])[0]
        original, again = pairs(twice, [event, event])
        assert original == first
        assert again == original


@FAST
@given(scenarios())
def test_properties_reprocessing_a_prefix_in_time_order_adds_no_finding(scenario: Scenario) -> None:
    events = events_of(scenario.calls)
    order = time_order(scenario.calls)
    runner, before = processed(events, order)

    replayed = pairs(runner, [events[i] for i in order[: scenario.prefix]])

    assert set().union(*replayed) <= before


@FAST
@example(LATE_ORDER_COUNTEREXAMPLE)
@given(scenarios())
def test_properties_reprocessing_a_prefix_in_any_order_adds_no_finding(scenario: Scenario) -> None:
    events = events_of(scenario.calls)
    runner, before = processed(events, scenario.order)

    replayed = pairs(runner, [events[i] for i in scenario.order[: scenario.prefix]])

    assert set().union(*replayed) <= before


@FAST
@given(
    days=st.lists(st.integers(0, 40 * 24), min_size=1, max_size=8, unique=True),
    prefix=st.integers(0, 8),
)
def test_properties_rare_creator_reprocessing_prefix_changes_no_verdict(
    days: list[int], prefix: int
) -> None:
    records = [
        create_document(event_id=f"d{n:02d}", at=T0 + timedelta(hours=hours))
        for n, hours in enumerate(sorted(days))
    ]
    events = [parse(r) for r in records]
    runner = Runner(detections=[RareCommandDocumentCreatorDetection()])
    first = pairs(runner, events)

    again = pairs(runner, events[:prefix])

    assert again == first[:prefix]
    fired = [e.event_id for e, p in zip(events, first, strict=True) if p]
    gaps = [b - a for a, b in zip(sorted(days), sorted(days)[1:], strict=False)]
    assert len(fired) == 1 + sum(gap > 10 * 24 for gap in gaps)


@FAST
@given(scenarios(with_tags=False))
def test_properties_distributed_fires_iff_more_than_threshold_distinct_in_a_window(
    scenario: Scenario,
) -> None:
    events = events_of(scenario.calls)
    runner = Runner(detections=[DistributedCommandDetection()])
    order = time_order(scenario.calls)

    for index in order:
        findings = runner.pipeline.process(events[index]).findings
        call = scenario.calls[index]
        inside = [
            c
            for i, c in enumerate(scenario.calls)
            if call.offset - WINDOW <= c.offset <= call.offset
            and (c.offset, event_id(i)) <= (call.offset, event_id(index))
        ]
        distinct = {i for c in inside for i in c.instances}
        assert bool(findings) == (len(distinct) > THRESHOLD)


# The parser never raises -------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "ssm.amazonaws.com",
            "SendCommand",
            "CreateDocument",
            "AWS API Call via CloudTrail",
            "2025-02-19T16:32:39Z",
            "2025-02-19 16:32:39.000000000",
            "AssumedRole",
            "IdentityCenterUser",
            "*",
        ]
    ),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "eventID",
                    "eventTime",
                    "eventSource",
                    "eventName",
                    "userIdentity",
                    "type",
                    "detail",
                    "detail-type",
                    "id",
                    "source",
                    "Records",
                    "requestParameters",
                    "responseElements",
                    "instanceIds",
                    "targets",
                    "Key",
                    "Values",
                    "command",
                    "errorCode",
                ]
            )
            | st.text(max_size=8),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)

EVENT_FILES = sorted(p.name for p in EVENTS.glob("*.json") if p.name != "manifest.json")


def parse_everything(payload: object) -> list[object]:
    results: list[object] = []
    for raw in records_in(payload):
        if isinstance(raw, BadEvent | Ignored):
            results.append(raw)
            continue
        assert isinstance(raw, dict)
        results.extend(to_event(raw, keying) for keying in PrincipalKeying)
    for result in results:
        assert isinstance(result, SsmEvent | BadEvent | Ignored)
        if isinstance(result, BadEvent):
            assert "\n" not in result.reason
    return results


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_properties_parser_never_raises_on_json_values(payload: object) -> None:
    parse_everything(payload)
    parse_everything([payload, {"Records": [payload]}])


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    payload = copy.deepcopy(load_payload(draw(st.sampled_from(EVENT_FILES))))
    for _ in range(draw(st.integers(1, 3))):
        _mutate(draw, payload)
    return payload


def _mutate(draw: st.DrawFn, payload: Any) -> None:
    parent: Any = payload
    while True:
        keys = sorted(parent) if isinstance(parent, dict) else list(range(len(parent)))
        if not keys:
            return
        key = draw(st.sampled_from(keys))
        child = parent[key]
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            parent = child
            continue
        break
    action = draw(st.sampled_from(["drop", "replace", "wrap", "stringify"]))
    if action == "drop":
        del parent[key]
    elif action == "replace":
        parent[key] = draw(json_values)
    elif action == "wrap":
        parent[key] = [child]
    else:
        parent[key] = str(child)


@settings(max_examples=150, deadline=None)
@given(mutated_events())
def test_properties_parser_never_raises_on_mutated_real_events(payload: Any) -> None:
    parse_everything(payload)


@settings(max_examples=80, deadline=None)
@given(mutated_events())
def test_properties_detections_never_raise_on_parsed_mutated_events(payload: Any) -> None:
    runner = Runner()
    for result in parse_everything(payload):
        if isinstance(result, SsmEvent):
            for finding in runner.pipeline.process(result).findings:
                assert finding.event_ids


# Event time --------------------------------------------------------------------------------

aware_times = st.datetimes(
    timezones=st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
)


@settings(max_examples=100, deadline=None)
@example(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))
@given(aware_times)
def test_properties_event_time_iso_text_parses_or_is_value_error(moment: datetime) -> None:
    try:
        parsed = parse_event_time(moment.isoformat())
    except ValueError:
        return
    assert parsed == moment
    assert parsed.tzinfo == UTC


@settings(max_examples=100, deadline=None)
@given(
    st.integers(
        int(datetime(2000, 1, 1, tzinfo=UTC).timestamp()),
        int(datetime(2200, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()),
    ).map(lambda seconds: datetime.fromtimestamp(seconds, UTC))
)
def test_properties_event_time_spellings_agree(moment: datetime) -> None:
    cloudtrail = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    normalised = moment.strftime("%Y-%m-%d %H:%M:%S.000000000")
    offset = moment.astimezone(timezone(timedelta(hours=-5, minutes=-30))).isoformat()

    assert parse_event_time(cloudtrail) == moment
    assert parse_event_time(normalised) == moment
    assert parse_event_time(offset) == moment
