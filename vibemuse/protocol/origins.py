"""Web origins (RFC 6454): the scheme, host and port a browser page came from.

A WebSocket handshake from a browser names its page's origin in ``Origin``.
Two origins are the same only when scheme, host and port all match; a port
left out is the scheme's default (``http://host`` is ``http://host:80``).
Anything that does not parse as ``scheme://host[:port]`` (``null``, a path,
user info, a port out of range) is no origin at all and matches nothing.
"""

from __future__ import annotations

import urllib.parse
from typing import NamedTuple

DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


def parse_origin(text: str) -> Origin | None:
    """``scheme://host[:port]`` (one trailing slash tolerated) as an ``Origin``; None if it is not one."""
    try:
        parts = urllib.parse.urlsplit(text.strip().removesuffix("/"))
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    if parts.path or parts.query or parts.fragment:
        return None
    return Origin(scheme, parts.hostname.lower(), port if port is not None else DEFAULT_PORTS[scheme])


def origin_of_request(scheme: str, host_header: str) -> Origin | None:
    """The server's own origin as a request reached it: its scheme and its ``Host``."""
    return parse_origin(f"{scheme}://{host_header}") if host_header else None


def origin_allowed(offered: str, own: Origin | None, allowed: tuple[str, ...]) -> bool:
    """True if ``offered`` is the server's own origin or one of ``allowed``."""
    origin = parse_origin(offered)
    if origin is None:
        return False
    return origin == own or any(origin == parse_origin(entry) for entry in allowed)
