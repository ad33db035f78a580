"""What differs between the agents (`Profile`) and what an action knows about the
service (`Facts`: its configuration, parsed once per action)."""

from __future__ import annotations

import os

from hakit.ocf import Context, OCFError, OCFExit
from hakit.ocf._typing import TYPE_CHECKING
from hakit.resource_agents.openstack.config import option, read_config
from hakit.resource_agents.openstack.parameters import (
    BROKER,
    HOST,
    PORT,
    QUEUES,
    SERVICE_DOWN_TIME,
    binary_param,
    config_param,
)
from hakit.resource_agents.openstack.urls import DatabaseURL, TransportURL

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from hakit.ocf import Parameter

    Hook = Callable[[Context, "Facts"], None]


class Profile:
    """What differs between the OpenStack agents."""

    def __init__(
        self,
        *,
        name: str,
        shortdesc: str,
        longdesc: str,
        binary: str | None,
        config: str | None,
        kind: str | Callable[[str], str] = "rpc",
        service_binary: Callable[[Facts], str | None] | None = None,
        rows: Callable[[Facts], list[str]] | None = None,
        queues: Callable[[Facts], list[str]] | None = None,
        extra_parameters: Sequence[Parameter[Any]] = (),
        validate: Hook | None = None,
        notify: Callable[[Context], int] | None = None,
        deep_check: Callable[[Context], str | None] | None = None,
        requires_transport: bool = True,
        stop_timeout: float = 60,
        start_timeout: float = 120,
    ) -> None:
        self.name = name
        self.shortdesc = shortdesc
        self.longdesc = longdesc
        self.binary = binary_param(binary)
        self.config = config_param(config)
        #: "rpc" (broker + heartbeat) or "console" (HTTP + token database), or a function
        #: of the program's name
        self.kind = kind
        self.service_binary = service_binary
        self.rows = rows
        self.queues = queues
        self.extra_parameters = list(extra_parameters)
        self.validate = validate
        self.notify = notify
        #: at depth 20: a problem that degrades (190) the instance, e.g. refused credentials
        self.deep_check = deep_check
        self.requires_transport = requires_transport
        self.stop_timeout = stop_timeout
        self.start_timeout = start_timeout


class Facts:
    """The configuration as the service will see it, parsed once per action."""

    def __init__(self, ctx: Context, profile: Profile) -> None:
        self.ctx = ctx
        self.profile = profile
        self.files = ctx.params[profile.config]
        if not self.files:
            raise OCFError(OCFExit.ERR_CONFIGURED, "parameter config names no file")
        self.config = read_config(self.files)
        self.binary_path = ctx.params[profile.binary]
        self.program = os.path.basename(self.binary_path)
        self.kind = profile.kind if isinstance(profile.kind, str) else profile.kind(self.program)
        self.clone_max = ctx.clone.max if ctx.clone is not None else 1
        self.node = ctx.node or os.uname().nodename
        self.host = self._host()
        self.transport = self._url("DEFAULT", "transport_url", TransportURL)
        self.database = self._url("database", "connection", DatabaseURL)
        configured = option(self.config, "DEFAULT", "service_down_time", "60")
        override = ctx.params.get(SERVICE_DOWN_TIME)
        try:
            self.service_down_time = override or int(configured)
        except ValueError:
            raise OCFError(
                OCFExit.ERR_CONFIGURED,
                f"[DEFAULT] service_down_time={configured!r} is not a number",
            ) from None
        self.uses_broker = (
            self.kind == "rpc"
            and self.transport is not None
            and ctx.params.get(BROKER) is not False
        )
        self.http_port = console_port(self) if self.kind == "console" else ctx.params.get(PORT)
        secrets = [e.password for e in self.transport.hosts] if self.transport else []
        if self.database is not None:
            secrets.append(self.database.endpoint.password)
        ctx.log.add_secrets(secrets)

    def _host(self) -> str:
        explicit = self.ctx.params.get(HOST)
        if explicit:
            return explicit
        if self.clone_max > 1:
            return self.node
        return option(self.config, "DEFAULT", "host") or self.node

    def _url(self, section: str, name: str, parse: Callable[[str], Any]) -> Any:
        text = option(self.config, section, name)
        if not text:
            return None
        try:
            return parse(text)
        except ValueError as error:
            raise OCFError(
                OCFExit.ERR_CONFIGURED, f"[{section}] {name} in {' '.join(self.files)}: {error}"
            ) from None

    @property
    def service_binary(self) -> str | None:
        return self.profile.service_binary(self) if self.profile.service_binary else None

    @property
    def rows(self) -> list[str]:
        """The `services` rows (host column) this instance heartbeats in."""
        return self.profile.rows(self) if self.profile.rows else []

    @property
    def heartbeat(self) -> bool:
        return self.service_binary is not None and bool(self.rows)

    def queue_names(self) -> list[str]:
        configured = self.ctx.params.get(QUEUES)
        if configured:
            return [q.replace("{host}", self.host) for q in configured]
        return self.profile.queues(self) if self.profile.queues else []


def console_port(facts: Facts) -> int:
    """The port a console proxy serves: the `port` parameter, else its configuration."""
    sections = {
        "nova-novncproxy": ("vnc", "novncproxy_port", 6080),
        "nova-serialproxy": ("serial_console", "serialproxy_port", 6083),
        "nova-spicehtml5proxy": ("spice", "html5proxy_port", 6082),
    }
    section, key, default = sections.get(facts.program, ("vnc", "novncproxy_port", 6080))
    configured = option(facts.config, section, key, str(default))
    return facts.ctx.params.get(PORT) or (int(configured) if configured.isdigit() else default)
