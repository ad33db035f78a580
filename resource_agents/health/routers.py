"""L3 HA routers (neutron's keepalived VRRP per router) watched against the data plane.

neutron's `ha_state` per agent is its database's opinion, rewritten when agents die; the
data plane says who is active: the router's HA virtual address (169.254.0.0/24, on the
`ha-` interface of its `qrouter-<id>` namespace) is held by keepalived's master only.
`host_states` reads that on one host (one `ip -all netns exec` for every namespace);
`RouterWatch` joins every host's reading (and neutron's, when given) and raises, after a
grace of a few VRRP advert intervals (a failover is no alarm):

- ROUTER_NO_ACTIVE: no host holds the router (an outage of its traffic);
- ROUTER_SPLIT_BRAIN: more than one host holds it (two masters answer for its addresses);
- ROUTER_API_MISMATCH: neutron's active agent is not the data plane's;
- ROUTER_REDUCED_REDUNDANCY: fewer standbys than the router's other hosts should give.

An alarm on a router hosted by a fenced node names that node as its root cause.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import subprocess
from dataclasses import dataclass, field

NAMESPACE_PREFIX = "qrouter-"
#: the namespaces where neutron runs a router's keepalived (snat-: DVR with HA)
NAMESPACE_PREFIXES = (NAMESPACE_PREFIX, "snat-")
HA_INTERFACE_PREFIX = "ha-"
#: neutron's HA virtual addresses (keepalived's virtual_ipaddress on the ha- interface).
HA_VIP_NETWORK = ipaddress.ip_network("169.254.0.0/24")
ACTIVE, STANDBY = "active", "standby"
#: neutron's default ha_vrrp_advert_int
ADVERT_INTERVAL = 2.0
COMMAND = ["ip", "-all", "netns", "exec", "ip", "-o", "-4", "addr", "show"]

KINDS = (
    "ROUTER_NO_ACTIVE",
    "ROUTER_SPLIT_BRAIN",
    "ROUTER_API_MISMATCH",
    "ROUTER_REDUCED_REDUNDANCY",
)


def graces(advert_interval: float, api_lag: float = 10.0) -> dict[str, float]:
    """How long each anomaly may last before it is an alarm. No active instance: a
    backup takes over after 3 missed adverts and a skew under 1 advert (so does a
    handover whose last advert is lost); two adverts more and four seconds for a loaded
    host (a planned failover once took 7.3 s at a 1 s advert on CI's 2 busy cores).
    Two: masters that hear each other settle at the next advert, and a handover never
    overlaps (the old master drops the address before it yields); one advert and a
    second. neutron's view lags the data plane by its state-change reports (`api_lag`)."""
    failover = 5 * advert_interval + 4.0
    return {
        "ROUTER_NO_ACTIVE": failover,
        "ROUTER_SPLIT_BRAIN": advert_interval + 1.0,
        "ROUTER_API_MISMATCH": failover + api_lag,
        "ROUTER_REDUCED_REDUNDANCY": failover,
    }


def parse_states(output: str) -> dict[str, str]:
    """router id → active|standby from `ip -all netns exec ip -o -4 addr show`, for the
    router namespaces (`qrouter-<id>`, and `snat-<id>` where a DVR router keeps its HA
    part) that have an `ha-` interface: active when it holds an address of
    HA_VIP_NETWORK. A namespace without one takes no part in the router's VRRP (a DVR
    router's qrouter- on a compute) and is left out."""
    states: dict[str, str] = {}
    router = None
    for line in output.splitlines():
        if line.startswith("netns: "):
            name = line.removeprefix("netns: ").strip()
            prefix = next((p for p in NAMESPACE_PREFIXES if name.startswith(p)), None)
            router = name.removeprefix(prefix) if prefix else None
            continue
        words = line.split()
        if not router or len(words) < 4 or words[2] != "inet":
            continue
        interface = words[1].split("@")[0]
        try:
            address = ipaddress.ip_interface(words[3]).ip
        except ValueError:
            continue
        if interface.startswith(HA_INTERFACE_PREFIX):
            held = address in HA_VIP_NETWORK or states.get(router) == ACTIVE
            states[router] = ACTIVE if held else STANDBY
    return states


def host_states(timeout: float = 10.0) -> dict[str, str]:
    """This host's routers (router id → active|standby). OSError/TimeoutExpired when `ip`
    cannot run."""
    done = subprocess.run(COMMAND, capture_output=True, text=True, timeout=timeout, check=False)
    return parse_states(done.stdout)


@dataclass(frozen=True)
class RouterAlarm:
    """One router's anomaly, past its grace."""

    router: str
    kind: str
    active: tuple[str, ...]
    standby: tuple[str, ...]
    detail: str
    since: float
    root_cause: str | None = None  # a fenced node that hosted the router


@dataclass
class RouterWatch:
    """Keeps each anomaly's first sight; `observe` returns those older than their grace
    (`graces` of the routers' VRRP advert interval)."""

    advert_interval: float = ADVERT_INTERVAL
    #: hosts per router beyond the active one that should be standby (neutron's
    #: max_l3_agents_per_router minus one); None: every host seen hosting it
    standbys: int | None = None
    first_seen: dict[tuple[str, str], float] = field(default_factory=dict)
    api_lag: float = 10.0  # how far neutron's view may trail the data plane (`graces`)

    def observe(
        self,
        readings: dict[str, dict[str, str]],
        now: float,
        *,
        api: dict[str, dict[str, str]] | None = None,
        fenced: frozenset[str] = frozenset(),
        hosts_of: dict[str, set[str]] | None = None,
    ) -> list[RouterAlarm]:
        """`readings`: host → its routers' states (hosts that could not be read left
        out); `api`: router → host → neutron's ha_state; `hosts_of`: router → the hosts
        meant to host it (default: those seen, and neutron's)."""
        routers = {r for states in readings.values() for r in states} | set(api or {})
        current: dict[tuple[str, str], RouterAlarm] = {}
        neutrons: set[tuple[str, str]] = set()  # anomalies only neutron's view makes
        for router in sorted(routers):
            seen = {h: s[router] for h, s in readings.items() if router in s}
            planned = set((hosts_of or {}).get(router, set())) | set(seen)
            wanted = planned | set((api or {}).get(router, {}))
            found = self._anomalies(router, seen, wanted, api, fenced, now)
            if api is not None and found:  # which of them the data plane alone shows too
                plane = {a.kind for a in self._anomalies(router, seen, planned, None, fenced, now)}
                neutrons |= {(router, a.kind) for a in found if a.kind not in plane}
            current |= {(router, alarm.kind): alarm for alarm in found}
        for key in list(self.first_seen):
            if key not in current:
                del self.first_seen[key]
        raised = []
        grace = graces(self.advert_interval, self.api_lag)
        for key, alarm in current.items():
            since = self.first_seen.setdefault(key, now)
            # neutron's view may be as old as api_lag: what only it shows waits as long more
            lag = self.api_lag if key in neutrons and alarm.kind != "ROUTER_API_MISMATCH" else 0
            if now - since >= grace[alarm.kind] + lag:
                raised.append(dataclasses.replace(alarm, since=since))
        return raised

    def _anomalies(
        self,
        router: str,
        seen: dict[str, str],
        wanted: set[str],
        api: dict[str, dict[str, str]] | None,
        fenced: frozenset[str],
        now: float,
    ) -> list[RouterAlarm]:
        active = tuple(sorted(h for h, s in seen.items() if s == ACTIVE))
        standby = tuple(sorted(h for h, s in seen.items() if s == STANDBY))
        lost = sorted((wanted - set(seen)) & fenced) or sorted(fenced & set(active))
        cause = lost[0] if lost else None

        def alarm(kind: str, detail: str) -> RouterAlarm:
            return RouterAlarm(router, kind, active, standby, detail, now, cause)

        found = []
        if not active:
            found.append(alarm("ROUTER_NO_ACTIVE", f"no host holds router {router}"))
        elif len(active) > 1:
            found.append(
                alarm("ROUTER_SPLIT_BRAIN", f"router {router} is active on {', '.join(active)}")
            )
        expected = len(wanted) - 1 if self.standbys is None else self.standbys
        if len(active) == 1 and len(standby) < expected:
            missing = sorted(wanted - set(seen)) or ["(hosts not seen)"]
            found.append(
                alarm(
                    "ROUTER_REDUCED_REDUNDANCY",
                    f"router {router}: {len(standby)} standby of {expected} "
                    f"(missing: {', '.join(missing)})",
                )
            )
        neutron = (api or {}).get(router)
        if neutron is not None and len(active) == 1:
            said = sorted(h for h, s in neutron.items() if s == ACTIVE)
            if said != list(active):
                found.append(
                    alarm(
                        "ROUTER_API_MISMATCH",
                        f"router {router}: neutron says active on {', '.join(said) or 'none'}, "
                        f"the data plane on {active[0]}",
                    )
                )
        return found
