"""Heartbeats and the silence check (issue 15, point 1), end to end against DynamoDB Local.

The real handler receives heartbeat events shaped as CloudTrail delivers the forwarders'
`PutParameter /security/ssm-detect/heartbeat` calls, and EventBridge's scheduled event for the
check; state lives in DynamoDB Local, findings go to SNS and Security Hub (moto). A member that
stops sending raises a finding (and the SilentSources metric) once the limit has passed; one
that resumes clears it.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ssm_detect.heartbeat import (
    HEARTBEAT_PARAMETER,
    RESUMED_DETECTION,
    SILENCE_DETECTION,
    Source,
    heartbeat_of,
    is_silence_check,
)
from tests.test_handler import emitted_metrics

pytest_plugins = ["tests.dynamodb_local"]

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LIMIT = timedelta(minutes=60)  # the default SILENCE_LIMIT_MINUTES
A = Source("444455556666", "eu-west-1")
B = Source("777788889999", "ap-southeast-2")


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def heartbeat(source: Source, at: datetime, **detail: Any) -> dict[str, Any]:
    """EventBridge's delivery of the scheduler's PutParameter, as forwarded to the bus."""
    record = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::{source.account}:assumed-role/ssm-detect-heartbeat/sched",
            "accountId": source.account,
        },
        "eventTime": iso(at),
        "eventSource": "ssm.amazonaws.com",
        "eventName": "PutParameter",
        "awsRegion": source.region,
        "sourceIPAddress": "scheduler.amazonaws.com",
        "userAgent": "scheduler.amazonaws.com",
        "requestParameters": {"name": HEARTBEAT_PARAMETER, "type": "String", "overwrite": True},
        "responseElements": {"version": 7, "tier": "Standard"},
        "eventID": f"hb-{source.account}-{source.region}-{int(at.timestamp())}",
        "eventType": "AwsApiCall",
        "recipientAccountId": source.account,
        **detail,
    }
    return {
        "version": "0",
        "id": f"env-{record['eventID']}",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ssm",
        "account": source.account,
        "time": iso(at),
        "region": source.region,
        "resources": [],
        "detail": record,
    }


def scheduled_check(at: datetime) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"check-{int(at.timestamp())}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "111122223333",
        "time": iso(at),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:111122223333:rule/ssm-detect-SilenceCheckRule"],
        "detail": {},
    }


# --- recognition ---------------------------------------------------------------------------


def test_heartbeat_is_recognised_with_cloudtrails_account_and_region() -> None:
    beat = heartbeat_of(heartbeat(A, T0))
    assert beat is not None
    assert (beat.source, beat.at) == (A, T0)


@pytest.mark.parametrize(
    "change",
    [
        {"requestParameters": {"name": "/app/db-password"}},
        {"eventName": "GetParameter"},
        {"errorCode": "AccessDenied"},
        {"recipientAccountId": "4444"},
        {"awsRegion": "eu-west-1/../x"},
        {"eventTime": "yesterday"},
    ],
)
def test_heartbeat_anything_else_is_not_a_heartbeat(change: dict[str, Any]) -> None:
    event = heartbeat(A, T0)
    event["detail"].update(change)
    assert heartbeat_of(event) is None


def test_heartbeat_a_custom_source_cannot_pass_for_one() -> None:
    """PutEvents refuses `aws.*` sources from customers: a forged heartbeat has to use another
    source, and is not one."""
    event = heartbeat(A, T0)
    event["source"] = "ssm-detect.heartbeat"
    assert heartbeat_of(event) is None
    assert not is_silence_check({**scheduled_check(T0), "source": "custom.events"})


# --- end to end ------------------------------------------------------------------------------


def invoke(stack: Any, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = stack.invoke(copy.deepcopy(event))
    return result


def alerts(stack: Any) -> list[tuple[str, str]]:
    """(detection id, account) of each SNS notification since the last call."""
    return [
        (
            n["MessageAttributes"]["detection_id"]["Value"],
            n["MessageAttributes"]["account_id"]["Value"],
        )
        for n in stack.notifications()
    ]


def test_heartbeat_costs_one_write_and_no_detection(local_stack: Any) -> None:
    calls: list[str] = []
    local_stack.clients.dynamodb_client().meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.append(model.name)
    )
    result = invoke(local_stack, heartbeat(A, T0))
    assert result == {"heartbeat": str(A), "at": T0.isoformat()}
    assert calls == ["UpdateItem"]
    assert alerts(local_stack) == []


def test_heartbeat_silent_member_raises_a_finding_past_the_limit_and_clears_on_resume(
    local_stack: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke(local_stack, heartbeat(A, T0))
    invoke(local_stack, heartbeat(B, T0))
    # B keeps sending (and a late, older heartbeat never moves it back); A stops after T0
    invoke(local_stack, heartbeat(B, T0 + timedelta(minutes=30)))
    invoke(local_stack, heartbeat(B, T0 + timedelta(minutes=5)))
    capsys.readouterr()

    within = invoke(local_stack, scheduled_check(T0 + LIMIT - timedelta(minutes=1)))
    assert within["silent"] == {}
    assert within["watched"] == 2
    assert emitted_metrics(capsys.readouterr().out)["SilentSources"] == 0
    assert alerts(local_stack) == []

    # the first check after the limit: A is silent, one finding, the metric the alarm watches
    late = invoke(local_stack, scheduled_check(T0 + LIMIT + timedelta(minutes=1)))
    assert late["silent"] == {str(A): T0.isoformat()}
    assert late["newly_silent"] == [str(A)]
    assert emitted_metrics(capsys.readouterr().out)["SilentSources"] == 1
    assert alerts(local_stack) == [(SILENCE_DETECTION, A.account)]
    hub = [f for f in local_stack.hub_findings() if f["GeneratorId"] == SILENCE_DETECTION]
    assert len(hub) == 1
    assert hub[0]["Severity"]["Label"] == "HIGH"

    # still silent: the alarm stays, no second notification
    again = invoke(local_stack, scheduled_check(T0 + LIMIT + timedelta(minutes=6)))
    assert again["silent"] == {str(A): T0.isoformat()}
    assert again["newly_silent"] == []
    assert emitted_metrics(capsys.readouterr().out)["SilentSources"] == 1
    assert alerts(local_stack) == []

    # A resumes: the next check clears it, says so once, and the metric returns to 0
    invoke(local_stack, heartbeat(A, T0 + timedelta(minutes=70)))
    invoke(local_stack, heartbeat(B, T0 + timedelta(minutes=70)))
    capsys.readouterr()
    cleared = invoke(local_stack, scheduled_check(T0 + timedelta(minutes=75)))
    assert cleared["silent"] == {}
    assert cleared["resumed"] == [str(A)]
    assert emitted_metrics(capsys.readouterr().out)["SilentSources"] == 0
    assert alerts(local_stack) == [(RESUMED_DETECTION, A.account)]
    quiet = invoke(local_stack, scheduled_check(T0 + timedelta(minutes=80)))
    assert (quiet["silent"], quiet["resumed"]) == ({}, [])


def test_heartbeat_a_source_silent_for_weeks_is_retired(local_stack: Any) -> None:
    invoke(local_stack, heartbeat(A, T0))
    invoke(local_stack, scheduled_check(T0 + LIMIT + timedelta(minutes=1)))
    retired = invoke(local_stack, scheduled_check(T0 + timedelta(days=15)))
    assert retired["retired"] == [str(A)]
    after = invoke(local_stack, scheduled_check(T0 + timedelta(days=15, minutes=5)))
    assert (after["silent"], after["watched"], after["retired"]) == ({}, 0, [])
