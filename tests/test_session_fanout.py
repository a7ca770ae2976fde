"""AWS.SSM.SessionFanout: distinct StartSession targets per principal in a sliding window."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detections.session_fanout import SessionFanoutDetection
from ssm_detect.findings import Finding, Severity
from ssm_detect.settings import Settings
from tests.builders import T0, Runner, iso, load_record, minutes

DETECTION = "AWS.SSM.SessionFanout"
TEMPLATE = "session_fanout_walk_1.json"


def session(
    target: str, at: datetime, event_id: str, *, region: str = "us-west-2", error: str | None = None
) -> dict[str, Any]:
    record = load_record(TEMPLATE)
    record["eventID"] = event_id
    record["eventTime"] = iso(at)
    record["awsRegion"] = region
    record["requestParameters"]["target"] = target
    if error:
        record["errorCode"] = error
        record["responseElements"] = None
    return record


def run(records: list[dict[str, Any]], settings: Settings | None = None) -> list[list[Finding]]:
    runner = Runner(settings, [SessionFanoutDetection()])
    return [runner.process(r) for r in records]


def test_session_fanout_third_distinct_target_fires() -> None:
    results = run(
        [
            session("i-01", T0, "s1"),
            session("i-02", T0 + minutes(10), "s2"),
            session("i-03", T0 + minutes(20), "s3"),
        ]
    )

    assert [len(r) for r in results] == [0, 0, 1]
    finding = results[2][0]
    assert finding.detection_id == DETECTION
    assert finding.severity is Severity.MEDIUM
    assert finding.context["distinct_targets"] == 3
    assert finding.event_ids == ("s1", "s2", "s3")
    assert [e["event_id"] for e in finding.context["contributing_events"]] == ["s1", "s2", "s3"]
    assert {r.label for r in finding.resources} >= {"i-01", "i-02", "i-03"}


def test_session_fanout_operator_reopening_two_nodes_stays_quiet() -> None:
    records = [session(t, T0 + minutes(5 * i), f"s{i}") for i, t in enumerate(["i-01", "i-02"] * 4)]

    assert all(r == [] for r in run(records))


def test_session_fanout_window_slides_across_the_hour() -> None:
    at = T0.replace(minute=58)
    results = run(
        [
            session("i-01", at, "s1"),
            session("i-02", at + minutes(2), "s2"),
            session("i-03", at + minutes(4), "s3"),
        ]
    )

    assert len(results[2]) == 1


def test_session_fanout_outside_the_window_does_not_count() -> None:
    results = run(
        [
            session("i-01", T0, "s1"),
            session("i-02", T0 + minutes(30), "s2"),
            session("i-03", T0 + minutes(61), "s3"),
        ]
    )

    assert results[2] == []


def test_session_fanout_failed_sessions_do_not_count() -> None:
    results = run(
        [
            session("i-01", T0, "s1"),
            session("i-02", T0 + minutes(1), "s2", error="TargetNotConnected"),
            session("i-03", T0 + minutes(2), "s3"),
        ]
    )

    assert results[2] == []


def test_session_fanout_same_id_in_two_regions_is_two_nodes() -> None:
    results = run(
        [
            session("mi-0123456789abcdef0", T0, "s1", region="us-west-2"),
            session("mi-0123456789abcdef0", T0 + minutes(1), "s2", region="eu-west-1"),
            session("i-03", T0 + minutes(2), "s3"),
        ]
    )

    (finding,) = results[2]
    assert sorted(finding.context["window_targets"]) == [
        "i-03 (us-west-2)",
        "mi-0123456789abcdef0 (eu-west-1)",
        "mi-0123456789abcdef0 (us-west-2)",
    ]
    regions = {e["region"] for e in finding.context["contributing_events"]}
    assert regions == {"us-west-2", "eu-west-1"}


def test_session_fanout_threshold_and_window_are_settings() -> None:
    settings = Settings(session_fanout_threshold=1, session_fanout_window=minutes(5))
    results = run(
        [
            session("i-01", T0, "s1"),
            session("i-02", T0 + minutes(4), "s2"),
            session("i-03", T0 + minutes(20), "s3"),
        ],
        settings,
    )

    assert [len(r) for r in results] == [0, 1, 0]


def test_session_fanout_many_nodes_raise_the_severity() -> None:
    records = [session(f"i-{n:02d}", T0 + minutes(n), f"s{n}") for n in range(10)]

    last = run(records)[-1][0]

    assert last.severity is Severity.HIGH
    assert last.severity_reasons == ("raised: 10 distinct nodes",)


def test_session_fanout_service_principal_is_skipped() -> None:
    records = [session(f"i-{n:02d}", T0 + minutes(n), f"s{n}") for n in range(3)]
    for record in records:
        record["userIdentity"]["invokedBy"] = "ssm.amazonaws.com"

    assert all(r == [] for r in run(records))


@given(st.permutations(range(4)))
def test_properties_session_fanout_findings_independent_of_arrival_order(
    order: list[int],
) -> None:
    """The same sessions, any arrival order: the same set of (decisive event) findings."""
    times = [0, 10, 20, 75]
    targets = ["i-01", "i-02", "i-03", "i-04"]
    records = [session(targets[i], T0 + minutes(times[i]), f"s{i}") for i in range(4)]
    expected = {f.id for f in itertools.chain.from_iterable(run(records))}

    found = {f.id for f in itertools.chain.from_iterable(run([records[i] for i in order]))}

    assert found == expected
    assert len(expected) == 1


@pytest.mark.parametrize("target", [None, ""])
def test_session_fanout_session_without_target_is_not_a_candidate(target: str | None) -> None:
    record = session("i-01", T0, "s1")
    record["requestParameters"]["target"] = target

    assert run([record]) == [[]]
