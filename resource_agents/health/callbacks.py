"""Which callback URIs a token holder may subscribe: the callback policy.

The API GETs a new subscription's callbackUri at once, so without a policy any token
holder could probe the network behind the server. The host is resolved, then every
address it resolves to is checked: unspecified, link-local (cloud metadata), multicast and
reserved addresses are always refused; loopback and private ranges only when the
operator's allow-list (`--allow-callback CIDR`) names them; public addresses are allowed.
The refusal is generic: it does not say which rule, nor what was found there.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

REFUSED = "callbackUri is not allowed by this server's callback policy"


class CallbackRefused(ValueError):
    """A callback the policy refuses (the message is always REFUSED)."""

    def __init__(self) -> None:
        super().__init__(REFUSED)


def networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    """The allow-list, parsed; ValueError names an entry that is not a network."""
    parsed = []
    for cidr in cidrs:
        try:
            parsed.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"--allow-callback {cidr!r} is not a network (e.g. 10.0.0.0/8)"
            ) from None
    return tuple(parsed)


def allowed(address: IPAddress, allow: Sequence[Network]) -> bool:
    """Whether the policy lets a callback reach `address`."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if (
        address.is_unspecified
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or (address.version == 4 and address in ipaddress.ip_network("0.0.0.0/8"))
    ):
        return False
    if any(address.version == net.version and address in net for net in allow):
        return True
    return address.is_global


def check(uri: str, allow: Sequence[Network], *, numeric_only: bool = False) -> None:
    """CallbackRefused unless every address `uri`'s host resolves to is allowed;
    `numeric_only` refuses names without asking DNS (address literals only)."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    flags = socket.AI_NUMERICHOST if numeric_only else 0
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=flags)
    except (OSError, ValueError, UnicodeError):
        raise CallbackRefused() from None
    addresses = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}
    if not addresses or not all(allowed(address, allow) for address in addresses):
        raise CallbackRefused()
