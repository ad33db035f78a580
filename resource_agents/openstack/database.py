"""The services' database, read-only: one query at a time through Debian's
python3-pymysql (imported only when a monitor needs it, without its heavy optional
imports), or sqlite3; the `services` heartbeats measured with the database's clock."""

from __future__ import annotations

import sys

from hakit.ocf import OCFError, OCFExit
from hakit.ocf._typing import TYPE_CHECKING
from hakit.resource_agents.openstack.config import DEBIAN_DIST_PACKAGES

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import ModuleType
    from typing import Any

    from hakit.resource_agents.openstack.urls import DatabaseURL, Endpoint
else:
    ModuleType = type(sys)  # `types` is not imported yet at depth 0


class DatabaseError(Exception):
    """`unreachable`: the server did not answer (a dependency problem), else a
    configuration problem (credentials, wrong database, missing table)."""

    def __init__(self, message: str, *, unreachable: bool) -> None:
        super().__init__(message)
        self.unreachable = unreachable


UNREACHABLE_MYSQL_ERRORS = frozenset({2002, 2003, 2005, 2006, 2013, 2055})


#: Optional imports of pymysql kept out (~8 ms per monitor): `cryptography`, needed only
#: for the RSA exchange of MySQL 8's sha256/caching_sha2 full authentication (`_connect`
#: loads it if a server asks); `_hashlib`, OpenSSL's digests (hashlib falls back to its
#: built-in sha1/sha256, all the authentication needs); `getpass`, for a default user
#: (`_user` supplies it when a URL names none). `ssl` too, unless the URL asks for TLS.
BLOCKED_IMPORTS = ("cryptography", "_hashlib", "getpass")
#: Imported by pymysql only to format a failed connection's traceback: loaded then.
DEFERRED_IMPORTS = ("traceback",)


class _Deferred(ModuleType):
    """A module that imports the real one on first use of an attribute."""

    def __getattr__(self, name: str) -> Any:
        import importlib

        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def load_pymysql(tls: bool = False) -> Any:
    """Debian's python3-pymysql, imported only when a monitor needs the database (agents
    run as `python3 -IS`, so dist-packages is added here, last), without the optional
    imports it can do without (BLOCKED_IMPORTS, DEFERRED_IMPORTS, `ssl` unless `tls`)."""
    import importlib

    if DEBIAN_DIST_PACKAGES not in sys.path:
        sys.path.append(DEBIAN_DIST_PACKAGES)
    if "pymysql" in sys.modules:
        return sys.modules["pymysql"]
    names = (*BLOCKED_IMPORTS, *(() if tls else ("ssl",)))
    blocked = [name for name in names if name not in sys.modules]
    deferred = [name for name in DEFERRED_IMPORTS if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    for name in deferred:
        sys.modules[name] = _Deferred(name)
    try:
        return importlib.import_module("pymysql")
    except ImportError:
        raise OCFError(
            OCFExit.ERR_INSTALLED, "python3-pymysql is not installed (apt install python3-pymysql)"
        ) from None
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
        for name in deferred:
            if isinstance(sys.modules.get(name), _Deferred):
                del sys.modules[name]


def _user(endpoint: Endpoint) -> str | None:
    """The URL's user, else the process's (what pymysql would default to)."""
    if endpoint.user:
        return endpoint.user
    try:
        import getpass

        return getpass.getuser()
    except (ImportError, KeyError, OSError):
        return None


def _connect(pymysql: Any, **options: Any) -> Any:
    try:
        return pymysql.connect(**options)
    except RuntimeError as error:  # the server wants RSA: load cryptography after all
        if "cryptography" not in str(error):
            raise
        import importlib

        importlib.reload(pymysql._auth)
        return pymysql.connect(**options)


def query(
    url: DatabaseURL, sql: str, args: Sequence[object], timeout: float
) -> list[tuple[Any, ...]]:
    """Run one query (`%s` placeholders) and return its rows; raise DatabaseError."""
    if url.kind == "sqlite":
        import sqlite3

        try:
            database = sqlite3.connect(f"file:{url.path}?mode=ro", uri=True, timeout=timeout)
            try:
                return list(database.execute(sql.replace("%s", "?"), tuple(args)))
            finally:
                database.close()
        except sqlite3.Error as error:
            raise DatabaseError(f"{url}: {error}", unreachable=False) from None
    pymysql = load_pymysql(tls=url.tls)
    endpoint = url.endpoint
    timeout = max(timeout, 0.5)
    try:
        conn = _connect(
            pymysql,
            host=endpoint.host,
            port=endpoint.port,
            user=_user(endpoint),
            password=endpoint.password,
            database=url.database or None,
            unix_socket=url.unix_socket or None,
            charset=url.charset,
            autocommit=None,  # the server's (on): no SET AUTOCOMMIT round trip
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
            **url.ssl,
        )
    except pymysql.err.MySQLError as error:
        code = error.args[0] if error.args else 0
        raise DatabaseError(
            _mysql_message(url, error), unreachable=code in UNREACHABLE_MYSQL_ERRORS
        ) from None
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, tuple(args))
            return list(cursor.fetchall())
    except pymysql.err.MySQLError as error:
        code = error.args[0] if error.args else 0
        raise DatabaseError(
            _mysql_message(url, error), unreachable=code in UNREACHABLE_MYSQL_ERRORS
        ) from None
    finally:
        conn.close()


def _mysql_message(url: DatabaseURL, error: BaseException) -> str:
    text = str(error.args[1]) if len(error.args) > 1 else str(error)
    return f"database {url}: {' '.join(text.split())}"


def database_now(url: DatabaseURL, timeout: float) -> str:
    """The database's UTC time, as it compares with updated_at."""
    sql = "SELECT datetime('now')" if url.kind == "sqlite" else "SELECT UTC_TIMESTAMP()"
    return str(query(url, sql, (), timeout)[0][0])


def heartbeat_query(
    url: DatabaseURL, binary: str, hosts: Sequence[str], since: str
) -> tuple[str, tuple[object, ...]]:
    """SQL and arguments for `heartbeats`."""
    marks = ", ".join(["%s"] * len(hosts))
    last = "COALESCE(updated_at, created_at)"
    if url.kind == "sqlite":
        age = f"CAST((julianday('now') - julianday({last})) * 86400 AS INTEGER)"
    else:
        age = f"TIMESTAMPDIFF(SECOND, {last}, UTC_TIMESTAMP())"
    sql = (
        f"SELECT host, {age}, updated_at >= %s FROM services "  # noqa: S608 — values bound
        f"WHERE deleted = 0 AND `binary` = %s AND host IN ({marks})"
    )
    return sql, (since, binary, *hosts)


def heartbeat_rows(rows: Sequence[tuple[Any, ...]]) -> dict[str, tuple[float | None, bool]]:
    return {str(r[0]): (None if r[1] is None else float(r[1]), bool(r[2] or 0)) for r in rows}


def heartbeats(
    url: DatabaseURL, binary: str, hosts: Sequence[str], since: str, timeout: float
) -> dict[str, tuple[float | None, bool]]:
    """{host: (age in seconds by the database clock, heartbeat at or after `since`)} for
    the services rows that exist. The age counts from the creation of a row that has
    not reported yet (as nova's servicegroup does); "since" needs a real report."""
    sql, args = heartbeat_query(url, binary, hosts, since)
    return heartbeat_rows(query(url, sql, args, timeout))
