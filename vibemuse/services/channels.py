"""Channels: named, persistent chat lines that members hear wherever they stand.

Theory of operation. A channel lives on the server that made it and has a
server-qualified id (``#public:muse.example.org``); the later federation
issue relays its events to members on other servers without reshaping them.
Everything that happens on a channel is a signed event in the channel's
scope — its creation, every join, leave and moderation action
(``vm.channel.member``), every change of settings (``vm.channel.settings``)
and every message (``vm.channel.message``) — stored in the same transaction
as the state it changes (``ChannelOp``), so the audit trail and the state
never disagree.

Members hear a channel on every socket they have: their online users are
tuned in (``Subscriptions.tune_in``) when they connect or join, and tuned out
at once when they leave or are kicked or banned. A message is delivered once
to the channel's topic, minus the members who block its sender.

Who may do what: any member speaks unless muted; owners, moderators and
admins moderate (kick, ban, unban, invite, mute, unmute) and change the
topic, description and visibility; only owners and admins promote or demote
moderators; nobody but an admin acts against the owner. A private channel is
joined by invitation only and is unknown to those who may not see it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vibemuse.clock import Clock
from vibemuse.protocol import content as compose
from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.ids import (
    CHANNEL_NAME_PATTERN, QualifiedId, channel_id_for, is_valid_server_name, parse_channel_id, parse_user_id,
    validate_channel_name,
)
from vibemuse.protocol.markup import sanitize_text
from vibemuse.realtime.blocks import BlockList
from vibemuse.realtime.broadcast import Broadcaster
from vibemuse.realtime.connections import ConnectionRegistry
from vibemuse.realtime.subscriptions import Subscriptions
from vibemuse.services.accounts import Principal
from vibemuse.services.events import EventWriter
from vibemuse.services.pages import PageService
from vibemuse.services import channel_rules as rules
from vibemuse.services.remote_channels import Answering, RemoteChannels
from vibemuse.storage import Receipt, Storage, TransactionKey, UserRecord
from vibemuse.storage import chain_txns
from vibemuse.storage import channel_txns as ops
from vibemuse.storage.channel_txns import BanRecord, ChannelRecord, MemberRecord

CREATE, MEMBER, SETTINGS, MESSAGE = "vm.channel.create", "vm.channel.member", "vm.channel.settings", "vm.channel.message"
CHANNEL_NAME = re.compile(CHANNEL_NAME_PATTERN)
MODERATION = rules.MODERATION
MAX_ALIAS, MAX_TITLE, MAX_TOPIC, MAX_DESCRIPTION, MAX_REASON = 16, 64, 300, 1000, 300


@dataclass(frozen=True)
class ChannelView:
    channel: ChannelRecord
    members: list[MemberRecord]
    membership: MemberRecord | None


class ChannelService:
    def __init__(
        self,
        storage: Storage,
        *,
        subscriptions: Subscriptions,
        registry: ConnectionRegistry,
        broadcaster: Broadcaster,
        events: EventWriter,
        blocks: BlockList,
        pages: PageService,
        server_name: str,
        max_text_length: int,
        clock: Clock,
        remote: RemoteChannels | None = None,
    ):
        self._remote = remote  # channels homed on other servers (services/remote_channels.py)
        self._storage = storage
        self._subscriptions = subscriptions
        self._registry = registry
        self._broadcaster = broadcaster
        self._events = events
        self._blocks = blocks
        self._pages = pages
        self._server_name = server_name
        self._max_text_length = max_text_length
        self._clock = clock

    # -- finding channels ------------------------------------------------------

    async def find(self, principal: Principal, ref: str) -> ChannelRecord:
        """A channel by id or (local) name that ``principal`` may see; ``unknown_channel`` otherwise."""
        parsed = parse_channel_id(ref) or self._address(ref)
        channel_id = str(parsed) if parsed else channel_id_for(ref, self._server_name)
        valid = parsed is not None or CHANNEL_NAME.fullmatch(ref) is not None  # nothing odd reaches the database
        channel = await self._storage.get_channel(channel_id) if valid else None
        if channel is not None and await self._may_see(principal, channel):
            return channel
        shown = sanitize_text(ref)[:64]
        raise ProtocolError(ErrorCode.UNKNOWN_CHANNEL, f"There is no channel {shown!r}.", details={"channel": shown})

    @staticmethod
    def _address(ref: str) -> QualifiedId | None:
        """``public@alpha.example``: the channel ``public`` of that server."""
        name, at, server = ref.partition("@")
        return parse_channel_id(f"#{name.lower()}:{server}") if at and CHANNEL_NAME.fullmatch(name) else None

    def _homed_elsewhere(self, ref: str | None) -> str | None:
        """The id of the channel ``ref`` names if it is homed on another server and federation is on."""
        if self._remote is None or not self._remote.reachable or not ref:
            return None
        parsed = parse_channel_id(ref) or self._address(ref)
        return str(parsed) if parsed is not None and self._remote.is_remote(str(parsed)) else None

    async def _may_see(self, principal: Principal, channel: ChannelRecord) -> bool:
        if channel.visibility == "public" or principal.has_role("admin"):
            return True
        if await self._storage.get_membership(channel.channel_id, principal.user_id):
            return True
        return await self._storage.is_invited(channel.channel_id, principal.user_id)

    async def by_alias(self, principal: Principal, alias: str) -> ChannelRecord:
        """``+pub``: the user's own alias, else a unique prefix of one of their channels' names."""
        memberships = await self._storage.memberships_of(principal.user_id)
        alias = alias.lower()
        exact = [channel for member, channel in memberships if member.alias == alias]
        prefixed = [channel for _, channel in memberships if channel.name.casefold().startswith(alias.casefold())]
        found = exact or (prefixed if len(prefixed) == 1 else [])
        if not found:
            raise ProtocolError(ErrorCode.UNKNOWN_CHANNEL, f"You have no channel alias {alias[:16]!r}.",
                                details={"alias": alias[:16]})
        return found[0]

    # -- joining and leaving -----------------------------------------------------

    async def create_or_join(
        self, principal: Principal, message_id: str, name: str, *, description: str = "",
        visibility: str = "public", alias: str | None = None, title: str | None = None,
        history_visibility: str = "shared",
    ) -> tuple[ChannelRecord, bool, Receipt]:
        """Make the channel (the caller owns it) or, if it exists, join it."""
        name = validate_channel_name(name)
        existing = await self._storage.get_channel(channel_id_for(name, self._server_name))
        if existing is not None:
            channel = await self.find(principal, name)
            return channel, False, await self.join(principal, message_id, channel.channel_id, alias, title)
        now = self._clock()
        channel = ChannelRecord(channel_id_for(name, self._server_name), name, _clean(description, MAX_DESCRIPTION),
                                "", visibility, principal.user_id, now, history_visibility)
        owner = MemberRecord(channel.channel_id, principal.user_id, "owner", _alias(alias), _clean(title, MAX_TITLE)
                             or None, None, now)
        create = self._event(CREATE, principal, channel, {
            "name": name, "creator": principal.user_id, "visibility": visibility, "description": channel.description,
            "history_visibility": history_visibility, "speaker": principal.user.username,
            "rendered": compose.channel_notice(name, f"Channel created by {principal.user.username}."),
        })
        joined = self._member_event(principal, channel, "join", principal.user)
        receipt, positions = await self._apply(principal, "join_channel", message_id, [create, joined], [
            ops.op_create_channel(channel), ops.op_add_member(owner),
            ops.op_set_joined_position(channel.channel_id, principal.user_id, joined["event_id"])])
        self._tune_in(principal.user_id, channel.channel_id, positions[-1] if positions else None)
        self._announce(channel, [create, joined], positions)
        return channel, True, receipt

    async def join(
        self, principal: Principal, message_id: str, ref: str, alias: str | None = None, title: str | None = None
    ) -> Receipt:
        elsewhere = self._homed_elsewhere(ref)
        if elsewhere is not None:
            assert self._remote is not None
            return await self._remote.join(principal, elsewhere, _alias(alias),
                                           (_clean(title, MAX_TITLE) or None) if title is not None else None)
        channel = await self.find(principal, ref)
        member = await self._storage.get_membership(channel.channel_id, principal.user_id)
        # A returning owner is the owner again; a mute survives leaving and rejoining.
        role = member.role if member else ("owner" if channel.owner == principal.user_id else "member")
        muted_until = member.muted_until if member else await self._storage.standing_mute(
            channel.channel_id, principal.user_id)
        settings = ops.op_add_member(MemberRecord(
            channel.channel_id, principal.user_id, role,
            _alias(alias) if alias is not None else (member.alias if member else None),
            (_clean(title, MAX_TITLE) or None) if title is not None else (member.title if member else None),
            muted_until, member.joined_ts if member else self._clock()))
        if member is not None:  # already in: only alias and title change, no event
            receipt, _ = await self._apply(principal, "join_channel", message_id, [], [settings])
            return receipt
        ban = await self._storage.get_ban(channel.channel_id, principal.user_id)
        if ban is not None and not principal.has_role("admin"):
            raise ProtocolError(ErrorCode.BANNED, f"You are banned from {channel.name}.", details={"reason": ban.reason})
        if channel.visibility == "private" and not principal.has_role("admin"):
            if not await self._storage.is_invited(channel.channel_id, principal.user_id):
                raise ProtocolError(ErrorCode.INVITE_ONLY, f"{channel.name} is private: you need an invitation.")
        event = self._member_event(principal, channel, "join", principal.user)
        receipt, positions = await self._apply(principal, "join_channel", message_id, [event], [
            settings, ops.op_set_joined_position(channel.channel_id, principal.user_id, event["event_id"])])
        if positions:
            self._tune_in(principal.user_id, channel.channel_id, positions[-1])
            self._announce(channel, [event], positions)
        return receipt

    async def leave(self, principal: Principal, message_id: str, ref: str | None,
                    alias: str | None = None) -> Receipt | Answering:
        channel = await (self.by_alias(principal, alias) if alias else self.find(principal, ref or ""))
        request = TransactionKey(principal.user_id, "leave_channel", message_id)
        if await self._storage.get_membership(channel.channel_id, principal.user_id) is None:
            earlier = await self._storage.get_receipt(request)
            if earlier is not None:
                return earlier
            raise ProtocolError(ErrorCode.NOT_A_MEMBER, f"You are not on {channel.name}.")
        event = self._member_event(principal, channel, "leave", principal.user)
        if self._remote is not None and self._remote.is_remote(channel.channel_id):
            return await self._remote.submit(principal, message_id, "leave_channel", event)
        receipt, positions = await self._apply(principal, "leave_channel", message_id, [event],
                                               [ops.op_remove_member(channel.channel_id, principal.user_id)])
        if positions:
            self._announce(channel, [event], positions, also=[principal.user_id])
            self._subscriptions.tune(principal.user_id, channel.channel_id, False, positions[-1])
        return receipt

    def _tune_in(self, user_id: str, channel_id: str, position: int | None) -> None:
        """Hear the channel from the join at ``position`` on — on the user's open sockets, on
        every process (a join over HTTP with none open takes effect when they connect)."""
        self._subscriptions.tune(user_id, channel_id, True, position)

    def tune_in_user(self, user_id: str, memberships: list[tuple[MemberRecord, ChannelRecord]]) -> None:
        """A user's socket opened: they hear all their channels (``memberships``) again."""
        for member, _ in memberships:
            self._subscriptions.tune_in(user_id, member.channel_id)

    # -- speaking -----------------------------------------------------------------

    async def speak(
        self, principal: Principal, message_id: str, text: str, *, ref: str | None = None,
        alias: str | None = None, style: str = "say",
    ) -> Receipt | Answering:
        channel = await (self.by_alias(principal, alias) if alias else self.find(principal, ref or ""))
        member = await self._require_member(principal, channel)
        if member.muted_until is not None and member.muted_until > self._clock():
            details = {} if member.muted_until >= FOREVER else {"untilMs": member.muted_until}
            raise ProtocolError(ErrorCode.MUTED, f"You are muted on {channel.name}.", details=details)
        speaker = f"{member.title} {principal.user.username}" if member.title else principal.user.username
        content = compose.channel_message(channel.name, speaker, text, self._max_text_length, style=style)
        event = self._events.make(MESSAGE, principal.user_id, content, channel_id=channel.channel_id)
        if self._remote is not None and self._remote.is_remote(channel.channel_id):
            return await self._remote.submit(principal, message_id, "channel", event)
        request = TransactionKey(principal.user_id, "channel", message_id)
        receipt, positions = await self._events.store([event], request,
                                                      ops=[self._sequence(channel.channel_id, [event])])
        if positions:
            frame = self._events.frame("channel_message", event, positions[0], channel_id=channel.channel_id)
            self._broadcaster.to_channel(channel.channel_id, frame,
                                         except_users=self._blocks.blockers_of(principal.user_id))
        return receipt

    async def _require_member(self, principal: Principal, channel: ChannelRecord) -> MemberRecord:
        member = await self._storage.get_membership(channel.channel_id, principal.user_id)
        if member is None:
            raise ProtocolError(ErrorCode.NOT_A_MEMBER, f"You are not on {channel.name}.")
        return member

    # -- moderation and settings ------------------------------------------------------

    async def moderate(
        self, principal: Principal, message_id: str, ref: str, action: str, target_ref: str | None, *,
        server: str | None = None, reason: str | None = None, duration_seconds: int | None = None,
    ) -> Receipt | Answering:
        """Act on a member (``target_ref``) or on every player of another ``server`` (16.5)."""
        channel = await self.find(principal, ref)
        elsewhere = self._remote is not None and self._remote.is_remote(channel.channel_id)
        admin = principal.has_role("admin") and not elsewhere  # an admin here is none on another server
        actor = await self._storage.get_membership(channel.channel_id, principal.user_id)
        if server is not None:
            return await self._moderate_server(principal, message_id, channel, actor, admin, elsewhere, action,
                                               server, _clean(reason, MAX_REASON) or None)
        assert target_ref is not None
        target = await self._pages.user_or_remote(target_ref)  # a remote member too (federation.md 10)
        target_member = await self._storage.get_membership(channel.channel_id, target.user_id)
        rules.check_moderation(channel, principal.user_id, actor, admin, action, target.user_id, target.username,
                               target_member)
        reason = _clean(reason, MAX_REASON) or None
        state, extra = self._moderation_state(channel, action, principal, target, target_member, reason,
                                              duration_seconds)
        event = self._member_event(principal, channel, action, target, **extra)
        if elsewhere:  # its home judges it again, applies and relays it
            assert self._remote is not None
            return await self._remote.submit(principal, message_id, "channel_moderate", event)
        receipt, positions = await self._apply(principal, "channel_moderate", message_id, [event], state)
        if positions:
            self._announce(channel, [event], positions, also=[target.user_id])
            if action in ("kick", "ban"):
                self._subscriptions.tune(target.user_id, channel.channel_id, False, positions[-1])
        return receipt

    async def _moderate_server(self, principal: Principal, message_id: str, channel: ChannelRecord,
                               actor: MemberRecord | None, admin: bool, elsewhere: bool, action: str, server: str,
                               reason: str | None) -> Receipt | Answering:
        """Kick, ban or unban every player of ``server`` (federation.md 10.6)."""
        home = parse_channel_id(channel.channel_id).server_name  # type: ignore[union-attr]
        members = await self._storage.channel_members(channel.channel_id)
        has_members = any(parse_user_id(member.user_id).server_name == server for member in members)
        rules.check_server_moderation(channel, home, self._server_name, actor, admin, action, server, has_members)
        extra = {"reason": reason} if reason else {}
        line = compose.server_membership_line(action, principal.user.username, server, reason)
        event = self._event(MEMBER, principal, channel, {
            "membership": action, "target_server": server, "speaker": principal.user.username,
            "rendered": compose.channel_notice(channel.name, line), **extra})
        if elsewhere:
            assert self._remote is not None
            return await self._remote.submit(principal, message_id, "channel_moderate", event)
        state = ops.op_server_membership(channel.channel_id, action, server, reason or "", principal.user_id,
                                         self._clock())
        receipt, positions = await self._apply(principal, "channel_moderate", message_id, [event], [state])
        if positions:
            self._announce(channel, [event], positions)
        return receipt

    def _moderation_state(self, channel: ChannelRecord, action: str, principal: Principal, target: UserRecord,
                          target_member: MemberRecord | None, reason: str | None,
                          duration_seconds: int | None) -> tuple[list[ops.ChannelOp], dict[str, Any]]:
        channel_id, now = channel.channel_id, self._clock()
        extra: dict[str, Any] = {"reason": reason} if reason else {}
        if action == "kick":
            return [ops.op_remove_member(channel_id, target.user_id)], extra
        if action == "ban":
            ban = BanRecord(target.user_id, reason or "", principal.user_id, now)
            return [ops.op_ban(channel_id, ban)], extra
        if action == "unban":
            return [ops.op_unban(channel_id, target.user_id)], extra
        if action == "invite":
            return [ops.op_invite(channel_id, target.user_id, principal.user_id, now)], extra
        if action == "mute":
            until = now + duration_seconds * 1000 if duration_seconds else FOREVER
            if duration_seconds:
                extra["until"] = until
            return [ops.op_update_member(channel_id, target.user_id, muted_until=until)], extra
        if action == "unmute":
            return [ops.op_update_member(channel_id, target.user_id, muted_until=None)], extra
        role = "moderator" if action == "promote" else "member"
        return [ops.op_update_member(channel_id, target.user_id, role=role)], extra

    async def update(self, principal: Principal, message_id: str, ref: str,
                     changes: dict[str, Any]) -> Receipt | Answering:
        channel = await self.find(principal, ref)
        elsewhere = self._remote is not None and self._remote.is_remote(channel.channel_id)
        actor = await self._storage.get_membership(channel.channel_id, principal.user_id)
        rules.check_may_change(channel, actor, principal.has_role("admin") and not elsewhere)
        values = {key: value for key, value in {
            "topic": _clean(changes.get("topic"), MAX_TOPIC) if "topic" in changes else None,
            "description": _clean(changes.get("description"), MAX_DESCRIPTION) if "description" in changes else None,
            "visibility": changes.get("visibility"),
            "history_visibility": changes.get("historyVisibility"),
        }.items() if value is not None}
        if "retentionDays" in changes:  # how long the server keeps the history: the operator's call
            if not principal.has_role("admin") or elsewhere:
                raise ProtocolError(ErrorCode.FORBIDDEN, "Only admins can change how long a channel's history is kept.")
            values["retention_days"] = changes["retentionDays"]
        rendered = compose.channel_notice(channel.name, _settings_line(principal.user.username, values))
        event = self._event(SETTINGS, principal, channel, {**values, "speaker": principal.user.username,
                                                            "rendered": rendered})
        if elsewhere:
            assert self._remote is not None
            return await self._remote.submit(principal, message_id, "channel_update", event)
        receipt, positions = await self._apply(principal, "channel_update", message_id, [event],
                                               [ops.op_update_channel(channel.channel_id, **values)])
        if positions:
            self._announce(channel, [event], positions)
        return receipt

    # -- reading ------------------------------------------------------------------

    async def view(self, principal: Principal, ref: str) -> ChannelView:
        channel = await self.find(principal, ref)
        membership = await self._storage.get_membership(channel.channel_id, principal.user_id)
        visible = channel.visibility == "public" or membership is not None or principal.has_role("admin")
        members = await self._storage.channel_members(channel.channel_id) if visible else []
        return ChannelView(channel, members, membership)

    def online(self, channel_id: str) -> set[str]:
        return set(self._subscriptions.listeners(channel_id))

    async def listing(self, principal: Principal, search: str | None, after: str | None,
                      limit: int, server: str | None = None) -> tuple[list[ChannelRecord], str | None]:
        """Channels ``principal`` may see, by name, and the cursor of the next page; with the name
        of another ``server``, its public channels, asked of it (federation.md 10.7)."""
        if server is not None and server != self._server_name:
            if not is_valid_server_name(server):
                raise ProtocolError(ErrorCode.INVALID_REQUEST, "'server' is not a server name.")
            if self._remote is None or not self._remote.reachable:
                raise ProtocolError(ErrorCode.HOME_UNREACHABLE, f"{server} cannot be reached: federation is off.")
            return await self._remote.directory_of(server, search, after, limit)
        found = await self._storage.list_channels(principal.user_id, search, after, limit + 1,
                                                  see_all=principal.has_role("admin"))
        return found[:limit], found[limit - 1].name.casefold() if len(found) > limit else None

    async def leave_as_server(self, principal: Principal, ref: str) -> Receipt:
        """An admin takes this whole server off a channel homed elsewhere (federation.md 10.6)."""
        if not principal.has_role("admin"):
            raise ProtocolError(ErrorCode.FORBIDDEN, "Only admins take the server off a channel.")
        channel_id = self._homed_elsewhere(ref)
        if channel_id is None:
            raise ProtocolError(ErrorCode.UNKNOWN_CHANNEL, "That is no channel of another server.",
                                details={"channel": sanitize_text(ref)[:64]})
        assert self._remote is not None
        return await self._remote.leave_as_server(principal, channel_id)

    async def memberships(self, principal: Principal) -> list[tuple[MemberRecord, ChannelRecord]]:
        return await self._storage.memberships_of(principal.user_id)

    # -- plumbing -------------------------------------------------------------------

    def _event(self, event_type: str, principal: Principal, channel: ChannelRecord,
               content: dict[str, Any]) -> dict[str, Any]:
        return self._events.make(event_type, principal.user_id, content, channel_id=channel.channel_id)

    def _member_event(self, principal: Principal, channel: ChannelRecord, membership: str, target: UserRecord,
                      **extra: Any) -> dict[str, Any]:
        line = _member_line(membership, principal.user.username, target.username, extra)
        return self._event(MEMBER, principal, channel, {
            "membership": membership, "target": target.user_id, "target_name": target.username,
            "speaker": principal.user.username, "rendered": compose.channel_notice(channel.name, line), **extra,
        })

    async def _apply(self, principal: Principal, kind: str, message_id: str, events: list[dict[str, Any]],
                     state: list[ops.ChannelOp]) -> tuple[Receipt, list[int]]:
        request = TransactionKey(principal.user_id, kind, message_id)
        if events:
            state = [*state, self._sequence(events[0]["channel_id"], events)]
        return await self._events.store(events, request, ops=state)

    def _sequence(self, channel_id: str, events: list[dict[str, Any]]) -> ops.ChannelOp:
        """The op that gives ``events`` their places in the channel's order (this server is its
        home) and relays them to the other servers taking part."""
        return chain_txns.op_sequence(channel_id, self._server_name, self._events.signing_key(), events,
                                      self._clock())

    def _announce(self, channel: ChannelRecord, events: list[dict[str, Any]], positions: list[int],
                  also: list[str] = ()) -> None:  # type: ignore[assignment]
        """Send channel notices for freshly stored events (to those tuned in, and ``also``)."""
        for event, position in zip(events, positions):
            frame = self._events.frame("channel_notice", event, position, channel_id=channel.channel_id)
            self._broadcaster.to_channel(channel.channel_id, frame)
            listeners = self._subscriptions.listeners(channel.channel_id)
            self._broadcaster.to_users([user_id for user_id in also if user_id not in listeners], frame)


FOREVER = 2**62  # muted_until for a mute without end


def _clean(text: str | None, limit: int) -> str:
    return " ".join(sanitize_text(text).split())[:limit] if text else ""


def _alias(alias: str | None) -> str | None:
    if alias is None:
        return None
    cleaned = _clean(alias, MAX_ALIAS).lower()
    if cleaned and not cleaned.replace("_", "").replace("-", "").isalnum():
        raise ProtocolError(ErrorCode.INVALID_REQUEST, "Channel aliases are letters, digits, '_' and '-'.")
    return cleaned or None


def _member_line(membership: str, actor: str, target: str, extra: dict[str, Any]) -> str:
    reason = f" ({extra['reason']})" if extra.get("reason") else ""
    return {
        "join": f"{target} has joined this channel.",
        "leave": f"{target} has left this channel.",
        "kick": f"{target} has been kicked by {actor}{reason}.",
        "ban": f"{target} has been banned by {actor}{reason}.",
        "unban": f"{target} has been unbanned by {actor}.",
        "invite": f"{actor} has invited {target}.",
        "mute": f"{target} has been muted by {actor}{reason}.",
        "unmute": f"{target} may speak again.",
        "promote": f"{actor} has made {target} a moderator.",
        "demote": f"{actor} has removed {target} as a moderator.",
    }[membership]


def _settings_line(actor: str, values: dict[str, Any]) -> str:
    parts = []
    if "topic" in values:
        parts.append(f"set the topic: {values['topic']}" if values["topic"] else "cleared the topic")
    if "description" in values:
        parts.append("changed the description")
    if "visibility" in values:
        parts.append(f"made the channel {values['visibility']}")
    if "history_visibility" in values:
        parts.append("shared the history with all members" if values["history_visibility"] == "shared"
                     else "showed members the history from their join on")
    if "retention_days" in values:
        days = values["retention_days"]
        parts.append("kept the history for the server's default time" if days is None
                     else "kept the history for ever" if days == 0 else f"kept the history for {days} days")
    return f"{actor} " + ", ".join(parts or ["changed nothing"]) + "."
