"""The Lambda path accepts only what template.yaml's rules send (issue 15, point 4): CloudTrail
SSM events (`aws.ssm` / "AWS API Call via CloudTrail", heartbeats among them) and the silence
check's schedule (`aws.events` / "Scheduled Event"). A direct invoke with anything else is
refused whole: a log line, the RefusedEvents metric, no state written, no AWS call."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from handler.envelope import ACCEPTED, refusal_of
from tests import cfn
from tests.conftest import REGION, TABLE, Invoke, load_event
from tests.test_handler import emitted_metrics

ROOT = Path(__file__).resolve().parent.parent
SEND_COMMAND = "panther_send_command_three_instances.json"


def lambda_rules() -> list[dict[str, Any]]:
    """Every EventBridge rule of template.yaml with the detector function among its targets."""
    rules = cfn.of_type(cfn.load(), "AWS::Events::Rule").values()
    return [
        r["Properties"]
        for r in rules
        if any("DetectorFunction" in json.dumps(t["Arn"]) for t in r["Properties"]["Targets"])
    ]


def test_envelope_every_rule_the_function_gets_events_from_is_read() -> None:
    """The rules above are all of them: the function's invoke permissions name no other."""
    permissions = cfn.of_type(cfn.load(), "AWS::Lambda::Permission").values()
    sources = {json.dumps(p["Properties"].get("SourceArn")) for p in permissions}
    assert len(lambda_rules()) == len(sources) >= 7


def test_envelope_accepts_exactly_what_the_template_rules_send() -> None:
    sent = set()
    for rule in lambda_rules():
        pattern = rule.get("EventPattern")
        if pattern is None:  # a schedule: EventBridge's "Scheduled Event" from aws.events
            assert "ScheduleExpression" in rule
            sent.add(("aws.events", "Scheduled Event"))
            continue
        sent |= {(s, d) for s in pattern["source"] for d in pattern["detail-type"]}
    assert sent == set(ACCEPTED)


def test_envelope_accepts_every_ssm_event_file_and_the_silence_check() -> None:
    files = sorted((ROOT / "events").glob("*.json"))
    accepted = [p.name for p in files if refusal_of(json.loads(p.read_text())) is None]
    refused = {p.name for p in files} - set(accepted)
    assert refused == {
        "panther_unrelated_describe_instances.json",  # aws.ec2: no rule sends it
        "ssm_command_status_change_notification.json",  # aws.ssm, not a CloudTrail call
    }
    schedule = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    assert refusal_of(schedule) is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (load_event(SEND_COMMAND)["detail"], "not an EventBridge event (a bare record)"),
        (
            {"Records": [load_event(SEND_COMMAND)["detail"]]},
            "not an EventBridge event (a CloudTrail file)",
        ),
        ([load_event(SEND_COMMAND)], "not an EventBridge event (JSON list)"),
        (None, "not an EventBridge event (JSON NoneType)"),
        ("aws.ssm", "not an EventBridge event (JSON str)"),
        (load_event(SEND_COMMAND) | {"source": "my.forged"}, "a source and detail-type no rule"),
        (load_event(SEND_COMMAND) | {"source": ["aws.ssm"]}, "a source and detail-type no rule"),
        (load_event(SEND_COMMAND) | {"detail-type": "Custom"}, "a source and detail-type no rule"),
        ({"source": "aws.events", "detail-type": "AWS API Call via CloudTrail", "detail": {}}, "a"),
        ({"source": "aws.ssm", "detail-type": "Scheduled Event", "detail": {}}, "a source"),
    ],
)
def test_envelope_refuses_what_no_rule_sends(payload: object, reason: str) -> None:
    refusal = refusal_of(payload)
    assert refusal is not None
    assert refusal.reason.startswith(reason)


def test_envelope_refusal_repeats_claims_as_one_bounded_printable_line() -> None:
    event = load_event(SEND_COMMAND) | {"source": "x\n" * 500, "id": "forged\r\nid"}
    refusal = refusal_of(event)
    assert refusal is not None
    assert refusal.source is not None
    assert len(refusal.source) == 128
    assert refusal.source.isprintable()
    assert refusal.event_id == "forged??id"


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    from handler import app  # noqa: PLC0415

    handler = app.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


def _items() -> list[dict[str, Any]]:
    return boto3.client("dynamodb", region_name=REGION).scan(TableName=TABLE)["Items"]


@pytest.mark.parametrize(
    "forge",
    [
        lambda event: event["detail"],  # a bare CloudTrail record, invoked directly
        lambda event: {"Records": [event["detail"]]},
        lambda event: event | {"source": "attacker.tools"},
    ],
)
def test_handler_refuses_a_direct_invoke_and_writes_nothing(
    forge: Any, invoke: Invoke, logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event(SEND_COMMAND)

    result = invoke(forge(event))

    assert result["refused"]
    assert result["events_seen"] == 0
    assert result["findings"] == {}
    assert _items() == []  # no state, no ledger: nothing poisoned
    lines = [json.loads(line) for line in logs.getvalue().splitlines() if line]
    refused = [line for line in lines if line.get("message", "").startswith("refused event")]
    assert len(refused) == 1
    assert refused[0]["level"] == "ERROR"
    assert emitted_metrics(capsys.readouterr().out)["RefusedEvents"] == 1

    # the same record in the envelope the rule delivers is judged as usual
    accepted = invoke(event)
    assert "refused" not in accepted
    assert set(accepted["findings"]) == {"AWS.SSM.SendCommand", "AWS.SSM.DistributedCommand"}
    assert _items() != []


def test_handler_still_reports_a_bad_detail_inside_an_accepted_envelope(invoke: Invoke) -> None:
    """Shape is checked at the envelope only: a malformed record is a bad event with its id."""
    result = invoke(load_event("malformed_missing_event_time.json"))
    assert "refused" not in result
    assert result["bad_events"] == 1


def test_invoke_command_wraps_a_bare_record_as_eventbridge_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ssm-detect invoke` on one record of a trail file: wrapped, then judged as usual."""
    from handler import app  # noqa: PLC0415
    from ssm_detect.cli import main  # noqa: PLC0415

    record = tmp_path / "record.json"
    record.write_text(json.dumps(load_event(SEND_COMMAND)["detail"]))
    app.runtime.cache_clear()
    monkeypatch.setenv("STATE_TABLE_NAME", "unused")

    assert main(["invoke", str(record)]) == 0

    app.runtime.cache_clear()
    captured = capsys.readouterr()
    summary = json.loads(captured.out[captured.out.rindex("\n{") :])
    assert "refused" not in summary
    assert summary["findings"] == {"AWS.SSM.SendCommand": 1, "AWS.SSM.DistributedCommand": 1}
    assert "wrapped as EventBridge sends it" in captured.err
