"""One contract for every ledger: SQLite (memory and file) and DynamoDB (moto)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from ssm_detect.delivery import window_of
from ssm_detect.findings import Finding, PrincipalRef, Severity
from ssm_detect.ledger import FindingLedger, SendLease, SendState, WindowClaim
from ssm_detect.ledger import dynamodb as dynamodb_ledger
from ssm_detect.ledger.dynamodb import DynamoDbLedger
from ssm_detect.ledger.sqlite import SqliteLedger
from ssm_detect.settings import Settings
from tests.conftest import REGION, TABLE

HOUR = timedelta(hours=1)
T0 = 1_700_000_000
# The wall clock of the claims: in the future, so that the items' expiry (wall clock + 16 days)
# is too, and DynamoDB Local's TTL sweep never deletes an item under a test.
WALL_MS = 4_102_444_800_000


@pytest.fixture(params=["sqlite-memory", "sqlite-file", "dynamodb"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FindingLedger]:
    if request.param == "sqlite-memory":
        yield SqliteLedger()
    elif request.param == "sqlite-file":
        yield SqliteLedger(tmp_path / "ledger.sqlite")
    else:
        request.getfixturevalue("aws")
        yield DynamoDbLedger(boto3.client("dynamodb", region_name=REGION), TABLE)


def claim(
    finding: str,
    at: int,
    key: str = "ledger#D#1#p#0",
    *,
    rank: str | None = None,
    now_ms: int = WALL_MS,
) -> WindowClaim:
    """A firing `finding` decided by an event at `at`, in the window `key` (whose id is the key's
    own: windows are named by the caller, a function of the events)."""
    return WindowClaim(
        key=key,
        window_id=f"window-of-{key}",
        member=f"{at:011d}|{finding}-event",
        lead_rank=rank if rank is not None else f"3|{at:011d}|{finding}",
        lead=finding.encode(),
        now_ms=now_ms,
    )


def test_ledger_first_firing_creates_the_window(ledger: FindingLedger) -> None:
    entry = ledger.claim(claim("f1", T0))
    assert (entry.window_id, entry.count, entry.notified) == ("window-of-ledger#D#1#p#0", 1, {})
    assert entry.created_ms == entry.clock_ms == WALL_MS
    assert entry.lead == b"f1"


def test_ledger_later_firing_in_the_window_joins_it(ledger: FindingLedger) -> None:
    ledger.claim(claim("f1", T0))
    entry = ledger.claim(claim("f2", T0 + 3599))
    assert (entry.window_id, entry.count) == ("window-of-ledger#D#1#p#0", 2)


def test_ledger_redelivered_firing_counts_once(ledger: FindingLedger) -> None:
    ledger.claim(claim("f1", T0))
    ledger.claim(claim("f2", T0 + 60))
    again = ledger.claim(claim("f2", T0 + 60))
    assert again.count == 2


def test_ledger_windows_are_independent(ledger: FindingLedger) -> None:
    ledger.claim(claim("f1", T0))
    ledger.mark_sent("ledger#D#1#p#0", "sns", 3)
    later = ledger.claim(claim("f3", T0 + 3600, key="ledger#D#1#p#3600"))
    assert (later.count, later.notified) == (1, {})
    # the earlier window is still held: a late redelivery of its firing finds it notified
    assert ledger.claim(claim("f1", T0)).notified == {"sns": 3}


def test_ledger_remembers_the_level_each_sink_notified(ledger: FindingLedger) -> None:
    ledger.claim(claim("f1", T0))
    ledger.mark_sent("ledger#D#1#p#0", "sns", 2)
    ledger.mark_sent("ledger#D#1#p#0", "sns", 1)  # lower: the higher level stays
    ledger.mark_sent("ledger#D#1#p#0", "local", 4)
    assert ledger.claim(claim("f1", T0)).notified == {"sns": 2, "local": 4}


def test_ledger_clock_strictly_increases_in_claim_order(ledger: FindingLedger) -> None:
    """Security Hub keeps the import with the newest UpdatedAt: the window's clock must rise
    with every claim, even when a claim's wall clock is behind an earlier one's."""
    now = WALL_MS
    clocks = [
        ledger.claim(claim(f"f{n}", T0 + n, now_ms=wall)).clock_ms
        for n, wall in enumerate([now, now + 500, now + 500, now - 60_000, now + 501])
    ]
    assert clocks == sorted(set(clocks))
    assert clocks[0] == now
    assert clocks[1] == now + 500


def test_ledger_related_windows_are_the_union_over_the_windows_firings(
    ledger: FindingLedger,
) -> None:
    """Out of order, a fan-out can be decided on another event of the window than in order:
    the window's RelatedFindings must not depend on which one."""
    ledger.claim(claim("f1", T0))
    ledger.claim(replace(claim("f2", T0 + 60), related=frozenset({"fanout-window"})))
    entry = ledger.claim(replace(claim("f3", T0 + 120), related=frozenset({"chain-window"})))
    assert entry.related == {"fanout-window", "chain-window"}
    assert ledger.claim(claim("f1", T0)).related == {"fanout-window", "chain-window"}


def test_ledger_lead_is_the_smallest_rank_whatever_the_order(ledger: FindingLedger) -> None:
    ledger.claim(claim("f2", T0 + 60, rank="3|b"))
    ledger.claim(claim("f1", T0, rank="1|a"))  # leads: takes the lead and advances the clock
    entry = ledger.claim(claim("f3", T0 + 120, rank="2|c"))
    assert (entry.lead, entry.lead_rank, entry.count) == (b"f1", "1|a", 3)


def test_ledger_new_lead_is_newer_than_the_claims_before_it(ledger: FindingLedger) -> None:
    before = ledger.claim(claim("f2", T0 + 60, rank="3|b"))
    led = ledger.claim(claim("f1", T0, rank="1|a", now_ms=before.clock_ms - 5))
    assert led.lead == b"f1"
    assert led.clock_ms > before.clock_ms


def test_sqlite_ledger_concurrent_firings_all_join_one_window() -> None:
    ledger = SqliteLedger()
    clocks: list[int] = []
    lock = threading.Lock()

    def fire(n: int) -> None:
        entry = ledger.claim(claim(f"f{n}", T0 + n))
        with lock:
            clocks.append(entry.clock_ms)

    threads = [threading.Thread(target=fire, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(clocks)) == 16  # every claim saw its own clock value
    assert ledger.claim(claim("f0", T0)).count == 16


def test_dynamodb_ledger_counts_past_the_member_cap(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dynamodb_ledger, "MEMBER_CAP", 3)
    ledger = DynamoDbLedger(boto3.client("dynamodb", region_name=REGION), TABLE)
    for n in range(5):
        entry = ledger.claim(claim(f"f{n}", T0 + n))
    assert (entry.count, len(entry.members)) == (5, 3)
    # a re-delivered member already held is not counted again
    assert ledger.claim(claim("f1", T0 + 1)).count == 5


# --- send leases: one sender per window, sink and level -----------------------------------------


KEY = "ledger#D#1#p#0"


def lease(owner: str, now_ms: int = WALL_MS, *, level: int = 3) -> SendLease:
    return SendLease(KEY, "sns", level, owner, now_ms, now_ms + 120_000)


def state(ledger: FindingLedger, taken: SendLease) -> SendState:
    return ledger.begin_send(taken).state


def test_ledger_send_lease_goes_to_one_invocation_at_a_time(ledger: FindingLedger) -> None:
    ledger.claim(claim("f1", T0))
    assert state(ledger, lease("a")) is SendState.TAKEN
    assert state(ledger, lease("b")) is SendState.HELD
    assert state(ledger, lease("a")) is SendState.TAKEN  # Lambda's retry of the holder


def test_ledger_recorded_delivery_ends_the_lease(ledger: FindingLedger) -> None:
    ledger.claim(claim("f1", T0))
    assert state(ledger, lease("a")) is SendState.TAKEN
    ledger.mark_sent(KEY, "sns", 3)
    assert state(ledger, lease("b")) is SendState.SENT
    assert state(ledger, lease("a")) is SendState.SENT
    assert state(ledger, lease("b", level=2)) is SendState.SENT  # lower: never notified


def test_ledger_higher_level_takes_the_lease_once_and_names_the_level_before(
    ledger: FindingLedger,
) -> None:
    ledger.claim(claim("f1", T0))
    first = ledger.begin_send(lease("a", level=2))
    assert (first.state, first.previous) == (SendState.TAKEN, None)
    ledger.mark_sent(KEY, "sns", 2)
    escalation = ledger.begin_send(lease("b", level=4))
    assert (escalation.state, escalation.previous) == (SendState.TAKEN, 2)
    ledger.mark_sent(KEY, "sns", 4)
    assert state(ledger, lease("c", level=4)) is SendState.SENT
    assert state(ledger, lease("c", level=3)) is SendState.SENT


def test_ledger_released_or_expired_lease_can_be_taken(ledger: FindingLedger) -> None:
    ledger.claim(claim("f1", T0))
    assert state(ledger, lease("a")) is SendState.TAKEN
    ledger.release(lease("b"))  # not the holder: nothing changes
    assert state(ledger, lease("b")) is SendState.HELD
    ledger.release(lease("a"))
    assert state(ledger, lease("b")) is SendState.TAKEN
    # the holder died: its lease lapses at `until`
    assert state(ledger, lease("c", WALL_MS + 120_001)) is SendState.TAKEN


def test_ledger_lease_of_one_window_does_not_hold_another(ledger: FindingLedger) -> None:
    ledger.claim(claim("f1", T0))
    ledger.claim(claim("f3", T0 + 3600, key="ledger#D#1#p#3600"))
    assert state(ledger, lease("a")) is SendState.TAKEN
    other = SendLease("ledger#D#1#p#3600", "sns", 3, "b", WALL_MS, WALL_MS + 120_000)
    assert state(ledger, other) is SendState.TAKEN


@pytest.mark.parametrize("where", ["memory", "file"])
def test_sqlite_ledger_forgets_the_windows_that_started_before_a_time(
    where: str, tmp_path: Path
) -> None:
    """A replay's ledger is told when its event time has left windows behind: those that
    started before go, with their related ids and leases; the others stay whole. The keys are
    the dispatcher's own (delivery.window_of), whose last digits are the window's start."""
    ledger = SqliteLedger(":memory:" if where == "memory" else tmp_path / "state.sqlite")
    old, kept = (window_of(_finding(at), Settings()) for at in (T0, T0 + 2 * 3600))
    for window, at in ((old, T0), (kept, T0 + 2 * 3600)):
        ledger.claim(replace(claim("f", at, window.key), related=frozenset({"r"})))
        assert state(ledger, replace(lease("inv"), key=window.key)) is SendState.TAKEN

    assert ledger.forget_windows_before(old.start) == 0
    assert ledger.forget_windows_before(kept.start) == 1

    renewed = ledger.claim(claim("g", T0, old.key))  # a new window: f and "r" are gone
    assert (renewed.count, renewed.related) == (1, frozenset())
    assert ledger.claim(claim("g", T0 + 2 * 3600, kept.key)).count == 2
    assert ledger.claim(claim("h", T0 + 2 * 3600, kept.key)).related == {"r"}
    assert state(ledger, replace(lease("other"), key=old.key)) is SendState.TAKEN
    assert state(ledger, replace(lease("other"), key=kept.key)) is SendState.HELD


def _finding(epoch: int) -> Finding:
    moment = datetime.fromtimestamp(epoch, UTC)
    return Finding(
        id="f",
        detection_id="AWS.SSM.SendCommand",
        title="t",
        description="d",
        severity=Severity.HIGH,
        account_id="111122223333",
        region="us-east-1",
        principal=PrincipalRef(key="arn:aws:iam::111122223333:role/ops123", type="AssumedRole"),
        event_ids=(f"e-{epoch}",),
        first_seen=moment,
        last_seen=moment,
    )
