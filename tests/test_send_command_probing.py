"""Probing (issue 12 point 7): failed SendCommands by one principal, then a success within the
window, through the real handler and the pipeline; failed calls never count toward fan-out."""

from __future__ import annotations

from datetime import timedelta

from ssm_detect.findings import Finding, Severity
from ssm_detect.ingest import to_event
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.state.memory import MemoryStateStore
from ssm_detect.wiring import local_pipeline
from tests.conftest import Invoke, load_event

PROBING = "AWS.SSM.SendCommandProbing"
BURST = (
    "probe_1_access_denied.json",
    "probe_2_invalid_instance.json",
    "probe_3_invalid_document.json",
    "probe_4_success.json",
)
LATE = (
    "probe_late_1_denied.json",
    "probe_late_2_denied.json",
    "probe_late_3_success.json",
    "probe_late_4_invalid_arrives_last.json",
)


def findings(files: tuple[str, ...], settings: Settings | None = None) -> list[list[Finding]]:
    settings = settings or Settings()
    pipeline = local_pipeline(settings, MemoryStateStore())
    found = []
    for name in files:
        event = to_event(load_event(name)["detail"], settings.principal_keying)
        assert isinstance(event, SsmEvent)
        found.append(pipeline.process(event).findings)
    return found


def probing(found: list[list[Finding]]) -> list[Finding]:
    return [f for per_event in found for f in per_event if f.detection_id == PROBING]


def test_three_failures_then_a_success_through_the_real_handler(invoke: Invoke) -> None:
    results = [invoke(load_event(name))["findings"] for name in BURST]
    assert results[:3] == [{}, {}, {}]
    assert results[3] == {"AWS.SSM.SendCommand": 1, PROBING: 1}


def test_probing_finding_names_the_failures_and_is_decided_on_the_success() -> None:
    (finding,) = probing(findings(BURST))
    success = load_event("probe_4_success.json")["detail"]["eventID"]
    assert finding.event_ids[-1] == success
    assert finding.context["failed_calls"] == 3
    assert finding.context["error_codes"] == {
        "AccessDenied": 1,
        "InvalidInstanceId": 1,
        "InvalidDocument": 1,
    }
    assert finding.severity is Severity.HIGH  # permission and target/document errors both


def test_a_failure_arriving_after_the_success_gives_the_same_finding() -> None:
    in_time_order = probing(findings((LATE[0], LATE[1], LATE[3], LATE[2])))
    late = probing(findings(LATE))
    assert len(in_time_order) == len(late) == 1
    assert in_time_order[0].model_dump(mode="json") == late[0].model_dump(mode="json")


def test_one_mistyped_instance_then_success_is_not_probing() -> None:
    found = findings(("probe_typo_1_invalid_instance.json", "probe_typo_2_corrected.json"))
    assert probing(found) == []


def test_throttling_is_not_probing() -> None:
    names = (
        *tuple(f"probe_throttled_{n}.json" for n in (1, 2, 3)),
        "probe_throttled_4_success.json",
    )
    assert probing(findings(names)) == []


def test_failures_outside_the_window_do_not_count() -> None:
    narrow = Settings(probe_window=timedelta(minutes=3))
    assert probing(findings(BURST, narrow)) == []


def test_threshold_is_configurable() -> None:
    assert len(probing(findings(BURST, Settings(probe_failures=4)))) == 0
    assert len(probing(findings(BURST[1:], Settings(probe_failures=2)))) == 1


def test_failed_calls_still_never_count_toward_fan_out() -> None:
    found = findings(BURST)
    assert not any(f.detection_id == "AWS.SSM.DistributedCommand" for e in found for f in e)
