"""AWS.SSM.SendCommand (Sigma 38e7f511): every successful SendCommand, with its context."""

from __future__ import annotations

from typing import Any

import pytest

from detections.send_command import SendCommandDetection
from ssm_detect.findings import Finding, ResourceType, Severity, finding_id
from ssm_detect.settings import Allowlist, AllowRule, Settings
from tests.builders import Runner, load_record, parse

DETECTION = "AWS.SSM.SendCommand"


def fire(record: dict[str, Any], settings: Settings | None = None) -> list[Finding]:
    return Runner(settings, [SendCommandDetection()]).process(record)


def one(record: dict[str, Any], settings: Settings | None = None) -> Finding:
    findings = fire(record, settings)
    assert len(findings) == 1, findings
    assert findings[0].detection_id == DETECTION
    return findings[0]


@pytest.mark.parametrize("error_code", ["absent", None, "Success"])
def test_send_command_fires_on_success(error_code: str | None) -> None:
    record = load_record("send_command_success.json")
    if error_code == "absent":
        record.pop("errorCode", None)
    else:
        record["errorCode"] = error_code

    finding = one(record)

    assert finding.event_ids == (record["eventID"],)
    assert finding.severity is Severity.HIGH
    assert finding.severity_reasons == ()


@pytest.mark.parametrize(
    "name",
    [
        "send_command_success.json",
        "send_command_error_code_null.json",
        "send_command_error_code_success.json",
    ],
)
def test_send_command_fires_on_success_files(name: str) -> None:
    assert one(load_record(name)).event_ids == (load_record(name)["eventID"],)


@pytest.mark.parametrize("error_code", ["AccessDenied", "InvalidInstanceId", "ThrottlingException"])
def test_send_command_does_not_fire_on_failure(error_code: str) -> None:
    record = load_record("send_command_success.json")
    record["errorCode"] = error_code

    assert fire(record) == []


def test_send_command_does_not_fire_on_access_denied_file() -> None:
    assert fire(load_record("send_command_access_denied.json")) == []


def test_send_command_does_not_fire_on_create_document() -> None:
    assert fire(load_record("create_document_command_new_principal.json")) == []


def test_send_command_state_manager_is_informational_with_reason() -> None:
    finding = one(load_record("send_command_state_manager_service.json"))

    assert finding.severity is Severity.INFORMATIONAL
    assert finding.principal.is_aws_service
    assert len(finding.severity_reasons) == 1
    assert "AWS service" in finding.severity_reasons[0]


def test_send_command_aws_service_principal_is_informational() -> None:
    finding = one(load_record("send_command_aws_service_principal_three_instances.json"))

    assert finding.severity is Severity.INFORMATIONAL
    assert finding.severity_reasons


def test_send_command_human_invoked_through_cloudformation_stays_high() -> None:
    record = load_record("send_command_success.json")
    record["userIdentity"]["invokedBy"] = "cloudformation.amazonaws.com"

    assert one(record).severity is Severity.HIGH


def test_send_command_context_carries_the_call() -> None:
    record = load_record("send_command_success.json")
    request = record["requestParameters"]
    request["outputS3BucketName"] = "ops-command-output"
    request["documentVersion"] = "3"
    command = record["responseElements"]["command"]

    context = one(record).context

    assert context["document_name"] == request["documentName"]
    assert context["document_version"] == "3"
    assert context["command_id"] == command["commandId"]
    assert context["instance_ids"] == request["instanceIds"]
    assert context["instance_count"] == len(request["instanceIds"])
    assert context["comment"] == request["comment"]
    assert context["output_s3_bucket"] == "ops-command-output"
    assert context["source_ip"] == record["sourceIPAddress"]
    assert context["user_agent"] == record["userAgent"]


def test_send_command_context_falls_back_to_the_response() -> None:
    record = load_record("send_command_success.json")
    command = record["responseElements"]["command"]
    command["outputS3BucketName"] = "bucket-from-response"
    record["requestParameters"] = {"instanceIds": command["instanceIds"]}

    context = one(record).context

    assert context["document_name"] == command["documentName"]
    assert context["document_version"] == command["documentVersion"]
    assert context["comment"] == command["comment"]
    assert context["output_s3_bucket"] == "bucket-from-response"


def test_send_command_context_lists_targets() -> None:
    record = load_record("fanout_tag_target.json")

    context = one(record).context

    target = record["requestParameters"]["targets"][0]
    assert {"key": target["key"], "values": target["values"]} in context["targets"]
    assert context["instance_ids"] == []


def test_send_command_finding_names_principal_account_region_and_resources() -> None:
    record = load_record("send_command_iam_user.json")

    finding = one(record)

    assert finding.principal.arn == record["userIdentity"]["arn"]
    assert finding.account_id == record["recipientAccountId"]
    assert finding.region == record["awsRegion"]
    assert finding.first_seen == finding.last_seen == parse(record).record.event_time
    instances = [r.label for r in finding.resources if r.type is ResourceType.EC2_INSTANCE]
    assert instances == record["requestParameters"]["instanceIds"]
    assert any(r.type is ResourceType.IAM_USER for r in finding.resources)
    assert any(r.type is ResourceType.ACCESS_KEY for r in finding.resources)
    assert any(r.label == "AWS-RunShellScript" for r in finding.resources)


def test_send_command_finding_id_is_deterministic_per_event() -> None:
    record = load_record("send_command_success.json")
    event = parse(record)
    other = load_record("send_command_success.json")
    other["eventID"] = "another-event"

    first, again, different = one(record), one(record), one(other)

    assert first.id == again.id
    assert first.id == finding_id(DETECTION, event.account_id, event.principal.key, event.event_id)
    assert different.id != first.id


def test_send_command_severity_override_applies_with_reason() -> None:
    settings = Settings(severity_overrides={DETECTION: Severity.LOW})

    finding = one(load_record("send_command_success.json"), settings)

    assert finding.severity is Severity.LOW
    assert any("LOW" in r and "configuration" in r for r in finding.severity_reasons)


def test_send_command_severity_override_keeps_earlier_reasons() -> None:
    settings = Settings(severity_overrides={DETECTION: Severity.CRITICAL})

    finding = one(load_record("send_command_state_manager_service.json"), settings)

    assert finding.severity is Severity.CRITICAL
    assert len(finding.severity_reasons) == 2
    assert "AWS service" in finding.severity_reasons[0]
    assert "configuration" in finding.severity_reasons[1]


def test_send_command_severity_override_equal_to_default_adds_no_reason() -> None:
    settings = Settings(severity_overrides={DETECTION: Severity.HIGH})

    finding = one(load_record("send_command_success.json"), settings)

    assert finding.severity is Severity.HIGH
    assert finding.severity_reasons == ()


def test_send_command_severity_override_for_another_detection_does_not_apply() -> None:
    settings = Settings(severity_overrides={"AWS.SSM.DistributedCommand": Severity.CRITICAL})

    assert one(load_record("send_command_success.json"), settings).severity is Severity.HIGH


def test_send_command_severity_override_from_environment() -> None:
    settings = Settings.from_env({"SEVERITY_OVERRIDES_JSON": f'{{"{DETECTION}": "medium"}}'})

    finding = one(load_record("send_command_success.json"), settings)

    assert finding.severity is Severity.MEDIUM
    assert finding.severity_reasons


def test_send_command_allowlisted_document_does_not_fire() -> None:
    settings = Settings(allowlist=Allowlist({DETECTION: AllowRule(documents=("AWS-Run*",))}))
    runner = Runner(settings, [SendCommandDetection()])

    outcome = runner.pipeline.process(parse(load_record("send_command_success.json")))

    assert outcome.findings == []
    assert outcome.allowlisted == [DETECTION]


def test_send_command_allowlisted_role_does_not_fire_but_others_do() -> None:
    allowed = load_record("send_command_success.json")
    role_arn = allowed["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"]
    settings = Settings(allowlist=Allowlist({"*": AllowRule(principals=(role_arn,))}))

    assert fire(allowed, settings) == []
    assert len(fire(load_record("send_command_iam_user.json"), settings)) == 1
