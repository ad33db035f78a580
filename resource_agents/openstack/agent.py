"""Shared logic of hakit's OpenStack agents (openstack-service, cinder-volume,
nova-scheduler, nova-consoleauth): one `Profile` per agent, one set of actions.

Process handling is `ocf:hakit:service`'s (state files, spawn, stop with TERM→KILL of
the tree). On top of it, health by depth, cheap first:

- 0: the master process (dead → 7). Workers are the master's business: a worker it
  respawns is never a failure.
- 10: the configuration is read with configparser (no oslo import); then the broker
  connections of the process tree to the transport_url hosts (sockets matched by inode,
  exact address and port; `sockets`), the heartbeat in the `services` table (`updated_at` against
  `service_down_time`, measured with the database's own clock), or for console proxies
  an HTTP answer from the tree's listening port and the token database.
- 20: the queues' consumers through the RabbitMQ management API (`management_url`),
  counted only when the consumer's connection belongs to this process tree; and the
  profile's deep check (cinder-volume: its cloud's credentials get a Keystone token),
  whose problem degrades (190) the instance.

A running service that is hung (stale heartbeat) or disconnected fails (1), never 7;
a service whose first heartbeat is late by design (cinder-scheduler waits for the volume
backends' capabilities first) is degraded (190) until that heartbeat is due.
Each instance publishes its dependencies' health as transient node attributes
(`hakit-<resource>-broker`, `hakit-<resource>-db` = ok|down). A dependency that stays
down longer than `reconnect_grace` fails the instance only if another instance still
reaches it; when it is down for every instance the result is degraded (190), so
Pacemaker does not restart every clone in a storm that cannot help. A node without
quorum never asks for recovery (190). Outside a cluster the agent behaves as a single
instance. A steady depth-10 monitor runs no cluster command: attributes are written
only when a state changes (or every HEALTH_REPUBLISH_SECONDS).
"""

from __future__ import annotations

import os

from hakit.ocf import Action, Agent, Context, OCFError, OCFExit, proc
from hakit.ocf._typing import TYPE_CHECKING
from hakit.resource_agents import service
from hakit.resource_agents.openstack.checks import Findings, check_queues, check_service
from hakit.resource_agents.openstack.config import option
from hakit.resource_agents.openstack.database import (
    DatabaseError,
    database_now,
    heartbeats,
    load_pymysql,
)
from hakit.resource_agents.openstack.dependency_health import (
    Health,
    attribute_name,
    cluster_timeout,
    health_path,
    quorate,
)
from hakit.resource_agents.openstack.facts import Facts
from hakit.resource_agents.openstack.parameters import COMMON_PARAMETERS, HOST, PUBLISH
from hakit.resource_agents.openstack.probes import broker_connections, http_problem

if TYPE_CHECKING:
    from collections.abc import Callable

    from hakit.resource_agents.openstack.facts import Profile

VERSION = "1.0.0"


def override_path(ctx: Context) -> str:
    return f"{service.run_dir(ctx)}/{ctx.state_name}.host.conf"


def argv(ctx: Context, facts: Facts) -> list[str]:
    args = [facts.binary_path]
    for path in [*facts.files, override_path(ctx)]:
        args += ["--config-file", path]
    return args + service.split_arguments(ctx)


def write_override(ctx: Context, facts: Facts) -> None:
    """The last --config-file: this instance's host."""
    os.makedirs(service.run_dir(ctx), mode=0o755, exist_ok=True)
    path = override_path(ctx)
    with open(path + ".new", "w", encoding="utf-8") as handle:
        handle.write(
            f"# written by ocf:hakit:{facts.profile.name} for {ctx.instance}\n"
            f"[DEFAULT]\nhost = {facts.host}\n"
        )
    os.chmod(path + ".new", 0o644)
    os.replace(path + ".new", path)


def validate_common(ctx: Context, facts: Facts) -> None:
    """Configuration the monitors rely on; clone-safety of the host."""
    service.validate(ctx)
    explicit = ctx.params.get(HOST)
    if facts.clone_max > 1 and explicit:
        raise OCFError(
            OCFExit.ERR_CONFIGURED,
            f"cloned (clone-max={facts.clone_max}) with host={explicit!r}: every "
            "instance would register as the same service; leave host empty (the node name)",
        )
    if facts.clone_max > 1 and option(facts.config, "DEFAULT", "host"):
        ctx.log.warning(f"cloned: [DEFAULT] host is replaced by the node name ({facts.host})")
    if facts.kind == "rpc" and facts.profile.requires_transport and facts.transport is None:
        raise OCFError(
            OCFExit.ERR_CONFIGURED, f"[DEFAULT] transport_url is not set in {' '.join(facts.files)}"
        )
    if (facts.heartbeat or facts.kind == "console") and facts.database is None:
        what = "console_auth_tokens" if facts.kind == "console" else "the services table"
        raise OCFError(
            OCFExit.ERR_CONFIGURED,
            f"[database] connection is not set in {' '.join(facts.files)}: it holds {what}",
        )
    if facts.database is not None and facts.database.kind != "sqlite":
        load_pymysql()


def make_validate(profile: Profile) -> Callable[[Context], int]:
    def validate(ctx: Context) -> int:
        facts = Facts(ctx, profile)
        validate_common(ctx, facts)
        if profile.validate is not None:
            profile.validate(ctx, facts)
        return OCFExit.SUCCESS

    return validate


def not_ready(ctx: Context, facts: Facts, pid: int, since: str | None) -> str | None:
    """Why the service is not ready yet: not serving HTTP (console proxies, `port`), no
    broker connection, no heartbeat reported since the start."""
    if facts.http_port is not None:
        problem = http_problem(pid, facts.http_port, min(2.0, max(ctx.remaining(1), 0.2)))
        if problem:
            return problem
    transport = facts.transport
    if facts.uses_broker and transport and not broker_connections(proc.tree(pid), transport):
        return f"no connection to the broker ({', '.join(map(repr, transport.hosts))})"
    if facts.heartbeat and facts.database is not None and facts.service_binary:
        try:
            seen = heartbeats(
                facts.database,
                facts.service_binary,
                facts.rows,
                since or "1970-01-01",
                min(3.0, max(ctx.remaining(1), 0.5)),
            )
        except DatabaseError as error:
            return str(error)
        for row in facts.rows:
            age, fresh = seen.get(row, (None, False))
            if age is None or not fresh or age > facts.service_down_time:
                return f"{facts.service_binary} {row} has not reported in the services table yet"
    return None


def make_start(profile: Profile) -> Callable[[Context], int]:
    def start(ctx: Context) -> int:
        facts = Facts(ctx, profile)
        pid = service.running_pid(ctx)
        since = None
        if pid is None:
            if facts.heartbeat and facts.database is not None:
                try:
                    since = database_now(facts.database, min(3.0, ctx.remaining(1)))
                except DatabaseError as error:
                    ctx.log.warning(f"start continues without the database clock: {error}")
            write_override(ctx, facts)
            pid = service.spawn(ctx, argv(ctx, facts))
        checks = facts.http_port is not None or facts.uses_broker or facts.heartbeat
        code = service.wait_until_ready(
            ctx, pid, lambda c, p: not_ready(c, facts, p, since), settle=not checks, poll=0.5
        )
        health = Health(ctx)
        for name in dependencies(facts):
            health.set(name, True)
        health.publish()
        return code

    return start


def dependencies(facts: Facts) -> list[str]:
    names = []
    if facts.uses_broker:
        names.append("broker")
    if facts.database is not None and (facts.heartbeat or facts.kind == "console"):
        names.append("db")
    return names


def stop(ctx: Context) -> int:
    code = service.stop(ctx)
    health = Health(ctx)
    if ctx.params.get(PUBLISH) is not False:
        from hakit.ocf import cluster

        for name, entry in health.entries.items():
            if entry[3]:
                try:
                    cluster.delete_transient_attribute(
                        attribute_name(ctx, name), timeout=cluster_timeout(ctx)
                    )
                except cluster.ClusterCommandError as error:
                    ctx.log.debug(f"attribute not deleted ({error})")
    for path in (health_path(ctx), override_path(ctx)):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return code


def make_monitor(profile: Profile) -> Callable[[Context], int]:
    def monitor(ctx: Context) -> int:
        pid = service.monitored_pid(ctx)
        if pid is None:
            return OCFExit.NOT_RUNNING
        if ctx.check_level < 10:
            return OCFExit.SUCCESS
        try:
            facts = Facts(ctx, profile)
        except OCFError as error:  # 5/6 would ban or stop the resource everywhere
            raise OCFError(
                OCFExit.ERR_GENERIC, f"running, configuration unreadable: {error.reason}"
            ) from None
        health = Health(ctx)
        findings = Findings()
        check_service(ctx, facts, pid, health, findings)
        if ctx.check_level >= 20 and not findings.failures:
            check_queues(ctx, facts, pid, health, findings)
            problem = profile.deep_check(ctx) if profile.deep_check else None
            if problem:
                findings.degraded.append(problem)
        health.publish()
        if findings.failures:
            reason = "; ".join(findings.failures + findings.degraded)
            if not quorate(ctx):
                raise OCFError(OCFExit.DEGRADED, f"no quorum, not asking for recovery: {reason}")
            raise OCFError(OCFExit.ERR_GENERIC, reason)
        if findings.degraded:
            raise OCFError(OCFExit.DEGRADED, "; ".join(findings.degraded))
        return OCFExit.SUCCESS

    return monitor


HEALTH_DOC = """Every hakit OpenStack agent: monitor depth 0 checks the master process (a
worker it respawns is not a failure), depth 10 the configuration's dependencies as the
service uses them, depth 20 the queues' consumers (with management_url). A hung
service (stale heartbeat) or a disconnected one fails (1), never "not running" (7).
Dependency health is published as node attributes hakit-<resource>-broker and
hakit-<resource>-db (ok|down): a dependency lost for less than reconnect_grace is
degraded (190); after that, failed when only this instance lost it (or it is alone),
degraded when every instance reports it down. Without quorum the agent never asks for
recovery (190). No password is ever a parameter or on a command line: URLs and
credentials come from the service's own configuration files."""


def make_agent(profile: Profile) -> Agent:
    """The declared agent for a profile."""
    parameters = [profile.binary, profile.config, *COMMON_PARAMETERS, *profile.extra_parameters]
    actions = [
        Action("start", make_start(profile), timeout=profile.start_timeout),
        Action("stop", stop, timeout=profile.stop_timeout),
        Action("monitor", make_monitor(profile), timeout=20, interval=10),
        Action("monitor", make_monitor(profile), timeout=30, interval=30, depth=10),
        Action("monitor", make_monitor(profile), timeout=40, interval=120, depth=20),
    ]
    if profile.notify is not None:
        actions.append(Action("notify", profile.notify, timeout=60))
    return Agent(
        name=profile.name,
        version=VERSION,
        shortdesc=profile.shortdesc,
        longdesc=f"{profile.longdesc.rstrip()}\n\n{HEALTH_DOC}",
        parameters=parameters,
        actions=actions,
        validate=make_validate(profile),
    )
