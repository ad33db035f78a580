"""What ocf:hakit:publisher checks of its daemon: that a process of its tree holds the
outbox open, and that the outbox can be read. Standard library only and light: the
agent's monitor imports it."""

from __future__ import annotations

import os

from hakit.ocf import proc


def readonly_uri(path: str) -> str:
    """An SQLite URI that opens `path` read-only (a check or a scrape never creates it)."""
    return "file:" + path.replace("%", "%25").replace("?", "%3f").replace("#", "%23") + "?mode=ro"


def holds_open(pid: int, path: str) -> bool:
    """Whether a process of `pid`'s tree has the file now at `path` open (same inode)."""
    try:
        wanted = os.stat(path)
    except OSError:
        return False
    for member in proc.tree(pid):
        try:
            fds = os.listdir(f"/proc/{member}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                held = os.stat(f"/proc/{member}/fd/{fd}")
            except OSError:
                continue
            if (held.st_dev, held.st_ino) == (wanted.st_dev, wanted.st_ino):
                return True
    return False


def outbox_problem(
    path: str, timeout: float, query: str = "SELECT max(seq) FROM records"
) -> str | None:
    """Why the outbox cannot be read (opened read-only: a check never creates it), or None."""
    import sqlite3

    try:
        db = sqlite3.connect(readonly_uri(path), uri=True, timeout=timeout)
        try:
            db.execute(query).fetchone()
        finally:
            db.close()
    except sqlite3.Error as error:
        return f"outbox {path} is not readable: {error}"
    return None
