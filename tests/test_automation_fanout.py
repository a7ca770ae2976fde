"""Automation fan-out (issue 12 point 4): the instances a code-running runbook reaches count in
the same distinct-in-window block as SendCommand's, per principal."""

from __future__ import annotations

from ssm_detect.findings import Finding
from ssm_detect.ingest import to_event
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.state.memory import MemoryStateStore
from ssm_detect.wiring import local_pipeline
from tests.conftest import Invoke, load_event

FANOUT = "AWS.SSM.DistributedCommand"


def fanouts(*files: str) -> list[list[Finding]]:
    settings = Settings()
    pipeline = local_pipeline(settings, MemoryStateStore())
    found = []
    for name in files:
        event = to_event(load_event(name)["detail"], settings.principal_keying)
        assert isinstance(event, SsmEvent)
        found.append([f for f in pipeline.process(event).findings if f.detection_id == FANOUT])
    return found


def test_runbook_and_send_command_reaches_count_together_through_the_handler(
    invoke: Invoke,
) -> None:
    first = invoke(load_event("automation_fanout_1_runbook_two_instances.json"))
    assert FANOUT not in first["findings"]
    second = invoke(load_event("automation_fanout_2_send_command_third_instance.json"))
    assert second["findings"].get(FANOUT) == 1


def test_fan_out_lists_the_runbook_instances_and_both_calls() -> None:
    _, (finding,) = fanouts(
        "automation_fanout_1_runbook_two_instances.json",
        "automation_fanout_2_send_command_third_instance.json",
    )
    assert finding.context["distinct_instances"] == 3
    assert set(finding.context["window_instance_ids"]) == {
        "i-0f00000000000a001",
        "i-0f00000000000a002",
        "i-0f00000000000a003",
    }
    assert len(finding.context["contributing_events"]) == 2


def test_either_order_gives_the_same_fan_out() -> None:
    files = (
        "automation_fanout_1_runbook_two_instances.json",
        "automation_fanout_2_send_command_third_instance.json",
    )
    in_order = [f.id for per in fanouts(*files) for f in per]
    reverse = [f.id for per in fanouts(*reversed(files)) for f in per]
    assert in_order == reverse
    assert len(in_order) == 1


def test_runbook_alone_over_the_threshold_is_a_fan_out() -> None:
    (found,) = fanouts("start_automation_runbook_commands_download.json")
    assert [f.context["distinct_instances"] for f in found] == [3]


def test_tag_targets_of_a_shell_runbook_are_a_fan_out_of_unknown_size() -> None:
    (found,) = fanouts("start_automation_shell_runbook_tag_targets.json")
    assert found
    assert found[0].context["fanout_size"] == "unknown"


def test_config_remediation_and_runbooks_without_code_do_not_count() -> None:
    assert fanouts(
        "automation_fanout_config_remediation_three_instances.json",
        "start_automation_config_remediation.json",
    ) == [[], []]
