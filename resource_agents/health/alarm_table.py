"""Open alarms of one health source (routers, capacity) as JSON rows next to the outbox,
written in the transaction that stores their notifications, so that a new leader
carries them on and clears them by their ids."""

from __future__ import annotations

import json
import sqlite3
from typing import Any


class AlarmTable:
    """key → an open alarm's state (a JSON object) in table `name`."""

    def __init__(self, db: sqlite3.Connection, name: str) -> None:
        if not name.isidentifier():
            raise ValueError(f"{name!r} is not a table name")
        self.name = name
        db.execute(f"CREATE TABLE IF NOT EXISTS {name} (key TEXT PRIMARY KEY, state TEXT NOT NULL)")

    def read(self, db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
        rows = db.execute(f"SELECT key, state FROM {self.name} ORDER BY key")  # noqa: S608
        return {key: json.loads(state) for key, state in rows}

    def write(
        self,
        db: sqlite3.Connection,
        before: dict[str, dict[str, Any]],
        after: dict[str, dict[str, Any]],
    ) -> None:
        """Make the table hold `after` (rows that did not change are not written)."""
        for key in before.keys() - after.keys():
            db.execute(f"DELETE FROM {self.name} WHERE key = ?", (key,))  # noqa: S608
        for key, state in after.items():
            if state != before.get(key):
                db.execute(
                    f"INSERT OR REPLACE INTO {self.name} (key, state) VALUES (?, ?)",  # noqa: S608
                    (key, json.dumps(state, sort_keys=True)),
                )
