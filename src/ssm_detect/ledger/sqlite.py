"""The embedded ledger (SQLite file, or `:memory:` for one replay): each claim is one
`BEGIN IMMEDIATE` transaction, the same all-or-nothing step DynamoDB's conditional write is."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ssm_detect.ledger.base import LedgerEntry, SendLease, SendState, WindowClaim

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    pk TEXT PRIMARY KEY, anchor INTEGER NOT NULL, open_id TEXT NOT NULL,
    members TEXT NOT NULL, sent TEXT NOT NULL, created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS send_lease (
    pk TEXT NOT NULL, sink TEXT NOT NULL, owner TEXT NOT NULL, until_ms INTEGER NOT NULL,
    window TEXT NOT NULL, PRIMARY KEY (pk, sink)
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

    def claim(self, claim: WindowClaim) -> LedgerEntry:
        length = int(claim.window.total_seconds())
        return self._transaction(lambda: self._claim(claim, length))

    def _claim(self, claim: WindowClaim, length: int) -> LedgerEntry:
        row = self._db.execute(
            "SELECT anchor, open_id, members, sent, created FROM ledger WHERE pk = ?", (claim.key,)
        ).fetchone()
        if row is not None and abs(claim.event_epoch - row[0]) < length:
            members = frozenset(json.loads(row[2])) | {claim.member}
            self._db.execute(
                "UPDATE ledger SET members = ? WHERE pk = ?",
                (json.dumps(sorted(members)), claim.key),
            )
            return LedgerEntry(row[1], row[0], members, frozenset(json.loads(row[3])), row[4])
        if row is not None and row[0] >= claim.event_epoch + length:
            # Later than any window we still hold: deliver on its own, leave the ledger alone.
            return LedgerEntry(
                claim.finding_id,
                claim.event_epoch,
                frozenset({claim.member}),
                frozenset(),
                0,
                tracked=False,
            )
        self._db.execute(
            "INSERT OR REPLACE INTO ledger VALUES (?, ?, ?, ?, '[]', ?)",
            (
                claim.key,
                claim.event_epoch,
                claim.finding_id,
                json.dumps([claim.member]),
                claim.now_epoch,
            ),
        )
        return LedgerEntry(
            claim.finding_id,
            claim.event_epoch,
            frozenset({claim.member}),
            frozenset(),
            claim.now_epoch,
        )

    def begin_send(self, lease: SendLease) -> SendState:
        return self._transaction(lambda: self._begin_send(lease))

    def _begin_send(self, lease: SendLease) -> SendState:
        row = self._db.execute(
            "SELECT sent FROM ledger WHERE pk = ? AND open_id = ?", (lease.key, lease.open_id)
        ).fetchone()
        if row is None:
            return SendState.TAKEN  # the window is gone: send, there is nothing to record
        if lease.sink in json.loads(row[0]):
            return SendState.SENT
        held = self._db.execute(
            "SELECT 1 FROM send_lease WHERE pk = ? AND sink = ? AND window = ? AND until_ms >= ?"
            " AND owner <> ?",
            (lease.key, lease.sink, lease.open_id, lease.now_ms, lease.owner),
        ).fetchone()
        if held is not None:
            return SendState.HELD
        self._db.execute(
            "INSERT OR REPLACE INTO send_lease VALUES (?, ?, ?, ?, ?)",
            (lease.key, lease.sink, lease.owner, lease.until_ms, lease.open_id),
        )
        return SendState.TAKEN

    def mark_sent(self, key: str, open_id: str, sink: str) -> None:
        self._transaction(lambda: self._mark_sent(key, open_id, sink))

    def _mark_sent(self, key: str, open_id: str, sink: str) -> None:
        row = self._db.execute(
            "SELECT sent FROM ledger WHERE pk = ? AND open_id = ?", (key, open_id)
        ).fetchone()
        if row is not None:
            sent = sorted(set(json.loads(row[0])) | {sink})
            self._db.execute("UPDATE ledger SET sent = ? WHERE pk = ?", (json.dumps(sent), key))
            self._db.execute("DELETE FROM send_lease WHERE pk = ? AND sink = ?", (key, sink))

    def release(self, lease: SendLease) -> None:
        self._transaction(
            lambda: self._db.execute(
                "DELETE FROM send_lease WHERE pk = ? AND sink = ? AND owner = ? AND window = ?",
                (lease.key, lease.sink, lease.owner, lease.open_id),
            )
        )
