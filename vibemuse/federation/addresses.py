"""Which network addresses this server connects to when it reaches other servers.

A server name comes from anyone: a page to ``@bob:evil.example`` makes this
server look up ``evil.example`` and then connect to whatever base URL its
``.well-known`` document names. Without a rule, that is a way to make the
server send requests into its own private network (server-side request
forgery). So, as Synapse does with its IP range blacklist, connections to
servers found by discovery go only to **global** addresses
(``ipaddress.is_global``: not loopback, private, link-local, shared,
reserved or documentation ranges; an IPv4-mapped IPv6 address is judged as
its IPv4 address). The hosts of ``federation_peers`` are trusted as the
operator wrote them (that is how servers on one machine or one LAN federate),
and the setting ``federation_private_addresses = true`` lifts the rule.

The rule sits in the resolver, after the name is resolved and before any
connection, so a name that resolves to both kinds of address connects only to
the global ones, and a DNS answer cannot slip a private address past a check
made on the name.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, Iterable
from urllib.parse import urlsplit

import tornado.netutil

__all__ = ["PublicAddressResolver", "is_public_address", "peer_hosts"]


def is_public_address(address: str) -> bool:
    """True if ``address`` (an IP literal, possibly with an IPv6 zone) is a global one."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def peer_hosts(peers: dict[str, str]) -> frozenset[str]:
    """The hosts of the configured peers' base URLs (lower case), which are always allowed."""
    return frozenset((urlsplit(url).hostname or "").lower() for url in peers.values()) - {""}


class PublicAddressResolver(tornado.netutil.Resolver):
    """Resolves with ``resolver`` and keeps only global addresses, but for ``trusted`` hosts."""

    def initialize(self, resolver: tornado.netutil.Resolver, trusted: Iterable[str] = ()) -> None:  # type: ignore[override]
        self.resolver = resolver
        self.trusted = frozenset(host.lower() for host in trusted)

    def close(self) -> None:
        self.resolver.close()

    async def resolve(self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC) -> list[Any]:
        addresses = await self.resolver.resolve(host, port, family)
        if host.lower().strip("[]") in self.trusted:
            return addresses
        public = [(kind, address) for kind, address in addresses if is_public_address(address[0])]
        if not public:
            raise OSError(f"{host} resolves only to addresses that are not public "
                          "(set federation_private_addresses to allow them)")
        return public
