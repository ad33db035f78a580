"""The URLs of an OpenStack configuration, parsed without urllib (which imports `re`):
oslo.messaging's transport_url and SQLAlchemy's database connection."""

from __future__ import annotations

DEFAULT_AMQP_PORT = 5672
DEFAULT_MYSQL_PORT = 3306


def unquote(text: str) -> str:
    """Percent-decoding (urllib.parse costs an `re` import)."""
    if "%" not in text:
        return text
    out, i, raw = bytearray(), 0, text.encode()
    while i < len(raw):
        pair = raw[i + 1 : i + 3]
        if raw[i] == 0x25 and len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair):
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode(errors="replace")


def host_port(text: str, default_port: int) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `host` → (host, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if port and not port.isdigit():
        raise ValueError(f"bad port {port!r}")
    return host or "localhost", int(port) if port else default_port


class Endpoint:
    """One host of a URL (credentials kept out of repr)."""

    __slots__ = ("host", "password", "port", "user")

    def __init__(self, host: str, port: int, user: str = "", password: str = "") -> None:
        self.host, self.port, self.user, self.password = host, port, user, password

    def __repr__(self) -> str:
        return f"{self.host}:{self.port}"


class TransportURL:
    """oslo.messaging's transport_url: driver://[user:pass@]host[:port][,...]/vhost[?query]."""

    def __init__(self, url: str) -> None:
        driver, sep, rest = url.partition("://")
        if not sep or not driver:
            raise ValueError("not driver://hosts/vhost")
        self.driver = driver
        rest = rest.partition("?")[0]
        at = rest.rfind("@")
        slash = rest.find("/", at + 1)
        netloc, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash + 1 :])
        self.vhost = unquote(path) or "/"
        default_port = DEFAULT_AMQP_PORT if driver.startswith(("rabbit", "amqp", "kombu")) else 0
        self.hosts: list[Endpoint] = []
        for item in netloc.split(","):
            creds, _, hostport = item.rpartition("@")
            user, _, password = creds.partition(":")
            host, port = host_port(hostport, default_port)
            self.hosts.append(Endpoint(host, port, unquote(user), unquote(password)))

    def __repr__(self) -> str:
        return f"{self.driver}://{','.join(map(repr, self.hosts))}/{self.vhost}"


class DatabaseURL:
    """An SQLAlchemy URL as OpenStack writes it: mysql[+driver]://u:p@host[:port]/db[?...]
    (also ?unix_socket=...) or sqlite:///relative, sqlite:////absolute."""

    def __init__(self, url: str) -> None:
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise ValueError("not a database URL")
        self.kind = scheme.partition("+")[0]
        rest, _, query = rest.partition("?")
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        self.path = ""
        self.endpoint = Endpoint("", 0)
        self.database = ""
        self.unix_socket = unquote(params.get("unix_socket", ""))
        self.charset = params.get("charset", "utf8")
        ssl_keys = ("ssl_ca", "ssl_cert", "ssl_key", "ssl_verify_cert", "ssl_verify_identity")
        self.ssl = {key: unquote(params[key]) for key in ssl_keys if params.get(key)}
        self.tls = bool(self.ssl)
        if self.kind == "sqlite":
            self.path = rest.removeprefix("/") if rest.startswith("/") else rest
            if not self.path:
                raise ValueError("sqlite URL without a file")
            return
        if self.kind not in ("mysql", "mariadb"):
            raise ValueError(f"unsupported database {self.kind!r} (mysql/mariadb or sqlite)")
        at = rest.rfind("@")
        slash = rest.find("/", at + 1)
        netloc, self.database = (rest, "") if slash < 0 else (rest[:slash], rest[slash + 1 :])
        creds, _, hostport = netloc.rpartition("@")
        user, _, password = creds.partition(":")
        host, port = host_port(hostport, DEFAULT_MYSQL_PORT)
        self.endpoint = Endpoint(host, port, unquote(user), unquote(password))

    def __repr__(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite {self.path}"
        where = self.unix_socket or repr(self.endpoint)
        return f"{self.kind} {where}/{self.database}"
