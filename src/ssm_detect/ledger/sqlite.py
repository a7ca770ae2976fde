"""The embedded ledger (SQLite file, or `:memory:` for one replay): each step is one
`BEGIN IMMEDIATE` transaction, the same all-or-nothing step DynamoDB's conditional write is.
The rules are those of `ledger/base.py`. Items do not expire on a clock here: a replay's clock
is its event time, so the replay asks (`forget_windows_before`) once its events have moved
past a window by the ledger's retention, as DynamoDB's TTL would have by then."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from ssm_detect.ledger.base import (
    LedgerEntry,
    Mark,
    SendLease,
    SendOutcome,
    SendState,
    WindowClaim,
)

_T = TypeVar("_T")

# The windows that started before a time: a window's start (epoch seconds) is the digits that
# end its key (delivery.window_of).
_STARTED_BEFORE = (
    "SELECT pk FROM ledger_window"
    " WHERE CAST(substr(pk, length(rtrim(pk, '0123456789')) + 1) AS INTEGER) < ?"
)
# A window with what hangs off it; the window goes last.
_FORGET = (
    "DELETE FROM ledger_related WHERE pk = ?",
    "DELETE FROM ledger_lease WHERE pk = ?",
    "DELETE FROM ledger_window WHERE pk = ?",
)

# Tables named apart from the earlier per-principal ledger, so an older state file still opens.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_window (
    pk TEXT PRIMARY KEY, window_id TEXT NOT NULL, members TEXT NOT NULL,
    notified TEXT NOT NULL, created INTEGER NOT NULL, clock INTEGER NOT NULL,
    lead_rank TEXT NOT NULL, lead BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_related (
    pk TEXT NOT NULL, related TEXT NOT NULL, PRIMARY KEY (pk, related)
);
CREATE TABLE IF NOT EXISTS ledger_lease (
    pk TEXT NOT NULL, sink TEXT NOT NULL, owner TEXT NOT NULL, until_ms INTEGER NOT NULL,
    level INTEGER NOT NULL, PRIMARY KEY (pk, sink)
);
"""


class SqliteLedger:
    def __init__(self, path: Path | str = ":memory:") -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(path), timeout=30, isolation_level=None, check_same_thread=False
        )
        self._db.executescript(_SCHEMA)

    def _transaction(self, step: Callable[[], _T]) -> _T:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = step()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return result

    def _row(self, key: str) -> LedgerEntry | None:
        row = self._db.execute(
            "SELECT window_id, members, notified, created, clock, lead_rank, lead"
            " FROM ledger_window WHERE pk = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        return LedgerEntry(
            window_id=row[0],
            members=frozenset(json.loads(row[1])),
            notified=dict(json.loads(row[2])),
            created_ms=row[3],
            clock_ms=row[4],
            lead_rank=row[5],
            lead=bytes(row[6]),
            related=frozenset(
                r
                for (r,) in self._db.execute(
                    "SELECT related FROM ledger_related WHERE pk = ?", (key,)
                )
            ),
        )

    def claim(self, claim: WindowClaim) -> LedgerEntry:
        return self._transaction(lambda: self._claim(claim))

    def _claim(self, claim: WindowClaim) -> LedgerEntry:
        held = self._row(claim.key)
        if held is None:
            entry = LedgerEntry(
                window_id=claim.window_id,
                members=frozenset({claim.member}),
                created_ms=claim.now_ms,
                clock_ms=claim.now_ms,
                lead_rank=claim.lead_rank,
                lead=claim.lead,
            )
        else:
            leads = claim.lead_rank < held.lead_rank
            entry = LedgerEntry(
                window_id=held.window_id,
                members=held.members | {claim.member},
                notified=held.notified,
                created_ms=held.created_ms,
                clock_ms=max(claim.now_ms, held.clock_ms + 1) + (1 if leads else 0),
                lead_rank=claim.lead_rank if leads else held.lead_rank,
                lead=claim.lead if leads else held.lead,
                related=held.related,
            )
        self._db.executemany(
            "INSERT OR IGNORE INTO ledger_related (pk, related) VALUES (?, ?)",
            [(claim.key, r) for r in sorted(claim.related)],
        )
        entry = replace(entry, related=entry.related | claim.related)
        self._db.execute(
            "INSERT OR REPLACE INTO ledger_window"
            " (pk, window_id, members, notified, created, clock, lead_rank, lead)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                claim.key,
                entry.window_id,
                json.dumps(sorted(entry.members)),
                json.dumps(entry.notified),
                entry.created_ms,
                entry.clock_ms,
                entry.lead_rank,
                entry.lead,
            ),
        )
        return entry

    def begin_send(self, lease: SendLease) -> SendOutcome:
        return self._transaction(lambda: self._begin_send(lease))

    def _begin_send(self, lease: SendLease) -> SendOutcome:
        held = self._row(lease.key)
        if held is None:
            return SendOutcome(SendState.TAKEN)
        previous = held.notified.get(lease.sink)
        if previous is not None and previous >= lease.level:
            return SendOutcome(SendState.SENT, previous)
        other = self._db.execute(
            "SELECT 1 FROM ledger_lease WHERE pk = ? AND sink = ? AND until_ms >= ? AND owner <> ?",
            (lease.key, lease.sink, lease.now_ms, lease.owner),
        ).fetchone()
        if other is not None:
            return SendOutcome(SendState.HELD, previous)
        self._db.execute(
            "INSERT OR REPLACE INTO ledger_lease VALUES (?, ?, ?, ?, ?)",
            (lease.key, lease.sink, lease.owner, lease.until_ms, lease.level),
        )
        return SendOutcome(SendState.TAKEN, previous)

    def mark_sent(self, key: str, sink: str, level: int) -> None:
        self._transaction(lambda: self._mark_sent(key, sink, level))

    def mark_all_sent(self, marks: Sequence[Mark]) -> None:
        def step() -> None:
            for mark in marks:
                self._mark_sent(mark.key, mark.sink, mark.level)

        self._transaction(step)

    def _mark_sent(self, key: str, sink: str, level: int) -> None:
        held = self._row(key)
        if held is None:
            return
        if held.notified.get(sink, -1) < level:
            notified = held.notified | {sink: level}
            self._db.execute(
                "UPDATE ledger_window SET notified = ? WHERE pk = ?", (json.dumps(notified), key)
            )
        self._db.execute("DELETE FROM ledger_lease WHERE pk = ? AND sink = ?", (key, sink))

    def forget_windows_before(self, start: int) -> int:
        """Drop the windows that started before `start` (epoch seconds), with their related
        ids and leases; returns how many. What a replay calls as its event time moves on."""

        def step() -> int:
            windows = self._db.execute(_STARTED_BEFORE, (start,)).fetchall()
            for statement in _FORGET:
                self._db.executemany(statement, windows)
            return len(windows)

        return self._transaction(step)

    def release(self, lease: SendLease) -> None:
        self._transaction(
            lambda: self._db.execute(
                "DELETE FROM ledger_lease WHERE pk = ? AND sink = ? AND owner = ? AND level = ?",
                (lease.key, lease.sink, lease.owner, lease.level),
            )
        )
