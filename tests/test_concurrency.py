"""Many Lambdas at once for one principal, against DynamoDB Local: nothing lost, nothing twice.

Each round gives one new principal 16 events, invoked through the real handler
(`handler.app.lambda_handler`, wired from the environment as in Lambda) at the same instant
from 2 processes (multiprocessing, spawn) x 8 threads. No SNS topic is configured (DynamoDB
Local has no SNS), so "notified once" is read where the decision is made: the suppression
ledger's item (one window per detection, every firing a member), and the notifier is a
recording stand-in named like the SNS sink, so the ledger records its deliveries exactly as
it records SNS's.

Every round's final state must equal what a serial run leaves: the union of the detections'
own state updates (checked each round), and for the first rounds an actual serial run of the
same events, one by one in time order, through the same handler into another table.

Two invocations that derive the same finding at once (overlapping fan-out calls deciding one
window, or one event delivered twice at the same moment) meet at the ledger's send lease: one
notifies, the other sees the delivery recorded (`fanout_duplicate_notifications_per_round`
must stay all zeros, and the last test pins the duplicate-delivery case with both claims
forced to overlap).

Why this shows races rather than hoping for them: a control test runs a read-then-write update
(Panther's pattern) through the same harness and must lose updates; and each round records how
many creation verdicts it saw (more than one means invocations overlapped so closely that one
did not see the other's write, which is exactly the situation the ledger must absorb).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from detections import members
from detections.distributed_command import DistributedCommandDetection
from ssm_detect.findings import Finding
from ssm_detect.models.event_time import parse_event_time, to_epoch
from ssm_detect.settings import Settings
from ssm_detect.wiring import Runtime
from tests.builders import T0, create_document, envelope, parse, send_command
from tests.test_end_to_end import detections_of

if TYPE_CHECKING:
    from multiprocessing.pool import Pool

    from tests.dynamodb_local import DynamoDbLocal

pytest_plugins = ["tests.dynamodb_local"]

PROCESSES = 2
THREADS = 8
PER_ROUND = PROCESSES * THREADS
ROUNDS = 10  # per scenario; see docs/reliability.md for the figures of a run
SERIAL_ROUNDS = 3  # rounds also run one by one for comparison (every round is checked
# against the union of the detections' own state updates, which is what a serial run leaves)
ACCOUNT = "111122223333"
RARE = "AWS.SSM.RareCommandDocumentCreator"
FANOUT = "AWS.SSM.DistributedCommand"
SEND = "AWS.SSM.SendCommand"
FIGURES: dict[str, Any] = {}


# --- events --------------------------------------------------------------------------------------


def _as_principal(record: dict[str, Any], role: str) -> dict[str, Any]:
    identity = record["userIdentity"]
    identity["arn"] = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/session"
    identity["sessionContext"]["sessionIssuer"]["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{role}"
    identity["sessionContext"]["sessionIssuer"]["userName"] = role
    return envelope(record)


def creation_round(round_number: int) -> list[dict[str, Any]]:
    """16 Command documents created by one new principal, one second apart."""
    role = f"ConcurrentCreator{round_number}"
    return [
        _as_principal(
            create_document(
                event_id=f"cd-{round_number}-{n:02d}",
                at=T0 + timedelta(seconds=n),
                name=f"Doc-{round_number}-{n}",
            ),
            role,
        )
        for n in range(PER_ROUND)
    ]


def fanout_round(round_number: int) -> list[dict[str, Any]]:
    """16 SendCommands by one principal, each to one new instance, one second apart."""
    role = f"ConcurrentOperator{round_number}"
    return [
        _as_principal(
            send_command(
                [f"i-{round_number:05d}{n:012d}"],
                event_id=f"sc-{round_number}-{n:02d}",
                at=T0 + timedelta(seconds=n),
            ),
            role,
        )
        for n in range(PER_ROUND)
    ]


def union_of_state_updates(events: list[dict[str, Any]]) -> dict[str, frozenset[str]]:
    """What the fan-out item holds after these events in any order, one at a time: the union
    of the detection's own (pure) state updates."""
    detection = DistributedCommandDetection()
    union: dict[str, frozenset[str]] = {}
    for event in events:
        update = detection.state_update(parse(event["detail"]), Settings())
        assert update is not None
        for name, added in update.add.items():
            union[name] = union.get(name, frozenset()) | added
    return union


def member_of(event: dict[str, Any]) -> str:
    """The ledger member a firing decided by this event adds: `<epoch>|<event id>`."""
    detail = event["detail"]
    return members.encode(to_epoch(parse_event_time(detail["eventTime"])), detail["eventID"])


# --- the handler in worker processes -------------------------------------------------------------


def _handler_environment(endpoint: str, table: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "STATE_TABLE_NAME": table,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "ssm-detect",
        "POWERTOOLS_METRICS_NAMESPACE": "SsmDetect",
        "SECURITY_HUB_ENABLED": "false",
        "FINDINGS_TOPIC_ARN": "",
    }


_SENT = threading.local()


class RecordingNotifier:
    """Stands in for the SNS sink (DynamoDB Local has no SNS): same name, so the ledger records
    its deliveries exactly as it records SNS's; each send is kept per invocation (thread)."""

    name = "sns"

    def send(self, findings: Sequence[Finding]) -> None:
        _SENT.found.extend((f.detection_id, f.id, f.severity.value) for f in findings)


def wire_recording_notifier() -> None:
    """Build the handler's runtime (its cold start) and give it the recording notifier."""
    from handler import app  # noqa: PLC0415
    from ssm_detect.local_context import LocalLambdaContext  # noqa: PLC0415

    runtime: Runtime = app.runtime(app.account_of(LocalLambdaContext()))  # type: ignore[arg-type]
    runtime.dispatcher.notifiers = (RecordingNotifier(),)


def worker_init(endpoint: str, table: str) -> None:
    """A spawned worker: the Lambda environment, quiet stdout, the handler imported and wired."""
    os.environ.update(_handler_environment(endpoint, table))
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    sys.stdout = open(os.devnull, "w")  # noqa: PTH123, SIM115 - EMF and logs of the workers
    # Threads of one process share Powertools' Metrics; one thread's flush may leave another
    # with nothing to flush (a Lambda never runs two invocations in one process).
    warnings.filterwarnings("ignore", message="No application metrics to publish")

    # Powertools' Metrics object is module-level and not thread-safe: threads adding and
    # flushing at once can fail with "dictionary changed size during iteration". Threads here
    # stand in for separate Lambda processes, and what is under test is the DynamoDB state and
    # ledger, so worker processes do not publish metrics.
    from handler import app  # noqa: PLC0415

    app.publish_metrics = lambda metrics, summary: None  # type: ignore[assignment]

    wire_recording_notifier()  # the cold start, before the rounds


def invoke_together(events: list[dict[str, Any]], start_at: float) -> list[dict[str, Any]]:
    """Invoke the handler on every event at once (one thread each), from `start_at` (epoch)."""
    from handler import app  # noqa: PLC0415
    from ssm_detect.local_context import LocalLambdaContext  # noqa: PLC0415

    barrier = threading.Barrier(len(events))
    results: list[dict[str, Any]] = [{} for _ in events]

    def run(index: int) -> None:
        barrier.wait()
        _SENT.found = []
        try:
            results[index] = app.lambda_handler(events[index], LocalLambdaContext())
            results[index]["sent"] = _SENT.found
        except Exception as error:  # noqa: BLE001 - reported to the parent and asserted on
            results[index] = {"error": f"{type(error).__name__}: {error}"}

    time.sleep(max(0.0, start_at - time.time()))
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(events))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@dataclass
class Harness:
    server: DynamoDbLocal
    table: str
    pool: Pool
    wall: dict[str, float] = field(default_factory=dict)

    def concurrently(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """All events at the same instant: PROCESSES workers x THREADS threads each."""
        start_at = time.time() + 0.15
        chunks = [events[i::PROCESSES] for i in range(PROCESSES)]
        pending = [self.pool.apply_async(invoke_together, (chunk, start_at)) for chunk in chunks]
        results: list[dict[str, Any]] = [{} for _ in events]
        for worker, done in enumerate(pending):
            results[worker::PROCESSES] = done.get(timeout=120)
        errors = [r["error"] for r in results if "error" in r]
        assert not errors, errors
        return results

    def item(self, table: str, key: str) -> dict[str, Any]:
        found = self.server.client().get_item(TableName=table, Key={"pk": {"S": key}})
        item: dict[str, Any] = found.get("Item", {})
        return item


@contextmanager
def handler_in_this_process(endpoint: str, table: str) -> Iterator[Callable[[object], Any]]:
    from handler import app  # noqa: PLC0415
    from ssm_detect.local_context import LocalLambdaContext  # noqa: PLC0415

    with pytest.MonkeyPatch.context() as patch:
        for name, value in _handler_environment(endpoint, table).items():
            patch.setenv(name, value)
        app.runtime.cache_clear()
        wire_recording_notifier()

        def invoke(event: object) -> Any:
            _SENT.found = []
            result = app.lambda_handler(event, LocalLambdaContext())  # type: ignore[arg-type]
            result["sent"] = _SENT.found
            return result

        try:
            yield invoke
        finally:
            app.runtime.cache_clear()


@pytest.fixture(scope="module")
def harness(dynamodb_local: DynamoDbLocal) -> Iterator[Harness]:
    table = dynamodb_local.fresh_table("concurrent")
    context = multiprocessing.get_context("spawn")
    started = time.monotonic()
    with context.Pool(
        PROCESSES, initializer=worker_init, initargs=(dynamodb_local.endpoint, table)
    ) as pool:
        # one trivial task per worker so the pool's cold start is not inside any round
        for pending in [pool.apply_async(time.sleep, (0,)) for _ in range(PROCESSES)]:
            pending.get(timeout=120)
        harness = Harness(dynamodb_local, table, pool)
        harness.wall["pool_start_s"] = time.monotonic() - started
        yield harness
    FIGURES["wall"] = harness.wall


def _strings(item: dict[str, Any], name: str) -> frozenset[str]:
    value = item.get(name, {})
    return frozenset(value.get("SS", ()))


def _findings(results: list[dict[str, Any]], detection: str) -> int:
    return sum(r["findings"].get(detection, 0) for r in results)


# --- the tests -----------------------------------------------------------------------------------


def _sent(results: list[dict[str, Any]], detection: str) -> list[str]:
    """The finding ids the invocations notified for `detection` (with repeats)."""
    return [fid for r in results for det, fid, _ in r["sent"] if det == detection]


def _levels(results: list[dict[str, Any]], detection: str) -> list[str]:
    """The severities notified for `detection` (with repeats)."""
    return [level for r in results for det, _, level in r["sent"] if det == detection]


def _principal(role: str) -> str:
    return f"{ACCOUNT}#arn:aws:iam::{ACCOUNT}:role/{role}"


def _window(detection: str, principal: str) -> str:
    """The ledger key of the rounds' one window (every round's events are within T0's hour)."""
    return f"ledger#{detection}#{principal}#{int(T0.timestamp())}"


def test_concurrency_new_creator_is_notified_exactly_once(harness: Harness) -> None:
    """16 creations by a new principal at once: one window, one notification, every verdict a
    member of that window, the creation history complete; as if processed one by one."""
    serial_table = harness.server.fresh_table("serial-creator")
    rounds = [creation_round(r) for r in range(ROUNDS)]
    verdicts_per_round = []
    started = time.monotonic()
    for number, events in enumerate(rounds):
        results = harness.concurrently(events)
        fired = [event for event, r in zip(events, results, strict=True) if r["findings"]]
        verdicts_per_round.append(len(fired))
        key = _principal(f"ConcurrentCreator{number}")
        ledger = harness.item(harness.table, _window(RARE, key))
        # the earliest creation always fires: nothing precedes it, whatever the interleaving
        assert results[0]["findings"] == {RARE: 1}, number
        # one window, opened by one of the verdicts, every verdict a member of it
        assert _strings(ledger, "members") == {member_of(e) for e in fired}, number
        assert _sent(results, RARE) == [ledger["window_id"]["S"]], number
        created = _strings(harness.item(harness.table, f"creator#{key}"), "created")
        assert created == {member_of(e) for e in events}, number
    harness.wall["creator_rounds_s"] = round(time.monotonic() - started, 1)

    with handler_in_this_process(harness.server.endpoint, serial_table) as invoke:
        for number, events in enumerate(rounds[:SERIAL_ROUNDS]):
            serial = [invoke(event) for event in events]
            assert [r["findings"] for r in serial] == [{RARE: 1}] + [{}] * (PER_ROUND - 1)
            key = f"creator#{_principal(f'ConcurrentCreator{number}')}"
            assert _strings(harness.item(serial_table, key), "created") == _strings(
                harness.item(harness.table, key), "created"
            )
    FIGURES["creator_verdicts_per_round"] = verdicts_per_round


def test_concurrency_fanout_crosses_once_and_loses_no_update(harness: Harness) -> None:
    """16 one-instance SendCommands by one principal at once: the fan-out state ends exactly as
    the serial run leaves it, every crossing window is decided, and all of them are one
    suppression window with one open finding (one notification-worthy window)."""
    serial_table = harness.server.fresh_table("serial-fanout")
    rounds = [fanout_round(r) for r in range(ROUNDS)]
    repeated_verdicts, repeated_sends = [], []
    started = time.monotonic()
    for number, events in enumerate(rounds):
        results = harness.concurrently(events)
        key = _principal(f"ConcurrentOperator{number}")
        assert _findings(results, SEND) == PER_ROUND
        # windows closed by the 3rd..16th call cross the threshold: each decided at least once
        assert _findings(results, FANOUT) >= PER_ROUND - 2, number
        repeated_verdicts.append(_findings(results, FANOUT) - (PER_ROUND - 2))
        fanout_ledger = harness.item(harness.table, _window(FANOUT, key))
        send_ledger = harness.item(harness.table, _window(SEND, key))
        assert _strings(fanout_ledger, "members") == {member_of(e) for e in events[2:]}, number
        assert _strings(send_ledger, "members") == {member_of(e) for e in events}, number
        state = harness.item(harness.table, f"fanout#{key}")
        for name, expected in union_of_state_updates(events).items():
            assert _strings(state, name) == expected, (number, name)  # no update lost
        assert _sent(results, SEND) == [send_ledger["window_id"]["S"]], number
        # one fan-out window, notified once per severity level although several invocations
        # may have decided it at the same moment (the send lease): INFORMATIONAL from 3
        # instances, LOW from 10, so once or twice (a LOW decided first makes the INFORMATIONAL
        # one moot), never a level twice, and LOW always
        levels = _levels(results, FANOUT)
        repeated_sends.append(len(levels) - len(set(levels)))
        assert set(_sent(results, FANOUT)) == {fanout_ledger["window_id"]["S"]}, number
        assert len(levels) == len(set(levels)), (number, levels)
        assert "LOW" in levels, (number, levels)
    harness.wall["fanout_rounds_s"] = round(time.monotonic() - started, 1)

    with handler_in_this_process(harness.server.endpoint, serial_table) as invoke:
        for number, events in enumerate(rounds[:SERIAL_ROUNDS]):
            serial = [invoke(event) for event in events]
            sent = sorted((d, level) for r in serial for d, _, level in r["sent"])
            assert sent == [(FANOUT, "INFORMATIONAL"), (FANOUT, "LOW"), (SEND, "HIGH")]
            key = _principal(f"ConcurrentOperator{number}")
            concurrent, alone = (
                harness.item(t, f"fanout#{key}") for t in (harness.table, serial_table)
            )
            for name in ("instances", "calls", "unbounded"):
                assert _strings(concurrent, name) == _strings(alone, name), (number, name)
            assert len(_strings(concurrent, "instances")) == PER_ROUND
            for detection in (FANOUT, SEND):
                ledger_key = _window(detection, key)
                assert _strings(harness.item(harness.table, ledger_key), "members") == (
                    _strings(harness.item(serial_table, ledger_key), "members")
                ), (number, detection)
    FIGURES["fanout_repeated_verdicts_per_round"] = repeated_verdicts
    FIGURES["fanout_duplicate_notifications_per_round"] = repeated_sends


def test_concurrency_harness_makes_a_read_then_write_store_lose_updates(harness: Harness) -> None:
    """The control: the same 16-way start, with GetItem-then-PutItem instead of one atomic
    UpdateItem, loses writes. If it did not, the rounds above would prove nothing."""
    client = harness.server.client()
    own_clients = [harness.server.client() for _ in range(PER_ROUND)]
    lost_rounds = 0
    for number in range(ROUNDS):
        key = f"control#{number}"
        barrier = threading.Barrier(PER_ROUND)

        def read_then_write(n: int, key: str = key, barrier: threading.Barrier = barrier) -> None:
            own = own_clients[n]
            barrier.wait()
            held = own.get_item(
                TableName=harness.table, Key={"pk": {"S": key}}, ConsistentRead=True
            )
            current = set(held.get("Item", {}).get("a", {}).get("SS", ()))
            own.put_item(
                TableName=harness.table,
                Item={"pk": {"S": key}, "a": {"SS": sorted(current | {str(n)})}},
            )

        with ThreadPoolExecutor(PER_ROUND) as pool:
            for future in [pool.submit(read_then_write, n) for n in range(PER_ROUND)]:
                future.result()
        final = client.get_item(TableName=harness.table, Key={"pk": {"S": key}})["Item"]
        lost_rounds += len(final["a"]["SS"]) < PER_ROUND
    FIGURES["control_rounds_losing_updates"] = f"{lost_rounds}/{ROUNDS}"
    assert lost_rounds > 0


def test_concurrency_figures_are_reported(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a check: prints the figures docs/reliability.md quotes (`pytest -s` shows them)."""
    with capsys.disabled():
        print(f"\nconcurrency figures: {FIGURES} wall={harness.wall}")  # noqa: T201


def _pair_successful_claims(client: Any) -> dict[str, int]:
    """Hold each successful ledger claim until the other invocation has claimed the same key
    too: the interleaving a real race produces now and then (see the figures), made certain."""
    barriers: dict[str, threading.Barrier] = {}
    lock = threading.Lock()
    paired: dict[str, int] = {}

    def remember_key(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        key = params.get("Key", {}).get("pk", {}).get("S", "")
        if key.startswith("ledger#") and "members" in params.get("UpdateExpression", ""):
            context["ledger_claim"] = key

    def pair(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        key = context.get("ledger_claim")
        if key is None or "window_id" not in parsed.get("Attributes", {}):
            return
        with lock:
            barrier = barriers.setdefault(key, threading.Barrier(2))
        try:
            barrier.wait(timeout=10)
            paired[key] = paired.get(key, 0) + 1
        except threading.BrokenBarrierError:
            pass

    client.meta.events.register("before-parameter-build.dynamodb.UpdateItem", remember_key)
    client.meta.events.register("after-call.dynamodb.UpdateItem", pair)
    return paired


def test_concurrency_same_event_delivered_twice_at_once_notifies_once(local_stack: Any) -> None:
    """EventBridge delivers at least once; two copies of one event may run side by side."""
    from tests.conftest import load_event  # noqa: PLC0415

    paired = _pair_successful_claims(local_stack.clients.dynamodb_client())
    event = load_event("panther_send_command_three_instances.json")
    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(local_stack.invoke, event) for _ in range(2)]:
            future.result()
    assert sorted(paired.values()) == [2, 2]  # both claims of both ledger keys met
    assert len(local_stack.hub_findings()) == 2  # Security Hub: one finding per detection
    (message,) = local_stack.notifications()  # both findings of the event, in one message
    assert sorted(detections_of(message)) == [FANOUT, SEND]
