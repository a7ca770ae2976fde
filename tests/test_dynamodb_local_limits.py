"""DynamoDB's limits on a real engine: how big the state items grow, and what happens at 400 KB.

moto does not enforce the item size limit the way the service does; DynamoDB Local does
(`ValidationException: Item size to update has exceeded the maximum allowed size`). The fan-out
item keeps, per principal, a member per call and per instance for two windows. Unbounded, a busy
principal's item grew with its call rate until DynamoDB refused every update of it (~8,500 calls
within two windows); its sets are now bounded (detections/distributed_command.py: the oldest
members are evicted past 1,000, and the store refuses an update once a set holds its limit), so
the item stays far below the limit whatever the rate, and an item that grew before the bound
shrinks back while every event is still decided.
"""

from __future__ import annotations

import copy
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from detections import members
from detections.distributed_command import KEEP_MEMBERS, MEMBER_LIMITS
from ssm_detect.local_context import LocalLambdaContext
from ssm_detect.state.dynamodb import DynamoDbStateStore
from tests.conftest import load_event
from tests.test_state_contract import FIXED_NOW, update

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.dynamodb_local import DynamoDbLocal

pytest_plugins = ["tests.dynamodb_local"]

ROLE_KEY = "fanout#111122223333#arn:aws:iam::111122223333:role/PlatformOps"
T0 = datetime(2025, 3, 3, 9, 0, 0, tzinfo=UTC)
ITEM_LIMIT = 400 * 1024
FANOUT = "AWS.SSM.DistributedCommand"
FIGURES: dict[str, Any] = {}


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (UTF-8 strings, numbers ~ digits)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        elif "N" in value:
            size += len(value["N"])
        elif "SS" in value:
            size += sum(len(m.encode()) for m in value["SS"])
    return size


def send_command(n: int, at: datetime, instances: int = 1) -> dict[str, Any]:
    """A fleet-automation style call: one instance per SendCommand (by default, each call a new
    one), PlatformOps role."""
    payload = copy.deepcopy(load_event("send_command_success.json"))
    detail = payload["detail"]
    detail["eventID"] = str(uuid.UUID(int=n))
    detail["eventTime"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    ids = [f"i-{n:012x}{k:05x}" for k in range(instances)]
    detail["requestParameters"]["instanceIds"] = ids
    detail["responseElements"]["command"]["instanceIds"] = ids
    return payload


def fanout_item(client: Any, table: str) -> dict[str, Any]:
    item: dict[str, Any] = client.get_item(TableName=table, Key={"pk": {"S": ROLE_KEY}})["Item"]
    return item


@pytest.fixture
def handler(
    dynamodb_local: DynamoDbLocal, local_table: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[object], dict[str, Any]]]:
    from handler import app  # noqa: PLC0415

    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local.endpoint)
    monkeypatch.setenv("STATE_TABLE_NAME", local_table)
    app.runtime.cache_clear()
    yield lambda event: app.lambda_handler(event, LocalLambdaContext())  # type: ignore[arg-type]
    app.runtime.cache_clear()


def test_dynamodb_local_fanout_item_grows_by_a_fixed_amount_per_call(
    handler: Callable[[object], dict[str, Any]], dynamodb_local: DynamoDbLocal, local_table: str
) -> None:
    """One-instance calls every 10 s: the item grows ~the same bytes per call (the figure the
    400 KB limit is divided by)."""
    client = dynamodb_local.client()
    sizes = []
    for n in range(30):
        handler(send_command(n, T0 + timedelta(seconds=10 * n)))
        sizes.append(item_size(fanout_item(client, local_table)))
    per_call = (sizes[-1] - sizes[9]) / 20
    FIGURES["fanout_item_bytes_per_call"] = per_call
    # before the bounds (`calls` unbounded, `instances` cut to 2,000): calls to reach 400 KB
    FIGURES["calls_to_400kb_before_the_bounds"] = int((ITEM_LIMIT - 2000 * (per_call - 48)) / 48)
    # `calls` ~48 bytes + the document's name (here 19 with its separator) + `instances` ~68
    assert 120 < per_call < 160


def _add_calls(client: Any, table: str, newest: datetime, first: int, count: int) -> bool:
    """Add `count` call members of the last hour (the detection's format); False if refused."""
    batch = [
        members.encode(
            int((newest - timedelta(seconds=n % 3600)).timestamp()), str(uuid.UUID(int=10**9 + n))
        )
        for n in range(first, first + count)
    ]
    try:
        client.update_item(
            TableName=table,
            Key={"pk": {"S": ROLE_KEY}},
            UpdateExpression="ADD calls :c",
            ExpressionAttributeValues={":c": {"SS": batch}},
        )
    except ClientError as error:
        if "Item size" not in error.response["Error"]["Message"]:
            raise
        return False
    return True


def _fill_calls_until_refused(client: Any, table: str, newest: datetime) -> int:
    """Call members until DynamoDB refuses even one more: the state of a principal that has
    made that many calls within the window (what its next SendCommand meets)."""
    held = 0
    for step in (1000, 100, 10, 1):
        while _add_calls(client, table, newest, held, step):
            held += step
    return held


def test_dynamodb_local_busy_principal_is_still_processed_at_the_item_limit(
    handler: Callable[[object], dict[str, Any]], dynamodb_local: DynamoDbLocal, local_table: str
) -> None:
    """GIVEN an item grown to the 400 KB limit (as unbounded state grew: DynamoDB refuses even one
    more call member) WHEN the principal runs commands THEN every invocation succeeds and decides
    (the update is refused at the member limit, atomically, and the event is evaluated on the
    item plus its own members), and the item shrinks back under its bounds within a few events."""
    client = dynamodb_local.client()
    newest = T0 + timedelta(hours=1)
    held = _fill_calls_until_refused(client, local_table, newest)
    FIGURES["calls_held_when_dynamodb_refused"] = held
    assert 5_000 < held < 10_000  # measured: 8,5xx (raw ADDs of call members, no bound)

    # three new instances: the fan-out crosses the threshold on this call alone
    first = handler(send_command(1, newest + timedelta(seconds=1), instances=3))
    assert first["findings"].get(FANOUT) == 1

    shrinking = [len(fanout_item(client, local_table)["calls"]["SS"])]
    n = 2
    while shrinking[-1] >= MEMBER_LIMITS["calls"]:
        result = handler(send_command(n, newest + timedelta(seconds=n), instances=3))
        assert result["findings"].get(FANOUT) == 1, n
        shrinking.append(len(fanout_item(client, local_table)["calls"]["SS"]))
        n += 1
    FIGURES["events_to_shrink_an_item_at_400kb_under_its_bound"] = n - 1
    assert shrinking == sorted(shrinking, reverse=True)
    # the refused events were decided but not stored; the next one is stored again
    handler(send_command(n, newest + timedelta(seconds=n), instances=3))
    stored = fanout_item(client, local_table)["calls"]["SS"]
    assert any(f"|{uuid.UUID(int=n)}|" in m for m in stored)  # "<epoch>|<id>|<region>"
    assert item_size(fanout_item(client, local_table)) < 200 * 1024


# The busy-principal drive: by default the item is first seeded with `KEEP_MEMBERS` calls of the
# detection's format and 200 more go through the handler (~15 s: a call's evaluation costs ~50 ms
# at the bound, so the full drive does not fit the suite). BUSY_CALLS_ENV=10000 drives that many
# calls through the handler from an empty item instead (measured once: 445 s, every invocation
# succeeded, the item peaked at 117,490 bytes with 1,008 calls and 1,008 instances held).
BUSY_CALLS_ENV = "SSM_DETECT_BUSY_CALLS"


def _seed_recent_calls(client: Any, table: str, count: int) -> None:
    """`count` one-instance calls, one a second up to T0 + count - 1 s, as the detection stores
    them (what a principal busy for that long has left in its item)."""
    ids = [(n, str(uuid.UUID(int=10**9 + n)), f"i-seed{n:013x}") for n in range(count)]
    stamp = [int((T0 + timedelta(seconds=n)).timestamp()) for n in range(count)]
    client.update_item(
        TableName=table,
        Key={"pk": {"S": ROLE_KEY}},
        UpdateExpression="ADD calls :c, instances :i",
        ExpressionAttributeValues={
            ":c": {"SS": [members.encode(stamp[n], eid) for n, eid, _ in ids]},
            ":i": {"SS": [members.encode(stamp[n], f"{eid}|{iid}") for n, eid, iid in ids]},
        },
    )


def test_dynamodb_local_busy_principal_item_stays_bounded_through_the_handler(
    handler: Callable[[object], dict[str, Any]],
    dynamodb_local: DynamoDbLocal,
    local_table: str,
) -> None:
    """One-instance SendCommands by one principal, one a second of event time, each to a new
    instance (fleet automation; before the bounds, DynamoDB refused this item from ~5,700 calls
    in two windows on), through the real handler: every invocation succeeds and fires the
    fan-out, the sets stay between their eviction bound and their limit, the newest calls are
    the ones kept, and the item stays under 200 KB."""
    client = dynamodb_local.client()
    full = int(os.environ.get(BUSY_CALLS_ENV, "0"))
    first = 0 if full else KEEP_MEMBERS["calls"]
    last = full or first + 200
    if not full:
        _seed_recent_calls(client, local_table, first)
    sizes: list[int] = []
    for n in range(first, last):
        result = handler(send_command(n, T0 + timedelta(seconds=n)))
        assert result["findings"].get(FANOUT) == (1 if n >= 2 else None), n
        if n % 50 == 49:
            sizes.append(item_size(fanout_item(client, local_table)))
    item = fanout_item(client, local_table)
    held = {name: len(item[name]["SS"]) for name in ("calls", "instances")}
    FIGURES[f"bounded_item_bytes_max_calls_{first}_to_{last}"] = max(sizes)
    FIGURES["bounded_item_members_at_end"] = held
    assert max(sizes) < 200 * 1024
    for name, count in held.items():
        assert KEEP_MEMBERS[name] <= count < MEMBER_LIMITS[name], name
    # the newest calls are the ones kept: the last one, and none older than the bound's reach
    assert f"|{uuid.UUID(int=last - 1)}|" in max(item["calls"]["SS"])
    oldest_kept = T0 + timedelta(seconds=last - 1 - MEMBER_LIMITS["calls"])
    assert min(members.decode(m)[0] for m in item["calls"]["SS"]) > oldest_kept.timestamp()


def test_dynamodb_local_store_limit_holds_under_concurrent_writers(
    dynamodb_local: DynamoDbLocal, local_table: str
) -> None:
    """16 writers, each with its own client, race one-member updates limited at 50 into one set:
    the set ends holding exactly 50 (DynamoDB checks the condition and writes in one step), and
    each writer saw either its own member or a full set."""
    threads, per_thread, limit = 16, 10, 50
    stores = [
        DynamoDbStateStore(dynamodb_local.client(), local_table, clock=lambda: FIXED_NOW)
        for _ in range(threads)
    ]
    barrier = threading.Barrier(threads)
    refused: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            snapshot = stores[n].apply(update("shared", {"a": limit}, a={f"{n}-{i}"}))
            if f"{n}-{i}" not in snapshot["a"]:
                assert len(snapshot["a"]) == limit
                with lock:
                    refused.append(f"{n}-{i}")

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(worker, n) for n in range(threads)]:
            future.result()
    assert len(stores[0].apply(update("shared", a=set()))["a"]) == limit
    assert len(refused) == threads * per_thread - limit


def test_dynamodb_local_limits_figures(capsys: pytest.CaptureFixture[str]) -> None:
    """Not a check: prints the figures docs/reliability.md quotes (`pytest -s`)."""
    with capsys.disabled():
        print(f"\nitem-size figures: {FIGURES}")  # noqa: T201
