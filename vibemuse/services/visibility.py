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
    """Members of ``event``'s channel whom the rule keeps from seeing it (live fan-out leaves them out)."""
    channel = await storage.get_channel(event["channel_id"])
    if channel is None:
        return frozenset()
    hidden = set()
    for member in await storage.channel_members(channel.channel_id):
        viewer = Viewer(member.user_id, channels={channel.channel_id: floor_of(channel, member)})
        if not may_see(viewer, event, target) and not await _is_admin(storage, member.user_id):
            hidden.add(member.user_id)
    return frozenset(hidden)


async def _is_admin(storage: Storage, user_id: str) -> bool:
    user = await storage.get_user(user_id)
    return user is not None and user.role == "admin"

