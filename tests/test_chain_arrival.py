"""The chain under any arrival order (issue 17.1, issue 14.4's data) and regional documents
(issue 11.2), through the real handler where the sequence is the point."""

from __future__ import annotations

import copy
from typing import Any

from ssm_detect.findings import Finding
from ssm_detect.ingest import to_event
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.state.memory import MemoryStateStore
from ssm_detect.wiring import local_pipeline
from tests.builders import envelope
from tests.conftest import Invoke, load_event

CHAIN = "AWS.SSM.CreatedDocumentExecuted"
ACTOR_KEYS = {
    "arn",
    "principal_key",
    "type",
    "session_name",
    "access_key_id",
    "source_ip",
    "user_agent",
    "event_id",
    "event_time",
    "region",
    "account_id",
}


def detail(name: str, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(load_event(name)["detail"])
    record.update(changes)
    return record


def creation() -> dict[str, Any]:
    return detail("chain_create_rare_document.json")


def run_of_document(event_id: str, at: str, **changes: Any) -> dict[str, Any]:
    """A run of the created document by another principal (an IAM user), at `at`."""
    record = detail("chain_execute_within_window.json", eventID=event_id, eventTime=at)
    record["userIdentity"] = detail("send_command_iam_user.json")["userIdentity"]
    record["sourceIPAddress"] = "198.51.100.77"
    record.update(changes)
    return record


def chains(*records: dict[str, Any]) -> list[list[Finding]]:
    """Chain findings per event, through one pipeline (in-memory state)."""
    settings = Settings()
    pipeline = local_pipeline(settings, MemoryStateStore())
    found = []
    for raw in records:
        event = to_event(raw, settings.principal_keying)
        assert isinstance(event, SsmEvent)
        found.append([f for f in pipeline.process(event).findings if f.detection_id == CHAIN])
    return found


def test_chain_two_runs_before_their_creation_each_raise_a_finding_through_the_handler(
    invoke: Invoke,
) -> None:
    """Issue 17.1's sequence, serial, through the real handler: two runs of a new, flagged
    document arrive minutes apart BEFORE its creation; the creation raises both chain findings,
    the ids the in-order run gives."""
    first = run_of_document("run-1", "2025-04-02T10:20:00Z")
    second = run_of_document("run-2", "2025-04-02T10:27:00Z")
    assert invoke(envelope(first))["findings"].get(CHAIN) is None
    assert invoke(envelope(second))["findings"].get(CHAIN) is None

    result = invoke(envelope(creation()))

    assert result["findings"].get(CHAIN) == 2
    in_order = chains(creation(), first, second)
    expected = {f.id: f.event_ids for f in in_order[1] + in_order[2]}
    late = chains(first, second, creation())[2]
    assert {f.id: f.event_ids for f in late} == expected
    assert {f.context["execution_event_id"] for f in late} == {"run-1", "run-2"}


def test_chain_finding_is_the_same_whichever_half_arrives_second() -> None:
    """Issue 14.4 (data): same id, the executor as the finding's principal, both actors."""
    run = run_of_document("run-1", "2025-04-02T10:20:00Z")
    (in_order,) = chains(creation(), run)[1]
    (reversed_,) = chains(run, creation())[1]

    assert in_order.id == reversed_.id
    assert in_order.principal == reversed_.principal
    assert in_order.principal.arn == run["userIdentity"]["arn"]
    assert in_order.source_ip == reversed_.source_ip == "198.51.100.77"
    assert in_order.context == reversed_.context
    actors = in_order.context["actors"]
    assert set(actors) == {"creator", "executor"}
    assert set(actors["creator"]) == set(actors["executor"]) == ACTOR_KEYS
    assert actors["creator"]["arn"] == creation()["userIdentity"]["arn"]
    assert actors["creator"]["event_id"] == creation()["eventID"]
    assert actors["executor"]["arn"] == run["userIdentity"]["arn"]
    assert actors["executor"]["source_ip"] == "198.51.100.77"
    assert [e["event_id"] for e in in_order.context["contributing_events"]] == [
        creation()["eventID"],
        "run-1",
    ]
    assert {e["region"] for e in in_order.context["contributing_events"]} == {"us-west-2"}
    assert in_order.resources == reversed_.resources


def test_chain_same_name_in_another_region_is_not_linked() -> None:
    """Issue 11.2: `Backup-Verify` run in us-east-1 is not the one created in us-west-2."""
    run = run_of_document("run-east", "2025-04-02T10:20:00Z", awsRegion="us-east-1")
    assert chains(creation(), run)[1] == []
    assert chains(run, creation())[1] == []


def test_chain_arn_document_name_names_its_own_region_and_account() -> None:
    """A run in another region naming the document by its ARN links to the ARN's document."""
    arn = "arn:aws:ssm:us-west-2:111122223333:document/Backup-Verify"
    run = run_of_document("run-arn", "2025-04-02T10:20:00Z")
    run["requestParameters"]["documentName"] = arn
    (found,) = chains(creation(), run)[1]
    document = next(r for r in found.resources if r.label == "Backup-Verify")
    assert (document.region, document.account_id) == ("us-west-2", "111122223333")
    other = copy.deepcopy(run)
    other["eventID"] = "run-arn-other-account"
    other["requestParameters"]["documentName"] = arn.replace("111122223333", "444455556666")
    assert chains(creation(), other)[1] == []
