"""ocf:hakit:cinder-volume — cinder-volume, active/passive or as an active/active clone.

Health as every hakit OpenStack agent (below): the master
process at depth 0; broker connections and the `services` heartbeat of every backend
(`<host>@<backend>`) at depth 10; consumers of `cinder-volume.<host>@<backend>` (and of
the cluster's queue) at depth 20.

Cloned with clone-max > 1, validate-all and start refuse (6) an unsafe active/active
configuration: `[DEFAULT] cluster` must be set, `[coordination] backend_url` reachable,
and every backend's driver must declare SUPPORTS_ACTIVE_ACTIVE (read from the driver's
source, without importing cinder). Otherwise run it as a primitive (active/passive).

With notify=true and a `cloud` (clouds.yaml, Keystone), when a member's node is lost and
its fencing is confirmed — never before — one surviving instance asks cinder-api (API
3.24 workers/cleanup) to clean the lost host's resources, and logs what is cleaned.
Depth 20 also checks that the cloud's credentials get a token (degraded otherwise).
"""

from __future__ import annotations

import os
import time

from hakit.ocf import Context, IntegerParam, OCFError, OCFExit, StringParam
from hakit.ocf._typing import TYPE_CHECKING
from hakit.ocf.params import find_program
from hakit.resource_agents import clouds
from hakit.resource_agents.openstack.agent import make_agent
from hakit.resource_agents.openstack.config import DEBIAN_DIST_PACKAGES, option
from hakit.resource_agents.openstack.database import DatabaseError, query
from hakit.resource_agents.openstack.facts import Facts, Profile
from hakit.resource_agents.openstack.probes import tcp_answers
from hakit.resource_agents.openstack.urls import DatabaseURL, host_port

if TYPE_CHECKING:
    from ast import AST, Module
    from collections.abc import Sequence
    from typing import Any

    from hakit.ocf.context import NotifyFacts
    from hakit.ocf.status import FenceEvent

CLOUD, CLOUDS_YAML = clouds.agent_parameters(
    "ask cinder-api (API 3.24 workers/cleanup) to clean a fenced member's resources (the "
    "user needs cinder's admin role)"
)
CINDER_API_URL = StringParam(
    "cinder_api_url",
    "Block-storage API URL instead of the catalog's",
    "With cloud: e.g. http://10.0.0.5:8776/v3 (add /<project id> where project ids are in "
    "URLs). Empty: the cloud's catalog says.",
    default="",
)
FENCE_MAX_AGE = IntegerParam(
    "fence_max_age",
    "Seconds a confirmed fencing stays recent enough for a cleanup",
    default="900",
    minimum=1,
)

DEFAULT_DRIVER = "cinder.volume.drivers.lvm.LVMVolumeDriver"
#: Drivers that declare SUPPORTS_ACTIVE_ACTIVE = True in cinder 29 (a fallback for when
#: the driver's source cannot be read; NetAppDriver is the factory of the ONTAP ones).
KNOWN_ACTIVE_ACTIVE = frozenset(
    {
        "FakeHAReplicatedLoggingVolumeDriver",
        "LightOSVolumeDriver",
        "PowerMaxISCSIDriver",
        "PowerMaxFCDriver",
        "PowerMaxNVMETCPDriver",
        "PowerStoreDriver",
        "PowerFlexDriver",
        "PureISCSIDriver",
        "PureFCDriver",
        "PureNVMEDriver",
        "RBDDriver",
        "RBDISCSIDriver",
        "TatlinISCSIVolumeDriver",
        "TatlinFCVolumeDriver",
        "SolidFireDriver",
        "NetAppCmodeISCSIDriver",
        "NetAppCmodeNfsDriver",
        "NetAppCmodeFibreChannelDriver",
        "NetAppDriver",
    }
)
COORDINATION_PORTS = {
    "redis": 6379,
    "zookeeper": 2181,
    "kazoo": 2181,
    "etcd3": 2379,
    "etcd3+http": 2379,
    "memcached": 11211,
    "postgresql": 5432,
}


def backends(facts: Facts) -> list[str]:
    return option(facts.config, "DEFAULT", "enabled_backends").replace(",", " ").split()


def rows(facts: Facts) -> list[str]:
    names = backends(facts)
    return [f"{facts.host}@{b}" for b in names] if names else [facts.host]


def queues(facts: Facts) -> list[str]:
    cluster = option(facts.config, "DEFAULT", "cluster")
    names = [f"cinder-volume.{row}" for row in rows(facts)]
    if cluster:
        names += [f"cinder-volume.{cluster}@{b}" for b in backends(facts)]
    return names


# --- active/active safety -----------------------------------------------------------------


def validate(ctx: Context, facts: Facts) -> None:
    api = ctx.params.get(CINDER_API_URL)
    if api and not api.startswith(("http://", "https://")):
        raise OCFError(OCFExit.ERR_CONFIGURED, f"cinder_api_url {api!r} is not an http(s) URL")
    if api and not ctx.params.get(CLOUD):
        raise OCFError(OCFExit.ERR_CONFIGURED, "cinder_api_url needs cloud (its credentials)")
    clouds.validate_entry(ctx, CLOUD, CLOUDS_YAML)  # usable before a cleanup needs it
    if facts.clone_max <= 1:
        return
    problems = active_active_problems(facts, timeout=min(5.0, max(ctx.remaining(2), 1.0)))
    if problems:
        raise OCFError(
            OCFExit.ERR_CONFIGURED,
            f"cinder-volume cloned with clone-max={facts.clone_max} is not safe active/active: "
            f"{'; '.join(problems)}. Fix it, or run cinder-volume as a primitive (active/passive)",
        )


def active_active_problems(facts: Facts, *, timeout: float) -> list[str]:
    problems = []
    if not option(facts.config, "DEFAULT", "cluster"):
        problems.append("[DEFAULT] cluster is not set")
    url = option(facts.config, "coordination", "backend_url")
    if not url:
        problems.append(
            "[coordination] backend_url is not set (cinder needs a shared lock manager)"
        )
    else:
        problem = coordination_problem(url, timeout)
        if problem:
            problems.append(problem)
    roots = python_roots(facts.binary_path)
    for backend, driver in drivers(facts):
        supported = supports_active_active(driver, roots)
        short = driver.rpartition(".")[2]
        if supported is None and short not in KNOWN_ACTIVE_ACTIVE:
            problems.append(
                f"backend {backend}: cannot read {driver}'s source and it is not a "
                "known active/active driver"
            )
        elif supported is False:
            problems.append(
                f"backend {backend}: driver {short} does not support active/active "
                "(SUPPORTS_ACTIVE_ACTIVE is False)"
            )
    return problems


def drivers(facts: Facts) -> list[tuple[str, str]]:
    names = backends(facts)
    if not names:
        return [("DEFAULT", option(facts.config, "DEFAULT", "volume_driver", DEFAULT_DRIVER))]
    return [(name, option(facts.config, name, "volume_driver", DEFAULT_DRIVER)) for name in names]


def coordination_problem(url: str, timeout: float) -> str | None:
    """Why tooz's backend_url is unusable from here, or None."""
    scheme = url.partition("://")[0]
    if scheme == "file":
        path = url[len("file://") :].partition("?")[0]
        if not os.path.isdir(path):
            return f"[coordination] backend_url directory {path} does not exist"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"[coordination] backend_url directory {path} is not writable"
        return None
    if scheme.partition("+")[0] in ("mysql", "mariadb"):
        try:
            database = DatabaseURL(url)
            query(database, "SELECT 1", (), timeout)
        except (ValueError, DatabaseError) as error:
            return f"[coordination] backend_url unusable: {error}"
        return None
    if scheme not in COORDINATION_PORTS:
        return f"[coordination] backend_url scheme {scheme!r} is not one hakit can check"
    rest = url.partition("://")[2].partition("/")[0].partition("?")[0].rpartition("@")[2]
    try:
        host, port = host_port(rest, COORDINATION_PORTS[scheme])
    except ValueError as error:
        return f"[coordination] backend_url: {error}"
    if tcp_answers(host, port, timeout) is None:
        return f"[coordination] backend_url {scheme} {host}:{port} is not reachable"
    return None


def python_roots(binary: str) -> list[str]:
    """Where the service's Python finds cinder: the site-packages of the interpreter in
    the binary's #! line (a venv), then Debian's dist-packages."""
    roots = []
    try:
        with open(find_program(binary) or binary, "rb") as handle:
            first = handle.readline(512).decode(errors="replace")
    except OSError:
        first = ""
    if first.startswith("#!"):
        interpreter = first[2:].split()[0] if first[2:].split() else ""
        prefix = os.path.dirname(os.path.dirname(interpreter))
        lib = os.path.join(prefix, "lib")
        try:
            versions = sorted(n for n in os.listdir(lib) if n.startswith("python3"))
        except OSError:
            versions = []
        roots += [os.path.join(lib, v, "site-packages") for v in versions]
    return [*roots, DEBIAN_DIST_PACKAGES]


def _module_tree(module: str, roots: Sequence[str]) -> Module | None:
    import ast

    relative = module.replace(".", "/")
    for root in roots:
        for candidate in (f"{root}/{relative}.py", f"{root}/{relative}/__init__.py"):
            try:
                with open(candidate, encoding="utf-8") as handle:
                    return ast.parse(handle.read(), candidate)
            except (OSError, SyntaxError, ValueError):
                continue
    return None


def supports_active_active(class_path: str, roots: Sequence[str]) -> bool | None:
    """SUPPORTS_ACTIVE_ACTIVE of a driver class, read from the sources (the class, then
    its bases depth first, across modules); None when it cannot be found."""
    module, _, name = class_path.rpartition(".")
    return _flag(module, name, roots, 0)


def _flag(module: str, name: str, roots: Sequence[str], depth: int) -> bool | None:
    import ast

    tree = _module_tree(module, roots) if depth < 12 else None
    if tree is None:
        return None
    imports = _imports(tree, module)
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)
    if cls is None:
        source = imports.get(name)
        return _flag(source[0], source[1], roots, depth + 1) if source else None
    for statement in cls.body:
        targets = statement.targets if isinstance(statement, ast.Assign) else []
        for target in targets:
            if isinstance(target, ast.Name) and target.id == "SUPPORTS_ACTIVE_ACTIVE":
                value = statement.value  # type: ignore[attr-defined]
                if isinstance(value, ast.Constant):
                    return bool(value.value)
    for base in cls.bases:
        where = _base_location(base, module, imports)
        if where is not None:
            found = _flag(where[0], where[1], roots, depth + 1)
            if found is not None:
                return found
    return None


def _imports(tree: Module, module: str) -> dict[str, tuple[str, str]]:
    """Local name → (module, name) for module-level imports; `import a.b as c` and
    `from a import b` (b may be a module) map to (a.b, "") and (a, b)."""
    import ast

    package = module.rpartition(".")[0]
    names: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                names[alias.asname or alias.name] = (base, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.partition(".")[0]] = (
                    alias.name if alias.asname else alias.name.partition(".")[0],
                    "",
                )
    return names


def _base_location(
    base: AST, module: str, imports: dict[str, tuple[str, str]]
) -> tuple[str, str] | None:
    import ast

    if isinstance(base, ast.Name):
        return imports.get(base.id, (module, base.id))
    chain: list[str] = []
    node: Any = base
    while isinstance(node, ast.Attribute):
        chain.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or not chain:
        return None
    source = imports.get(node.id)
    if source is None:
        return None
    prefix = ".".join(p for p in source if p)
    return ".".join([prefix, *chain[:-1]]), chain[-1]


# --- cleanup of a lost member ----------------------------------------------------------------


def fencing_confirmed(
    node: str, events: Sequence[FenceEvent], *, now: float, max_age: float
) -> FenceEvent | None:
    """The fencing that proves `node` is down: the latest successful off/reboot of it,
    completed within `max_age` seconds; None while any fencing of it is pending, or when
    there is none."""
    mine = [e for e in events if e.target == node]
    if any(e.status == "pending" for e in mine):
        return None
    best: FenceEvent | None = None
    best_time = 0.0
    for event in mine:
        completed = event.completed_epoch
        if event.status != "success" or event.action not in ("off", "reboot") or completed is None:
            continue
        if not -60 <= now - completed <= max_age:
            continue
        if best is None or completed > best_time:
            best, best_time = event, completed
    return best


def cleanup_plan(
    lost: Sequence[str],
    survivors: Sequence[str],
    me: str,
    events: Sequence[FenceEvent],
    *,
    now: float,
    max_age: float,
) -> tuple[list[str], list[str]]:
    """(nodes to clean up now, nodes not confirmed fenced). Only the first surviving node
    (by name) acts, so the cleanup is asked for once; a node whose fencing is not
    confirmed is never cleaned up (its cinder-volume may still be writing)."""
    others = sorted(set(survivors) - set(lost))
    if not others or others[0] != me:
        return [], []
    fenced = [n for n in lost if n != me and fencing_confirmed(n, events, now=now, max_age=max_age)]
    return fenced, [n for n in lost if n != me and n not in fenced]


def request_cleanup(
    ctx: Context, session: clouds.CloudSession, body: dict[str, object]
) -> dict[str, Any]:
    """POST workers/cleanup (microversion 3.24) of the block-storage API; the answer."""
    answer = session.request(
        "block-storage",
        "POST",
        "/workers/cleanup",
        body=body,
        headers={"OpenStack-API-Version": "volume 3.24"},
        endpoint=ctx.params.get(CINDER_API_URL) or None,
    )
    return answer if isinstance(answer, dict) else {}


def cleanup_lost_host(ctx: Context, facts: Facts, node: str) -> None:
    """Ask cinder to clean every backend host of `node`, whether cinder still believes
    it up (its heartbeat is not stale yet: fencing says it is down) or not."""
    timeout = min(10.0, max(ctx.remaining(2), 1.0))
    session = clouds.CloudSession(ctx.params[CLOUDS_YAML], ctx.params[CLOUD], timeout=timeout)
    names = backends(facts)
    hosts = [f"{node}@{b}" for b in names] if names else [node]
    for host in hosts:
        for is_up in (False, True):
            body: dict[str, object] = {"host": host, "binary": "cinder-volume", "is_up": is_up}
            try:
                answer = request_cleanup(ctx, session, body)
            except clouds.CloudError as error:
                ctx.log.error(f"workers/cleanup for {host} failed: {error.reason}")
                continue
            cleaning = [s.get("host") for s in answer.get("cleaning", []) if isinstance(s, dict)]
            unavailable = [
                s.get("host") for s in answer.get("unavailable", []) if isinstance(s, dict)
            ]
            if cleaning or unavailable:
                ctx.log.info(
                    f"workers/cleanup for lost host {host}: cleaning {cleaning}, "
                    f"no service to clean {unavailable}"
                )


def notify(ctx: Context) -> int:
    """post-stop: clean up after members whose node was fenced. Never fails the resource
    (a failed notification would): problems are logged."""
    facts_notify = ctx.notify
    if facts_notify is None or (facts_notify.type, facts_notify.operation) != ("post", "stop"):
        return OCFExit.SUCCESS
    if not ctx.params.get(CLOUD):
        return OCFExit.SUCCESS
    try:
        cleanup_after_stop(ctx, facts_notify)
    except OCFError as error:
        ctx.log.error(f"no cleanup of lost members: {error.reason}")
    return OCFExit.SUCCESS


def cleanup_after_stop(ctx: Context, facts_notify: NotifyFacts) -> None:
    from hakit.ocf import cluster

    me = ctx.node or os.uname().nodename
    lost = facts_notify.unames("stop")
    try:
        events = [
            e
            for n in sorted(set(lost) - {me})
            for e in cluster.fencing_history(n, timeout=min(10.0, max(ctx.remaining(2), 1.0)))
        ]
    except cluster.ClusterCommandError as error:
        ctx.log.warning(f"no cleanup of {lost}: fencing history unavailable ({error})")
        return
    max_age = float(ctx.params[FENCE_MAX_AGE])
    survivors = facts_notify.unames("active")
    clean, unconfirmed = cleanup_plan(lost, survivors, me, events, now=time.time(), max_age=max_age)
    for node in unconfirmed:
        ctx.log.info(f"{node} stopped without a confirmed fencing: no cleanup of its volumes")
    if clean:
        facts = Facts(ctx, PROFILE)
        for node in clean:
            cleanup_lost_host(ctx, facts, node)


PROFILE = Profile(
    name="cinder-volume",
    shortdesc="cinder-volume, active/passive or an active/active clone",
    longdesc=__doc__ or "",
    binary="cinder-volume",
    config="/etc/cinder/cinder.conf",
    service_binary=lambda facts: "cinder-volume",
    rows=rows,
    queues=queues,
    extra_parameters=[CLOUD, CLOUDS_YAML, CINDER_API_URL, FENCE_MAX_AGE],
    validate=validate,
    notify=notify,
    deep_check=lambda ctx: clouds.auth_problem(ctx, CLOUD, CLOUDS_YAML),
    stop_timeout=90,
)
AGENT = make_agent(PROFILE)

if __name__ == "__main__":
    AGENT.main()
