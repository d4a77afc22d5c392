"""The sandbox processor's state in a small SQLite file, shared by every process that opens it.

`payql serve` and `payql worker` both open the same file; it, not either process's memory, is the
truth. Every write transaction bumps a version (the `version` row of `settings`) and stamps the rows
it writes with it, so a process that last saw version `v` catches up by reading the rows stamped
after `v`, and learns that nothing changed from that one row. Writers take the file's write lock
first (`BEGIN IMMEDIATE`), so two processes never interleave their read-check-write sequences.

Every method here blocks: the caller (`SandboxState`) runs them in a worker thread, one at a time,
never on the event loop. A write is committed before the processor answers, so a server killed with
SIGKILL finds on restart every change it reported: in WAL mode a commit is in the operating system's
hands once written, and synchronous=NORMAL only skips the fsync that would also survive a power cut
(a development gateway's state needs no more; FULL made every call several times slower). Card numbers and CVCs never
reach this file. `event_acks` lists the events a webhook endpoint acknowledged.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

from gateways.sandbox.processor.objects import JsonDict

# Seconds a writer waits for another process's write transaction before giving up (SandboxUnavailable).
BUSY_TIMEOUT = 15.0

_TABLES = (
    "CREATE TABLE IF NOT EXISTS objects ("
    " kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (kind, id))",
    "CREATE TABLE IF NOT EXISTS events ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS event_acks (event_id TEXT PRIMARY KEY, version INTEGER NOT NULL DEFAULT 0)",
)
# Files written before versions existed: their rows all count as version 0, which a first load reads.
_ADD_VERSION = {
    "objects": "ALTER TABLE objects ADD COLUMN version INTEGER NOT NULL DEFAULT 0",
    "events": "ALTER TABLE events ADD COLUMN version INTEGER NOT NULL DEFAULT 0",
    "event_acks": "ALTER TABLE event_acks ADD COLUMN version INTEGER NOT NULL DEFAULT 0",
}
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS objects_by_version ON objects (version)",
    "CREATE INDEX IF NOT EXISTS events_by_version ON events (version)",
    "CREATE INDEX IF NOT EXISTS event_acks_by_version ON event_acks (version)",
)
_READ_VERSION = "SELECT value FROM settings WHERE name = 'version'"
_FULL_QUERIES = (
    "SELECT kind, body FROM objects WHERE version > ? ORDER BY rowid",
    "SELECT body FROM events WHERE version > ? ORDER BY seq",
    "SELECT event_id FROM event_acks WHERE version > ?",
)
_DELTA_QUERIES = (
    "SELECT kind, body FROM objects INDEXED BY objects_by_version WHERE version > ? ORDER BY rowid",
    "SELECT body FROM events INDEXED BY events_by_version WHERE version > ? ORDER BY seq",
    "SELECT event_id FROM event_acks INDEXED BY event_acks_by_version WHERE version > ?",
)


@dataclass(frozen=True, slots=True)
class StoredState:
    """What the file holds beyond some version: every row stamped later, plus the current settings."""

    version: int
    objects: list[tuple[str, JsonDict]]  # (kind, body) in first-written order
    events: list[JsonDict]  # in commit order
    clock_offset: int
    acknowledged: frozenset[str] = frozenset()  # ids of events a webhook endpoint answered 2xx


@dataclass(slots=True)
class StateWrite:
    objects: list[tuple[str, str, JsonDict]] = field(default_factory=list)  # (kind, id, body)
    events: list[JsonDict] = field(default_factory=list)
    clock_offset: int | None = None
    acknowledged: list[str] = field(default_factory=list)  # event ids


class SandboxStateFile:
    """One persistent connection to the file. Not thread-safe: the caller serializes every use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    def version(self) -> int:
        """The version of the last committed write (0 for a file never written since versions exist)."""
        rows = self._connect().execute(_READ_VERSION).fetchall()  # fetchall: no statement stays open
        return int(rows[0][0]) if rows else 0

    def read_since(self, since: int) -> StoredState:
        """Everything written after version `since` (all of it for -1), read from one snapshot.

        Inside a write transaction it reads there; otherwise it opens a read transaction of its own.
        """
        connection = self._connect()
        own_transaction = not connection.in_transaction
        if own_transaction:
            connection.execute("BEGIN")
        # A catch-up reads through the version indexes (else the planner scans whole tables to skip a sort).
        queries = _DELTA_QUERIES if since >= 0 else _FULL_QUERIES
        try:
            version = self.version()
            objects = [(kind, _decode(body)) for kind, body in connection.execute(queries[0], (since,)).fetchall()]
            events = [_decode(body) for (body,) in connection.execute(queries[1], (since,)).fetchall()]
            acknowledged = frozenset(str(event_id) for (event_id,) in connection.execute(queries[2], (since,)))
            rows = connection.execute("SELECT value FROM settings WHERE name = 'clock_offset'").fetchall()
        finally:
            if own_transaction:
                connection.execute("COMMIT")
        return StoredState(
            version=version,
            objects=objects,
            events=events,
            clock_offset=int(rows[0][0]) if rows else 0,
            acknowledged=acknowledged,
        )

    def begin_write(self) -> None:
        """Take the file's write lock (waiting up to BUSY_TIMEOUT for another process to release it)."""
        self._connect().execute("BEGIN IMMEDIATE")

    def write(self, change: StateWrite, version: int) -> None:
        """Write `change` stamped with `version`, inside the transaction `begin_write` opened."""
        connection = self._connect()
        if not connection.in_transaction:
            raise RuntimeError("write() needs the write lock: call begin_write() first")
        # An upsert keeps the row's rowid, so loading returns objects in creation order.
        connection.executemany(
            "INSERT INTO objects (kind, id, body, version) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, version = excluded.version",
            [(kind, object_id, json.dumps(body), version) for kind, object_id, body in change.objects],
        )
        connection.executemany(
            "INSERT INTO events (body, version) VALUES (?, ?)",
            [(json.dumps(event), version) for event in change.events],
        )
        settings = [("version", version)]
        if change.clock_offset is not None:
            settings.append(("clock_offset", change.clock_offset))
        connection.executemany(
            "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            settings,
        )
        connection.executemany(
            "INSERT INTO event_acks (event_id, version) VALUES (?, ?) ON CONFLICT (event_id) DO NOTHING",
            [(event_id, version) for event_id in change.acknowledged],
        )

    def commit(self) -> None:
        self._connect().execute("COMMIT")

    def rollback(self) -> None:
        """End the open transaction, if any, changing nothing (also after a failed statement)."""
        connection = self._connection
        if connection is not None and connection.in_transaction:
            connection.execute("ROLLBACK")

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Worker threads differ from call to call; the caller makes the use sequential.
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
            try:
                _use_wal(connection)
                connection.execute("PRAGMA synchronous=NORMAL")
                _create_schema(connection)
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection


def _is_locked(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


# Switching a file to WAL needs it alone for a moment, and SQLite answers "locked" at once instead of
# waiting when another process is switching it too (two processes opening an old file together).
@retry(
    retry=retry_if_exception(_is_locked),
    wait=wait_exponential(multiplier=0.01, max=0.5),
    stop=stop_after_delay(BUSY_TIMEOUT),
    reraise=True,
)
def _use_wal(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA journal_mode=WAL").fetchall()


def _create_schema(connection: sqlite3.Connection) -> None:
    # Under the write lock: two processes opening an old file at once must not both add the column.
    connection.execute("BEGIN IMMEDIATE")
    try:
        for statement in _TABLES:
            connection.execute(statement)
        for table, add_version in _ADD_VERSION.items():
            columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})").fetchall()}
            if "version" not in columns:
                connection.execute(add_version)
        for statement in _INDEXES:
            connection.execute(statement)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _decode(body: str) -> JsonDict:
    value = json.loads(body)
    if not isinstance(value, dict):
        raise ValueError("a stored row is not a JSON object")
    return {str(key): item for key, item in value.items()}
