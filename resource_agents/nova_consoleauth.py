"""ocf:hakit:nova-consoleauth — nova's console tier: the console proxies
(nova-novncproxy, nova-serialproxy, nova-spicehtml5proxy) and, where it still exists
(nova ≤ Stein), the legacy nova-consoleauth service. The binary decides which.

Console proxies keep no state: tokens live in `console_auth_tokens` of the cell
database, so proxies run active/active. Depth 10: the proxy's port is listened on by
this process tree and answers HTTP, and the token table is reachable. Legacy
nova-consoleauth is an RPC service (broker connections, `services` heartbeat); cloned,
it needs shared token storage (memcached) or tokens fail across instances.
"""

from __future__ import annotations

from hakit.ocf import Context, OCFError, OCFExit
from hakit.ocf._typing import TYPE_CHECKING
from hakit.resource_agents.openstack.agent import make_agent
from hakit.resource_agents.openstack.config import option
from hakit.resource_agents.openstack.database import DatabaseError, query
from hakit.resource_agents.openstack.facts import Profile
from hakit.resource_agents.openstack.parameters import PORT

if TYPE_CHECKING:
    from hakit.resource_agents.openstack.facts import Facts

LEGACY = "nova-consoleauth"


def kind(program: str) -> str:
    return "rpc" if program == LEGACY else "console"


def validate(ctx: Context, facts: Facts) -> None:
    if facts.program == LEGACY:
        cache = option(facts.config, "cache", "enabled").lower() in ("true", "1", "yes", "on")
        backend = option(facts.config, "cache", "backend")
        shared = (cache and "memcache" in backend) or bool(
            option(facts.config, "DEFAULT", "memcached_servers")
        )
        if facts.clone_max > 1 and not shared:
            raise OCFError(
                OCFExit.ERR_CONFIGURED,
                f"nova-consoleauth cloned with clone-max={facts.clone_max} needs shared token "
                "storage ([cache] enabled with a memcache backend, or [DEFAULT] "
                "memcached_servers); otherwise tokens fail across instances. Run it as a "
                "primitive, or move to console proxies with tokens in the database",
            )
        return
    if facts.database is None:
        return  # validate_common already refused it
    try:
        query(
            facts.database,
            "SELECT 1 FROM console_auth_tokens LIMIT 1",
            (),
            min(5.0, max(ctx.remaining(2), 1.0)),
        )
    except DatabaseError as error:
        if error.unreachable:
            ctx.log.warning(f"token database not reachable now: {error}")
            return
        raise OCFError(
            OCFExit.ERR_CONFIGURED,
            f"[database] connection must be the cell database holding console_auth_tokens: {error}",
        ) from None


AGENT = make_agent(
    Profile(
        name="nova-consoleauth",
        shortdesc="nova console proxies (and legacy nova-consoleauth), active/active",
        longdesc=__doc__ or "",
        binary="nova-novncproxy",
        config="/etc/nova/nova.conf",
        kind=kind,
        service_binary=lambda facts: LEGACY if facts.program == LEGACY else None,
        rows=lambda facts: [facts.host] if facts.program == LEGACY else [],
        queues=lambda facts: ["consoleauth", f"consoleauth.{facts.host}"]
        if facts.program == LEGACY
        else [],
        extra_parameters=[PORT],
        validate=validate,
    )
)

if __name__ == "__main__":
    AGENT.main()
