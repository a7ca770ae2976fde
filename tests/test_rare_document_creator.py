"""AWS.SSM.RareCommandDocumentCreator: Elastic new-terms on who creates Command documents."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from detections.rare_document_creator import (
    CREATIONS,
    MAX_MEMBERS,
    RareCommandDocumentCreatorDetection,
)
from ssm_detect.findings import Finding, ResourceType, Severity, finding_id
from ssm_detect.principal import PrincipalKeying
from ssm_detect.settings import Settings
from ssm_detect.state import StateUpdate
from tests.builders import T0, Runner, create_document, load_record, parse

DETECTION = "AWS.SSM.RareCommandDocumentCreator"
DAY = timedelta(days=1)


def runner(settings: Settings | None = None) -> Runner:
    return Runner(settings, [RareCommandDocumentCreatorDetection()])


def creation(event_id: str, at: datetime, **changes: Any) -> dict[str, Any]:
    return create_document(event_id=event_id, at=at, **changes)


def fired(run: Runner, record: dict[str, Any]) -> list[Finding]:
    return run.fired(record, DETECTION)


def test_rare_creator_first_creation_fires() -> None:
    record = load_record("create_document_command_new_principal.json")

    findings = fired(runner(), record)

    assert len(findings) == 1
    finding = findings[0]
    event = parse(record)
    assert finding.severity is Severity.MEDIUM
    assert finding.event_ids == (record["eventID"],)
    assert finding.id == finding_id(
        DETECTION, event.account_id, event.principal.key, event.event_id
    )
    assert finding.context["document_name"] == record["requestParameters"]["name"]
    assert finding.context["document_type"] == "Command"
    assert finding.context["document_format"] == record["requestParameters"]["documentFormat"]
    assert finding.context["content_hidden"] is True
    assert finding.context["content"] is None
    assert finding.context["history_window_days"] == 10
    assert any(r.type is ResourceType.SSM_DOCUMENT for r in finding.resources)
    assert any(r.type is ResourceType.IAM_ROLE for r in finding.resources)


def test_rare_creator_context_carries_visible_content() -> None:
    record = load_record("create_document_yaml_content.json")

    (finding,) = fired(runner(), record)

    assert finding.context["content_hidden"] is False
    assert finding.context["content"] == record["requestParameters"]["content"]


def test_rare_creator_second_creation_within_window_does_not_fire() -> None:
    run = runner()
    assert len(fired(run, creation("first", T0))) == 1

    assert fired(run, creation("second", T0 + 3 * DAY)) == []
    assert fired(run, creation("third", T0 + 9 * DAY + timedelta(hours=23))) == []


def test_rare_creator_creation_after_eleven_days_fires_again() -> None:
    run = runner()
    fired(run, creation("first", T0))

    again = fired(run, creation("later", T0 + 11 * DAY))

    assert [f.event_ids for f in again] == [("later",)]


def test_rare_creator_nonfiring_candidate_refreshes_last_seen() -> None:
    run = runner()
    fired(run, creation("day0", T0))
    assert fired(run, creation("day8", T0 + 8 * DAY)) == []

    # 16 days after the first creation but only 8 after the second: not rare.
    assert fired(run, creation("day16", T0 + 16 * DAY)) == []


def test_rare_creator_other_principal_fires_independently() -> None:
    run = runner()
    fired(run, creation("mine", T0))
    other = creation("theirs", T0 + DAY, template="create_document_type_absent.json")

    assert len(fired(run, other)) == 1


def test_rare_creator_other_session_of_same_role_does_not_fire() -> None:
    run = runner()
    fired(run, load_record("create_document_command_new_principal.json"))

    assert fired(run, load_record("create_document_same_role_other_session.json")) == []


def test_rare_creator_other_session_fires_under_session_keying() -> None:
    run = runner(Settings(principal_keying=PrincipalKeying.SESSION))
    fired(run, load_record("create_document_command_new_principal.json"))

    assert len(fired(run, load_record("create_document_same_role_other_session.json"))) == 1


def test_rare_creator_same_role_name_in_another_account_fires() -> None:
    run = runner()
    fired(run, load_record("create_document_deploy_role_first.json"))

    assert len(fired(run, load_record("create_document_second_account.json"))) == 1
    assert fired(run, load_record("create_document_second_region_same_principal.json")) == []


def test_rare_creator_automation_document_does_not_fire_or_count() -> None:
    run = runner()

    assert fired(run, load_record("create_document_automation.json")) == []
    assert len(fired(run, load_record("create_document_command_after_automation.json"))) == 1


@pytest.mark.parametrize(
    "name", ["create_document_type_absent.json", "create_document_type_absent_no_response.json"]
)
def test_rare_creator_absent_document_type_is_command(name: str) -> None:
    record = load_record(name)
    assert "documentType" not in record["requestParameters"]

    (finding,) = fired(runner(), record)

    assert finding.context["document_type"] == "Command"


def test_rare_creator_response_document_type_is_authoritative() -> None:
    record = load_record("create_document_response_type_authoritative.json")
    assert fired(runner(), record) == []

    record["requestParameters"]["documentType"] = "Command"
    assert fired(runner(), record) == []

    record["requestParameters"]["documentType"] = "Automation"
    record["responseElements"]["documentDescription"]["documentType"] = "Command"
    assert len(fired(runner(), record)) == 1


def test_rare_creator_document_type_is_case_insensitive() -> None:
    record = creation("lower", T0)
    record["requestParameters"]["documentType"] = "command"
    record["responseElements"] = None

    assert len(fired(runner(), record)) == 1


@pytest.mark.parametrize("error_code", ["AccessDenied", "DocumentAlreadyExists"])
def test_rare_creator_failed_creation_does_not_fire_or_count(error_code: str) -> None:
    run = runner()
    failed = creation("failed", T0)
    failed["errorCode"] = error_code
    failed["responseElements"] = None

    assert fired(run, failed) == []
    assert len(fired(run, creation("succeeded", T0 + timedelta(minutes=2)))) == 1


def test_rare_creator_failed_files_do_not_fire() -> None:
    run = runner()
    assert fired(run, load_record("create_document_failed.json")) == []
    assert fired(run, load_record("create_document_failed_already_exists.json")) == []
    assert len(fired(run, load_record("create_document_after_failed_attempt.json"))) == 1


def test_rare_creator_aws_service_skipped_unless_included() -> None:
    record = creation("by-service", T0)
    record["userIdentity"] = load_record("send_command_state_manager_service.json")["userIdentity"]
    record["sourceIPAddress"] = "ssm.amazonaws.com"

    assert fired(runner(), record) == []
    assert len(fired(runner(Settings(include_service_principals=True)), record)) == 1


def test_rare_creator_same_second_pair_in_time_order_fires_exactly_once() -> None:
    run = runner()

    findings = [f for e in ("a-same-second", "b-same-second") for f in fired(run, creation(e, T0))]

    assert len(findings) == 1


def test_rare_creator_late_arrival_may_add_a_finding_but_never_loses_one() -> None:
    """Documented: verdicts are never retracted, so the earlier-ordered creation arriving late
    fires too. The in-order finding is still among them."""
    run = runner()

    late = [f for e in ("b-same-second", "a-same-second") for f in fired(run, creation(e, T0))]

    assert [f.event_ids for f in late] == [("b-same-second",), ("a-same-second",)]


def test_rare_creator_same_second_pair_in_order_fires_the_smaller_event_id() -> None:
    run = runner()

    findings = [f for e in ("y-1", "y-2") for f in fired(run, creation(e, T0 + DAY))]

    assert [f.event_ids for f in findings] == [("y-1",)]


def test_rare_creator_reprocessing_gives_same_verdict_and_finding_id() -> None:
    run = runner()
    first = creation("first", T0)
    second = creation("second", T0 + 3 * DAY)

    (original,) = fired(run, first)
    assert fired(run, second) == []

    (again,) = fired(run, first)
    assert again.id == original.id
    assert again == original
    assert fired(run, second) == []


def test_rare_creator_duplicate_delivery_reproduces_the_same_finding() -> None:
    run = runner()
    record = load_record("create_document_duplicate_delivery.json")

    (first,) = fired(run, record)
    (second,) = fired(run, record)

    assert first.id == second.id


def test_rare_creator_history_window_setting_respected() -> None:
    short = runner(Settings(history_window=timedelta(days=2)))
    fired(short, creation("first", T0))

    assert fired(short, creation("one-day", T0 + DAY)) == []
    assert len(fired(short, creation("three-days", T0 + 4 * DAY))) == 1

    default = runner()
    fired(default, creation("first", T0))
    assert fired(default, creation("three-days", T0 + 3 * DAY)) == []


def test_rare_creator_history_window_setting_from_environment() -> None:
    settings = Settings.from_env({"HISTORY_WINDOW_DAYS": "20"})
    run = runner(settings)
    fired(run, creation("first", T0))

    assert fired(run, creation("fifteen-days", T0 + 15 * DAY)) == []
    (finding,) = fired(run, creation("forty-days", T0 + 40 * DAY))
    assert finding.context["history_window_days"] == 20


def test_rare_creator_pruning_keeps_at_most_the_newest_members() -> None:
    run = runner()
    settings = run.settings
    total = MAX_MEMBERS + 10
    records = [creation(f"c{n:03d}", T0 + timedelta(minutes=n)) for n in range(total)]
    for record in records:
        fired(run, record)
    update = RareCommandDocumentCreatorDetection().state_update(parse(records[0]), settings)

    held = run.store.apply(StateUpdate(key=update.key, add={}, retention=update.retention))

    members = held[CREATIONS]
    assert len(members) == MAX_MEMBERS
    kept = {m.partition("|")[2] for m in members}
    assert kept == {f"c{n:03d}" for n in range(total - MAX_MEMBERS, total)}


def test_rare_creator_pruned_principal_is_still_not_rare() -> None:
    run = runner()
    for n in range(MAX_MEMBERS + 5):
        fired(run, creation(f"c{n:03d}", T0 + timedelta(minutes=n)))

    assert fired(run, creation("next", T0 + DAY)) == []
