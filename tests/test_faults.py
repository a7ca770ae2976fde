"""Faults at every AWS call the handler makes, then Lambda's retry: nothing lost, nothing twice.

The story: a principal's SendCommand to 3 instances (fires SendCommand and the fan-out: two
windows open, one SNS message that carries both findings, two Security Hub findings), then its
SendCommand to a 4th instance 5 minutes later (both firings join the open windows: no message,
the two Security Hub findings are updated). State and ledger live in DynamoDB Local,
SNS/SQS/Security Hub in moto, and the clients are the production ones (`AwsClients`: botocore
standard retries, 4 attempts).

Faults are injected at botocore's transport (`before-send`), so botocore's own retry logic sees
them as it would see the real thing, at each call site of the story:
- persistent throttling / 5xx / read timeout / connect timeout: all 4 attempts fail, the
  invocation must raise (so Lambda retries), and the retry must converge;
- transient throttling: one attempt fails, botocore's retry absorbs it, the invocation succeeds;
- applied then timed out: the request reaches the service, the response is lost, botocore sends
  it again (idempotency at the request level);
- lost after success: the call succeeded but the invocation fails right after it (the Lambda
  was throttled, timed out, crashed), and Lambda retries the whole event;
plus conditional-check failures as real races produce them, partial `BatchImportFindings`
failures, and the state prune. After each scenario the sinks and the table are compared with
the same story run without faults: every finding exactly once and the same state, except where
docs/reliability.md says at-least-once (a publish whose acknowledgement was lost is resent).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from botocore.httpsession import URLLib3Session
from botocore.retries.quota import RetryQuota
from botocore.retries.standard import ExponentialBackoff
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.models import botocore_stubber
from moto.securityhub.models import securityhub_backends

from ssm_detect.local_context import LocalLambdaContext
from ssm_detect.sinks.securityhub import ImportFailedError
from ssm_detect.wiring import AwsClients, lambda_runtime
from tests.builders import envelope, load_record, send_command
from tests.conftest import REGION, load_event
from tests.test_end_to_end import detections_of

if TYPE_CHECKING:
    from tests.dynamodb_local import DynamoDbLocal

pytest_plugins = ["tests.dynamodb_local"]

HOME_ACCOUNT = "111122223333"  # the account in the event files; each scenario gets its own
SEND = "AWS.SSM.SendCommand"
FANOUT = "AWS.SSM.DistributedCommand"
RARE = "AWS.SSM.RareCommandDocumentCreator"
LAMBDA_ATTEMPTS = 3  # an async invocation: the first try and Lambda's two retries
# `Config(retries={"mode": "standard", "max_attempts": 4})` (ssm_detect.wiring) counts retries:
# botocore makes 1 + 4 = 5 attempts before the call fails.
BOTOCORE_ATTEMPTS = 5
RESULTS: dict[str, dict[str, Any]] = {}


# --- the stories ---------------------------------------------------------------------------------


def fanout_story() -> list[dict[str, Any]]:
    first = load_event("panther_send_command_three_instances.json")
    record = load_record("panther_send_command_three_instances.json")
    later = send_command(
        ["i-0fedcba9876543210"],
        event_id="fault-story-second-call",
        at=datetime(2025, 2, 19, 16, 37, 39, tzinfo=UTC),
        template="panther_send_command_three_instances.json",
    )
    later["userIdentity"] = record["userIdentity"]
    return [first, envelope(later)]


def creator_story() -> list[dict[str, Any]]:
    return [load_event("create_document_command_new_principal.json")]


# --- where the handler calls AWS -----------------------------------------------------------------


# How each kind of DynamoDB update starts (the ledger's and the state store's expressions).
_LEDGER_SITES = {
    "ADD members": "ledger-join",
    "SET lead_rank": "ledger-lead",
    "SET #lease": "ledger-lease",
    "REMOVE #lease": "ledger-release",
    "SET #notified": "ledger-mark",
    "ADD overflow": "ledger-overflow",
}
_OTHER_SITES = {
    ("sns", "Publish"): "sns-publish",
    ("securityhub", "BatchImportFindings"): "hub-import",
    # every window one notification carried, recorded in one step
    ("dynamodb", "TransactWriteItems"): "ledger-mark",
}


def site_of(service: str, operation: str, params: dict[str, Any]) -> str:
    """A name for each kind of AWS call the handler makes."""
    if (service, operation) != ("dynamodb", "UpdateItem"):
        return _OTHER_SITES.get((service, operation), f"{service}-{operation}")
    key = params.get("Key", {}).get("pk", {}).get("S", "")
    expression = params.get("UpdateExpression", "")
    if not key.startswith("ledger#"):
        return "state-prune" if expression.startswith("DELETE") else "state-update"
    found = [site for start, site in _LEDGER_SITES.items() if expression.startswith(start)]
    return found[0] if found else "ledger-other"


@dataclass(frozen=True)
class Fault:
    kind: str
    """throttle | 5xx | read-timeout | connect-timeout | lost | applied-timeout."""
    attempts: int = 100
    """botocore attempts that fail: 100 = all of them, 1 = botocore's first retry heals it."""

    @property
    def persistent(self) -> bool:
        """Every botocore attempt fails: the call, and so the invocation, must fail."""
        return self.kind not in {"lost", "applied-timeout"} and self.attempts >= BOTOCORE_ATTEMPTS

    @property
    def name(self) -> str:
        persistence = (
            ""
            if self.kind in {"lost", "applied-timeout"}
            else ("persistent " if self.attempts >= BOTOCORE_ATTEMPTS else "transient ")
        )
        return persistence + self.kind


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def error_response(service: str, kind: str, url: str) -> AWSResponse:
    """The HTTP answer each service gives when throttled or failing (as botocore parses it)."""
    throttled = kind == "throttle"
    if service == "dynamodb":
        code, status = (
            ("ProvisionedThroughputExceededException", 400)
            if throttled
            else ("InternalServerError", 500)
        )
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "x"})
        headers = {"Content-Type": "application/x-amz-json-1.0"}
    elif service == "sns":
        code, status = ("Throttling", 400) if throttled else ("InternalFailure", 500)
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>x</Message>"
            "</Error><RequestId>fault</RequestId></ErrorResponse>"
        )
        headers = {"Content-Type": "text/xml"}
    else:
        code, status = (
            ("TooManyRequestsException", 429) if throttled else ("InternalException", 500)
        )
        body = json.dumps({"Code": code, "Message": "x"})
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code}
    return AWSResponse(url, status, headers, _Raw(body.encode()))


def _moto_back_on(**_: Any) -> None:
    botocore_stubber.enabled = True


@dataclass
class Injector:
    """Fails one AWS call of the story: the `occurrence`-th call of `site` in invocation
    `invocation` (0-based); a Lambda retry of that invocation meets no fault."""

    invocation: int
    site: str
    fault: Fault
    occurrence: int = 1
    current_invocation: int = -1
    seen: int = 0
    spent: bool = False
    active: dict[str, Any] | None = None
    left: int = 0
    failed_attempts: int = 0
    calls: list[tuple[int, str]] = field(default_factory=list)

    def attach(self, world: World, client: Any) -> None:
        world.hook(client, "before-parameter-build", self._select)
        world.hook(client, "before-send", self._send, first=True)
        world.hook(client, "before-send", _moto_back_on)  # after moto's stubber
        world.hook(client, "after-call", self._after)

    def _select(
        self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        site = site_of(model.service_model.service_name, model.name, params)
        self.calls.append((self.current_invocation, site))
        self.active, self.left = None, 0  # a fault lasts one call (all its botocore attempts)
        if self.spent or (self.current_invocation, site) != (self.invocation, self.site):
            return
        self.seen += 1
        if self.seen == self.occurrence:
            self.spent, self.active = True, context
            self.left = 1 if self.fault.kind == "applied-timeout" else self.fault.attempts
            context["injected"] = True

    def _send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        if self.active is None or self.left <= 0 or self.fault.kind == "lost":
            return None
        self.left -= 1
        self.failed_attempts += 1
        service = event_name.split(".")[1]
        kind = self.fault.kind
        if kind == "read-timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        if kind == "connect-timeout":
            raise ConnectTimeoutError(endpoint_url=request.url)
        if kind == "applied-timeout":
            # the service gets and applies the request; its answer never arrives
            if service == "dynamodb":
                URLLib3Session().send(request)
            else:
                botocore_stubber(event_name=event_name, request=request)
            raise ReadTimeoutError(endpoint_url=request.url)
        # botocore calls every before-send handler: keep moto from also serving this attempt
        botocore_stubber.enabled = False
        return error_response(service, kind, request.url)

    def _after(self, context: dict[str, Any], **_: Any) -> None:
        if context.get("injected") and self.active is context:
            self.active = None
            if self.fault.kind == "lost":
                self.failed_attempts += 1
                raise ReadTimeoutError(endpoint_url="(the invocation died after this call)")


# --- running a story -----------------------------------------------------------------------------


@dataclass
class World:
    """moto (SNS, SQS, Security Hub) for the module, DynamoDB Local for state and ledger."""

    server: DynamoDbLocal
    topic: str
    queue: str
    table: str
    clients: AwsClients
    """One set of production clients, as a warm Lambda keeps them (see `_fresh_retry_quota`)."""
    accounts: Iterator[int]
    readers: dict[str, Any] = field(default_factory=dict)
    """Clients the tests read the sinks with (not the handler's)."""
    hooks: list[tuple[Any, str, Any]] = field(default_factory=list)

    def hook(self, client: Any, event: str, handler: Any, *, first: bool = False) -> None:
        """Register a botocore handler for the current scenario only."""
        if first:
            client.meta.events.register_first(event, handler)
        else:
            client.meta.events.register(event, handler)
        self.hooks.append((client, event, handler))

    def unhook(self) -> None:
        while self.hooks:
            client, event, handler = self.hooks.pop()
            client.meta.events.unregister(event, handler)

    def drain(self) -> list[dict[str, Any]]:
        sqs = self.readers["sqs"]
        found: list[dict[str, Any]] = []
        while messages := sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
        return found

    def hub_findings(self, member_account: str) -> list[dict[str, Any]]:
        """This scenario's findings; then Security Hub (moto's) is emptied for the next one."""
        found = []
        for page in self.readers["securityhub"].get_paginator("get_findings").paginate():
            found += [
                f
                for f in page["Findings"]
                if f.get("ProductFields", {}).get("ssm-detect/member_account") == member_account
            ]
        securityhub_backends[DEFAULT_ACCOUNT_ID][REGION].findings.clear()
        return found


@pytest.fixture(scope="module")
def world(dynamodb_local: DynamoDbLocal) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "POWERTOOLS_SERVICE_NAME": "ssm-detect",
            "POWERTOOLS_METRICS_NAMESPACE": "SsmDetect",
        }.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
            patch.delenv(name, raising=False)
        with mock_aws():
            sns = boto3.client("sns", region_name=REGION)
            sqs = boto3.client("sqs", region_name=REGION)
            topic = sns.create_topic(Name="ssm-detect-findings")["TopicArn"]
            queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"])
            # Scenarios share one table: each runs in an account of its own, and every key
            # of the table starts with `<kind>#<account>#`.
            yield World(
                dynamodb_local,
                topic,
                queue,
                dynamodb_local.fresh_table("faults"),
                AwsClients(dynamodb=dynamodb_local.client()),
                iter(range(100_000_000_001, 10**12)),
                {"sqs": sqs, "securityhub": boto3.client("securityhub", region_name=REGION)},
            )


@pytest.fixture(autouse=True)
def _fresh_retry_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard mode spends a per-client retry budget (500 units, 5-10 a retry) that a
    scenario's persistent faults use up; each scenario stands for a fresh execution
    environment, so the module's shared clients must not carry the budget over."""
    monkeypatch.setattr(RetryQuota, "acquire", lambda self, capacity_amount: True)


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retries without their sleeps: the attempts are real, the waiting is not."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@dataclass
class Run:
    account: str
    table: str
    failures: list[tuple[int, str]]
    """(invocation, exception type) of each failed Lambda attempt."""
    notifications: Counter[str]
    """detection id -> how many SNS messages listed it."""
    messages: int
    hub: dict[str, str]
    """detection id -> the finding's `ssm-detect/count` in Security Hub (one finding each)."""
    hub_findings: int
    state: dict[str, Any]
    injector: Injector | None


def run_story(
    world: World,
    story: list[dict[str, Any]],
    injector: Injector | None = None,
    *,
    seed: Callable[[Any, str, str], None] | None = None,
    prepare: Callable[[World, str], None] | None = None,
    before_invocation: Callable[[int], None] | None = None,
) -> Run:
    """The story through the real handler, each invocation retried like Lambda retries it."""
    from handler import app  # noqa: PLC0415

    account = str(next(world.accounts))
    table = world.table
    events = [json.loads(json.dumps(e).replace(HOME_ACCOUNT, account)) for e in story]
    clients = world.clients  # SNS and Security Hub made by the production code, its config
    env = {
        "STATE_TABLE_NAME": table,
        "FINDINGS_TOPIC_ARN": world.topic,
        "SECURITY_HUB_ENABLED": "true",
        "AWS_REGION": REGION,
    }
    runtime = lambda_runtime(
        env, app.logger, "000000000000", clients, on_sink_failure=app.report_sink_failure
    )
    if injector is not None:
        for client in (
            clients.dynamodb_client(),
            clients.sns_client(),
            clients.securityhub_client(),
        ):
            injector.attach(world, client)
    if seed is not None:
        seed(world.server.client(), table, account)
    if prepare is not None:
        prepare(world, table)
    world.drain()
    failures: list[tuple[int, str]] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app, "runtime", lambda _account: runtime)
        for number, event in enumerate(events):
            if injector is not None:
                injector.current_invocation = number
            if before_invocation is not None:
                before_invocation(number)
            # Lambda retries an invocation under the same request id: one context for all.
            context = LocalLambdaContext()
            for _attempt in range(LAMBDA_ATTEMPTS):
                try:
                    app.lambda_handler(event, context)  # type: ignore[arg-type]
                    break
                except ClientError as error:
                    failures.append((number, f"ClientError({error.response['Error']['Code']})"))
                except Exception as error:  # noqa: BLE001 - Lambda's view: any exception fails
                    failures.append((number, type(error).__name__))
            else:
                world.unhook()
                pytest.fail(f"invocation {number} failed {LAMBDA_ATTEMPTS} times: {failures}")
    world.unhook()
    messages = world.drain()
    notifications = Counter(d for n in messages for d in detections_of(n))
    found = world.hub_findings(account)
    hub = {f["GeneratorId"]: f["ProductFields"].get("ssm-detect/count", "1") for f in found}
    return Run(
        account,
        table,
        failures,
        notifications,
        len(messages),
        hub,
        len(found),
        table_state(world.server.client(), table, account),
        injector,
    )


def table_state(client: Any, table: str, account: str) -> dict[str, Any]:
    """Every item, comparable across runs: account-neutral keys, sets sorted, the wall-clock
    fields (TTL, creation time) and the open finding's id (it hashes the account) left out."""
    state: dict[str, Any] = {}
    scanned = client.get_paginator("scan").paginate(
        TableName=table,
        ConsistentRead=True,
        FilterExpression="contains(pk, :account)",
        ExpressionAttributeValues={":account": {"S": f"#{account}#"}},
    )
    for item in (item for page in scanned for item in page["Items"]):
        key = item.pop("pk")["S"].replace(account, "ACCOUNT")
        for wall_clock in ("expires_at", "created", "window_clock"):  # ledger: numbers
            if "N" in item.get(wall_clock, {}):
                del item[wall_clock]
        item.pop("window_id", None)  # hashes the account
        item.pop("related", None)  # window ids too
        item.pop("lead_finding", None)  # the lead firing, serialised (names the account)
        state[key] = {
            name: sorted(m.replace(account, "ACCOUNT") for m in value["SS"])
            if "SS" in value
            else value.get("N", value.get("S"))
            for name, value in item.items()
        }
    return state


@pytest.fixture(scope="module")
def golden(world: World) -> dict[str, Run]:
    """Each story without faults: what every faulty run must converge to."""
    return {
        "fanout": run_story(world, fanout_story()),
        "creator": run_story(world, creator_story()),
    }


def record(scenario: str, run: Run, expectation: str) -> None:
    RESULTS[scenario] = {
        "failed_invocations": ", ".join(f"#{n + 1} {kind}" for n, kind in run.failures) or "none",
        "botocore_attempts_failed": run.injector.failed_attempts if run.injector else 0,
        "sns": dict(sorted(run.notifications.items())),
        "hub": run.hub_findings,
        "expectation": expectation,
    }


# --- the matrix: every call site x every fault ---------------------------------------------------

# (invocation, site, occurrence): every kind of call the story makes, first occurrence each
SITES = [
    (0, "state-update", 1),
    (0, "ledger-join", 1),
    (0, "ledger-join", 2),
    (0, "ledger-lease", 1),
    (0, "ledger-lease", 2),
    (0, "sns-publish", 1),
    (0, "ledger-mark", 1),
    (0, "hub-import", 1),
    (1, "state-update", 1),
    (1, "ledger-join", 1),
    (1, "hub-import", 1),
]
FAULTS = [
    Fault("throttle"),
    Fault("5xx"),
    Fault("read-timeout"),
    Fault("connect-timeout"),
    Fault("throttle", attempts=1),
    Fault("applied-timeout"),
    Fault("lost"),
]
RAISED = {
    "read-timeout": "ReadTimeoutError",
    "connect-timeout": "ConnectTimeoutError",
    "lost": "ReadTimeoutError",
}
ERROR_CODES = {  # what each service answers when throttled / failing, as botocore raises it
    ("dynamodb", "throttle"): "ClientError(ProvisionedThroughputExceededException)",
    ("dynamodb", "5xx"): "ClientError(InternalServerError)",
    ("sns", "throttle"): "ClientError(Throttling)",
    ("sns", "5xx"): "ClientError(InternalFailure)",
    ("securityhub", "throttle"): "ClientError(TooManyRequestsException)",
    ("securityhub", "5xx"): "ClientError(InternalException)",
}


def raised_by(site: str, kind: str) -> str:
    service = {"sns-publish": "sns", "hub-import": "securityhub"}.get(site, "dynamodb")
    return ERROR_CODES.get((service, kind)) or RAISED[kind]


MATRIX = [(site, fault) for site in SITES for fault in FAULTS]


def _matrix_id(case: tuple[tuple[int, str, int], Fault]) -> str:
    (invocation, site, occurrence), fault = case
    return f"call{invocation + 1}-{site}{occurrence}-{fault.name.replace(' ', '-')}"


def test_faults_the_matrix_covers_every_call_the_handler_makes(
    golden: dict[str, Run], world: World
) -> None:
    """The sites above are every kind of call the fault-free story makes (a new AWS call in the
    handler must be added to the matrix, or this fails)."""
    probe = Injector(invocation=-1, site="none", fault=Fault("throttle"))
    run_story(world, fanout_story(), probe)
    made = {(invocation, site) for invocation, site in probe.calls}
    covered = {(invocation, site) for invocation, site, _ in SITES}
    assert made == covered
    counts = Counter(probe.calls)
    assert counts[(0, "sns-publish")] == counts[(0, "ledger-mark")] == 1  # one notification
    assert counts[(0, "ledger-lease")] == counts[(0, "ledger-join")] == 2
    assert golden["fanout"].notifications == Counter({SEND: 1, FANOUT: 1})
    assert golden["fanout"].messages == 1
    assert golden["fanout"].hub == {SEND: "2", FANOUT: "2"}


@pytest.mark.parametrize("case", MATRIX, ids=[_matrix_id(c) for c in MATRIX])
def test_faults_at_each_call_then_retry_deliver_every_finding_exactly_once(
    case: tuple[tuple[int, str, int], Fault], world: World, golden: dict[str, Run]
) -> None:
    (invocation, site, occurrence), fault = case
    injector = Injector(invocation, site, fault, occurrence)
    run = run_story(world, fanout_story(), injector)
    expected = golden["fanout"]

    assert injector.spent, "the fault was never injected"
    if fault.persistent or fault.kind == "lost":
        # it must fail (so Lambda retries), exactly once: the retry meets no fault
        assert run.failures == [(invocation, raised_by(site, fault.kind))]
        assert injector.failed_attempts == (1 if fault.kind == "lost" else BOTOCORE_ATTEMPTS)
    else:
        # one failed attempt: botocore's own retry absorbs it and the invocation succeeds
        assert run.failures == []
        assert injector.failed_attempts == 1

    # at-least-once, as documented: SNS took the message but its delivery was not recorded
    # (the message carries both findings, and both windows are recorded in one step)
    resent = (site == "sns-publish" and fault.kind in {"lost", "applied-timeout"}) or (
        site == "ledger-mark" and fault.persistent
    )
    duplicate = Counter({SEND: 1, FANOUT: 1}) if resent else Counter()
    assert run.notifications == expected.notifications + duplicate
    assert run.messages == expected.messages + resent
    assert run.hub == expected.hub
    assert run.hub_findings == 2
    assert run.state == expected.state
    record(
        _matrix_id(case),
        run,
        "at-least-once: the accepted message is sent again" if resent else "exactly once",
    )


# --- conditional-check failures, as real races produce them --------------------------------------

# an Identity Center permission-set role: the human (session name) is the principal
PRINCIPAL = (
    "arn:aws:iam::ACCOUNT:role/aws-reserved/sso.amazonaws.com/us-west-2/SampleRole/bobson.dugnutt"
)


def _on_first(site: str, key_prefix: str, action: Callable[[dict[str, Any]], None]) -> Any:
    """A `before-parameter-build` hook that runs `action` once, just before the first call of
    `site` on a key starting with `key_prefix` is sent."""
    done: list[bool] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        key = params.get("Key", {}).get("pk", {}).get("S", "")
        if done or site_of("dynamodb", "UpdateItem", params) != site:
            return
        if key.startswith(key_prefix):
            done.append(True)
            action(params)

    return hook


def ledger_item(run: Run, detection: str) -> dict[str, Any]:
    """The story's one window of `detection` (the key ends with the window's start)."""
    prefix = f"ledger#{detection}#ACCOUNT#{PRINCIPAL}#"
    (key,) = (k for k in run.state if k.startswith(prefix))
    item: dict[str, Any] = run.state[key]
    return item


def test_faults_window_clock_ahead_of_ours_makes_our_claim_advance_it(world: World) -> None:
    """Another invocation, on a Lambda whose clock runs ahead, claimed the window first: our
    join's condition (the clock must be behind ours) fails for real and the claim advances the
    window's clock by one instead. No error; our firing is counted; the notification is ours
    to send (nothing was notified); Security Hub's record holds all three firings."""
    server = world.server

    def prepare(world: World, table: str) -> None:
        def competitor_claims(params: dict[str, Any]) -> None:
            values = params["ExpressionAttributeValues"]
            ahead = int(values[":now"]["N"]) + 3_600_000
            server.client().update_item(
                TableName=table,
                Key=params["Key"],
                UpdateExpression=(
                    "SET window_id = :id, members = :m, created = :t, window_clock = :t, "
                    "lead_rank = :rank, lead_finding = :lead"
                ),
                ExpressionAttributeValues={
                    ":id": values[":id"],
                    ":t": {"N": str(ahead)},
                    ":m": {"SS": ["00000000001|competitor-event"]},
                    ":rank": {"S": "9|competitor"},  # leads nothing: ours takes the lead
                    ":lead": values[":lead"],
                },
            )

        world.hook(
            world.clients.dynamodb_client(),
            "before-parameter-build.dynamodb.UpdateItem",
            _on_first("ledger-join", f"ledger#{SEND}#", competitor_claims),
        )

    run = run_story(world, fanout_story(), prepare=prepare)
    assert run.failures == []
    assert run.notifications == Counter({SEND: 1, FANOUT: 1})
    members = ledger_item(run, SEND)["members"]
    assert len(members) == 3
    assert any("competitor-event" in m for m in members)
    assert run.hub == {SEND: "3", FANOUT: "2"}
    record("race: window clock ahead of ours", run, "claims advance the clock by one")


def test_faults_notification_held_by_another_invocation_is_not_sent_twice(
    world: World,
) -> None:
    """The same firing is being sent by another invocation (it holds the send lease): ours
    waits, sees the delivery recorded, and leaves it out of its notification."""
    server = world.server

    def prepare(world: World, table: str) -> None:
        def other_sends(params: dict[str, Any]) -> None:
            server.client().update_item(
                TableName=table,
                Key=params["Key"],
                UpdateExpression="SET #notified = :level",
                ExpressionAttributeNames={
                    "#notified": params["ExpressionAttributeNames"]["#notified"]
                },
                ExpressionAttributeValues={":level": params["ExpressionAttributeValues"][":level"]},
            )

        world.hook(
            world.clients.dynamodb_client(),
            "before-parameter-build.dynamodb.UpdateItem",
            _on_first("ledger-lease", f"ledger#{SEND}#", other_sends),
        )

    run = run_story(world, fanout_story(), prepare=prepare)
    assert run.failures == []
    assert run.notifications == Counter({FANOUT: 1})  # SendCommand's went out elsewhere
    assert run.hub == {SEND: "2", FANOUT: "2"}
    record("race: another invocation sent the same notification", run, "not sent twice")


def test_faults_higher_level_recorded_before_our_mark_is_kept(world: World) -> None:
    """Between our publish and our record of it, another invocation notified a higher level
    for the SendCommand window (an escalation): the one-step record of both windows is
    cancelled by its condition, each window is then recorded on its own, and the higher level
    stays (a later lower firing must not notify again)."""
    server = world.server
    done: list[bool] = []

    def prepare(world: World, table: str) -> None:
        def escalated_elsewhere(params: dict[str, Any], **_: Any) -> None:
            if done:
                return
            done.append(True)
            update = next(
                i["Update"] for i in params["TransactItems"] if f"ledger#{SEND}#" in str(i)
            )
            server.client().update_item(
                TableName=table,
                Key=update["Key"],
                UpdateExpression="SET #notified = :level",
                ExpressionAttributeNames={
                    "#notified": update["ExpressionAttributeNames"]["#notified"]
                },
                ExpressionAttributeValues={":level": {"N": "4"}},
            )

        world.hook(
            world.clients.dynamodb_client(),
            "before-parameter-build.dynamodb.TransactWriteItems",
            escalated_elsewhere,
        )

    run = run_story(world, fanout_story()[:1], prepare=prepare)
    assert done == [True]
    assert run.failures == []
    assert run.notifications == Counter({SEND: 1, FANOUT: 1})
    assert ledger_item(run, SEND)["notified:sns"] == "4"
    assert ledger_item(run, FANOUT)["notified:sns"] == "0"  # INFORMATIONAL, recorded
    record("race: higher level recorded before our mark", run, "absorbed; the higher level stays")


# --- partial BatchImportFindings failures --------------------------------------------------------


@pytest.mark.parametrize("invocation", [0, 1], ids=["call1", "call2"])
def test_faults_partial_batch_import_failure_fails_then_retry_imports_all(
    world: World, golden: dict[str, Run], invocation: int
) -> None:
    """Security Hub accepts one finding of the batch and lists the other in FailedFindings:
    the invocation fails, the retry re-imports (an upsert by id) and sends no message again."""
    current: list[int] = [-1]

    def prepare(world: World, table: str) -> None:
        del table
        hub = world.clients.securityhub_client()

        def drop_last(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            if current[0] == invocation and not drop_last.done:  # type: ignore[attr-defined]
                drop_last.done = True  # type: ignore[attr-defined]
                context["dropped"] = params["Findings"].pop()["Id"]

        def report_failed(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            if "dropped" in context:
                parsed.setdefault("FailedFindings", []).append(
                    {"Id": context["dropped"], "ErrorCode": "InternalFailure", "ErrorMessage": "x"}
                )
                parsed["FailedCount"] = parsed.get("FailedCount", 0) + 1

        drop_last.done = False  # type: ignore[attr-defined]
        world.hook(hub, "before-parameter-build.securityhub.BatchImportFindings", drop_last)
        world.hook(hub, "after-call.securityhub.BatchImportFindings", report_failed)

    run = run_story(
        world,
        fanout_story(),
        prepare=prepare,
        before_invocation=lambda n: current.__setitem__(0, n),
    )
    expected = golden["fanout"]
    assert run.failures == [(invocation, ImportFailedError.__name__)]
    assert run.notifications == expected.notifications
    assert run.hub == expected.hub
    assert run.state == expected.state
    record(f"call{invocation + 1}: BatchImportFindings partial failure", run, "exactly once")


# --- the state prune ------------------------------------------------------------------------------

CREATOR = "arn:aws:iam::ACCOUNT:role/DevOpsEngineer"


def seed_old_creations(client: Any, table: str, account: str) -> None:
    """70 Command documents created 20 days before the story's creation: still a rare creator
    (nothing in the 10-day window), and more than the 64 members kept, so the update prunes."""
    created = datetime(2025, 3, 5, 14, 11, 9, tzinfo=UTC) - timedelta(days=20)
    client.update_item(
        TableName=table,
        Key={"pk": {"S": f"creator#{account}#{CREATOR.replace('ACCOUNT', account)}"}},
        UpdateExpression="ADD created :c",
        ExpressionAttributeValues={
            ":c": {
                "SS": [
                    f"{int((created - timedelta(minutes=n)).timestamp()):011d}|old-{n}"
                    for n in range(70)
                ]
            }
        },
    )


@pytest.fixture(scope="module")
def golden_prune(world: World) -> Run:
    return run_story(world, creator_story(), seed=seed_old_creations)


@pytest.mark.parametrize("fault", [*FAULTS[:4], Fault("lost")], ids=lambda f: f.name)
def test_faults_at_the_state_prune_then_retry(
    world: World, golden_prune: Run, fault: Fault
) -> None:
    injector = Injector(0, "state-prune", fault)
    run = run_story(world, creator_story(), injector, seed=seed_old_creations)
    assert injector.spent
    assert run.failures == [(0, raised_by("state-prune", fault.kind))]
    assert run.notifications == golden_prune.notifications == Counter({RARE: 1})
    assert run.hub == golden_prune.hub
    assert run.state == golden_prune.state
    assert len(run.state[f"creator#ACCOUNT#{CREATOR}"]["created"]) == 64
    record(
        f"call1-state-prune1-{fault.name.replace(' ', '-')} (creator story)", run, "exactly once"
    )


def test_faults_item_expired_before_the_prune_is_absorbed(world: World, golden_prune: Run) -> None:
    """TTL deletes the creator item between the update and the prune: the prune's condition
    fails for real, is absorbed, and does not recreate the item."""
    server = world.server

    def prepare(world: World, table: str) -> None:
        def expire(params: dict[str, Any]) -> None:
            server.client().delete_item(TableName=table, Key=params["Key"])

        world.hook(
            world.clients.dynamodb_client(),
            "before-parameter-build.dynamodb.UpdateItem",
            _on_first("state-prune", "creator#", expire),
        )

    run = run_story(world, creator_story(), seed=seed_old_creations, prepare=prepare)
    assert run.failures == []
    assert run.notifications == golden_prune.notifications
    assert f"creator#ACCOUNT#{CREATOR}" not in run.state
    record("race: item expired before the prune", run, "absorbed; item not recreated")


def test_faults_table_of_outcomes(capsys: pytest.CaptureFixture[str]) -> None:
    """Not a check: prints the outcome table docs/reliability.md shows (`pytest -s`)."""
    with capsys.disabled():
        print("\n| scenario | failed invocations | botocore attempts failed | SNS | hub | |")  # noqa: T201
        for scenario, outcome in RESULTS.items():
            print(  # noqa: T201
                f"| {scenario} | {outcome['failed_invocations']} | "
                f"{outcome['botocore_attempts_failed']} | {outcome['sns']} | {outcome['hub']} | "
                f"{outcome['expectation']} |"
            )
