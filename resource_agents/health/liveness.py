"""What ocf:hakit:publisher checks of its daemon: that a process of its tree holds the
outbox open, that the outbox can be read, and that its API answers. Standard library only
and light: the agent's monitor imports it."""

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


def api_problem(
    pid: int, host: str, port: int, timeout: float, token: str | None, *, tls: bool
) -> str | None:
    """None when `pid`'s tree listens on `port` and answers HTTP there — with `token`, 200
    to an authenticated GET of the subscriptions — else why not."""
    from hakit.resource_agents.openstack.probes import http_problem

    problem = http_problem(pid, port, timeout)
    if problem is not None or token is None:
        return problem
    import http.client

    connection: http.client.HTTPConnection
    if tls:  # its own API on this node: the channel, not the name
        import ssl

        unverified = ssl._create_unverified_context()  # noqa: S323
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=unverified)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(
            "GET", "/vnffm/v1/subscriptions", headers={"Authorization": f"Bearer {token}"}
        )
        reply = connection.getresponse()
        reply.read()
    except (OSError, http.client.HTTPException) as error:
        return f"the API on {host}:{port} did not answer an authenticated request: {error}"
    finally:
        connection.close()
    if reply.status != 200:
        return f"the API on {host}:{port} answered HTTP {reply.status} with the monitor's token"
    return None
