"""Issue 12 points 1 and 6: one chain model for created and modified documents, every run path,
Automation and Session documents beside the seed's Command documents. Driven with the event
files in events/ through the real pipeline (and the real handler where the sequence is the
point)."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from detections import created_document_executed
from detections.created_document_executed import CreatedDocumentExecutedDetection, document_key
from detections.document_chain import version_link
from detections.document_version_tampering import (
    DocumentVersionByNewPrincipalDetection,
    changer_key,
)
from ssm_detect.findings import Finding, Severity
from ssm_detect.ingest import to_event
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.state.memory import MemoryStateStore
from ssm_detect.wiring import local_pipeline
from tests.builders import envelope
from tests.conftest import Invoke, load_event

CHAIN = "AWS.SSM.CreatedDocumentExecuted"
VERSION = "AWS.SSM.DocumentVersionByNewPrincipal"
RARE_COMMAND = "AWS.SSM.RareCommandDocumentCreator"
RARE_OTHER = "AWS.SSM.RareAutomationOrSessionDocumentCreator"
CONTENT = "AWS.SSM.MaliciousDocumentContent"
NEW_VERSION = "version_tamper_1_new_principal.json"


def detail(name: str, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(load_event(name)["detail"])
    record.update(changes)
    return record


def run(*records: dict[str, Any], settings: Settings | None = None) -> list[list[Finding]]:
    """Every event's findings, through one pipeline with in-memory state."""
    settings = settings or Settings()
    pipeline = local_pipeline(settings, MemoryStateStore())
    found = []
    for raw in records:
        event = to_event(raw, settings.principal_keying)
        assert isinstance(event, SsmEvent)
        found.append(pipeline.process(event).findings)
    return found


def only(findings: list[Finding], detection: str) -> list[Finding]:
    return [f for f in findings if f.detection_id == detection]


def ids(findings: list[Finding]) -> set[str]:
    return {f.detection_id for f in findings}


# --- the modified-document chain ---------------------------------------------------------------


def test_version_chain_is_the_same_finding_whichever_half_arrives_second() -> None:
    change = detail(NEW_VERSION)
    runner = detail("version_tamper_3_run_explicit_version.json")
    (in_order,) = only(run(change, runner)[1], CHAIN)
    (reversed_,) = only(run(runner, change)[1], CHAIN)
    assert in_order.id == reversed_.id
    assert in_order.context == reversed_.context
    assert in_order.severity is reversed_.severity is Severity.HIGH
    assert in_order.principal.arn == runner["userIdentity"]["arn"]
    assert in_order.event_ids == (change["eventID"], runner["eventID"])
    context = in_order.context
    assert context["change"] == "new version"
    assert context["change_version"] == "3"
    assert context["flagged_by"] == [VERSION]
    assert context["execution_path"] == "SendCommand"
    assert set(context["actors"]) == {"changer", "executor"}


def test_every_run_before_the_version_gets_its_finding_when_the_version_arrives(
    invoke: Invoke,
) -> None:
    """Two runs (explicit version, $LATEST) arrive before the version they ran; the version's
    arrival raises both chain findings, through the real handler, with the in-order ids."""
    change = detail(NEW_VERSION)
    explicit = detail("version_tamper_3_run_explicit_version.json")
    latest = detail(
        "version_tamper_3_run_explicit_version.json",
        eventID="run-latest",
        eventTime="2025-05-06T09:45:00Z",
    )
    latest["requestParameters"]["documentVersion"] = "$LATEST"
    assert invoke(envelope(explicit))["findings"].get(CHAIN) is None
    assert invoke(envelope(latest))["findings"].get(CHAIN) is None

    result = invoke(envelope(change))

    assert result["findings"].get(CHAIN) == 2
    in_order = run(change, explicit, latest)
    expected = {f.id for f in only(in_order[1] + in_order[2], CHAIN)}
    late = only(run(explicit, latest, change)[2], CHAIN)
    assert {f.id for f in late} == expected
    assert {f.context["execution_event_id"] for f in late} == {explicit["eventID"], "run-latest"}


@pytest.mark.parametrize(
    ("name", "path", "severity"),
    [
        ("version_tamper_2_made_default.json", "UpdateDocumentDefaultVersion", Severity.HIGH),
        ("version_tamper_7_association_latest_tag.json", "CreateAssociation", Severity.CRITICAL),
        ("version_tamper_4_run_default_version.json", "SendCommand", Severity.MEDIUM),
    ],
)
def test_version_chain_runs_by_every_path(name: str, path: str, severity: Severity) -> None:
    (chain,) = only(run(detail(NEW_VERSION), detail(name))[1], CHAIN)
    assert chain.context["execution_path"] == path
    assert chain.severity is severity


def test_default_run_of_a_version_not_known_to_be_default_says_why_it_is_lower() -> None:
    (chain,) = only(
        run(detail(NEW_VERSION), detail("version_tamper_4_run_default_version.json"))[1], CHAIN
    )
    assert any("lowered one step" in r and "default" in r for r in chain.severity_reasons)
    assert "not the default" in chain.context["version_link"]


@pytest.mark.parametrize(
    "name", ["version_tamper_5_run_older_version.json", "version_tamper_6_rollback_default.json"]
)
def test_older_versions_and_rollbacks_are_not_linked(name: str) -> None:
    assert only(run(detail(NEW_VERSION), detail(name))[1], CHAIN) == []


def test_a_run_pairs_with_the_latest_flagged_change_only_one_finding() -> None:
    """Created by a rare creator, then given a flagged version, then run: ONE chain finding
    (one detection id, one state item), linked to the version."""
    creation = detail("chain_create_rare_document.json")
    version = detail(
        NEW_VERSION, eventTime="2025-04-02T11:00:00Z", eventID="version-of-backup-verify"
    )
    version["requestParameters"]["name"] = "Backup-Verify"
    version["responseElements"]["documentDescription"]["name"] = "Backup-Verify"
    runner = detail("chain_execute_within_window.json")
    runner["requestParameters"]["documentVersion"] = "$LATEST"
    found = run(creation, version, runner)
    assert ids(found[0]) == {RARE_COMMAND}
    assert ids(found[1]) == {VERSION}
    (chain,) = only(found[2], CHAIN)
    assert chain.context["creation_event_id"] == "version-of-backup-verify"
    assert chain.context["change"] == "new version"


def test_created_chain_keeps_its_context_and_actors() -> None:
    (chain,) = only(
        run(detail("chain_create_rare_document.json"), detail("chain_execute_within_window.json"))[
            1
        ],
        CHAIN,
    )
    assert chain.context["change"] == "created"
    assert set(chain.context["actors"]) == {"creator", "executor"}
    assert chain.context["flagged_by"] == [RARE_COMMAND]


def test_unflagged_changes_cost_the_chain_no_state_call() -> None:
    """The owner's own update is flagged by nothing: the chain records nothing for it."""
    owner_create, owner_update = (
        detail("version_owner_1_create.json"),
        detail("version_owner_2_update_own_document.json"),
    )
    settings = Settings()
    pipeline = local_pipeline(settings, MemoryStateStore())
    for raw in (detail("version_owner_0_earlier_document.json"), owner_create):
        event = to_event(raw, settings.principal_keying)
        assert isinstance(event, SsmEvent)
        pipeline.process(event)
    event = to_event(owner_update, settings.principal_keying)
    assert isinstance(event, SsmEvent)
    assert CreatedDocumentExecutedDetection().state_update(event, settings) is None


# --- benign look-alikes ------------------------------------------------------------------------


def test_ci_role_per_deploy_documents_never_chain() -> None:
    found = run(
        detail("ci_deploy_1_previous_deploy.json"),
        detail("ci_deploy_2_create.json"),
        detail("ci_deploy_3_run.json"),
    )
    assert ids(found[1]) == set()
    assert ids(found[2]) == {"AWS.SSM.SendCommand"}


def test_owner_updating_and_running_its_own_document_is_quiet() -> None:
    found = run(
        detail("version_owner_0_earlier_document.json"),
        detail("version_owner_1_create.json"),
        detail("version_owner_2_update_own_document.json"),
        detail("version_owner_3_run_latest.json"),
    )
    assert [ids(f) for f in found[1:]] == [set(), set(), {"AWS.SSM.SendCommand"}]


def test_malicious_version_by_the_owner_fires_content_and_chains_critical() -> None:
    found = run(
        detail("version_owner_0_earlier_document.json"),
        detail("version_owner_1_create.json"),
        detail("version_malicious_owner_update.json"),
        detail("version_malicious_owner_run.json"),
    )
    assert ids(found[2]) == {CONTENT}
    (chain,) = only(found[3], CHAIN)
    assert chain.severity is Severity.CRITICAL
    assert chain.context["flagged_by"] == [CONTENT]


# --- the new-principal version detection -------------------------------------------------------


def test_new_principal_version_is_judged_per_document_and_region() -> None:
    version = detail(NEW_VERSION)
    again = detail(NEW_VERSION, eventID="again", eventTime="2025-05-07T09:00:00Z")
    other_region = detail(NEW_VERSION, eventID="west", awsRegion="eu-west-1")
    found = run(version, again, other_region)
    assert [ids(f) for f in found] == [{VERSION}, set(), {VERSION}]


def test_new_principal_version_history_window_expires() -> None:
    version = detail(NEW_VERSION)
    later = detail(NEW_VERSION, eventID="later", eventTime="2025-05-20T09:00:00Z")
    assert [ids(f) for f in run(version, later)] == [{VERSION}, {VERSION}]
    short = Settings(history_window=timedelta(days=30))
    assert [ids(f) for f in run(version, later, settings=short)] == [{VERSION}, set()]


def test_session_preferences_are_left_to_their_own_detections() -> None:
    found = run(detail("update_document_session_preferences_logging_off.json"))
    assert VERSION not in ids(found[0])


def test_new_principal_key_names_the_principal_and_fits_dynamodb_for_hostile_names() -> None:
    version = detail(NEW_VERSION)
    event = to_event(version, Settings().principal_keying)
    assert isinstance(event, SsmEvent)
    update = DocumentVersionByNewPrincipalDetection().state_update(event, Settings())
    assert update is not None
    assert update.key == (
        "changer#111122223333#us-west-2#Ops-CollectDiagnostics#"
        "arn:aws:iam::111122223333:role/SupportAccess"
    )
    long_key = changer_key("111122223333", "us-west-2", "D" * 1024, "P" * 1024)
    assert len(str(long_key).encode()) <= 2048
    assert str(long_key).endswith("#sha256:" + long_key.name.rsplit(":", 1)[-1])


def test_new_principal_version_carries_content_so_the_content_detection_stays_silent() -> None:
    (findings,) = run(detail("update_document_command.json"))
    assert ids(findings) == {VERSION}
    (finding,) = findings
    assert finding.severity is Severity.HIGH
    assert finding.context["content_findings"]


# --- Automation and Session documents (point 6) -------------------------------------------------


def test_seed_rule_stays_command_only() -> None:
    for name in (
        "create_document_automation.json",
        "runbook_1_create_rare_execute_script.json",
        "session_document_1_create_rare_profile.json",
    ):
        (findings,) = run(detail(name))
        assert RARE_COMMAND not in ids(findings), name
        assert RARE_OTHER in ids(findings), name


def test_rare_runbook_creator_keeps_one_history_per_document_type() -> None:
    runbook = detail("runbook_1_create_rare_execute_script.json")
    second_runbook = detail(
        "create_document_automation.json",
        userIdentity=runbook["userIdentity"],
        eventTime="2025-05-07T15:00:00Z",
    )
    session = detail("session_document_1_create_rare_profile.json")
    found = run(runbook, second_runbook, session)
    assert ids(found[1]) == set()  # not new to runbooks
    assert RARE_OTHER in ids(found[2])  # new to Session documents


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("runbook_1_create_rare_execute_script.json", "the content inspector flagged it"),
        ("create_document_automation.json", "content hidden by CloudTrail: it may run code"),
    ],
)
def test_rare_runbook_creator_says_why_the_document_can_run_code(name: str, why: str) -> None:
    (finding,) = only(run(detail(name))[0], RARE_OTHER)
    assert finding.context["runs_code"] == why


def test_runbook_step_without_inspector_hits_still_runs_code() -> None:
    runbook = detail("runbook_1_create_rare_execute_script.json")
    runbook["requestParameters"]["content"] = (
        "schemaVersion: '0.3'\nmainSteps:\n  - name: restart\n    action: aws:runCommand\n"
        "    inputs:\n      DocumentName: AWS-RunShellScript\n"
        "      Parameters:\n        commands: ['systemctl restart nginx']\n"
    )
    (finding,) = only(run(runbook)[0], RARE_OTHER)
    assert finding.context["runs_code"] == "steps aws:runcommand"
    assert finding.severity is Severity.MEDIUM


@pytest.mark.parametrize(
    "name", ["runbook_create_rare_no_code.json", "session_document_create_rare_port_only.json"]
)
def test_documents_that_run_no_code_do_not_fire(name: str) -> None:
    assert run(detail(name)) == [[]]


@pytest.mark.parametrize(
    ("creation", "start", "path"),
    [
        (
            "runbook_1_create_rare_execute_script.json",
            "runbook_2_start_flagged_runbook.json",
            "StartAutomationExecution",
        ),
        (
            "session_document_1_create_rare_profile.json",
            "session_document_2_start_session.json",
            "StartSession",
        ),
    ],
)
def test_customer_runbooks_and_session_documents_chain_on_their_creation(
    creation: str, start: str, path: str, invoke: Invoke
) -> None:
    assert RARE_OTHER in invoke(load_event(creation))["findings"]
    assert invoke(load_event(start))["findings"].get(CHAIN) == 1
    (chain,) = only(run(detail(creation), detail(start))[1], CHAIN)
    assert chain.context["execution_path"] == path
    assert chain.severity is Severity.CRITICAL  # the creation's content was already HIGH
    (reversed_,) = only(run(detail(start), detail(creation))[1], CHAIN)
    assert reversed_.id == chain.id


# --- the version link and the one AWS-owned list ----------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "linked", "certain"),
    [
        ({"change": "created", "version": "1"}, {"asked_version": None}, True, True),
        ({"change": "created", "version": "1"}, {"asked_version": "$DEFAULT"}, True, True),
        ({"change": "new version", "version": "3"}, {"asked_version": "$LATEST"}, True, True),
        ({"change": "new version", "version": "3"}, {"asked_version": "3"}, True, True),
        ({"change": "new version", "version": "3"}, {"asked_version": "4"}, True, True),
        ({"change": "new version", "version": "3"}, {"asked_version": "2"}, False, True),
        ({"change": "new version", "version": "3"}, {"asked_version": "$DEFAULT"}, True, False),
        (
            {"change": "new version", "version": "3", "default_version": "3"},
            {"asked_version": None},
            True,
            True,
        ),
        (
            {"change": "new version", "version": "3"},
            {"asked_version": "2", "path": "UpdateDocumentDefaultVersion"},
            False,
            True,
        ),
        ({"change": "new version", "version": None}, {"asked_version": "2"}, True, True),
        ({}, {}, True, True),  # members written before versions were recorded
    ],
)
def test_version_link(
    first: dict[str, Any], second: dict[str, Any], *, linked: bool, certain: bool
) -> None:
    link = version_link(first, second)
    assert (link.linked, link.certain) == (linked, certain)


def test_one_aws_owned_prefix_list() -> None:
    assert not hasattr(created_document_executed, "_AWS_OWNED_PREFIXES")
    assert document_key("AWSConfigRemediation-EnableCloudTrailLogFileValidation") is None
    assert document_key("AWSSupport-RunEC2RescueForLinux") is None
    assert document_key("arn:aws:ssm:us-east-1:111122223333:document/Backup") == "Backup"


# --- more run paths, from the bundled files -----------------------------------------------------


def test_malicious_session_preferences_profile_then_a_default_session_chains() -> None:
    """Point 6's Session example: the preferences' shell profile now runs `bash <(curl ...)`;
    a later plain StartSession (no document: SSM-SessionManagerRunShell) runs it."""
    profile = detail("update_document_session_preferences_profile_download.json")
    session = detail("session_shell_operator.json", eventTime="2025-04-02T11:00:00Z")
    found = run(profile, session)
    assert CONTENT in ids(found[0])
    (chain,) = only(found[1], CHAIN)
    assert chain.context["execution_path"] == "StartSession"
    assert chain.context["document_name"] == "SSM-SessionManagerRunShell"
    assert chain.severity.rank >= Severity.HIGH.rank


def test_association_batch_links_through_its_customer_document() -> None:
    """The batch's first entry is an AWS document; the customer one is linked."""
    version = detail(NEW_VERSION, eventTime="2025-04-02T10:00:00Z")
    batch = detail("create_association_batch_customer_document_tag.json")
    (chain,) = only(run(version, batch)[1], CHAIN)
    assert chain.context["execution_path"] == "CreateAssociationBatch"
    assert chain.context["document_name"] == "Ops-CollectDiagnostics"
    assert chain.context["execution_was_fanout"] is True  # tag:Env=prod


def test_change_request_runbook_links_with_its_explicit_version() -> None:
    creation = detail("runbook_1_create_rare_execute_script.json", eventTime="2025-04-02T10:00:00Z")
    creation["requestParameters"]["name"] = "Ops-Hotfix"
    creation["responseElements"]["documentDescription"]["name"] = "Ops-Hotfix"
    change = detail("start_change_request_runbook_commands.json")
    (chain,) = only(run(creation, change)[1], CHAIN)
    assert chain.context["execution_path"] == "StartChangeRequestExecution"
    assert chain.context["asked_version"] == "1"
    assert chain.context["instance_ids"] == ["i-0a1b2c3d4e5f60718"]
