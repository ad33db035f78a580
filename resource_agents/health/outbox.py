"""A durable local outbox: SQLite in WAL mode with synchronous=FULL.

- `append` stores a record under a unique id; storing the same id again is a no-op,
  so a writer may retry. Once `append` returns, the record survives a crash of the
  process or of the machine.
- Records belong to a stream (`events` from the alert agent, `notifications` from the
  publisher) and get increasing sequence numbers that are never reused.
- Every reader ("subscriber") owns a cursor: the last sequence number it finished with.
  `advance` only moves it forward, durably, and can share a `transaction()` with what
  the reader writes, so a record it acknowledged is never handed out again, and one it
  read but did not acknowledge before a crash is handed out again (at-least-once).

Standard library only and light (no json, re, typing or dataclasses): the alert agent
imports this module on every Pacemaker event.
"""

from __future__ import annotations

import os
import sqlite3
import time

from hakit.resource_agents.health.constants import OUTBOX_PATH

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType

DEFAULT_PATH = OUTBOX_PATH
EVENTS = "events"
NOTIFICATIONS = "notifications"
SCHEMA_VERSION = 1
FILE_MODE = 0o660  # the alert agent runs as hacluster, the publisher as root (group haclient)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL DEFAULT '',
    node TEXT NOT NULL DEFAULT '',
    occurred REAL NOT NULL,
    recorded REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_stream ON records (stream, seq);
CREATE TABLE IF NOT EXISTS cursors (
    subscriber TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    updated REAL NOT NULL
);
"""
_COLUMNS = "seq, stream, event_id, kind, node, occurred, recorded, body"


class Record:
    """One stored record."""

    __slots__ = ("body", "event_id", "kind", "node", "occurred", "recorded", "seq", "stream")

    def __init__(
        self,
        seq: int,
        stream: str,
        event_id: str,
        kind: str,
        node: str,
        occurred: float,
        recorded: float,
        body: str,
    ) -> None:
        self.seq = seq
        self.stream = stream
        self.event_id = event_id
        self.kind = kind
        self.node = node
        self.occurred = occurred
        self.recorded = recorded
        self.body = body

    def __repr__(self) -> str:
        return f"Record({self.seq}, {self.stream}, {self.event_id!r}, {self.kind!r})"


class Outbox:
    """One connection to the outbox file, for one thread at a time."""

    def __init__(self, path: str = DEFAULT_PATH, *, timeout: float = 5.0) -> None:
        self.path = str(path)
        self.db = open_database(self.path, _SCHEMA, SCHEMA_VERSION, mode=FILE_MODE, timeout=timeout)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> Transaction:
        """`with outbox.transaction():` — one atomic, durable write (BEGIN IMMEDIATE)."""
        return Transaction(self.db)

    def append(
        self,
        event_id: str,
        body: str,
        *,
        stream: str = EVENTS,
        kind: str = "",
        node: str = "",
        occurred: float | None = None,
    ) -> int | None:
        """Store a record; its sequence number, or None when `event_id` is already stored."""
        now = time.time()
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO records (stream, event_id, kind, node, occurred, recorded,"
            " body) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (stream, event_id, kind, node, now if occurred is None else occurred, now, body),
        )
        return cursor.lastrowid if cursor.rowcount == 1 else None

    def read(
        self, stream: str, after: int, limit: int = 100, kinds: tuple[str, ...] = ()
    ) -> list[Record]:
        """Records of `stream` after sequence `after`, oldest first (`limit` -1: all),
        only those of `kinds` when given."""
        where = "stream = ? AND seq > ?"
        if kinds:
            where += f" AND kind IN ({','.join('?' * len(kinds))})"
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM records WHERE {where} ORDER BY seq LIMIT ?",  # noqa: S608
            (stream, after, *kinds, limit),
        ).fetchall()
        return [Record(*row) for row in rows]

    def find(self, event_id: str) -> Record | None:
        query = f"SELECT {_COLUMNS} FROM records WHERE event_id = ?"  # noqa: S608
        row = self.db.execute(query, (event_id,)).fetchone()
        return Record(*row) if row else None

    def last_seq(self, stream: str, *, recorded_before: float | None = None) -> int:
        """The highest sequence number of `stream` (0 when empty), optionally among the
        records stored before a time."""
        limit = float("inf") if recorded_before is None else recorded_before
        row = self.db.execute(
            "SELECT max(seq) FROM records WHERE stream = ? AND recorded < ?", (stream, limit)
        ).fetchone()
        return int(row[0] or 0)

    def cursor(self, subscriber: str) -> int | None:
        """The last sequence number `subscriber` acknowledged; None if it has no cursor."""
        row = self.db.execute(
            "SELECT position FROM cursors WHERE subscriber = ?", (subscriber,)
        ).fetchone()
        return int(row[0]) if row else None

    def advance(self, subscriber: str, seq: int) -> None:
        """Acknowledge everything up to `seq` for `subscriber` (never moves back)."""
        self.db.execute(
            "INSERT INTO cursors (subscriber, position, updated) VALUES (?, ?, ?) "
            "ON CONFLICT (subscriber) DO UPDATE SET position = max(position, excluded.position),"
            " updated = excluded.updated",
            (subscriber, seq, time.time()),
        )

    def subscribers(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT subscriber, position FROM cursors").fetchall())

    def forget(self, subscriber: str) -> None:
        self.db.execute("DELETE FROM cursors WHERE subscriber = ?", (subscriber,))

    def prune(
        self, stream: str, *, upto: int, recorded_before: float, kinds: tuple[str, ...] = ()
    ) -> int:
        """Delete records of `stream` (only `kinds`, when given) up to sequence `upto` (every
        reader is past them) and stored before a time; how many went."""
        where = "stream = ? AND seq <= ? AND recorded < ?"
        if kinds:
            where += f" AND kind IN ({','.join('?' * len(kinds))})"
        query = f"DELETE FROM records WHERE {where}"  # noqa: S608 — placeholders only
        return self.db.execute(query, (stream, upto, recorded_before, *kinds)).rowcount


class Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on an exception; nests as a no-op."""

    __slots__ = ("db", "outer")

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.outer = False

    def __enter__(self) -> sqlite3.Connection:
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self.outer = True
        return self.db

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.outer:
            return
        self.db.execute("ROLLBACK" if kind else "COMMIT")


def wake_address(path: str) -> bytes:
    """The publisher's abstract socket for the outbox at `path` (see waker.py)."""
    return ("\0hakit-publisher:" + os.path.abspath(path))[:107].encode()


def nudge(path: str) -> None:
    """Tell the publisher of `path` to look now (nothing when none listens)."""
    import _socket

    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
    except OSError:
        return
    try:
        sock.setblocking(False)
        sock.sendto(b"!", wake_address(path))
    except OSError:  # no publisher here, or its queue is full: it will poll
        pass
    finally:
        sock.close()


class StoreError(OSError):
    """A database path that cannot be used; str() names the path and why."""

    exit_code = 2  # hakit.ocf.exits.USAGE (not imported: the alert path stays light)


def open_database(
    path: str,
    schema: str,
    version: int,
    *,
    mode: int,
    timeout: float = 5.0,
    create: bool = True,
) -> sqlite3.Connection:
    """Connect in autocommit mode with WAL and synchronous=FULL; create the file with
    `mode` (unless `create` is false: readers never create) and the schema
    (`;`-separated statements) when `PRAGMA user_version` is below `version`. StoreError
    when the path is missing, not a database, or in a directory that does not exist."""
    if os.path.isdir(path):
        raise StoreError(f"{path}: a directory, not a database file")
    if not os.path.exists(path):
        if not create:
            raise StoreError(f"{path}: no such database (check the path)")
        _create_file(path, mode)
    # Serialized SQLite: a connection may pass between threads (never used by two at once).
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    deadline = time.monotonic() + timeout
    while True:
        try:
            _prepare(db, schema, version)
            return db
        except sqlite3.OperationalError as error:
            # Writers racing to create the file: switching a new file to WAL can fail at
            # once with "database is locked" (the busy timeout does not cover it).
            if "locked" not in str(error) or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(0.01)
        except sqlite3.DatabaseError as error:  # not a database (a mistyped path?)
            db.close()
            raise StoreError(f"{path}: {error} (a mistyped path?)") from None
        except BaseException:
            db.close()
            raise


def _prepare(db: sqlite3.Connection, schema: str, version: int) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    if db.execute("PRAGMA user_version").fetchone()[0] < version:
        with Transaction(db):
            for statement in schema.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={int(version)}")


def _create_file(path: str, mode: int) -> None:
    """Create the database file with `mode` (not the umask's): SQLite gives its WAL and
    shm files the database's mode."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
