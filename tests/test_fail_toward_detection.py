"""Fail toward detection (issue 11.3): a recognised SSM call with an odd field is judged on what
is valid, through the real handler; the oddity is named in the finding and the log line."""

from __future__ import annotations

from typing import Any

from tests.builders import envelope, load_record
from tests.conftest import Invoke, load_event
from tests.test_manifest import capture_findings

SEND = "AWS.SSM.SendCommand"
FANOUT = "AWS.SSM.DistributedCommand"


def test_eleven_digit_account_is_judged_and_marked_malformed(invoke: Invoke) -> None:
    """The sanitised-dataset shape: both account ids have 11 digits. The literal Sigma detection
    fires and names both fields; the fan-out (keyed by account) skips, and says why in the log."""
    event = load_event("send_command_account_id_eleven_digits.json")

    with capture_findings() as found:
        result = invoke(event)

    assert result["bad_events"] == 0
    assert set(result["findings"]) == {SEND}
    assert found[SEND].context["malformed_fields"] == [
        "recipientAccountId",
        "userIdentity.accountId",
    ]


def test_odd_instance_id_entries_are_left_out_and_the_rest_counted(invoke: Invoke) -> None:
    record: dict[str, Any] = load_record("send_command_success.json")
    record["requestParameters"]["instanceIds"] = [
        "i-0aaaaaaaaaaaaaaa1",
        "../../etc/passwd",
        "i-0aaaaaaaaaaaaaaa2",
        "i-0aaaaaaaaaaaaaaa3",
    ]
    record["responseElements"] = None

    with capture_findings() as found:
        result = invoke(envelope(record))

    assert set(result["findings"]) == {SEND, FANOUT}
    assert found[FANOUT].context["distinct_instances"] == 3
    assert found[FANOUT].context["malformed_fields"] == ["requestParameters.instanceIds[1]"]
    assert "../../etc/passwd" not in str(found[SEND].model_dump())


def test_wildcard_instance_ids_is_an_unknown_size_target_not_one(invoke: Invoke) -> None:
    with capture_findings() as found:
        invoke(load_event("send_command_wildcard_instance_ids_unknown_size.json"))

    context = found[SEND].context
    assert context["instance_count"] == 0
    assert context["instance_ids"] == []
    assert context["unknown_size_targets"] == ["instanceIds=*"]
    assert "an unknown number of instances" in found[SEND].description
    assert found[FANOUT].context["fanout_size"] == "unknown"


def test_overlong_document_name_is_bounded_and_the_event_kept(invoke: Invoke) -> None:
    record: dict[str, Any] = load_record("send_command_success.json")
    record["requestParameters"]["documentName"] = "Doc-" + "x" * 5000
    record["responseElements"] = None

    with capture_findings() as found:
        result = invoke(envelope(record))

    assert result["bad_events"] == 0
    finding = found[SEND]
    assert len(finding.context["document_name"]) == 256
    assert finding.context["malformed_fields"] == ["requestParameters.documentName"]
