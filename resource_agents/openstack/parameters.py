"""The OCF parameters every hakit OpenStack agent declares (and a few that some add)."""

from __future__ import annotations

from hakit.ocf import (
    BooleanParam,
    IntegerParam,
    ListParam,
    PathParam,
    PortParam,
    SecretParam,
    StringParam,
)
from hakit.ocf._typing import TYPE_CHECKING
from hakit.resource_agents import service

if TYPE_CHECKING:
    from typing import Any

    from hakit.ocf import Parameter


def binary_param(default: str | None) -> PathParam:
    return PathParam(
        "binary",
        "Program to run",
        "The service's executable (an absolute path, e.g. in a "
        "venv, or a name in PATH). It must stay in the foreground.",
        default=default,
        required=default is None,
        executable=True,
    )


def config_param(default: str | None) -> ListParam:
    return ListParam(
        "config",
        "Configuration files",
        "oslo.config files, in order (later ones override "
        "earlier ones), passed as --config-file. The agent reads them too (transport_url, "
        "[database] connection, host, service_down_time) without importing oslo.",
        default=default,
        required=default is None,
    )


HOST = StringParam(
    "host",
    "Service host name",
    "The service's `host` (the services-table key and RPC "
    "queue suffix), passed in a generated last --config-file. Empty: for a clone, the "
    "cluster node name (each instance must be distinct); otherwise [DEFAULT] host from "
    "the configuration, else the node name.",
    default="",
)
SERVICE_DOWN_TIME = IntegerParam(
    "service_down_time",
    "Heartbeat age that means hung (s)",
    "A heartbeat older than this "
    "is a hung service. Empty: [DEFAULT] service_down_time from the configuration (60).",
    minimum=1,
)
RECONNECT_GRACE = IntegerParam(
    "reconnect_grace",
    "Seconds a lost broker/database may take to come back",
    "A dependency lost for less than this is degraded (190), not failed: services "
    "reconnect by themselves. Afterwards, failed if another instance still reaches it, "
    "degraded if it is down for every instance.",
    default="30",
    minimum=0,
)
PUBLISH = BooleanParam(
    "publish_health",
    "Publish dependency health as node attributes",
    "Set transient node attributes hakit-<resource>-broker and hakit-<resource>-db "
    "(ok|down) for the cluster-wide verdict and for operators.",
    default="true",
)
MANAGEMENT_URL = StringParam(
    "management_url",
    "RabbitMQ management API (depth 20)",
    "e.g. http://10.0.0.5:15672. When set, monitor depth 20 checks that this process "
    "tree consumes from the service's queues. Credentials: management_user and "
    "management_password, else those of transport_url.",
    default="",
)
MANAGEMENT_USER = StringParam("management_user", "RabbitMQ management user", default="")
MANAGEMENT_PASSWORD = SecretParam(
    "management_password",
    "RabbitMQ management password",
    "Never logged; empty = the transport_url password.",
    default="",
)
QUEUES = ListParam(
    "queues",
    "Queues to check at depth 20",
    "Queue names ({host} is replaced by the service host). Empty: the agent's defaults.",
    default="",
)
PORT = PortParam(
    "port",
    "HTTP port the service serves",
    "Start waits until the process tree listens on it and answers HTTP; depth 10 checks "
    "both. Console proxies: empty = the proxy's port option from the configuration.",
)
BROKER = BooleanParam(
    "broker",
    "Check the broker connections",
    "false for services that connect to the broker only on demand (API services).",
    default="true",
)

COMMON_PARAMETERS: list[Parameter[Any]] = [
    HOST,
    service.ARGUMENTS,
    service.USER,
    service.ENVIRONMENT_FILE,
    service.WORKDIR,
    service.LOG_FILE,
    SERVICE_DOWN_TIME,
    RECONNECT_GRACE,
    PUBLISH,
    MANAGEMENT_URL,
    MANAGEMENT_USER,
    MANAGEMENT_PASSWORD,
    QUEUES,
]
