"""The real handler with SNS, Security Hub and DynamoDB in moto, and faults at every call.

Each fault is raised from botocore's `before-call` hook, i.e. after botocore's own retries
would have given up; the invocation must fail (so Lambda retries it), and after the retry every
sink must show each finding exactly once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ssm_detect.local_context import LocalLambdaContext
from ssm_detect.wiring import AwsClients, lambda_runtime
from tests.conftest import REGION, TABLE, load_event
from tests.test_handler import emitted_metrics
from tests.test_manifest import CASES

POSITIVE = [
    c for c in CASES if c["fires"] and not c.get("given_events") and not c.get("given_state")
]


@dataclass
class Stack:
    clients: AwsClients
    topic: str
    queue: str

    def invoke(self, event: object) -> dict[str, Any]:
        from handler import app  # noqa: PLC0415

        result: dict[str, Any] = app.lambda_handler(event, LocalLambdaContext())  # type: ignore[arg-type]
        return result

    def notifications(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs", region_name=REGION)
        found: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10)
            messages = batch.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])

    def hub_findings(self) -> list[dict[str, Any]]:
        hub = self.clients.securityhub_client()
        return list(hub.get_findings(MaxResults=100)["Findings"])

    def fail_once(self, client: Any, operation: str, code: str = "InternalError") -> list[int]:
        """Make the next call of `operation` fail; returns a counter of injected failures."""
        injected: list[int] = []

        def hook(**_: object) -> None:
            if not injected:
                injected.append(1)
                raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)

        client.meta.events.register(
            f"before-call.{client.meta.service_model.service_name}.{operation}", hook
        )
        return injected


def detections_of(notification: dict[str, Any]) -> list[str]:
    """The detections one SNS notification lists (one event's findings travel together)."""
    attributes = notification["MessageAttributes"]
    if "detection_ids" in attributes:
        listed: list[str] = json.loads(attributes["detection_ids"]["Value"])
        return listed
    return [attributes["detection_id"]["Value"]]


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch) -> Stack:
    from handler import app  # noqa: PLC0415

    del aws
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="ssm-detect-findings")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    clients = AwsClients(
        dynamodb=boto3.client("dynamodb", region_name=REGION),
        sns=boto3.client("sns", region_name=REGION),
        securityhub=boto3.client("securityhub", region_name=REGION),
    )
    env = {
        "STATE_TABLE_NAME": TABLE,
        "FINDINGS_TOPIC_ARN": topic,
        "SECURITY_HUB_ENABLED": "true",
        "AWS_REGION": REGION,
    }
    wired = {}

    def runtime(account: str) -> Any:
        if account not in wired:
            wired[account] = lambda_runtime(
                env, app.logger, account, clients, on_sink_failure=app.report_sink_failure
            )
        return wired[account]

    monkeypatch.setattr(app, "runtime", runtime)
    return Stack(clients, topic, queue)


@pytest.mark.parametrize("case", POSITIVE, ids=[c["file"] for c in POSITIVE])
def test_each_seed_positive_gives_one_message_and_one_hub_finding_per_detection(
    case: dict[str, Any], stack: Stack
) -> None:
    stack.invoke(load_event(case["file"]))
    messages = stack.notifications()
    findings = stack.hub_findings()
    assert len(messages) == 1  # the findings of one event travel in one notification
    assert sorted(detections_of(messages[0])) == sorted(case["fires"])
    assert sorted(f["GeneratorId"] for f in findings) == sorted(case["fires"])


def test_redelivered_event_updates_and_does_not_duplicate(stack: Stack) -> None:
    event = load_event("panther_send_command_three_instances.json")
    stack.invoke(event)
    stack.invoke(event)
    (message,) = stack.notifications()  # SendCommand + DistributedCommand, together, once
    assert sorted(detections_of(message)) == ["AWS.SSM.DistributedCommand", "AWS.SSM.SendCommand"]
    assert len(stack.hub_findings()) == 2


def test_repeat_inside_suppression_window_updates_the_open_finding(stack: Stack) -> None:
    stack.invoke(load_event("fanout_split_first.json"))
    stack.invoke(load_event("fanout_split_second.json"))
    notified = stack.notifications()
    send_commands = [f for f in stack.hub_findings() if f["GeneratorId"] == "AWS.SSM.SendCommand"]
    assert len(notified) == 1
    (only,) = send_commands
    assert only["ProductFields"].get("ssm-detect/count") == "2"


@pytest.mark.parametrize(
    ("service", "operation"),
    [
        ("dynamodb", "UpdateItem"),
        ("sns", "Publish"),
        ("securityhub", "BatchImportFindings"),
    ],
)
def test_fault_then_retry_delivers_every_finding_exactly_once(
    stack: Stack, service: str, operation: str
) -> None:
    client = getattr(stack.clients, f"{service}_client")()
    injected = stack.fail_once(client, operation)
    event = load_event("panther_send_command_three_instances.json")

    with pytest.raises(ClientError, match="injected"):
        stack.invoke(event)
    stack.invoke(event)  # Lambda's retry

    assert injected == [1]
    (message,) = stack.notifications()
    assert sorted(detections_of(message)) == ["AWS.SSM.DistributedCommand", "AWS.SSM.SendCommand"]
    assert len(stack.hub_findings()) == 2


def test_fault_after_the_grouped_notification_does_not_repeat_it(stack: Stack) -> None:
    """Two findings of one event travel in one publish; Security Hub fails after it. The retry
    imports both findings and publishes nothing: both windows recorded the notification."""
    stack.fail_once(stack.clients.securityhub_client(), "BatchImportFindings")
    event = load_event("panther_send_command_three_instances.json")
    with pytest.raises(ClientError):
        stack.invoke(event)
    stack.invoke(event)
    (message,) = stack.notifications()
    assert sorted(detections_of(message)) == ["AWS.SSM.DistributedCommand", "AWS.SSM.SendCommand"]
    hub = stack.hub_findings()
    related = {f["GeneratorId"]: [r["Id"] for r in f.get("RelatedFindings", [])] for f in hub}
    by_detection = {f["GeneratorId"]: f["Id"] for f in hub}
    assert related["AWS.SSM.SendCommand"] == [by_detection["AWS.SSM.DistributedCommand"]]
    assert related["AWS.SSM.DistributedCommand"] == [by_detection["AWS.SSM.SendCommand"]]


def test_state_is_not_double_counted_by_a_retry(stack: Stack) -> None:
    stack.fail_once(stack.clients.sns_client(), "Publish")
    event = load_event("panther_send_command_three_instances.json")
    with pytest.raises(ClientError):
        stack.invoke(event)
    stack.invoke(event)
    items = stack.clients.dynamodb_client().scan(TableName=TABLE)["Items"]
    fanout = next(i for i in items if i["pk"]["S"].startswith("fanout#"))
    assert len(fanout["instances"]["SS"]) == 3
    assert len(fanout["calls"]["SS"]) == 1


def test_sink_failure_is_counted_in_metrics(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.fail_once(stack.clients.sns_client(), "Publish")
    with pytest.raises(ClientError):
        stack.invoke(load_event("panther_send_command_three_instances.json"))
    assert emitted_metrics(capsys.readouterr().out)["PublishFailures"] == 1
