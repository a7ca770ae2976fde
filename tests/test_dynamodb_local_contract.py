"""The state-store and ledger contracts against DynamoDB Local, a real DynamoDB engine.

The contract tests themselves live in tests/test_state_contract.py and test_ledger_contract.py
and are imported here unchanged: each `test_store_*` / `test_ledger_*` function found there runs
again with `store` / `ledger` built on DynamoDB Local (a new table per test), so a contract test
added there is run here too. The concurrency tests those files skip for moto (it does not lock
items, so it cannot judge atomicity) are written out here, against the real engine, together
with the DynamoDB-specific checks that the moto modules run on moto.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ssm_detect.ledger import FindingLedger
from ssm_detect.ledger import dynamodb as dynamodb_ledger
from ssm_detect.ledger.dynamodb import DynamoDbLedger
from ssm_detect.state import StatePrune, StateStore
from ssm_detect.state.dynamodb import DynamoDbStateStore
from tests import test_ledger_contract as ledger_contract
from tests import test_state_contract as state_contract
from tests.test_ledger_contract import T0, claim
from tests.test_state_contract import FIXED_NOW, HOUR, update

if TYPE_CHECKING:
    from tests.dynamodb_local import DynamoDbLocal

pytest_plugins = ["tests.dynamodb_local"]

# Contract tests that need a concurrent engine are skipped on every DynamoDB store by their own
# module (because of moto); their real-engine versions are below.
_NEEDS_LOCKING = {"test_store_concurrent_unions_lose_nothing"}


def _contract(module: object, prefix: str) -> dict[str, Callable[..., None]]:
    return {
        name: getattr(module, name)
        for name in dir(module)
        if name.startswith(prefix) and name not in _NEEDS_LOCKING
    }


STATE_CONTRACT = _contract(state_contract, "test_store_")
LEDGER_CONTRACT = _contract(ledger_contract, "test_ledger_")
globals().update(STATE_CONTRACT)
globals().update(LEDGER_CONTRACT)


@pytest.fixture
def store(dynamodb_local: DynamoDbLocal, local_table: str) -> StateStore:
    return DynamoDbStateStore(dynamodb_local.client(), local_table, clock=lambda: FIXED_NOW)


@pytest.fixture
def ledger(dynamodb_local: DynamoDbLocal, local_table: str) -> FindingLedger:
    return DynamoDbLedger(dynamodb_local.client(), local_table)


def test_dynamodb_local_runs_the_whole_contract() -> None:
    """The import above found the contract (a rename there must not silently empty this)."""
    assert len(STATE_CONTRACT) >= 5
    assert len(LEDGER_CONTRACT) >= 8


def test_dynamodb_local_listens_on_loopback_only(dynamodb_local: DynamoDbLocal) -> None:
    """Every listening socket on the server's port is bound to 127.0.0.1, not 0.0.0.0 / ::."""
    port = f"{dynamodb_local.port:04X}"
    loopback = {"0100007F", "0000000000000000FFFF00000100007F"}
    listening = []
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():  # no IPv6 on this machine
            continue
        with table.open() as rows:
            for row in list(rows)[1:]:
                local, state = row.split()[1], row.split()[3]
                address, _, local_port = local.partition(":")
                if local_port == port and state == "0A":  # 0A = LISTEN
                    listening.append(address)
    assert listening
    assert set(listening) <= loopback, listening


# --- state store: atomic unions under real concurrency ------------------------------------------


def test_dynamodb_local_store_concurrent_unions_lose_nothing(
    dynamodb_local: DynamoDbLocal, local_table: str
) -> None:
    """16 threads, each with its own client, add 20 disjoint members each to one key. Every
    write survives, each thread saw its own member, and the last writer saw all 320."""
    threads, per_thread = 16, 20
    barrier = threading.Barrier(threads)
    seen: list[int] = []
    lock = threading.Lock()

    stores = [
        DynamoDbStateStore(dynamodb_local.client(), local_table, clock=lambda: FIXED_NOW)
        for _ in range(threads)
    ]

    def worker(n: int) -> None:
        store = stores[n]
        barrier.wait()
        for i in range(per_thread):
            snapshot = store.apply(update("shared", a={f"{n}-{i}"}))
            assert f"{n}-{i}" in snapshot["a"]
            with lock:
                seen.append(len(snapshot["a"]))

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(worker, n) for n in range(threads)]:
            future.result()
    store = DynamoDbStateStore(dynamodb_local.client(), local_table, clock=lambda: FIXED_NOW)
    final = store.apply(update("shared", a=set()))["a"]
    assert final == {f"{n}-{i}" for n in range(threads) for i in range(per_thread)}
    assert max(seen) == threads * per_thread
    assert len(seen) == threads * per_thread


def test_dynamodb_local_store_prune_races_with_adds_and_keeps_new_members(
    dynamodb_local: DynamoDbLocal, local_table: str
) -> None:
    """A prune (DELETE of named members) interleaved with adds removes exactly what it names."""
    store = DynamoDbStateStore(dynamodb_local.client(), local_table, clock=lambda: FIXED_NOW)
    store.apply(update("k", a={f"old-{i}" for i in range(50)}))
    old = frozenset(f"old-{i}" for i in range(50))

    others = [DynamoDbStateStore(dynamodb_local.client(), local_table) for _ in range(8)]

    def add(n: int) -> None:
        others[n % 8].apply(update("k", a={f"new-{n}"}))

    def prune() -> None:
        others[0].prune(StatePrune(key="k", remove={"a": old}))

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(add, n) for n in range(20)]
        futures.insert(10, pool.submit(prune))
        for future in futures:
            future.result()
    assert store.apply(update("k", a=set()))["a"] == {f"new-{n}" for n in range(20)}


def test_dynamodb_local_item_has_ttl_from_the_store_clock(
    dynamodb_local: DynamoDbLocal, local_table: str
) -> None:
    client = dynamodb_local.client()
    DynamoDbStateStore(client, local_table, clock=lambda: FIXED_NOW).apply(update("k", a={"1"}))
    item = client.get_item(TableName=local_table, Key={"pk": {"S": "k"}})["Item"]
    assert int(item["expires_at"]["N"]) == int((FIXED_NOW + HOUR).timestamp())


def test_dynamodb_local_table_has_ttl_enabled(
    dynamodb_local: DynamoDbLocal, local_table: str
) -> None:
    described = dynamodb_local.client().describe_time_to_live(TableName=local_table)
    ttl = described["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")


def test_dynamodb_local_prune_does_not_recreate_an_expired_item(
    dynamodb_local: DynamoDbLocal, local_table: str
) -> None:
    client = dynamodb_local.client()
    DynamoDbStateStore(client, local_table).prune(
        StatePrune(key="gone", remove={"a": frozenset("1")})
    )
    assert "Item" not in client.get_item(TableName=local_table, Key={"pk": {"S": "gone"}})


def test_dynamodb_local_store_accepts_members_at_dynamodb_limits(
    dynamodb_local: DynamoDbLocal, local_table: str
) -> None:
    """Non-ASCII, control characters and a long member round-trip unchanged (moto is lax about
    what it stores; the real engine validates)."""
    members = {"é|ü", "line\nbreak", "tab\tand\x01control", "x" * 4096, "🙂|emoji"}
    store = DynamoDbStateStore(dynamodb_local.client(), local_table, clock=lambda: FIXED_NOW)
    assert store.apply(update("k", a=members)) == {"a": frozenset(members)}


# --- ledger: one window under real concurrency --------------------------------------------------


def _claim_at_once(
    ledgers: list[DynamoDbLedger], key: str
) -> list[tuple[int, int, frozenset[str]]]:
    """One firing per ledger (each with its own client) claims `key` at the same moment, all
    with the same wall clock (the worst case for the window's clock); returns, per claim, the
    clock, count and members it saw."""
    barrier = threading.Barrier(len(ledgers))
    clocks: list[tuple[int, int, frozenset[str]]] = []
    lock = threading.Lock()

    def fire(n: int) -> None:
        barrier.wait()
        entry = ledgers[n].claim(claim(f"f{n}", T0 + n, key=key, rank=f"2|{n:02d}"))
        with lock:
            clocks.append((entry.clock_ms, entry.count, frozenset(entry.members)))

    with ThreadPoolExecutor(len(ledgers)) as pool:
        for future in [pool.submit(fire, n) for n in range(len(ledgers))]:
            future.result()
    return clocks


def test_dynamodb_local_ledger_concurrent_firings_join_one_window(
    dynamodb_local: DynamoDbLocal, local_table: str
) -> None:
    """Rounds of 16 threads claim at once for one window with one wall clock: every firing a
    member, the lead the smallest rank, the clock past every claim's (two claims show the same
    clock value only when they show the same window: a lead write lost to a better lead)."""
    threads, rounds = 16, 10
    ledgers = [DynamoDbLedger(dynamodb_local.client(), local_table) for _ in range(threads)]
    for round_number in range(rounds):
        key = f"ledger#D#1#p{round_number}#0"
        seen = _claim_at_once(ledgers, key)
        # Claims may share a clock value only when they saw the same window (the same count and
        # members): an import with that UpdatedAt then carries the same firings either way.
        windows_by_clock: dict[int, set[tuple[int, frozenset[str]]]] = {}
        for clock, count, members in seen:
            windows_by_clock.setdefault(clock, set()).add((count, members))
        assert all(len(w) == 1 for w in windows_by_clock.values()), (round_number, seen)
        final = ledgers[0].claim(claim("f0", T0, key, rank="2|00"))
        assert final.count == threads
        assert (final.lead, final.lead_rank) == (b"f0", "2|00")
        assert final.clock_ms > max(clock for clock, _, _ in seen)


def test_dynamodb_local_ledger_counts_past_the_member_cap(
    dynamodb_local: DynamoDbLocal, local_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dynamodb_ledger, "MEMBER_CAP", 3)
    ledger = DynamoDbLedger(dynamodb_local.client(), local_table)
    for n in range(5):
        entry = ledger.claim(claim(f"f{n}", T0 + n))
    assert (entry.count, len(entry.members)) == (5, 3)
    assert ledger.claim(claim("f1", T0 + 1)).count == 5


def test_dynamodb_local_ledger_item_stays_under_the_item_size_limit(
    dynamodb_local: DynamoDbLocal, local_table: str
) -> None:
    """A window already holding MEMBER_CAP firings with CloudTrail-sized members (UUID event
    ids) and a lead still takes firings past the cap: the real engine enforces the 400 KB item
    limit and the size condition, moto does not."""
    client = dynamodb_local.client()
    key = "ledger#D#1#busy#0"
    cap = dynamodb_ledger.MEMBER_CAP
    ledger = DynamoDbLedger(client, local_table)
    ledger.claim(claim("f-first", T0, key, rank="0|first"))
    client.update_item(
        TableName=local_table,
        Key={"pk": {"S": key}},
        UpdateExpression="SET members = :m",
        ExpressionAttributeValues={
            ":m": {
                "SS": [f"{T0 + n:011d}|{n:08d}-0000-4000-8000-000000000000" for n in range(cap)]
            },
        },
    )
    for n in range(5):
        entry = ledger.claim(claim(f"f-late-{n}", T0 + 100 + n, key))
    assert (entry.count, len(entry.members), entry.lead) == (cap + 5, cap, b"f-first")


def test_dynamodb_local_store_ttl_never_in_the_past(
    dynamodb_local: DynamoDbLocal, local_table: str
) -> None:
    """The TTL is set from the wall clock, so replaying year-old events keeps the item alive."""
    client = dynamodb_local.client()
    store = DynamoDbStateStore(client, local_table)
    store.apply(update("k", a={"1"}))
    item = client.get_item(TableName=local_table, Key={"pk": {"S": "k"}})["Item"]
    assert int(item["expires_at"]["N"]) > datetime.now(UTC).timestamp()
    assert int(item["expires_at"]["N"]) <= (datetime.now(UTC) + timedelta(hours=2)).timestamp()
