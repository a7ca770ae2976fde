"""One contract for every ledger: SQLite (memory and file) and DynamoDB (moto)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from ssm_detect.ledger import FindingLedger, SendLease, SendState, WindowClaim
from ssm_detect.ledger import dynamodb as dynamodb_ledger
from ssm_detect.ledger.dynamodb import DynamoDbLedger
from ssm_detect.ledger.sqlite import SqliteLedger
from tests.conftest import REGION, TABLE

HOUR = timedelta(hours=1)
T0 = 1_700_000_000


@pytest.fixture(params=["sqlite-memory", "sqlite-file", "dynamodb"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FindingLedger]:
    if request.param == "sqlite-memory":
        yield SqliteLedger()
    elif request.param == "sqlite-file":
        yield SqliteLedger(tmp_path / "ledger.sqlite")
    else:
        request.getfixturevalue("aws")
        yield DynamoDbLedger(boto3.client("dynamodb", region_name=REGION), TABLE)


def claim(finding: str, at: int, key: str = "ledger#D#1#p") -> WindowClaim:
    return WindowClaim(
        key=key,
        finding_id=finding,
        member=f"{at:011d}|{finding}-event",
        event_epoch=at,
        window=HOUR,
        now_epoch=T0 + 10_000,
    )


def test_ledger_first_firing_opens_a_window(ledger: FindingLedger) -> None:
    entry = ledger.claim(claim("f1", T0))
    assert (entry.open_id, entry.count, entry.sent, entry.tracked) == ("f1", 1, frozenset(), True)
    assert entry.created_epoch == T0 + 10_000


def test_ledger_later_firing_in_the_window_joins_it(ledger: FindingLedger) -> None:
    ledger.claim(claim("f1", T0))
    entry = ledger.claim(claim("f2", T0 + 3599))
    assert (entry.open_id, entry.count) == ("f1", 2)


def test_ledger_redelivered_firing_counts_once(ledger: FindingLedger) -> None:
    ledger.claim(claim("f1", T0))
    ledger.claim(claim("f2", T0 + 60))
    again = ledger.claim(claim("f2", T0 + 60))
    assert (again.open_id, again.count) == ("f1", 2)


def test_ledger_firing_after_the_window_opens_a_new_one(ledger: FindingLedger) -> None:
    ledger.claim(claim("f1", T0))
    ledger.mark_sent("ledger#D#1#p", "f1", "sns")
    entry = ledger.claim(claim("f3", T0 + 3600))
    assert (entry.open_id, entry.count, entry.sent) == ("f3", 1, frozenset())


def test_ledger_keys_are_independent(ledger: FindingLedger) -> None:
    ledger.claim(claim("f1", T0))
    assert ledger.claim(claim("g1", T0 + 1, key="ledger#D#1#other")).open_id == "g1"


def test_ledger_remembers_delivered_sinks_per_window(ledger: FindingLedger) -> None:
    ledger.claim(claim("f1", T0))
    ledger.mark_sent("ledger#D#1#p", "f1", "sns")
    ledger.mark_sent("ledger#D#1#p", "not-the-open-one", "securityhub")
    assert ledger.claim(claim("f1", T0)).sent == frozenset({"sns"})


def test_ledger_firing_older_than_the_held_window_is_untracked(ledger: FindingLedger) -> None:
    ledger.claim(claim("f1", T0 + 7200))
    late = ledger.claim(claim("f0", T0))
    assert (late.tracked, late.open_id) == (False, "f0")
    assert ledger.claim(claim("f2", T0 + 7201)).open_id == "f1"


def test_ledger_out_of_order_firing_inside_the_window_joins(ledger: FindingLedger) -> None:
    ledger.claim(claim("f2", T0 + 600))
    assert ledger.claim(claim("f1", T0)).open_id == "f2"


def test_sqlite_ledger_concurrent_firings_open_exactly_one_window() -> None:
    ledger = SqliteLedger()
    openers: list[str] = []
    lock = threading.Lock()

    def fire(n: int) -> None:
        entry = ledger.claim(claim(f"f{n}", T0 + n))
        if entry.open_id == f"f{n}":
            with lock:
                openers.append(entry.open_id)

    threads = [threading.Thread(target=fire, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(openers) == 1
    assert ledger.claim(claim("f0", T0)).count == 16


def test_dynamodb_ledger_counts_past_the_member_cap(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dynamodb_ledger, "MEMBER_CAP", 3)
    ledger = DynamoDbLedger(boto3.client("dynamodb", region_name=REGION), TABLE)
    for n in range(5):
        entry = ledger.claim(claim(f"f{n}", T0 + n))
    assert (entry.open_id, entry.count, len(entry.members)) == ("f0", 5, 3)
    # a re-delivered member already held is not counted again
    assert ledger.claim(claim("f1", T0 + 1)).count == 5


# --- send leases: one sender per window and sink -------------------------------------------------


def lease(owner: str, now_ms: int = T0 * 1000, *, open_id: str = "f1") -> SendLease:
    return SendLease("ledger#D#1#p", open_id, "sns", owner, now_ms, now_ms + 120_000)


def test_ledger_send_lease_goes_to_one_invocation_at_a_time(ledger: FindingLedger) -> None:
    ledger.claim(claim("f1", T0))
    assert ledger.begin_send(lease("a")) is SendState.TAKEN
    assert ledger.begin_send(lease("b")) is SendState.HELD
    assert ledger.begin_send(lease("a")) is SendState.TAKEN  # Lambda's retry of the holder


def test_ledger_recorded_delivery_ends_the_lease(ledger: FindingLedger) -> None:
    ledger.claim(claim("f1", T0))
    assert ledger.begin_send(lease("a")) is SendState.TAKEN
    ledger.mark_sent("ledger#D#1#p", "f1", "sns")
    assert ledger.begin_send(lease("b")) is SendState.SENT
    assert ledger.begin_send(lease("a")) is SendState.SENT


def test_ledger_released_or_expired_lease_can_be_taken(ledger: FindingLedger) -> None:
    ledger.claim(claim("f1", T0))
    assert ledger.begin_send(lease("a")) is SendState.TAKEN
    ledger.release(lease("b"))  # not the holder: nothing changes
    assert ledger.begin_send(lease("b")) is SendState.HELD
    ledger.release(lease("a"))
    assert ledger.begin_send(lease("b")) is SendState.TAKEN
    # the holder died: its lease lapses at `until`
    assert ledger.begin_send(lease("c", T0 * 1000 + 120_001)) is SendState.TAKEN


def test_ledger_lease_of_an_earlier_window_does_not_hold_the_new_one(
    ledger: FindingLedger,
) -> None:
    ledger.claim(claim("f1", T0))
    assert ledger.begin_send(lease("a")) is SendState.TAKEN
    ledger.claim(claim("f3", T0 + 3600))  # a new window, f3, while "a" still holds f1's lease
    assert ledger.begin_send(lease("b", open_id="f3")) is SendState.TAKEN
    # f1's window is gone: sending its notification is allowed, nothing is recorded
    assert ledger.begin_send(lease("d", open_id="f1")) is SendState.TAKEN
