"""Channels shared across servers (spec/v1/federation.md section 10): what both sides use.

Theory of operation
-------------------
A channel belongs to its **home**, the server in its id. The home orders
it: every event of the channel gets the next sequence number and a stamp
the home signs (``storage/chain_txns.op_sequence``), and is relayed with its
stamp, through the durable outbox, to every other server with a member on
it. Those servers keep a **copy**: the channel's settings and members, and
its events with their stamps, stored in the home's order (each stamp must
follow the last one held: ``channel_chain.check_successor``). So history,
search and resume work on the copy as on a channel of one's own.

A server plays both parts, each in a module of its own:

- the **home's side** (``services/channel_home.py``, ``ChannelHome``): for
  the remote members of channels homed here — their joins, the pages of
  events their servers ask for, the directory, and the events they send;
- the **member's side** (``services/remote_channels.py``,
  ``RemoteChannels``): for the players here on channels homed elsewhere —
  joining, speaking and leaving through the home, and keeping the copy.

``federation.inbox.PageInbox`` hands a received transaction's channel
events to one side or the other: stamped ones (relays) to the member's
side, the others to the home's.

This module holds what both sides need: the event types; whose a channel
or a player is (``home_of``, ``server_of``); what an event changes in a
channel (``state_of``: the home applies it to a remote member's event as
it takes it, a copy to a relayed event as it keeps it); a channel's
settings on the wire (``settings_of``, ``record_of``); and
``ChannelsHere``. Everything of one channel on this server happens under
one lock (``ChannelsHere.lock``, shared by both sides), so relays,
catch-ups and joins never interleave; and both sides send what they store
to the players of this server the same way (``ChannelsHere.deliver``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from vibemuse.protocol.ids import parse_channel_id, parse_user_id
from vibemuse.realtime.blocks import BlockList
from vibemuse.realtime.broadcast import Broadcaster
from vibemuse.realtime.subscriptions import Subscriptions
from vibemuse.services.events import EventWriter
from vibemuse.storage import channel_txns as ops
from vibemuse.storage.channel_txns import BanRecord, ChannelRecord, MemberRecord

MEMBER, SETTINGS, MESSAGE = "vm.channel.member", "vm.channel.settings", "vm.channel.message"
CHANNEL_TYPES = frozenset({MEMBER, SETTINGS, MESSAGE})
FOREVER = 2**62
SETTING_FIELDS = ("topic", "description", "visibility", "history_visibility")


def home_of(channel_id: str) -> str:
    parsed = parse_channel_id(channel_id)
    if parsed is None:
        raise ValueError(f"{channel_id!r} is not a channel id")
    return parsed.server_name


def server_of(user_id: str) -> str:
    return parse_user_id(user_id).server_name


def unstamped(event: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in event.items() if key != "unsigned"}


class ChannelsHere:
    """What both sides of a shared channel do on this server: take the channel's lock while
    they store, and deliver what they stored to the players here."""

    def __init__(self, *, events: EventWriter, broadcaster: Broadcaster, subscriptions: Subscriptions,
                 blocks: BlockList, server_name: str):
        self.events = events
        self.broadcaster = broadcaster
        self.subscriptions = subscriptions
        self.server_name = server_name
        self._blocks = blocks
        self._locks: dict[str, asyncio.Lock] = {}

    def is_remote(self, channel_id: str) -> bool:
        """Whether the channel is homed on another server."""
        return home_of(channel_id) != self.server_name

    def lock(self, channel_id: str) -> asyncio.Lock:
        return self._locks.setdefault(channel_id, asyncio.Lock())

    def deliver(self, event: dict[str, Any], position: int, also: list[str] = ()) -> None:  # type: ignore[assignment]
        """Send a stored event to the players here tuned in to its channel and to those of ``also``
        here who are not; the players here a leave, kick or ban puts out are tuned out."""
        channel_id = event["channel_id"]
        if event["type"] == MESSAGE:
            frame = self.events.frame("channel_message", event, position, channel_id=channel_id)
            self.broadcaster.to_channel(channel_id, frame, except_users=self._blocks.blockers_of(event["sender"]))
            return
        frame = self.events.frame("channel_notice", event, position, channel_id=channel_id)
        self.broadcaster.to_channel(channel_id, frame)
        listeners = self.subscriptions.listeners(channel_id)
        local = [user_id for user_id in also if server_of(user_id) == self.server_name and user_id not in listeners]
        self.broadcaster.to_users(local, frame)
        content = event.get("content", {})
        if event["type"] == MEMBER and content.get("membership") in ("leave", "kick", "ban"):
            target = content.get("target")
            if content.get("target_server") == self.server_name:  # all of this server's players are out
                self.subscriptions.tune(None, channel_id, False, position)
            elif isinstance(target, str) and server_of(target) == self.server_name:
                self.subscriptions.tune(target, channel_id, False, position)


def settings_of(channel: ChannelRecord) -> dict[str, Any]:
    """A channel's settings as its home describes them to other servers."""
    return {"name": channel.name, "description": channel.description, "topic": channel.topic,
            "visibility": channel.visibility, "owner": channel.owner, "created_ts": channel.created_ts,
            "history_visibility": channel.history_visibility}


def record_of(channel_id: str, info: dict[str, Any]) -> ChannelRecord:
    """A channel as another server describes it (``settings_of``); KeyError, TypeError, ValueError if it is not."""
    return ChannelRecord(channel_id, str(info["name"]), str(info["description"]), str(info["topic"]),
                         str(info["visibility"]), str(info["owner"]), int(info["created_ts"]),
                         str(info.get("history_visibility", "shared")))


def state_of(channel: ChannelRecord, event: dict[str, Any], now: int) -> list[Any]:
    """What an event changes in the channel: at the home as it takes a remote member's event,
    in a copy as it keeps the relayed event (as the home changed it)."""
    content = event.get("content", {})
    channel_id = channel.channel_id
    if event["type"] == SETTINGS:
        values = {key: content[key] for key in SETTING_FIELDS if key in content}
        return [ops.op_update_channel(channel_id, **values)] if values else []
    if event["type"] == MEMBER and isinstance(content.get("target_server"), str):
        return [ops.op_server_membership(channel_id, str(content.get("membership")), content["target_server"],
                                         str(content.get("reason", "")), event["sender"], now)]
    if event["type"] != MEMBER or not isinstance(content.get("target"), str):
        return []
    target, membership = content["target"], content.get("membership")
    if membership == "join":
        role = "owner" if target == channel.owner else "member"
        return [ops.op_add_member(MemberRecord(channel_id, target, role, None, None, None, now)),
                ops.op_set_joined_position(channel_id, target, event["event_id"])]
    if membership in ("leave", "kick"):
        return [ops.op_remove_member(channel_id, target)]
    if membership == "ban":
        return [ops.op_ban(channel_id, BanRecord(target, str(content.get("reason", "")), event["sender"], now))]
    if membership == "unban":
        return [ops.op_unban(channel_id, target)]
    if membership == "invite":
        return [ops.op_invite(channel_id, target, event["sender"], now)]
    if membership == "mute":
        return [ops.op_update_member(channel_id, target, muted_until=content.get("until", FOREVER))]
    if membership == "unmute":
        return [ops.op_update_member(channel_id, target, muted_until=None)]
    if membership in ("promote", "demote"):
        return [ops.op_update_member(channel_id, target, role="moderator" if membership == "promote" else "member")]
    return []


def targets(event: dict[str, Any]) -> list[str]:
    """The player a membership event is about, who hears of it even when not on the channel."""
    target = event.get("content", {}).get("target")
    return [target] if event["type"] == MEMBER and isinstance(target, str) else []
