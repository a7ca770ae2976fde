"""AWS.SSM.SecureStringHarvesting: distinct decrypted parameter names per principal in a window."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detections.securestring_harvesting import SecureStringHarvestingDetection, is_person
from ssm_detect.findings import Finding, Severity
from ssm_detect.settings import Allowlist, AllowRule, Settings
from ssm_detect.state.base import StateUpdate
from tests.builders import T0, Runner, iso, load_record, minutes, parse

DETECTION = "AWS.SSM.SecureStringHarvesting"
ROLE = "secrets_role_twelve_1.json"  # an assumed role (PlatformOps)
USER = "secrets_stratus_2_batch.json"  # an IAM user with a long-term key


def read(
    names: list[str],
    at: datetime,
    event_id: str,
    *,
    template: str = ROLE,
    event_name: str = "GetParameters",
    decrypt: object = True,
    region: str = "us-west-2",
    error: str | None = None,
) -> dict[str, Any]:
    record = load_record(template)
    record["eventID"] = event_id
    record["eventTime"] = iso(at)
    record["eventName"] = event_name
    record["awsRegion"] = region
    record["requestParameters"] = {"names": names, "withDecryption": decrypt}
    if error:
        record["errorCode"] = error
    return record


def describe(at: datetime, event_id: str, template: str = ROLE) -> dict[str, Any]:
    record = read([], at, event_id, template=template, event_name="DescribeParameters")
    record["requestParameters"] = {"maxResults": 50}
    return record


def by_path(path: str, at: datetime, event_id: str, *, recursive: bool = True) -> dict[str, Any]:
    record = read([], at, event_id, event_name="GetParametersByPath")
    record["requestParameters"] = {"path": path, "recursive": recursive, "withDecryption": True}
    return record


def names(prefix: str, count: int) -> list[str]:
    return [f"/{prefix}/secret-{i}" for i in range(count)]


def run(records: list[dict[str, Any]], settings: Settings | None = None) -> list[list[Finding]]:
    runner = Runner(settings, [SecureStringHarvestingDetection()])
    return [runner.process(r) for r in records]


def test_harvesting_counts_distinct_names_across_batches() -> None:
    results = run(
        [
            read(names("a", 10), T0, "r1"),
            read(names("a", 10), T0 + minutes(1), "r2"),  # the same ten again
            read(["/a/secret-10"], T0 + minutes(2), "r3"),  # the eleventh
        ]
    )

    assert [len(r) for r in results] == [0, 0, 1]
    finding = results[2][0]
    assert finding.context["distinct_parameters"] == 11
    assert finding.severity is Severity.MEDIUM  # a role, no enumeration
    assert finding.event_ids == ("r1", "r2", "r3")
    assert finding.context["threshold"] == 10


def test_harvesting_single_get_parameter_calls_add_up() -> None:
    records = []
    for i in range(11):
        record = read([], T0 + minutes(i), f"g{i}", event_name="GetParameter")
        record["requestParameters"] = {"name": f"/x/{i}", "withDecryption": True}
        records.append(record)

    results = run(records)

    assert [len(r) for r in results] == [0] * 10 + [1]


def test_harvesting_person_or_long_term_key_is_high() -> None:
    results = run([read(names("u", 11), T0, "r1", template=USER)])

    (finding,) = results[0]
    assert finding.severity is Severity.HIGH
    assert "person or long-term key" in finding.severity_reasons[0]


def test_harvesting_after_enumeration_is_high() -> None:
    results = run([describe(T0, "d1"), read(names("e", 11), T0 + minutes(1), "r1")])

    assert results[0] == []
    (finding,) = results[1]
    assert finding.severity is Severity.HIGH
    assert finding.context["enumerated"] == 1


def test_harvesting_late_enumeration_raises_the_window_but_opens_none() -> None:
    records = [describe(T0, "d1"), read(names("e", 11), T0 + minutes(1), "r1")]

    late = run([records[1], records[0]])

    assert late[0][0].severity is Severity.MEDIUM
    (raised,) = late[1]
    assert raised.severity is Severity.HIGH
    assert raised.id == late[0][0].id  # the same finding, escalated (decided by the read)


def test_harvesting_outside_the_window_does_not_count() -> None:
    results = run([read(names("w", 6), T0, "r1"), read(names("v", 6), T0 + minutes(61), "r2")])

    assert results[1] == []


def test_harvesting_same_name_in_two_regions_is_two_parameters() -> None:
    results = run(
        [
            read(names("r", 6), T0, "r1", region="us-west-2"),
            read(names("r", 6), T0 + minutes(1), "r2", region="eu-west-1"),
        ]
    )

    (finding,) = results[1]
    assert finding.context["distinct_parameters"] == 12


@pytest.mark.parametrize("error", ["AccessDenied", "ParameterNotFound", "ThrottlingException"])
def test_harvesting_failed_reads_do_not_count(error: str) -> None:
    results = run(
        [read(names("f", 10), T0, "r1", error=error), read(["/f/x"], T0 + minutes(1), "r2")]
    )

    assert results == [[], []]


def test_harvesting_reads_without_decryption_are_not_candidates() -> None:
    assert run([read(names("n", 20), T0, "r1", decrypt=False)]) == [[]]


def test_harvesting_unreadable_with_decryption_counts_and_is_named() -> None:
    (finding,) = run([read(names("o", 11), T0, "r1", decrypt="maybe")])[0]

    assert finding.context["malformed_fields"] == ["withDecryption is not a boolean (read as true)"]


def test_harvesting_root_path_recursive_fires_alone() -> None:
    (finding,) = run([by_path("/", T0, "p1")])[0]

    assert finding.context["all_parameters_of"] == [
        "every parameter of us-west-2 (path / recursive)"
    ]
    assert "every parameter of a region" in finding.description


def test_harvesting_other_paths_count_as_one_each() -> None:
    results = run(
        [
            by_path("/app/", T0, "p1"),
            by_path("/app/", T0 + minutes(1), "p2"),
            by_path("/", T0 + minutes(2), "p3", recursive=False),
        ]
    )

    assert results == [[], [], []]


def test_harvesting_allowlisted_workload_role_costs_no_state_call() -> None:
    settings = Settings(
        allowlist=Allowlist({DETECTION: AllowRule(principals=("arn:aws:iam::*:role/PlatformOps",))})
    )
    runner = Runner(settings, [SecureStringHarvestingDetection()])
    applied: list[StateUpdate] = []
    original = runner.store.apply

    def spy(update: StateUpdate) -> Any:
        applied.append(update)
        return original(update)

    runner.store.apply = spy  # type: ignore[method-assign]

    assert runner.process(read(names("z", 30), T0, "r1")) == []
    assert applied == []


@pytest.mark.parametrize(
    ("template", "person"),
    [(ROLE, False), (USER, True), ("secrets_app_role_own_five_1.json", False)],
)
def test_harvesting_is_person(template: str, person: bool) -> None:
    assert is_person(parse(load_record(template)).principal) is person


def test_harvesting_identity_center_role_is_a_person() -> None:
    record = load_record(ROLE)
    issuer = record["userIdentity"]["sessionContext"]["sessionIssuer"]
    issuer["arn"] = (
        "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0a1b"
    )

    assert is_person(parse(record).principal)


@given(st.permutations(range(5)))
def test_properties_harvesting_findings_independent_of_arrival_order(order: list[int]) -> None:
    records = [
        describe(T0, "d0"),
        read(names("p", 5), T0 + minutes(1), "r1"),
        read(names("q", 5), T0 + minutes(2), "r2"),
        read(["/q/extra"], T0 + minutes(3), "r3"),
        read(names("s", 3), T0 + minutes(90), "r4"),
    ]
    expected = {f.id for f in itertools.chain.from_iterable(run(records))}

    found = {f.id for f in itertools.chain.from_iterable(run([records[i] for i in order]))}

    assert found == expected
    assert len(expected) == 1
