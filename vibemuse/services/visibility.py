"""Building a ``Viewer`` (``vibemuse.protocol.visibility``) from what the server stores.

The rule itself is pure; this module gathers its inputs: a user's role, the room
their character stands in, and for each channel concerned their ``Floor``
(``channel_floor`` of the channel's history visibility and their latest join).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from vibemuse.protocol.visibility import Floor, Viewer, channel_floor, may_see
from vibemuse.services.accounts import Principal
from vibemuse.storage import Storage
from vibemuse.storage.channel_txns import ChannelRecord, MemberRecord


def floor_of(channel: ChannelRecord, member: MemberRecord) -> Floor:
    return channel_floor(channel.history_visibility, member.joined_position, member.joined_ts)


async def viewer_of(storage: Storage, principal: Principal, room_id: str | None,
                    channel_ids: Iterable[str]) -> Viewer:
    """``principal`` as a viewer of events in ``room_id`` (where they stand) and these channels."""
    if principal.has_role("admin"):
        return Viewer(principal.user_id, admin=True)
    floors: dict[str, Floor] = {}
    for channel_id in set(channel_ids):
        member = await storage.get_membership(channel_id, principal.user_id)
        channel = await storage.get_channel(channel_id) if member is not None else None
        if member is not None and channel is not None:
            floors[channel_id] = floor_of(channel, member)
    return Viewer(principal.user_id, room_id=room_id, channels=floors)


@dataclass(frozen=True)
class ChannelAudience:
    """Who of a channel may get a live frame about one of its events, read *before* that frame's
    event is stored: delivery then follows the commit at once, so live frames keep stream order
    (a client resuming from the highest position it saw must not skip a frame still on its way)."""

    members: frozenset[str]  # the channel's members when read
    hidden: frozenset[str]  # of those, whom the rule keeps from seeing the event
    joined_only: bool  # a ``joined`` channel: whoever joined after the read joined after the event

    def excluded(self, listeners: Iterable[str]) -> frozenset[str]:
        """Whom to leave out among the channel's ``listeners`` at delivery."""
        if not self.joined_only:
            return self.hidden
        return self.hidden | frozenset(user for user in listeners if user not in self.members)


async def channel_audience(storage: Storage, event: dict[str, Any],
                           target: dict[str, Any] | None) -> ChannelAudience:
    """The audience of ``event`` (with a stream position at or below the one it will have) in its
    channel. Roles are read only for the members the rule would hide were they not admins."""
    channel = await storage.get_channel(event["channel_id"])
    if channel is None:
        return ChannelAudience(frozenset(), frozenset(), False)

    def viewer(member: MemberRecord, admin: bool = False) -> Viewer:
        return Viewer(member.user_id, admin=admin, channels={channel.channel_id: floor_of(channel, member)})

    members = await storage.channel_members(channel.channel_id)
    unless_admin = [member for member in members if not may_see(viewer(member), event, target)]
    admins = await storage.admins_among([member.user_id for member in unless_admin])
    hidden = frozenset(member.user_id for member in unless_admin
                       if not may_see(viewer(member, member.user_id in admins), event, target))
    return ChannelAudience(frozenset(member.user_id for member in members), hidden,
                           channel.history_visibility == "joined")
