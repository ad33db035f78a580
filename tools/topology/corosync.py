"""corosync.conf from a topology: its cluster name, its nodes in the file's order (the
node ids the rendered CIB gives them), each node's link addresses, and the token timing
of `cluster.corosync`. Ansible (playbooks/) and `hakit topology corosync-conf` write it; the
lab writes its own with the same function."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from hakit.tools.topology import model

KEYFILE = "/etc/corosync/authkey"
#: knet's limit on links per node.
MAX_LINKS = 8
#: What corosync.conf can carry as a name or a host name (no spaces, braces or newlines).
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Timing:
    """totem.token and totem.token_coefficient in ms; None keeps Corosync's default."""

    token_ms: int | None
    token_coefficient_ms: int | None


#: `cluster.corosync.profile`: Corosync's defaults, or hakit's fast profile (docs/lab.md).
TIMINGS = {"default": Timing(None, None), "fast": Timing(1000, 0)}


class CorosyncError(ValueError):
    """Addresses that do not fit the topology's nodes."""


def timing(settings: model.Corosync) -> Timing:
    """The profile's timing with the topology's own overrides."""
    base = TIMINGS[settings.profile]
    return Timing(
        settings.token if settings.token is not None else base.token_ms,
        settings.token_coefficient
        if settings.token_coefficient is not None
        else base.token_coefficient_ms,
    )


def conf(
    cluster_name: str,
    nodes: list[tuple[str, list[str]]],
    timings: Timing,
    *,
    keyfile: str = KEYFILE,
    header: str = "written by hakit",
) -> str:
    """The whole corosync.conf: nodes as (name, link addresses), node ids 1, 2, ..."""
    token = f"\ttoken: {timings.token_ms}\n" if timings.token_ms else ""
    if timings.token_coefficient_ms is not None:
        token += f"\ttoken_coefficient: {timings.token_coefficient_ms}\n"
    two_node = "\ttwo_node: 1\n" if len(nodes) == 2 else ""  # quorum with one of two
    members = ""
    for number, (name, addresses) in enumerate(nodes, 1):
        links = "".join(f"\t\tring{i}_addr: {a}\n" for i, a in enumerate(addresses))
        members += f"\tnode {{\n\t\tname: {name}\n\t\tnodeid: {number}\n{links}\t}}\n"
    return (
        f"# {header}\n"
        f"totem {{\n\tversion: 2\n\tcluster_name: {cluster_name}\n\ttransport: knet\n"
        f"\tcrypto_cipher: aes256\n\tcrypto_hash: sha256\n\tkeyfile: {keyfile}\n{token}}}\n"
        f"nodelist {{\n{members}}}\n"
        f"quorum {{\n\tprovider: corosync_votequorum\n{two_node}}}\n"
        "logging {\n\tfileline: off\n\tto_stderr: no\n\tto_logfile: yes\n"
        "\tlogfile: /var/log/corosync/corosync.log\n\tto_syslog: no\n"
        "\ttimestamp: hires\n\tdebug: off\n}\n"
    )


def for_topology(topology: model.Topology, addresses: dict[str, list[str]]) -> str:
    """corosync.conf for the topology's nodes; every node needs its addresses, all with
    the same number of links."""
    names = [node.name for node in topology.nodes]
    problems = []
    if not names:
        problems.append("the topology lists no nodes: add them under `nodes:`")
    problems += [
        f"{n}: no address given (--address {n}=ADDRESS)" for n in names if n not in addresses
    ]
    problems += [
        f"{n}: not a node of the topology (its nodes: {', '.join(names) or 'none'})"
        for n in addresses
        if n not in names
    ]
    problems += [
        f"{n}: {a!r} is neither an IP address nor a host name"
        for n, links in addresses.items()
        for a in links
        if not _address(a)
    ]
    words = [("cluster name", topology.cluster.name)] + [("node name", n) for n in names]
    problems += [
        f"{what} {word!r}: corosync.conf takes letters, digits, '.', '_' and '-'"
        for what, word in words
        if not WORD.fullmatch(word)
    ]
    counts = {len(addresses[n]) for n in names if n in addresses}
    if len(counts) > 1:
        problems.append("every node needs the same number of link addresses")
    if any(not 1 <= c <= MAX_LINKS for c in counts):
        problems.append(f"a node has 1 to {MAX_LINKS} link addresses")
    if problems:
        raise CorosyncError("; ".join(problems))
    settings = topology.cluster.corosync
    return conf(
        topology.cluster.name,
        [(n, addresses[n]) for n in names],
        timing(settings),
        header=f"written by hakit from the topology (profile {settings.profile})",
    )


def _address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return WORD.fullmatch(text) is not None
    return True
