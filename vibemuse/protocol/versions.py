"""Protocol versions as records of feature flags.

Code asks a version what it can do (``version.frame_auth``), never compares
version strings; ``GET /api/versions`` publishes the flags as ``features``,
so a client can tell which minor revision of a version a server speaks. A client picks a version with the WebSocket subprotocol
``vibemuse.<name>``; ``GET /api/versions`` lists what this server speaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from vibemuse.protocol.errors import ErrorCode, ProtocolError

SUBPROTOCOL_PREFIX = "vibemuse."


@dataclass(frozen=True)
class ProtocolVersion:
    name: str
    # Feature flags: later minor revisions of v1 switch these on as they land.
    signed_events: bool = True
    header_auth: bool = True
    frame_auth: bool = True
    room_chat: bool = True  # say/pose/ooc/emit, rooms, presence, typing, WHO, @wall
    pages: bool = True  # page, offline delivery, receipts, haven, blocks
    channels: bool = True  # channels, aliases, moderation
    resume: bool = True  # since= on reconnect, resumed / resume_gap
    message_management: bool = True  # get, edit, delete, report messages
    history: bool = True  # history endpoints with filters and search

    @property
    def subprotocol(self) -> str:
        return SUBPROTOCOL_PREFIX + self.name

    @property
    def features(self) -> list[str]:
        """The names of the flags that are on, sorted."""
        return sorted(name for name, value in vars(self).items() if value is True)


V1 = ProtocolVersion(name="v1")
SUPPORTED_VERSIONS: tuple[ProtocolVersion, ...] = (V1,)
DEFAULT_VERSION = V1


def negotiate(offered: Iterable[str]) -> ProtocolVersion:
    """Pick the version for a socket from the subprotocols the client offered.

    No subprotocol offered means the default version. Offered subprotocols
    that name none of ours are refused with ``unsupported_version``; the
    client's own order of preference is honoured.
    """
    offered = [item.strip() for item in offered if item.strip()]
    if not offered:
        return DEFAULT_VERSION
    by_subprotocol = {version.subprotocol: version for version in SUPPORTED_VERSIONS}
    for item in offered:
        if item in by_subprotocol:
            return by_subprotocol[item]
    raise ProtocolError(
        ErrorCode.UNSUPPORTED_VERSION,
        "None of the offered subprotocols is spoken here.",
        details={"offered": offered, "supported": sorted(by_subprotocol)},
    )
