"""The lab's infra node: MariaDB and RabbitMQ started by hand inside a network namespace
(or, for the OpenStack tests, on loopback in the caller's own).

By concern: `settings` (where services listen, the state directory's files), `packages`
(Debian's packages, installed without starting a daemon), `netns` (namespaces, detached
starts, finding the node's processes by marker), `probes` (does a service answer),
`mariadb`, `rabbitmq`, and `node` (both services together: start, stop, status). The
names the lab, its drills and the tests use are importable from here.
"""

from hakit.lab.infra.mariadb import mariadb_sql
from hakit.lab.infra.netns import MARKER, SERVICE_MARKER, in_netns
from hakit.lab.infra.node import (
    MAIN_PROCESS,
    SERVICES,
    InfraInfo,
    answers,
    infra_status,
    start_infra,
    start_services,
    stop_infra,
    stop_services,
)
from hakit.lab.infra.packages import PACKAGES, RABBITMQ_SERVER, RABBITMQCTL, ensure_packages
from hakit.lab.infra.rabbitmq import (
    rabbit_password_hash,
    rabbitmq_env,
    rabbitmq_environment,
    rabbitmqctl,
)
from hakit.lab.infra.settings import (
    AMQP_PORT,
    DB_NAME,
    DB_USER,
    DIST_PORT,
    MARIADB_TUNING,
    MYSQL_PORT,
    NODENAME,
    RABBIT_USER,
    Settings,
)

__all__ = [
    "AMQP_PORT",
    "DB_NAME",
    "DB_USER",
    "DIST_PORT",
    "MAIN_PROCESS",
    "MARIADB_TUNING",
    "MARKER",
    "MYSQL_PORT",
    "NODENAME",
    "PACKAGES",
    "RABBITMQCTL",
    "RABBITMQ_SERVER",
    "RABBIT_USER",
    "SERVICES",
    "SERVICE_MARKER",
    "InfraInfo",
    "Settings",
    "answers",
    "ensure_packages",
    "in_netns",
    "infra_status",
    "mariadb_sql",
    "rabbit_password_hash",
    "rabbitmq_env",
    "rabbitmq_environment",
    "rabbitmqctl",
    "start_infra",
    "start_services",
    "stop_infra",
    "stop_services",
]
