"""The home's side of channels shared across servers (spec/v1/federation.md section 10).

Theory of operation
-------------------
This server is the home of the channels whose id names it: it orders
them (``services/shared_channels.py`` tells the whole story). For the
players of other servers on them, it answers their servers:

- **join** (``may_join``, ``accept_join``): ``GET`` then ``POST
  /federation/v1/channels/{id}/join``, the latter carrying the join event
  the member's server made and signed for its player (already checked by
  the receiver). The home decides (exists, private and not invited,
  banned), stores and stamps the join, and answers with the channel's
  settings, members and latest events (``state_answer``), from which the
  member's server makes or updates its copy.
- **catching up** (``events_after``): a page of the channel's stamped
  events after a sequence number, for a server with a member on it.
- **the directory** (``directory``): the public channels homed here, for
  any server that asks (10.7).
- **members' events** (``receive_event``): the messages, leaves, moderation
  and settings changes remote members' servers send in transactions, judged
  as a local member's would be; taken, an event is stored with the next
  stamp (``_sequence``) and relayed, through the outbox, to every server
  taking part; refused, the transaction's answer carries the code, which the
  member's server passes on to its player.

Members' events are taken under the channel's lock, the one the member's
side uses too (``ChannelsHere.lock``); what the home stores goes to the
players here as the member's side sends it (``ChannelsHere.deliver``).
"""

from __future__ import annotations

from typing import Any

from vibemuse.clock import Clock
from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.federation_units import PduRefusal
from vibemuse.protocol.ids import parse_channel_id
from vibemuse.services import channel_rules as rules
from vibemuse.services.shared_channels import (
    MEMBER, MESSAGE, SETTINGS, ChannelsHere, server_of, settings_of, state_of, targets, unstamped)
from vibemuse.storage import DatabaseUnavailable, Storage
from vibemuse.storage import chain_txns
from vibemuse.storage import channel_txns as ops
from vibemuse.storage.channel_txns import MemberRecord

JOIN_HISTORY = 50  # events a join's answer carries
JOIN_HISTORY_BYTES = 512 * 1024


class ChannelHome:
    """The home's side: what this server answers to, and takes from, the servers of the remote
    members of its channels."""

    def __init__(self, storage: Storage, here: ChannelsHere, *, clock: Clock):
        self._storage = storage
        self._here = here
        self._events = here.events
        self._server_name = here.server_name
        self._clock = clock

    async def may_join(self, origin: str, channel_id: str, user_id: str) -> dict[str, Any]:
        """Whether ``user_id`` (of ``origin``) may join a channel homed here: its name and
        visibility, or ProtocolError (``unknown_channel``, ``banned``)."""
        if not isinstance(user_id, str) or parse_channel_id(channel_id) is None:
            raise ProtocolError(ErrorCode.INVALID_REQUEST, "A channel id and a user id are needed.")
        try:
            user_server = server_of(user_id)
        except ProtocolError:
            user_server = None
        if user_server != origin:
            raise ProtocolError(ErrorCode.INVALID_REQUEST, f"{user_id} is not a player of {origin}.")
        channel = await self._storage.get_channel(channel_id) if not self._here.is_remote(channel_id) else None
        member = await self._storage.get_membership(channel_id, user_id) if channel else None
        invited = channel is not None and await self._storage.is_invited(channel_id, user_id)
        if channel is None or (channel.visibility == "private" and not invited and member is None):
            raise ProtocolError(ErrorCode.UNKNOWN_CHANNEL, f"There is no channel {channel_id!r} here.",
                                details={"channel": channel_id})
        if member is None:
            server_ban = await self._storage.get_server_ban(channel_id, origin)
            if server_ban is not None:
                raise ProtocolError(ErrorCode.BANNED, f"The players of {origin} are banned from {channel.name}.",
                                    details={"reason": server_ban.reason})
            ban = await self._storage.get_ban(channel_id, user_id)
            if ban is not None:
                raise ProtocolError(ErrorCode.BANNED, f"You are banned from {channel.name}.",
                                    details={"reason": ban.reason})
        return {"name": channel.name, "visibility": channel.visibility}

    async def accept_join(self, origin: str, channel_id: str, event: Any) -> dict[str, Any]:
        """The join of a player of ``origin`` (its event already checked): the answer, or ProtocolError."""
        content = event.get("content", {}) if isinstance(event, dict) else {}
        if (event.get("type") != MEMBER or content.get("membership") != "join" or content.get("target") != event.get(
                "sender") or event.get("channel_id") != channel_id):
            raise ProtocolError(ErrorCode.INVALID_REQUEST, "The event is not a join of a player of yours to it.")
        user_id = event["sender"]
        await self.may_join(origin, channel_id, user_id)
        channel = await self._storage.get_channel(channel_id)
        assert channel is not None
        member = await self._storage.get_membership(channel_id, user_id)
        if member is None:
            role = "owner" if channel.owner == user_id else "member"
            muted_until = await self._storage.standing_mute(channel_id, user_id)
            stored = unstamped(event)
            state = [ops.op_add_member(MemberRecord(channel_id, user_id, role, None, None, muted_until,
                                                    self._clock())),
                     ops.op_set_joined_position(channel_id, user_id, event["event_id"]),
                     self._sequence(channel_id, [stored])]
            _, positions = await self._events.store([stored], None, ops=state)
            if positions:
                self._here.deliver(stored, positions[0])
        return await self.state_answer(channel_id)

    async def state_answer(self, channel_id: str) -> dict[str, Any]:
        channel = await self._storage.get_channel(channel_id)
        assert channel is not None
        members = await self._storage.channel_members(channel_id)
        head = await self._storage.channel_head(channel_id) or (0, "")
        after = max(0, head[0] - JOIN_HISTORY)
        items = await self._storage.stamped_after(channel_id, after, JOIN_HISTORY)
        size, events = 0, []
        for item in reversed(items):  # the newest first, while they fit
            size += len(str(item.event)) + len(str(item.stamp))
            if size > JOIN_HISTORY_BYTES and events:
                break
            events.append({"event": item.event, "stamp": item.stamp})
        events.reverse()
        return {
            "channel": settings_of(channel),
            "members": [{"user_id": m.user_id, "role": m.role, "title": m.title, "muted_until": m.muted_until,
                         "joined_ts": m.joined_ts} for m in members],
            "events": events,
            "head": {"seq": head[0], "chain": head[1]},
        }

    async def directory(self, search: str | None, after: str | None, limit: int) -> dict[str, Any]:
        """The public channels homed here, by name (``GET /federation/v1/channels``, 10.7)."""
        found = await self._storage.list_channels("", search, after, limit + 1, home=self._server_name)
        return {"channels": [{"channel_id": channel.channel_id, **settings_of(channel)} for channel in found[:limit]],
                "next": found[limit - 1].name.casefold() if len(found) > limit else None}

    async def events_after(self, origin: str, channel_id: str, after: int, limit: int) -> dict[str, Any]:
        """A page of a channel homed here, for a server with a member on it."""
        channel = await self._storage.get_channel(channel_id) if not self._here.is_remote(channel_id) else None
        if channel is None:
            raise ProtocolError(ErrorCode.UNKNOWN_CHANNEL, f"There is no channel {channel_id!r} here.",
                                details={"channel": channel_id})
        members = await self._storage.channel_members(channel_id)
        if not any(server_of(member.user_id) == origin for member in members):
            raise ProtocolError(ErrorCode.FORBIDDEN, f"{origin} has no member on {channel_id}.")
        items = await self._storage.stamped_after(channel_id, after, limit)
        head = await self._storage.channel_head(channel_id) or (0, "")
        return {"events": [{"event": item.event, "stamp": item.stamp} for item in items],
                "head": {"seq": head[0], "chain": head[1]}}


    async def receive_event(self, event: dict[str, Any]) -> PduRefusal | None:
        """A remote member's event for a channel homed here: judged as a local member's would be."""
        channel_id = event.get("channel_id")
        if not isinstance(channel_id, str) or parse_channel_id(channel_id) is None or self._here.is_remote(channel_id):
            return PduRefusal(ErrorCode.UNKNOWN_CHANNEL.value, f"{channel_id} is not a channel of this server")
        if (await self._storage.events_by_id([event["event_id"]])):
            return None  # sent again after an outage: it was taken the first time
        channel = await self._storage.get_channel(channel_id)
        if channel is None:
            return PduRefusal(ErrorCode.UNKNOWN_CHANNEL.value, f"There is no channel {channel_id} here.")
        sender = event["sender"]
        content = event.get("content", {})
        stored = unstamped(event)
        membership, target, server = content.get("membership"), content.get("target"), content.get("target_server")
        member = await self._storage.get_membership(channel_id, sender)
        server_leaves = event["type"] == MEMBER and membership == "leave" and server == server_of(sender)
        if member is None and not server_leaves:  # a server's leave may come from any player of it (10.6)
            return PduRefusal(ErrorCode.NOT_A_MEMBER.value, f"{sender} is not on {channel.name}.")
        try:
            if event["type"] == MEMBER and isinstance(server, str):
                members = await self._storage.channel_members(channel_id)
                has_members = any(server_of(m.user_id) == server for m in members)
                if server_leaves and not has_members:
                    raise ProtocolError(ErrorCode.NOT_A_MEMBER, f"No player of {server} is on {channel.name}.")
                if not server_leaves:
                    rules.check_server_moderation(channel, self._server_name, server_of(sender), member, False,
                                                  str(membership), server, has_members)
                state = state_of(channel, event, self._clock())
            elif event["type"] == MESSAGE:
                if member.muted_until is not None and member.muted_until > self._clock():
                    return PduRefusal(ErrorCode.MUTED.value, f"{sender} is muted on {channel.name}.")
                state: list[Any] = []
            elif event["type"] == MEMBER and membership == "leave" and target == sender:
                state = [ops.op_remove_member(channel_id, sender)]
            elif event["type"] == MEMBER and membership in rules.MODERATION and isinstance(target, str):
                target_member = await self._storage.get_membership(channel_id, target)
                rules.check_moderation(channel, sender, member, False, membership, target,
                                       str(content.get("target_name", target)), target_member)
                state = state_of(channel, event, self._clock())
            elif event["type"] == SETTINGS and "retention_days" not in content:
                rules.check_may_change(channel, member, False)
                state = state_of(channel, event, self._clock())
            else:
                return PduRefusal(ErrorCode.FORBIDDEN.value, "This is not something a member may do from afar.")
        except DatabaseUnavailable:
            raise  # not a refusal of the event: the transaction fails and its sender tries again
        except ProtocolError as refusal:
            return PduRefusal(refusal.code.value, refusal.message)
        async with self._here.lock(channel_id):
            _, positions = await self._events.store([stored], None, ops=[*state, self._sequence(channel_id, [stored])])
        if positions:
            self._here.deliver(stored, positions[0], also=targets(stored))
        return None

    def _sequence(self, channel_id: str, events: list[dict[str, Any]]) -> Any:
        return chain_txns.op_sequence(channel_id, self._server_name, self._events.signing_key(), events,
                                      self._clock())
