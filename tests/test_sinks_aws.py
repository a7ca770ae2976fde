"""The SNS and Security Hub transports against moto, and against the rules moto skips."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ssm_detect.findings import Finding
from ssm_detect.ingest import to_event
from ssm_detect.settings import Settings
from ssm_detect.sinks.securityhub import ImportFailedError, SecurityHubSink
from ssm_detect.sinks.sns import SnsSink
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.state.memory import MemoryStateStore
from ssm_detect.wiring import local_pipeline
from tests.conftest import REGION, load_event
from tests.fakes import StrictSecurityHub

SECURITY_ACCOUNT = "111122223333"
MEMBER_ACCOUNT = "444455556666"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def findings_of(name: str) -> list[Finding]:
    event = to_event(load_event(name)["detail"], Settings().principal_keying)
    assert isinstance(event, SsmEvent)
    return local_pipeline(Settings(), MemoryStateStore()).process(event).findings


def subscribed_queue(topic_arn: str) -> str:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="findings")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    boto3.client("sns", region_name=REGION).subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=arn
    )
    return url


def queued(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_sns_sink_publishes_json_structure_with_filterable_attributes(aws: None) -> None:
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="findings")["TopicArn"]
    url = subscribed_queue(topic)
    (finding, *_) = findings_of("panther_send_command_three_instances.json")

    SnsSink(sns, topic).send([finding])

    (envelope,) = queued(url)
    attributes = {k: v["Value"] for k, v in envelope["MessageAttributes"].items()}
    assert attributes == {
        "severity": finding.severity.value,
        "detection_id": finding.detection_id,
        "account_id": finding.account_id,
    }
    assert finding.detection_id in envelope["Message"]  # the `default` rendering
    assert "\n" not in envelope["Subject"]
    assert len(envelope["Subject"]) <= 100


def test_sns_sink_message_has_default_email_and_chatbot_renderings(aws: None) -> None:
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="findings")["TopicArn"]
    sent: list[dict[str, Any]] = []
    sns.meta.events.register(
        "provide-client-params.sns.Publish", lambda params, **_: sent.append(params)
    )
    (finding, *_) = findings_of("create_document_command_new_principal.json")

    SnsSink(sns, topic).send([finding])

    (params,) = sent
    assert params["MessageStructure"] == "json"
    structure = json.loads(params["Message"])
    assert set(structure) >= {"default", "email", "https"}
    chatbot = json.loads(structure["https"])
    assert chatbot["version"] == "1.0"
    assert chatbot["source"] == "custom"
    assert chatbot["content"]["textType"] == "client-markdown"


def test_securityhub_sink_imports_into_moto(aws: None) -> None:
    hub = boto3.client("securityhub", region_name=REGION)
    findings = findings_of("panther_send_command_three_instances.json")
    sink = SecurityHubSink(hub, region=REGION, account=SECURITY_ACCOUNT, clock=lambda: NOW)

    sink.send(findings)

    stored = hub.get_findings()["Findings"]
    assert sorted(f["Id"] for f in stored) == sorted(f.id for f in findings)
    assert {f["GeneratorId"] for f in stored} == {f.detection_id for f in findings}


def test_securityhub_sink_batches_at_most_100() -> None:
    hub = StrictSecurityHub(SECURITY_ACCOUNT)
    (finding, *_) = findings_of("panther_send_command_three_instances.json")
    many = [finding.model_copy(update={"id": f"{finding.id}-{n}"}) for n in range(250)]
    SecurityHubSink(hub, region=REGION, account=SECURITY_ACCOUNT).send(many)  # type: ignore[arg-type]
    assert hub.calls == 3
    assert len(hub.findings) == 250


def test_securityhub_sink_imports_member_activity_under_the_calling_account() -> None:
    """Cross-account: a member account's finding is imported by the security account."""
    hub = StrictSecurityHub(SECURITY_ACCOUNT)
    (finding, *_) = findings_of("send_command_second_account_same_role_name.json")
    assert finding.account_id == MEMBER_ACCOUNT
    SecurityHubSink(hub, region=REGION, account=SECURITY_ACCOUNT).send([finding])  # type: ignore[arg-type]
    (stored,) = hub.findings.values()
    assert stored["AwsAccountId"] == SECURITY_ACCOUNT
    assert MEMBER_ACCOUNT in json.dumps(stored["ProductFields"])


def test_securityhub_sink_update_is_newer_and_replaces_the_count() -> None:
    hub = StrictSecurityHub(SECURITY_ACCOUNT)
    clock = [NOW]
    sink = SecurityHubSink(hub, region=REGION, account=SECURITY_ACCOUNT, clock=lambda: clock[0])  # type: ignore[arg-type]
    (finding, *_) = findings_of("panther_single_instance_no_cache.json")
    first = finding.model_copy(update={"recorded_at": NOW})
    sink.send([first])
    clock[0] = NOW + timedelta(minutes=5)
    sink.send([first.model_copy(update={"count": 4})])
    (stored,) = hub.findings.values()
    assert stored["CreatedAt"] < stored["UpdatedAt"]
    assert "4" in json.dumps(stored["ProductFields"])


def test_securityhub_sink_raises_when_findings_fail() -> None:
    hub = StrictSecurityHub("999999999999")  # not the account the sink stamps
    (finding, *_) = findings_of("panther_single_instance_no_cache.json")
    sink = SecurityHubSink(hub, region=REGION, account=SECURITY_ACCOUNT)  # type: ignore[arg-type]
    with pytest.raises(ImportFailedError, match="AccessDenied"):
        sink.send([finding])


def test_securityhub_not_enabled_is_reported_once_and_not_raised() -> None:
    reports: list[str] = []

    class Disabled:
        calls = 0

        def batch_import_findings(self, **_: object) -> dict[str, object]:
            self.calls += 1
            raise ClientError(
                {"Error": {"Code": "InvalidAccessException", "Message": "not subscribed"}},
                "BatchImportFindings",
            )

    hub = Disabled()
    sink = SecurityHubSink(
        hub, region=REGION, account=SECURITY_ACCOUNT, on_unavailable=reports.append
    )  # type: ignore[arg-type]
    (finding, *_) = findings_of("panther_single_instance_no_cache.json")
    sink.send([finding])
    sink.send([finding])
    assert hub.calls == 1
    assert len(reports) == 1
    assert "SECURITY_HUB_ENABLED" in reports[0]


def test_securityhub_transient_errors_propagate() -> None:
    class Throttled:
        def batch_import_findings(self, **_: object) -> dict[str, object]:
            raise ClientError(
                {"Error": {"Code": "LimitExceededException", "Message": "slow down"}},
                "BatchImportFindings",
            )

    sink = SecurityHubSink(Throttled(), region=REGION, account=SECURITY_ACCOUNT)  # type: ignore[arg-type]
    (finding, *_) = findings_of("panther_single_instance_no_cache.json")
    with pytest.raises(ClientError, match="LimitExceeded"):
        sink.send([finding])


def test_securityhub_late_retry_of_the_creation_does_not_roll_back_an_update() -> None:
    hub = StrictSecurityHub(SECURITY_ACCOUNT)
    clock = [NOW]
    sink = SecurityHubSink(hub, region=REGION, account=SECURITY_ACCOUNT, clock=lambda: clock[0])  # type: ignore[arg-type]
    (finding, *_) = findings_of("panther_single_instance_no_cache.json")
    opener = finding.model_copy(update={"recorded_at": NOW})
    sink.send([opener])
    clock[0] = NOW + timedelta(minutes=1)
    sink.send([opener.model_copy(update={"count": 2})])
    clock[0] = NOW + timedelta(minutes=2)
    sink.send([opener])  # the opener's invocation retried late
    (stored,) = hub.findings.values()
    assert json.loads(json.dumps(stored["ProductFields"]))["ssm-detect/count"] == "2"


def test_securityhub_update_whose_creation_never_landed_creates_the_record_first() -> None:
    """The window's first firing claimed, then its invocation failed before importing: a later
    firing's update would be refused as InvalidInput on every retry (no record to update)."""
    hub = StrictSecurityHub(SECURITY_ACCOUNT)
    sink = SecurityHubSink(hub, region=REGION, account=SECURITY_ACCOUNT)  # type: ignore[arg-type]
    (finding, *_) = findings_of("panther_single_instance_no_cache.json")
    update = finding.model_copy(
        update={"recorded_at": NOW, "updated_at": NOW + timedelta(seconds=3), "count": 2}
    )
    sink.send([update])
    (stored,) = hub.findings.values()
    assert stored["CreatedAt"] < stored["UpdatedAt"]
    assert json.loads(json.dumps(stored["ProductFields"]))["ssm-detect/count"] == "2"


def test_securityhub_refusal_for_another_cause_still_raises_after_the_creation_attempt() -> None:
    class Refusing(StrictSecurityHub):
        def batch_import_findings(self, *, Findings: list[dict[str, object]]) -> dict[str, object]:  # noqa: N803
            self.calls += 1
            return {
                "FailedFindings": [{"Id": f["Id"], "ErrorCode": "InvalidInput"} for f in Findings]
            }

    hub = Refusing(SECURITY_ACCOUNT)
    sink = SecurityHubSink(hub, region=REGION, account=SECURITY_ACCOUNT)  # type: ignore[arg-type]
    (finding, *_) = findings_of("panther_single_instance_no_cache.json")
    update = finding.model_copy(
        update={"recorded_at": NOW, "updated_at": NOW + timedelta(seconds=3), "count": 2}
    )
    with pytest.raises(ImportFailedError, match="InvalidInput"):
        sink.send([update])
    assert hub.calls == 3  # the update, the creation, the update again: no loop
