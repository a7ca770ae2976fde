"""Parse at the edge: envelopes, bare records, S3 log objects and arrays; bad input reported."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ssm_detect.execution_calls import UpdateDocumentCall
from ssm_detect.ingest import BadEvent, Ignored, describe_error, records_in, to_event
from ssm_detect.models.cloudtrail import CloudTrailRecord
from ssm_detect.models.ssm_calls import MAX_INSTANCE_IDS, MAX_TARGETS
from ssm_detect.principal import PrincipalKeying
from ssm_detect.ssm_event import CreateDocumentCall, SendCommandCall, SsmEvent
from tests.builders import envelope, load_payload, load_record

Parsed = SsmEvent | BadEvent | Ignored
SECRET = "AKIAZZSECRETVALUE9X7Q"
CREATE = "create_document_command_new_principal.json"


def ingest(payload: object) -> list[Parsed]:
    return [
        raw if isinstance(raw, BadEvent | Ignored) else to_event(raw, PrincipalKeying.ROLE)
        for raw in records_in(payload)
    ]


def only(payload: object) -> Parsed:
    parsed = ingest(payload)
    assert len(parsed) == 1, parsed
    return parsed[0]


def bad(payload: object) -> BadEvent:
    parsed = only(payload)
    assert isinstance(parsed, BadEvent), parsed
    return parsed


def ids(a: int, b: int) -> list[str]:
    return [f"i-{n:017x}" for n in range(a, b)]


# Accepted shapes ---------------------------------------------------------------------------


def test_ingest_envelope_yields_its_record() -> None:
    payload = load_payload("send_command_success.json")

    event = only(payload)

    assert isinstance(event, SsmEvent)
    assert event.event_id == payload["detail"]["eventID"]
    assert isinstance(event.call, SendCommandCall)


def test_ingest_bare_record_equals_enveloped_record() -> None:
    record = load_record("send_command_success.json")

    bare, wrapped = only(record), only(envelope(record))

    assert isinstance(bare, SsmEvent)
    assert isinstance(wrapped, SsmEvent)
    assert bare.record == wrapped.record
    assert bare.principal == wrapped.principal


def test_ingest_s3_log_object_yields_every_record_in_order() -> None:
    records = [load_record("send_command_success.json"), load_record(CREATE)]

    parsed = ingest({"Records": records})

    assert [type(p) for p in parsed] == [SsmEvent, SsmEvent]
    assert [p.event_id for p in parsed] == [r["eventID"] for r in records]


def test_ingest_json_array_mixes_envelopes_bare_records_and_log_objects() -> None:
    sent = load_record("send_command_success.json")
    created = load_record(CREATE)
    describe = load_payload("panther_unrelated_describe_instances.json")

    parsed = ingest([envelope(sent), {"Records": [created]}, describe, sent])

    assert [type(p) for p in parsed] == [SsmEvent, SsmEvent, Ignored, SsmEvent]
    assert [p.event_id for p in parsed] == [
        sent["eventID"],
        created["eventID"],
        describe["detail"]["eventID"],
        sent["eventID"],
    ]


def test_ingest_empty_log_object_and_empty_array_yield_nothing() -> None:
    assert ingest({"Records": []}) == []
    assert ingest([]) == []


def test_ingest_create_document_is_parsed_as_create_document_call() -> None:
    event = only(load_payload(CREATE))

    assert isinstance(event, SsmEvent)
    assert isinstance(event.call, CreateDocumentCall)
    assert event.call.is_command_document


def test_ingest_other_ssm_call_reaches_the_pipeline_without_a_call() -> None:
    payload = load_payload("update_document_command.json")
    payload["detail"]["eventName"] = "DescribeDocument"  # an SSM call no detection models
    event = only(payload)

    assert isinstance(event, SsmEvent)
    assert event.call is None


def test_ingest_update_document_is_modelled() -> None:
    event = only(load_payload("update_document_command.json"))

    assert isinstance(event, SsmEvent)
    assert isinstance(event.call, UpdateDocumentCall)
    assert event.call.document_name == "Ops-RestartWorkers"


def test_ingest_normalised_record_keeps_unknown_fields() -> None:
    payload = load_payload("panther_send_command_three_instances.json")
    extras = {k: v for k, v in payload["detail"].items() if k.startswith("p_")}
    assert extras

    event = only(payload)

    assert isinstance(event, SsmEvent)
    assert event.record.model_extra is not None
    for name, value in extras.items():
        assert event.record.model_extra[name] == value


def test_ingest_unknown_field_never_rejects_a_record() -> None:
    record = load_record("send_command_success.json")
    record["someFieldAwsAddsLater"] = {"nested": [1, 2, 3]}
    record["userIdentity"]["newIdentityField"] = "x"
    record["requestParameters"]["newParameter"] = True

    assert isinstance(only(record), SsmEvent)


# Ignored -----------------------------------------------------------------------------------


def test_ingest_non_ssm_record_is_ignored() -> None:
    payload = load_payload("panther_unrelated_describe_instances.json")

    assert only(payload) == Ignored(payload["detail"]["eventID"])


def test_ingest_non_ssm_bare_record_is_ignored() -> None:
    record = load_record("send_command_success.json")
    record["eventSource"] = "ec2.amazonaws.com"

    assert only(record) == Ignored(record["eventID"])


def test_ingest_other_detail_type_is_ignored() -> None:
    payload = load_payload("ssm_command_status_change_notification.json")

    assert isinstance(only(payload), Ignored)


# Bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [42, "text", None, True, 1.5, [7], [[None]]])
def test_ingest_non_object_is_bad(payload: object) -> None:
    assert bad(payload).event_id == "unknown"


def test_ingest_records_not_a_list_is_bad() -> None:
    assert isinstance(only({"Records": {"eventID": "x"}}), BadEvent)


def test_ingest_detail_not_an_object_is_bad() -> None:
    payload = load_payload("malformed_detail_json_string.json")

    found = bad(payload)

    assert found.event_id == payload["id"]
    assert "detail" in found.reason


def test_ingest_envelope_without_id_is_bad() -> None:
    payload = load_payload("send_command_success.json")
    del payload["id"]

    assert isinstance(only(payload), BadEvent)


@pytest.mark.parametrize("field", ["eventTime", "eventSource", "userIdentity", "eventID"])
def test_ingest_missing_required_field_is_bad(field: str) -> None:
    record = load_record("send_command_success.json")
    del record[field]

    found = bad(record)

    assert field in found.reason


def test_ingest_missing_fields_in_real_files_are_bad() -> None:
    for name in ("malformed_missing_event_time.json", "malformed_missing_user_identity.json"):
        payload = load_payload(name)
        assert bad(payload).event_id == payload["detail"]["eventID"], name


def test_ingest_event_time_not_a_date_is_bad() -> None:
    assert "eventTime" in bad(load_payload("malformed_event_time_not_a_date.json")).reason


def test_ingest_instance_ids_as_string_is_bad() -> None:
    record = load_record("send_command_success.json")
    record["requestParameters"]["instanceIds"] = "i-0887569e2156800ad"

    assert "instanceIds" in bad(record).reason
    assert isinstance(only(load_payload("malformed_instance_ids_string.json")), BadEvent)


def test_ingest_instance_ids_at_the_bound_are_accepted() -> None:
    record = load_record("send_command_success.json")
    record["requestParameters"]["instanceIds"] = ids(0, MAX_INSTANCE_IDS)

    event = only(record)

    assert isinstance(event, SsmEvent)
    assert isinstance(event.call, SendCommandCall)
    assert len(event.call.request.instance_ids) == MAX_INSTANCE_IDS


@pytest.mark.parametrize("where", ["request", "response"])
def test_ingest_instance_ids_above_the_bound_are_bad(where: str) -> None:
    record = load_record("send_command_success.json")
    too_many = ids(0, MAX_INSTANCE_IDS + 1)
    if where == "request":
        record["requestParameters"]["instanceIds"] = too_many
    else:
        record["responseElements"]["command"]["instanceIds"] = too_many

    found = bad(record)

    assert found.event_id == record["eventID"]
    assert "instanceIds" in found.reason


def test_ingest_null_instance_ids_are_empty() -> None:
    record = load_record("send_command_success.json")
    record["requestParameters"]["instanceIds"] = None
    record["responseElements"]["command"]["instanceIds"] = None

    event = only(record)

    assert isinstance(event, SsmEvent)
    assert isinstance(event.call, SendCommandCall)
    assert event.call.instance_ids == ()


@pytest.mark.parametrize("targets", ["InstanceIds=i-1", {"Key": "InstanceIds"}, 3])
def test_ingest_targets_not_a_list_is_bad(targets: object) -> None:
    record = load_record("fanout_tag_target.json")
    record["requestParameters"]["targets"] = targets

    assert "targets" in bad(record).reason


@pytest.mark.parametrize("target", ["tag:Env=prod", ["tag:Env", "prod"], None, 5])
def test_ingest_target_not_an_object_is_bad(target: object) -> None:
    record = load_record("fanout_tag_target.json")
    record["requestParameters"]["targets"].append(target)

    assert "target" in bad(record).reason


def test_ingest_target_without_key_is_bad() -> None:
    record = load_record("fanout_tag_target.json")
    record["requestParameters"]["targets"] = [{"values": ["prod"]}]

    assert isinstance(only(record), BadEvent)


def test_ingest_targets_at_the_bound_are_accepted() -> None:
    record = load_record("fanout_tag_target.json")
    record["requestParameters"]["targets"] = [
        {"Key": f"tag:K{n}", "Values": ["v"]} for n in range(MAX_TARGETS)
    ]

    event = only(record)

    assert isinstance(event, SsmEvent)
    assert isinstance(event.call, SendCommandCall)
    assert len(event.call.request.targets) == MAX_TARGETS


def test_ingest_targets_above_the_bound_are_bad() -> None:
    record = load_record("fanout_tag_target.json")
    record["requestParameters"]["targets"] = [
        {"Key": f"tag:K{n}", "Values": ["v"]} for n in range(MAX_TARGETS + 1)
    ]

    found = bad(record)

    assert str(MAX_TARGETS) in found.reason


def test_ingest_target_key_in_any_letter_case_is_accepted() -> None:
    record = load_record("fanout_tag_target.json")
    record["requestParameters"]["targets"] = [{"KEY": "  tag:Env ", "VaLuEs": ["prod"]}]

    event = only(record)

    assert isinstance(event, SsmEvent)
    assert isinstance(event.call, SendCommandCall)
    assert [(t.key, t.values) for t in event.call.request.targets] == [("tag:Env", ("prod",))]


def test_ingest_bad_record_inside_log_object_does_not_hide_the_others() -> None:
    good = load_record("send_command_success.json")
    broken = load_record(CREATE)
    del broken["userIdentity"]

    parsed = ingest({"Records": [good, broken, "junk", good]})

    assert [type(p) for p in parsed] == [SsmEvent, BadEvent, BadEvent, SsmEvent]


# describe_error never echoes input ---------------------------------------------------------


def _secret_in(record: dict[str, Any], where: str) -> None:
    match where:
        case "instanceIds":
            record["requestParameters"]["instanceIds"] = SECRET
        case "instanceIds item":
            record["requestParameters"]["instanceIds"] = [{"id": SECRET}]
        case "targets":
            record["requestParameters"]["targets"] = SECRET
        case "target":
            record["requestParameters"]["targets"] = [SECRET]
        case "target values":
            record["requestParameters"]["targets"] = [{"Key": "tag:x", "Values": SECRET}]
        case "comment":
            record["requestParameters"]["comment"] = {"text": SECRET}
        case "userIdentity":
            record["userIdentity"] = SECRET
        case "identity arn":
            record["userIdentity"]["arn"] = [SECRET]
        case "recipientAccountId":
            record["recipientAccountId"] = [SECRET]
        case "eventName":
            record["eventName"] = {"name": SECRET}
        case "requestParameters":
            record["requestParameters"] = SECRET
        case "command":
            record["responseElements"]["command"] = SECRET


@pytest.mark.parametrize(
    "where",
    [
        "instanceIds",
        "instanceIds item",
        "targets",
        "target",
        "target values",
        "comment",
        "userIdentity",
        "identity arn",
        "recipientAccountId",
        "eventName",
        "requestParameters",
        "command",
    ],
)
def test_ingest_bad_reason_never_contains_the_offending_value(where: str) -> None:
    record = load_record("send_command_success.json")
    _secret_in(record, where)

    found = bad(record)

    assert SECRET not in found.reason
    assert SECRET.lower() not in found.reason.lower()
    assert "\n" not in found.reason
    assert found.reason


def test_ingest_bad_reason_never_contains_a_bad_event_time_value() -> None:
    record = load_record("send_command_success.json")
    record["eventTime"] = SECRET

    assert SECRET not in bad(record).reason


def test_ingest_bad_envelope_reason_never_contains_the_detail_value() -> None:
    payload = load_payload("send_command_success.json")
    payload["detail"] = SECRET

    assert SECRET not in bad(payload).reason


def test_describe_error_is_one_short_line() -> None:
    record = load_record("send_command_success.json")
    record["requestParameters"]["instanceIds"] = [1] * 50
    record["eventName"] = None
    record["eventTime"] = ["x"]
    try:
        CloudTrailRecord.model_validate(record)
    except ValidationError as error:
        text = describe_error(error)
    else:
        pytest.fail("expected a validation error")

    assert "\n" not in text
    assert 0 < len(text) <= 300


def test_describe_error_flattens_multiline_messages() -> None:
    text = describe_error(TypeError("first line\nsecond line\r\n\tthird"))

    assert text == "TypeError: first line second line third"


def test_ingest_event_time_beyond_datetime_limits_is_bad_not_raised() -> None:
    record = load_record("send_command_success.json")
    record["eventTime"] = "9999-12-31T23:59:59-01:00"

    assert isinstance(only(record), BadEvent)
