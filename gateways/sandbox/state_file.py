"""Write-through persistence of the sandbox processor's state in a small SQLite file.

Every sqlite3 call runs in a worker thread (`anyio.to_thread.run_sync`), never on the event loop. A
write is one transaction committed before the processor answers, so a server killed with SIGKILL finds
on restart every change it reported. Card numbers and CVCs never reach this file. `event_acks` lists
the events a webhook endpoint acknowledged, so a restarted deliverer sends only the others. Callers
serialize access (the processor's lock); this class does no locking of its own.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import anyio.to_thread

from gateways.sandbox.errors import SandboxUnavailable
from gateways.sandbox.objects import JsonDict

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS event_acks (event_id TEXT PRIMARY KEY);
"""


@dataclass(frozen=True, slots=True)
class StoredState:
    objects: list[tuple[str, JsonDict]]  # (kind, body) in first-written order
    events: list[JsonDict]
    clock_offset: int
    acknowledged: frozenset[str] = frozenset()  # ids of events a webhook endpoint answered 2xx


@dataclass(slots=True)
class StateWrite:
    objects: list[tuple[str, str, JsonDict]] = field(default_factory=list)  # (kind, id, body)
    events: list[JsonDict] = field(default_factory=list)
    clock_offset: int | None = None
    acknowledged: list[str] = field(default_factory=list)  # event ids


class SandboxStateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    async def load(self) -> StoredState:
        """Open (creating if needed) the file and read everything in it."""
        try:
            return await anyio.to_thread.run_sync(self._load)
        except (sqlite3.Error, OSError, ValueError) as exc:
            raise SandboxUnavailable(f"the sandbox state file could not be read: {exc}") from exc

    async def write(self, change: StateWrite) -> None:
        try:
            await anyio.to_thread.run_sync(self._write, change)
        except (sqlite3.Error, OSError) as exc:
            raise SandboxUnavailable(f"the sandbox state file could not be written: {exc}") from exc

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await anyio.to_thread.run_sync(connection.close)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Worker threads differ from call to call; the processor's lock makes the use sequential.
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.executescript(_SCHEMA)
            self._connection = connection
        return self._connection

    def _load(self) -> StoredState:
        connection = self._connect()
        objects = [
            (kind, _decode(body)) for kind, body in connection.execute("SELECT kind, body FROM objects ORDER BY rowid")
        ]
        events = [_decode(body) for (body,) in connection.execute("SELECT body FROM events ORDER BY seq")]
        row = connection.execute("SELECT value FROM settings WHERE name = 'clock_offset'").fetchone()
        acknowledged = frozenset(str(event_id) for (event_id,) in connection.execute("SELECT event_id FROM event_acks"))
        return StoredState(
            objects=objects, events=events, clock_offset=int(row[0]) if row else 0, acknowledged=acknowledged
        )

    def _write(self, change: StateWrite) -> None:
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            # An upsert keeps the row's rowid, so loading returns objects in creation order.
            connection.executemany(
                "INSERT INTO objects (kind, id, body) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
                [(kind, object_id, json.dumps(body)) for kind, object_id, body in change.objects],
            )
            connection.executemany(
                "INSERT INTO events (body) VALUES (?)", [(json.dumps(event),) for event in change.events]
            )
            if change.clock_offset is not None:
                connection.execute(
                    "INSERT INTO settings (name, value) VALUES ('clock_offset', ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (change.clock_offset,),
                )
            connection.executemany(
                "INSERT INTO event_acks (event_id) VALUES (?) ON CONFLICT (event_id) DO NOTHING",
                [(event_id,) for event_id in change.acknowledged],
            )
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


def _decode(body: str) -> JsonDict:
    value = json.loads(body)
    if not isinstance(value, dict):
        raise ValueError("a stored row is not a JSON object")
    return {str(key): item for key, item in value.items()}
