"""AWS.SSM.DistributedCommand: distinct instances per principal within a sliding window."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest

from detections.distributed_command import DistributedCommandDetection
from ssm_detect.findings import Finding, Severity, finding_id
from ssm_detect.settings import Settings
from tests.builders import T0, Runner, iso, load_record, minutes, parse, send_command

DETECTION = "AWS.SSM.DistributedCommand"


def runner(settings: Settings | None = None) -> Runner:
    return Runner(settings, [DistributedCommandDetection()])


def ids(*numbers: int) -> list[str]:
    return [f"i-0{n:016x}" for n in numbers]


def call(instances: list[str], event_id: str, at: datetime = T0, **changes: Any) -> dict[str, Any]:
    return send_command(instances, event_id=event_id, at=at, **changes)


def fired(run: Runner, record: dict[str, Any]) -> list[Finding]:
    return run.fired(record, DETECTION)


def run_all(records: list[dict[str, Any]], settings: Settings | None = None) -> list[Finding]:
    run = runner(settings)
    return [f for record in records for f in fired(run, record)]


def expected_id(decisive: dict[str, Any]) -> str:
    event = parse(decisive)
    return finding_id(DETECTION, event.account_id, event.principal.key, event.event_id)


# Threshold and window ----------------------------------------------------------------------


def test_distributed_three_ids_at_once_fires() -> None:
    record = call(ids(1, 2, 3), "three")

    (finding,) = run_all([record])

    assert finding.id == expected_id(record)
    assert finding.severity is Severity.INFORMATIONAL
    assert finding.context["distinct_instances"] == 3
    assert finding.context["fanout_size"] == 3
    assert finding.event_ids == ("three",)


def test_distributed_panther_three_instances_file_fires() -> None:
    assert len(run_all([load_record("panther_send_command_three_instances.json")])) == 1


@pytest.mark.parametrize("count", [1, 2])
def test_distributed_at_most_threshold_ids_do_not_fire(count: int) -> None:
    assert run_all([call(ids(*range(count)), "few")]) == []


def test_distributed_two_plus_two_straddling_the_hour_fires() -> None:
    first = load_record("fanout_hour_straddle_first_1059.json")
    second = load_record("fanout_hour_straddle_second_1101.json")
    assert first["eventTime"][11:13] != second["eventTime"][11:13]

    findings = run_all([first, second])

    assert [f.id for f in findings] == [expected_id(second)]
    assert findings[0].context["contributing_event_ids"] == [first["eventID"], second["eventID"]]
    assert findings[0].context["distinct_instances"] == 4


def test_distributed_two_plus_two_built_across_the_hour_fires() -> None:
    at = T0 + minutes(59)
    findings = run_all([call(ids(1, 2), "a", at), call(ids(3, 4), "b", at + minutes(2))])

    assert len(findings) == 1


def test_distributed_two_then_two_more_61_minutes_later_does_not_fire() -> None:
    assert run_all([call(ids(1, 2), "a"), call(ids(3, 4), "b", T0 + minutes(61))]) == []


def test_distributed_two_then_two_more_59_minutes_later_fires() -> None:
    assert len(run_all([call(ids(1, 2), "a"), call(ids(3, 4), "b", T0 + minutes(59))])) == 1


def test_distributed_calls_spread_over_the_window_fire_on_the_one_crossing() -> None:
    records = [
        load_record("fanout_split_first.json"),
        load_record("fanout_split_second.json"),
        load_record("fanout_split_third.json"),
    ]

    findings = run_all(records)

    assert [f.id for f in findings] == [expected_id(records[2])]


def test_distributed_same_two_ids_twice_does_not_fire() -> None:
    assert run_all([call(ids(1, 2), "a"), call(ids(2, 1), "b", T0 + minutes(10))]) == []


def test_distributed_same_event_twice_with_two_ids_does_not_fire() -> None:
    record = load_record("fanout_duplicate_delivery_two_instances.json")

    assert run_all([record, record]) == []


def test_distributed_same_event_twice_with_three_ids_fires_the_same_finding() -> None:
    record = load_record("fanout_duplicate_delivery_three_instances.json")

    first, second = run_all([record, record])

    assert first.id == second.id == expected_id(record)


def test_distributed_request_and_response_ids_are_not_double_counted() -> None:
    record = call(ids(1, 2), "a")
    record["responseElements"]["command"]["instanceIds"] = ids(2, 1)

    assert run_all([record]) == []


def test_distributed_response_only_ids_count() -> None:
    record = call(ids(1, 2, 3), "a")
    record["requestParameters"]["instanceIds"] = []

    assert len(run_all([record])) == 1


# Targets -----------------------------------------------------------------------------------


def test_distributed_lowercase_instanceids_target_counts() -> None:
    record = load_record("fanout_targets_instanceids_lowercase_three.json")
    assert record["requestParameters"]["targets"][0]["key"] == "instanceids"

    (finding,) = run_all([record])

    assert finding.context["fanout_size"] == 3
    assert finding.context["unknown_size_targets"] == []


def test_distributed_instanceids_target_and_instance_ids_are_unioned() -> None:
    targets = [{"Key": "InstanceIds", "Values": ids(2, 3)}]
    record = call(ids(1, 2), "a", targets=targets)

    (finding,) = run_all([record])

    assert sorted(finding.context["window_instance_ids"]) == sorted(ids(1, 2, 3))


def test_distributed_instanceids_target_of_two_does_not_fire() -> None:
    record = call([], "a", targets=[{"key": "INSTANCEIDS", "values": ids(1, 2)}])

    assert run_all([record]) == []


@pytest.mark.parametrize(
    "name",
    [
        "fanout_tag_target.json",
        "fanout_tag_key_target.json",
        "fanout_resource_group_target.json",
        "fanout_wildcard_instance_ids_human.json",
        "fanout_wildcard_targets_human.json",
    ],
)
def test_distributed_unknown_size_target_fires_with_raised_severity(name: str) -> None:
    record = load_record(name)

    (finding,) = run_all([record])

    assert finding.context["fanout_size"] == "unknown"
    assert finding.context["unknown_size_targets"]
    assert finding.severity is Severity.INFORMATIONAL.raised()
    assert finding.severity_reasons
    assert any("unknown" in reason for reason in finding.severity_reasons)


@pytest.mark.parametrize(
    "target",
    [
        {"Key": "tag:Environment", "Values": ["prod"]},
        {"Key": "tag-key", "Values": ["Patch"]},
        {"Key": "resource-groups:Name", "Values": ["web"]},
        {"Key": "InstanceIds", "Values": ["*"]},
    ],
)
def test_distributed_unknown_size_target_built_fires(target: dict[str, Any]) -> None:
    (finding,) = run_all([call([], "a", targets=[target])])

    assert finding.context["fanout_size"] == "unknown"
    assert finding.severity is Severity.LOW


def test_distributed_wildcard_instance_id_is_not_counted_as_an_instance() -> None:
    (finding,) = run_all([call(["*", *ids(1)], "a")])

    assert finding.context["window_instance_ids"] == ids(1)
    assert finding.context["fanout_size"] == "unknown"


# Who and what counts -----------------------------------------------------------------------


@pytest.mark.parametrize("error_code", ["AccessDenied", "InvalidInstanceId"])
def test_distributed_failed_calls_do_not_count(error_code: str) -> None:
    failed = call(ids(1, 2, 3, 4, 5), "failed", error_code=error_code)

    assert run_all([failed, call(ids(6), "ok", T0 + minutes(1))]) == []


def test_distributed_failed_file_does_not_count_toward_next_call() -> None:
    records = [
        load_record("send_command_invalid_instance_id_five_instances.json"),
        load_record("fanout_after_failed_five_instance_call.json"),
    ]

    assert run_all(records) == []


@pytest.mark.parametrize(
    "name",
    [
        "send_command_aws_service_principal_three_instances.json",
        "send_command_state_manager_service.json",
    ],
)
def test_distributed_service_principals_skipped_unless_included(name: str) -> None:
    record = load_record(name)

    assert run_all([record]) == []
    (finding,) = run_all([record], Settings(include_service_principals=True))
    assert finding.principal.is_aws_service


def test_distributed_sessions_of_one_role_count_together() -> None:
    records = [
        load_record("fanout_same_role_two_sessions_first.json"),
        load_record("fanout_same_role_two_sessions_second.json"),
    ]

    assert len(run_all(records)) == 1


def test_distributed_two_identity_center_users_do_not_count_together() -> None:
    records = [
        load_record("fanout_sso_two_users_first.json"),
        load_record("fanout_sso_two_users_second.json"),
    ]

    assert run_all(records) == []


def test_distributed_other_principal_does_not_count_together() -> None:
    mine = call(ids(1, 2), "mine")
    theirs = call(ids(3, 4), "theirs", T0 + minutes(1), template="send_command_iam_user.json")

    assert run_all([mine, theirs]) == []


def test_distributed_same_role_name_in_another_account_does_not_count_together() -> None:
    records = [
        load_record("fanout_same_role_name_account_one.json"),
        load_record("send_command_second_account_same_role_name.json"),
    ]

    assert run_all(records) == []


# Settings ----------------------------------------------------------------------------------


def test_distributed_threshold_setting_respected() -> None:
    settings = Settings(fanout_threshold=5)

    assert run_all([call(ids(*range(5)), "five")], settings) == []
    (finding,) = run_all([call(ids(*range(6)), "six")], settings)
    assert finding.context["threshold"] == 5


def test_distributed_threshold_setting_from_environment() -> None:
    settings = Settings.from_env({"FANOUT_THRESHOLD": "3"})

    assert run_all([call(ids(1, 2, 3), "three")], settings) == []
    assert len(run_all([call(ids(1, 2, 3, 4), "four")], settings)) == 1


def test_distributed_window_setting_respected() -> None:
    records = [call(ids(1, 2), "a"), call(ids(3, 4), "b", T0 + minutes(15))]

    assert run_all(records, Settings(fanout_window=timedelta(minutes=10))) == []
    (finding,) = run_all(records, Settings(fanout_window=timedelta(minutes=20)))
    assert finding.context["window_start"] == iso(T0 + minutes(15) - minutes(20))


def test_distributed_window_setting_longer_than_default_joins_calls_hours_apart() -> None:
    records = [call(ids(1, 2), "a"), call(ids(3, 4), "b", T0 + timedelta(hours=2))]

    assert run_all(records) == []
    assert len(run_all(records, Settings(fanout_window=timedelta(hours=3)))) == 1


# Severity and context ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "severity", "reasons"),
    [
        (9, Severity.INFORMATIONAL, 0),
        (10, Severity.LOW, 1),
        (49, Severity.LOW, 1),
        (50, Severity.MEDIUM, 1),
        (120, Severity.MEDIUM, 1),
    ],
)
def test_distributed_severity_raised_by_distinct_count(
    count: int, severity: Severity, reasons: int
) -> None:
    (finding,) = run_all([call(ids(*range(count)), "many")])

    assert finding.severity is severity
    assert len(finding.severity_reasons) == reasons
    if reasons:
        assert str(count) in finding.severity_reasons[0]


def test_distributed_severity_raised_by_distinct_count_across_calls() -> None:
    records = [call(ids(*range(5)), "a"), call(ids(*range(5, 10)), "b", T0 + minutes(5))]

    findings = run_all(records)

    assert findings[-1].severity is Severity.LOW
    assert findings[-1].context["distinct_instances"] == 10


def test_distributed_unknown_size_and_many_ids_raise_twice() -> None:
    targets = [{"Key": "tag:Env", "Values": ["prod"]}]

    (finding,) = run_all([call(ids(*range(10)), "a", targets=targets)])

    assert finding.severity is Severity.MEDIUM
    assert len(finding.severity_reasons) == 2


def test_distributed_context_lists_window_calls_and_instances() -> None:
    first = call(ids(1), "first", T0)
    second = call(ids(2), "second", T0 + minutes(20))
    third = call(ids(3), "third", T0 + minutes(40))
    unrelated_old = call(ids(9), "old", T0 - minutes(90))

    findings = run_all([unrelated_old, first, second, third])

    (finding,) = findings
    end = T0 + minutes(40)
    assert finding.context["window_start"] == iso(end - minutes(60))
    assert finding.context["window_end"] == iso(end)
    assert finding.context["contributing_event_ids"] == ["first", "second", "third"]
    assert finding.context["distinct_instances"] == 3
    assert sorted(finding.context["window_instance_ids"]) == sorted(ids(1, 2, 3))
    assert finding.event_ids == ("first", "second", "third")
    assert finding.first_seen == T0
    assert finding.last_seen == end


def test_distributed_context_instance_list_is_bounded() -> None:
    (finding,) = run_all([call(ids(*range(300)), "many")])

    assert finding.context["distinct_instances"] == 300
    assert len(finding.context["window_instance_ids"]) == 50
    assert len(finding.resources) < 100


# Order -------------------------------------------------------------------------------------


def test_distributed_finding_id_same_whichever_order_calls_arrive() -> None:
    records = [
        call(ids(1), "c1", T0),
        call(ids(2), "c2", T0 + minutes(10)),
        call(ids(3), "c3", T0 + minutes(20)),
    ]
    wanted = {expected_id(records[2])}

    for order in itertools.permutations(records):
        assert {f.id for f in run_all(list(order))} == wanted, [r["eventID"] for r in order]


def test_distributed_finding_id_same_whichever_order_same_second_calls_arrive() -> None:
    records = [call(ids(1), "same-a", T0), call(ids(2, 3), "same-b", T0)]
    wanted = {expected_id(records[1])}

    for order in itertools.permutations(records):
        assert {f.id for f in run_all(list(order))} == wanted


def test_distributed_late_call_completes_the_window_it_belongs_to() -> None:
    early = call(ids(1), "early", T0)
    later = [call(ids(2), "mid", T0 + minutes(30)), call(ids(3), "end", T0 + minutes(50))]

    findings = run_all([*later, early])

    assert [f.id for f in findings] == [expected_id(later[1])]
    assert findings[0].context["contributing_event_ids"] == ["early", "mid", "end"]


def test_distributed_finding_set_same_in_time_order_and_late_order() -> None:
    # c4 repeats c1's instance: in time order both c3's and c4's windows cross and fire.
    records = [
        call(ids(1), "c1", T0),
        call(ids(2), "c2", T0 + minutes(10)),
        call(ids(3), "c3", T0 + minutes(20)),
        call(ids(1), "c4", T0 + minutes(30)),
    ]
    in_time_order = {f.id for f in run_all(records)}
    assert in_time_order == {expected_id(records[2]), expected_id(records[3])}

    late_order = [records[3], records[0], records[1], records[2]]

    assert {f.id for f in run_all(late_order)} == in_time_order
