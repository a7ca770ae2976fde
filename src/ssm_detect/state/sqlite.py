"""A SQLite state store: state that persists across local runs (`--state PATH`).

Each union runs in one `BEGIN IMMEDIATE` transaction, so concurrent processes on the same file
serialise exactly as DynamoDB serialises updates to one item.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ssm_detect.state.base import StatePrune, StateSnapshot, StateUpdate

_SCHEMA = """
CREATE TABLE IF NOT EXISTS members (
    pk TEXT NOT NULL, attr TEXT NOT NULL, member TEXT NOT NULL,
    PRIMARY KEY (pk, attr, member)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS items (pk TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
"""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SqliteStateStore:
    def __init__(self, path: Path | str, clock: Callable[[], datetime] = _utc_now) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(path), timeout=30, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._drop_expired()

    def apply(self, update: StateUpdate) -> StateSnapshot:
        expires_at = int((self._clock() + update.retention).timestamp())
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if not self._refused(update):
                    self._db.executemany(
                        "INSERT OR IGNORE INTO members VALUES (?, ?, ?)",
                        [(update.key, a, m) for a, added in update.add.items() for m in added],
                    )
                    self._db.execute(
                        "INSERT INTO items VALUES (?, ?) ON CONFLICT(pk) DO UPDATE "
                        "SET expires_at = MAX(expires_at, excluded.expires_at)",
                        (update.key, expires_at),
                    )
                rows = self._db.execute(
                    "SELECT attr, member FROM members WHERE pk = ?", (update.key,)
                ).fetchall()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        snapshot: dict[str, set[str]] = {}
        for attr, member in rows:
            snapshot.setdefault(attr, set()).add(member)
        return {attr: frozenset(held) for attr, held in snapshot.items()}

    def _refused(self, update: StateUpdate) -> bool:
        """A limited set already holds its limit (base.StateUpdate); inside the transaction."""
        for attr, limit in update.limits.items():
            (held,) = self._db.execute(
                "SELECT COUNT(*) FROM members WHERE pk = ? AND attr = ?", (update.key, attr)
            ).fetchone()
            if held >= limit:
                return True
        return False

    def prune(self, prune: StatePrune) -> None:
        with self._lock:
            self._db.executemany(
                "DELETE FROM members WHERE pk = ? AND attr = ? AND member = ?",
                [(prune.key, a, m) for a, removed in prune.remove.items() for m in removed],
            )

    def close(self) -> None:
        self._db.close()

    def _drop_expired(self) -> None:
        """What DynamoDB's TTL does in the background, done when a state file is opened."""
        now = int(self._clock().timestamp())
        with self._lock:
            self._db.execute(
                "DELETE FROM members WHERE pk IN (SELECT pk FROM items WHERE expires_at < ?)",
                (now,),
            )
            self._db.execute("DELETE FROM items WHERE expires_at < ?", (now,))
