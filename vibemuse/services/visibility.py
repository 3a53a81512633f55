"""Building a ``Viewer`` (``vibemuse.protocol.visibility``) from what the server stores.

The rule itself is pure; this module gathers its inputs: a user's role, the room
their character stands in, and for each channel concerned their ``Floor``
(``channel_floor`` of the channel's history visibility and their latest join).
"""

from __future__ import annotations

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


async def members_who_may_not_see(storage: Storage, event: dict[str, Any],
                                  target: dict[str, Any] | None) -> frozenset[str]:
    """Members of ``event``'s channel whom the rule keeps from seeing it (live fan-out leaves them out).
    Roles are read only for the members the rule would hide were they not admins."""
    channel = await storage.get_channel(event["channel_id"])
    if channel is None:
        return frozenset()

    def viewer(member: MemberRecord, admin: bool = False) -> Viewer:
        return Viewer(member.user_id, admin=admin, channels={channel.channel_id: floor_of(channel, member)})

    members = await storage.channel_members(channel.channel_id)
    unless_admin = [member for member in members if not may_see(viewer(member), event, target)]
    admins = await storage.admins_among([member.user_id for member in unless_admin])
    return frozenset(member.user_id for member in unless_admin
                     if not may_see(viewer(member, member.user_id in admins), event, target))
