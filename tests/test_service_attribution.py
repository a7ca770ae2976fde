"""Attribute to people (issue 12 points 3-5): a SendCommand an AWS service issues for an
association, an Automation execution or a maintenance-window task names who configured it,
whichever of the two arrives first; calls nobody configured stay service activity."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from detections.evidence import ACTOR_FIELDS
from ssm_detect.findings import Finding, Severity
from ssm_detect.ingest import to_event
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.state.base import StateSnapshot, StateUpdate
from ssm_detect.state.memory import MemoryStateStore
from ssm_detect.wiring import local_pipeline
from tests.conftest import REGION, TABLE, Invoke, ensure_state_table, load_event
from tests.test_arrival_order import make_detector

SEND = "AWS.SSM.SendCommand"
CREATOR = "arn:aws:iam::111122223333:role/ci-deployer"
STATE_MANAGER = (
    "arn:aws:iam::111122223333:role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM"
)


def run(*files: str, settings: Settings | None = None) -> list[list[Finding]]:
    """SendCommand findings per file, through one pipeline (in-memory state)."""
    settings = settings or Settings()
    pipeline = local_pipeline(settings, MemoryStateStore())
    found = []
    for name in files:
        event = to_event(load_event(name)["detail"], settings.principal_keying)
        assert isinstance(event, SsmEvent)
        found.append([f for f in pipeline.process(event).findings if f.detection_id == SEND])
    return found


def comparable(finding: Finding) -> dict[str, Any]:
    dumped: dict[str, Any] = finding.model_dump(mode="json")
    return dumped


@pytest.mark.parametrize(
    ("configuration", "service_run", "configurer", "kind"),
    [
        (
            "create_association_shell_all_instances.json",
            "attrib_state_manager_run_for_association.json",
            CREATOR,
            "association",
        ),
        (
            "start_automation_runbook_commands_download.json",
            "attrib_automation_step_run.json",
            CREATOR,
            "automation-execution",
        ),
        (
            "register_task_maintenance_window_run_shell.json",
            "attrib_maintenance_window_run.json",
            CREATOR,
            "maintenancewindow",
        ),
    ],
)
def test_service_issued_run_names_who_configured_it_in_either_order(
    configuration: str, service_run: str, configurer: str, kind: str
) -> None:
    in_order = run(configuration, service_run)
    assert in_order[0] == []  # the configuration alone raises no SendCommand finding
    (attributed,) = in_order[1]
    actors = attributed.context["actors"]
    assert set(actors) == {"configured_by", "issued_by"}
    assert set(actors["configured_by"]) == set(ACTOR_FIELDS) == set(actors["issued_by"])
    assert actors["configured_by"]["principal_key"] == configurer
    assert actors["configured_by"]["event_id"] == load_event(configuration)["detail"]["eventID"]
    assert actors["issued_by"]["event_id"] == load_event(service_run)["detail"]["eventID"]
    assert attributed.context["issued_for"]["kind"] == kind
    assert attributed.severity is Severity.HIGH  # not lowered for the service
    assert not any(r.startswith("lowered") for r in attributed.severity_reasons)
    assert configurer in {r.id for r in attributed.resources}

    reversed_order = run(service_run, configuration)
    (alone,) = reversed_order[0]
    (late,) = reversed_order[1]
    assert alone.id == late.id == attributed.id  # one finding, whichever half came second
    assert alone.severity is Severity.MEDIUM  # who set it up unknown yet: one step lower
    assert "issued_by" in alone.context["actors"]
    assert comparable(late) == comparable(attributed)


def test_late_configuration_through_the_real_handler_attributes_the_earlier_run(
    invoke: Invoke,
) -> None:
    first = invoke(load_event("attrib_late_1_run_before_configuration.json"))
    assert first["findings"] == {SEND: 1}
    second = invoke(load_event("attrib_late_2_configuration_after_run.json"))
    assert second["findings"] == {SEND: 1, "AWS.SSM.AssociationRunsCode": 1}


def test_a_configuration_outside_the_attribution_window_is_not_linked() -> None:
    narrow = Settings(attribution_window=Settings().attribution_window / 1000)
    _, (run_finding,) = run(
        "create_association_shell_all_instances.json",
        "attrib_state_manager_run_for_association.json",
        settings=narrow,
    )
    assert run_finding.severity is Severity.MEDIUM
    assert "configured_by" not in run_finding.context["actors"]


@pytest.mark.parametrize(
    ("given", "service_run"),
    [
        (
            "create_association_patch_baseline_service.json",
            "attrib_patch_baseline_run_by_state_manager.json",
        ),
        ("start_automation_config_remediation.json", "attrib_config_remediation_step_run.json"),
        ("send_command_success.json", "send_command_state_manager_service.json"),
    ],
)
def test_calls_nobody_configured_stay_service_activity(given: str, service_run: str) -> None:
    _, (finding,) = run(given, service_run)
    assert finding.severity is Severity.INFORMATIONAL
    assert "actors" not in finding.context
    assert any("service activity" in r for r in finding.severity_reasons)


def test_a_service_shell_run_naming_no_configuration_is_not_lowered_to_info() -> None:
    record = load_event("attrib_state_manager_run_for_association.json")
    command = record["detail"]["responseElements"]["command"]
    command["clientName"] = command["clientSourceId"] = ""
    settings = Settings()
    event = to_event(record["detail"], settings.principal_keying)
    assert isinstance(event, SsmEvent)
    store = MemoryStateStore()
    (finding,) = [
        f for f in local_pipeline(settings, store).process(event).findings if f.detection_id == SEND
    ]
    assert finding.severity is Severity.MEDIUM
    assert any(
        "names no configuration" in r or "does not name" in r for r in finding.severity_reasons
    )


class RecordingStore(MemoryStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str] = []

    def apply(self, update: StateUpdate) -> StateSnapshot:
        self.keys.append(update.key)
        return super().apply(update)


def test_only_service_issued_code_runs_and_configurations_touch_the_correlate_block() -> None:
    settings = Settings()
    store = RecordingStore()
    pipeline = local_pipeline(settings, store)
    for name in (
        "send_command_success.json",  # a person's: stateless for this detection
        "send_command_state_manager_service.json",  # service activity
        "attrib_patch_baseline_run_by_state_manager.json",
        "create_association_patch_baseline_service.json",  # configures no code run
        "attrib_state_manager_run_for_association.json",
    ):
        event = to_event(load_event(name)["detail"], settings.principal_keying)
        assert isinstance(event, SsmEvent)
        pipeline.process(event)
    assert [k for k in store.keys if k.startswith("configured#")] == [
        "configured#111122223333#us-west-2#association/8dfe3659-4309-493a-8755-0123456789ab"
    ]


_WALL_AND_RELATED = {"CreatedAt", "UpdatedAt", "RelatedFindings"}


def _security_hub_after(files: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[str]]:
    """The files through the real handler (moto state, SNS, the strict Security Hub double):
    the SendCommand records Security Hub holds and the subjects of the notifications sent.
    Dropped: the wall-clock fields, and RelatedFindings, which link the findings one event
    raised together (a late configuration raises its own finding beside the run's)."""
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        ensure_state_table(boto3.client("dynamodb", region_name=REGION), TABLE)
        detector = make_detector(patch)
        for name in files:
            detector.invoke(load_event(name))
        records = [
            {k: v for k, v in r.items() if k not in _WALL_AND_RELATED}
            | {"FindingProviderFields": {**r["FindingProviderFields"], "RelatedFindings": None}}
            for r in detector.records(SEND)
        ]
        return records, [str(p.get("Subject")) for p in detector.published]


def test_security_hub_holds_the_same_attributed_record_in_either_order() -> None:
    files = (
        "attrib_late_2_configuration_after_run.json",
        "attrib_late_1_run_before_configuration.json",
    )
    in_time_order, subjects = _security_hub_after(files)
    late_configuration, late_subjects = _security_hub_after(files[::-1])
    assert len(in_time_order) == 1
    assert in_time_order == late_configuration
    (record,) = in_time_order
    assert record["Severity"]["Label"] == "HIGH"
    assert "configured by" in record["Description"]
    # In time order the run is notified attributed, at HIGH; late, the run alone is notified at
    # MEDIUM, then the configuration's event carries the attributed HIGH as an escalation.
    assert [s for s in subjects if "SendCommand" in s] == [
        "[ssm-detect] HIGH: SSM SendCommand executed commands on managed instances (111122223333)"
    ]
    assert late_subjects[0].startswith("[ssm-detect] MEDIUM: SSM SendCommand")
    assert len(late_subjects) == 2
