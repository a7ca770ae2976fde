"""SendCommand's own tells (issue 12 point 7): reasons on the SendCommand finding."""

from __future__ import annotations

import copy
from typing import Any

from detections.send_command import SendCommandDetection
from ssm_detect.findings import Severity
from ssm_detect.ingest import records_in, to_event
from ssm_detect.principal import PrincipalKeying
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent
from tests.conftest import load_event


def event_from(name: str, **changes: Any) -> SsmEvent:
    (raw,) = list(records_in(load_event(name)))
    raw = copy.deepcopy(raw)
    raw["requestParameters"].update(changes)
    event = to_event(raw, PrincipalKeying.ROLE)
    assert isinstance(event, SsmEvent)
    return event


def judge(event: SsmEvent, settings: Settings | None = None) -> tuple[Severity, str]:
    verdict = SendCommandDetection().evaluate(event, settings or Settings(), {})
    assert verdict is not None
    return verdict.severity, " | ".join(verdict.severity_reasons)


def test_a_document_of_another_account_is_a_reason_unless_trusted() -> None:
    event = event_from("send_command_foreign_account_document.json")
    severity, reasons = judge(event)
    assert severity is Severity.HIGH
    assert "444455556666" in reasons
    trusted = Settings(trusted_accounts=frozenset({"444455556666"}))
    assert "444455556666" not in judge(event, trusted)[1]


def test_own_account_document_arn_is_not_foreign() -> None:
    own = "arn:aws:ssm:us-west-2:111122223333:document/Maintenance-Cleanup"
    event = event_from("send_command_foreign_account_document.json", documentName=own)
    assert "outside the trusted accounts" not in judge(event)[1]


def test_remote_script_shows_where_the_code_comes_from() -> None:
    severity, reasons = judge(event_from("send_command_run_remote_script_github.json"))
    assert severity is Severity.HIGH
    assert "AWS-RunRemoteScript fetches the code it runs" in reasons
    assert "fleet-scripts" in reasons


def test_a_service_issued_remote_document_is_not_lowered() -> None:
    severity, reasons = judge(event_from("send_command_run_document_from_s3_service.json"))
    assert severity is Severity.HIGH
    assert "AWS-RunDocument" in reasons


def test_output_buckets_are_checked_only_when_known_buckets_are_set() -> None:
    event = event_from("send_command_output_unknown_bucket.json")
    assert "exfil-drop-7781" not in judge(event)[1]
    known = Settings(known_output_buckets=("org-ssm-output-*",))
    assert "output sent to bucket exfil-drop-7781" in judge(event, known)[1]
    mine = Settings(known_output_buckets=("exfil-drop-*",))
    assert "exfil-drop-7781" not in judge(event, mine)[1]
