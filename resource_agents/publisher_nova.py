"""The nova part of ocf:hakit:publisher: its parameters (compute API, evacuation and its
guards), what they add to the daemon's command line, and their checks. Every value is
checked by the agent (6 when out of range); the daemon's defaults are the same."""

from __future__ import annotations

from hakit.ocf import BooleanParam, Context, IntegerParam, OCFError, OCFExit, StringParam
from hakit.ocf.params import Parameter
from hakit.resource_agents.health import constants

NOVA_API = StringParam(
    "nova_api",
    "Compute API URL (…/v2.1) instead of the catalog's",
    "With cloud: the compute endpoint to use. Empty: the cloud's catalog says.",
    default="",
)
EVACUATE = BooleanParam(
    "evacuate",
    "Evacuate a fenced host's servers",
    "With cloud: once the host is forced down, each of its servers is evacuated once.",
    default="false",
)
EVACUATE_WORKERS = IntegerParam(
    "evacuate_workers",
    "Evacuation requests in flight at once",
    "With evacuate: a lost rack means hundreds of servers; their requests run this many at "
    "a time.",
    default=str(constants.EVACUATE_WORKERS),
    minimum=1,
    maximum=64,
)
EVACUATE_GUARD = IntegerParam(
    "evacuate_guard",
    "Percent of the nodes lost at once that holds evacuations",
    "With evacuate: while more than this share of the nodes (two at least) are lost at "
    "once, no server is evacuated (a network or power fault must not move everything onto "
    "what is left) and one MASS_HOST_FAILURE alarm is open. 100: never.",
    default=str(constants.EVACUATE_GUARD_PERCENT),
    minimum=1,
    maximum=100,
)
EVACUATE_GUARD_HOLD = IntegerParam(
    "evacuate_guard_hold",
    "Seconds the guard holds on while fewer nodes are lost",
    "With evacuate: once the guard tripped, hosts of the same event coming back one by one "
    "must not release the evacuation of the others: it holds while any is still lost, up "
    "to this long after the count was last too high. 0: released as soon as fewer are lost.",
    default=str(constants.EVACUATE_GUARD_HOLD),
    minimum=0,
    maximum=3600,
)
EVACUATE_DEADLINE = IntegerParam(
    "evacuate_deadline",
    "Seconds an evacuation may take before its alarm",
    "With evacuate: a server still on its fenced host this long after its evacuation was "
    "requested gets an EVACUATION_OVERDUE alarm, cleared once it runs elsewhere (one whose "
    "flavor's dedicated cores no host has gets a GUARANTEED_CPU_UNAVAILABLE alarm at once).",
    default=str(constants.EVACUATE_DEADLINE),
    minimum=1,
    maximum=86400,
)
DEFAULT_NOVA_CONFIG = "/etc/nova/nova.conf"
NOVA_CONFIG = StringParam(
    "nova_config",
    "nova.conf of this cloud's nova-compute",
    "With evacuate=true validate-all requires [service_user] send_service_user_token = true "
    "in it: cinder lets only a service token delete the old attachment of a server being "
    "evacuated (cinder Bug #2004555), so without it servers with volumes end in ERROR. The "
    "default path is checked when it exists on this node; an explicit path must exist. "
    "Empty: not checked.",
    default=DEFAULT_NOVA_CONFIG,
)
PARAMETERS: list[Parameter[object]] = [
    NOVA_API,
    EVACUATE,
    EVACUATE_WORKERS,
    EVACUATE_GUARD,
    EVACUATE_GUARD_HOLD,
    EVACUATE_DEADLINE,
    NOVA_CONFIG,
]


def argv(ctx: Context) -> list[str]:
    """The daemon's nova options (with cloud)."""
    command = ["--nova-api", ctx.params[NOVA_API]] if ctx.params.get(NOVA_API) else []
    if ctx.params.get(EVACUATE):
        command += ["--evacuate", "--evacuate-workers", str(ctx.params[EVACUATE_WORKERS])]
        command += ["--evacuate-guard", str(ctx.params[EVACUATE_GUARD])]
        command += ["--evacuate-guard-hold", str(ctx.params[EVACUATE_GUARD_HOLD])]
        command += ["--evacuate-deadline", str(ctx.params[EVACUATE_DEADLINE])]
    return command


def validate(ctx: Context, cloud: bool) -> None:
    """nova_api an http(s) URL; nova_api and evacuate need `cloud`; with evacuate, nova
    sends cinder its service token."""
    nova = ctx.params.get(NOVA_API)
    if nova and not nova.startswith(("http://", "https://")):
        raise OCFError(OCFExit.ERR_CONFIGURED, f"nova_api={nova!r} is not an http(s) URL")
    if nova and not cloud:
        raise OCFError(OCFExit.ERR_CONFIGURED, "nova_api needs cloud (its credentials)")
    if ctx.params.get(EVACUATE) and not cloud:
        raise OCFError(OCFExit.ERR_CONFIGURED, "evacuate=true needs cloud")


def check_service_token(ctx: Context) -> None:
    """Refuse to evacuate with a nova that sends cinder no service token (6)."""
    if not ctx.params.get(EVACUATE):
        return
    from hakit.resource_agents.openstack.config import checked_config, option, read_config

    path = checked_config(ctx, NOVA_CONFIG)
    if path is None:
        return
    value = option(read_config([path]), "service_user", "send_service_user_token", "false")
    if value.lower() not in ("true", "1", "yes", "on"):
        raise OCFError(
            OCFExit.ERR_CONFIGURED,
            f"{path}: [service_user] send_service_user_token = {value}: cinder refuses to "
            "detach an evacuated server's volumes without nova's service token; set it to "
            "true (with a [service_user] of the service role)",
        )
