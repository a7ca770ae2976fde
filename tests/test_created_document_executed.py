"""The chain detection: a rare creator's document executed with SendCommand."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from detections.created_document_executed import document_key
from ssm_detect.findings import Finding, Severity
from ssm_detect.ingest import to_event
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.state.memory import MemoryStateStore
from ssm_detect.wiring import local_pipeline
from tests.conftest import load_event

CHAIN = "AWS.SSM.CreatedDocumentExecuted"


def record(name: str, **changes: Any) -> dict[str, Any]:
    detail: dict[str, Any] = copy.deepcopy(load_event(name)["detail"])
    detail.update(changes)
    return detail


def run(*records: dict[str, Any], settings: Settings | None = None) -> list[list[Finding]]:
    settings = settings or Settings()
    pipeline = local_pipeline(settings, MemoryStateStore())
    results = []
    for raw in records:
        event = to_event(raw, settings.principal_keying)
        assert isinstance(event, SsmEvent)
        results.append(pipeline.process(event).findings)
    return results


def chain_of(findings: list[Finding]) -> Finding | None:
    return next((f for f in findings if f.detection_id == CHAIN), None)


def test_chain_links_creation_and_execution_with_both_event_ids() -> None:
    create = record("chain_create_rare_document.json")
    execute = record("chain_execute_within_window.json")
    _, findings = run(create, execute)
    chain = chain_of(findings)
    assert chain is not None
    assert chain.event_ids == (create["eventID"], execute["eventID"])
    assert chain.context["instance_ids"] == ["i-0c1a2b3c4d5e6f701"]
    assert chain.severity is Severity.HIGH


def test_chain_is_found_whichever_half_arrives_first() -> None:
    create = record("chain_create_rare_document.json")
    execute = record("chain_execute_within_window.json")
    in_order = chain_of(run(create, execute)[1])
    reversed_order = chain_of(run(execute, create)[1])
    assert in_order is not None
    assert reversed_order is not None
    assert in_order.event_ids == reversed_order.event_ids


def test_chain_window_edges() -> None:
    create = record("chain_create_rare_document.json", eventTime="2025-04-02T10:00:00Z")
    inside = record("chain_execute_within_window.json", eventTime="2025-04-03T09:59:59Z")
    outside = record("chain_execute_within_window.json", eventTime="2025-04-03T10:00:01Z")
    assert chain_of(run(create, inside)[1]) is not None
    assert chain_of(run(create, outside)[1]) is None


def test_chain_window_is_configurable() -> None:
    short = Settings(chain_window=timedelta(hours=1))
    create = record("chain_create_rare_document.json")
    execute = record("chain_execute_within_window.json")  # 2.5 h later
    assert chain_of(run(create, execute, settings=short)[1]) is None


def test_chain_needs_a_rare_creation() -> None:
    """The same principal created a document the day before: the creation is not rare."""
    earlier = record("chain_create_rare_document.json", eventID="earlier-creation")
    earlier["eventTime"] = "2025-04-01T10:00:00Z"
    earlier["requestParameters"] = dict(earlier["requestParameters"], name="Other-Doc")
    create = record("chain_create_rare_document.json")
    execute = record("chain_execute_within_window.json")
    assert chain_of(run(earlier, create, execute)[2]) is None


def test_chain_with_fanout_execution_is_critical() -> None:
    create = record("chain_create_rare_document.json")
    fanout = record("chain_execute_fanout_within_window.json")
    chain = chain_of(run(create, fanout)[1])
    assert chain is not None
    assert chain.severity is Severity.CRITICAL
    assert any("fan-out" in r for r in chain.severity_reasons)


def test_chain_ignores_aws_owned_documents() -> None:
    assert document_key("AWS-RunShellScript") is None
    assert document_key("arn:aws:ssm:us-east-1::document/AWS-RunPatchBaseline") is None
    assert document_key("arn:aws:ssm:us-east-1:111122223333:document/Backup") == "Backup"


def test_automation_principals_are_lowered_with_a_reason() -> None:
    settings = Settings(automation_principals=("arn:aws:iam::*:role/LegacyBackupRole",))
    (findings,) = run(record("chain_create_rare_document.json"), settings=settings)
    (rare,) = findings
    assert rare.severity is Severity.INFORMATIONAL  # MEDIUM lowered two steps
    assert any("automation" in r for r in rare.severity_reasons)
