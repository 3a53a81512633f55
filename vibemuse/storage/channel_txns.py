"""Channels in storage: records, reads, and the writes that go with channel events.

Every change of membership, moderation or settings is made in the same
transaction as the event that audits it: the service passes the writes
(``ChannelOp`` functions built here) to ``Storage.append_events``, which runs
them before storing the events (those marked ``after_events``, which name the
new events, right after), so either both happen or neither.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from vibemuse.storage.event_txns import events
from vibemuse.protocol.ids import parse_user_id
from vibemuse.storage.models import Channel, ChannelBan, ChannelInvite, ChannelMember, ChannelServerBan

channels = Channel.__table__
members = ChannelMember.__table__
bans = ChannelBan.__table__
invites = ChannelInvite.__table__
server_bans = ChannelServerBan.__table__

ChannelOp = Callable[[Connection], None]


@dataclass(frozen=True)
class ChannelRecord:
    channel_id: str
    name: str
    description: str
    topic: str
    visibility: str
    owner: str
    created_ts: int
    history_visibility: str = "shared"  # shared | joined (members read only what came after their join)
    retention_days: int | None = None  # None: the server's retention_channel_days; 0: for ever


@dataclass(frozen=True)
class MemberRecord:
    channel_id: str
    user_id: str
    role: str
    alias: str | None
    title: str | None
    muted_until: int | None
    joined_ts: int
    joined_position: int | None = None  # the stream position of the join event


@dataclass(frozen=True)
class ServerBanRecord:
    """Every player of ``server_name`` is barred from the channel (federation.md 10.6)."""

    server_name: str
    reason: str
    banned_by: str
    banned_ts: int


@dataclass(frozen=True)
class BanRecord:
    user_id: str
    reason: str
    banned_by: str
    banned_ts: int


def _channel(row: Any) -> ChannelRecord:
    return ChannelRecord(row.channel_id, row.name, row.description, row.topic, row.visibility, row.owner,
                         row.created_ts, row.history_visibility, row.retention_days)


def _member(row: Any) -> MemberRecord:
    return MemberRecord(row.channel_id, row.user_id, row.role, row.alias, row.title, row.muted_until, row.joined_ts,
                        row.joined_position)


# -- reads -----------------------------------------------------------------------


def get_channel_txn(connection: Connection, channel_id: str) -> ChannelRecord | None:
    row = connection.execute(select(channels).where(channels.c.channel_id == channel_id)).first()
    return _channel(row) if row else None


def get_membership_txn(connection: Connection, channel_id: str, user_id: str) -> MemberRecord | None:
    row = connection.execute(
        select(members).where(members.c.channel_id == channel_id, members.c.user_id == user_id)
    ).first()
    return _member(row) if row else None


def members_txn(connection: Connection, channel_id: str) -> list[MemberRecord]:
    query = select(members).where(members.c.channel_id == channel_id).order_by(members.c.joined_ts, members.c.user_id)
    return [_member(row) for row in connection.execute(query)]


def memberships_of_txn(connection: Connection, user_id: str) -> list[tuple[MemberRecord, ChannelRecord]]:
    return memberships_of_many_txn(connection, [user_id]).get(user_id, [])


def memberships_of_many_txn(
    connection: Connection, user_ids: list[str]
) -> dict[str, list[tuple[MemberRecord, ChannelRecord]]]:
    """Each user's channel memberships, by channel name (users on no channel are left out)."""
    query = (
        select(members, channels.c.name, channels.c.description, channels.c.topic, channels.c.visibility,
               channels.c.owner, channels.c.created_ts, channels.c.history_visibility, channels.c.retention_days)
        .join(channels, channels.c.channel_id == members.c.channel_id)
        .where(members.c.user_id.in_(user_ids))
        .order_by(channels.c.name_folded)
    )
    found: dict[str, list[tuple[MemberRecord, ChannelRecord]]] = {}
    for row in connection.execute(query):
        found.setdefault(row.user_id, []).append((_member(row), _channel(row)))
    return found


def get_ban_txn(connection: Connection, channel_id: str, user_id: str) -> BanRecord | None:
    row = connection.execute(select(bans).where(bans.c.channel_id == channel_id, bans.c.user_id == user_id)).first()
    return BanRecord(row.user_id, row.reason, row.banned_by, row.banned_ts) if row else None


def get_server_ban_txn(connection: Connection, channel_id: str, server_name: str) -> ServerBanRecord | None:
    row = connection.execute(select(server_bans).where(server_bans.c.channel_id == channel_id,
                                                       server_bans.c.server_name == server_name)).first()
    return ServerBanRecord(row.server_name, row.reason, row.banned_by, row.banned_ts) if row else None


def is_invited_txn(connection: Connection, channel_id: str, user_id: str) -> bool:
    query = select(invites.c.user_id).where(invites.c.channel_id == channel_id, invites.c.user_id == user_id)
    return connection.execute(query).first() is not None


def list_channels_txn(
    connection: Connection, viewer: str, search: str | None, after: str | None, limit: int, see_all: bool,
    home: str | None = None,
) -> list[ChannelRecord]:
    """Channels ``viewer`` may see (public ones, and private ones they belong or are invited to),
    ordered by folded name, after the cursor ``after``; with ``home``, only those homed there."""
    query = select(channels)
    if home is not None:  # server names hold no LIKE wildcards (protocol/ids.py)
        query = query.where(channels.c.channel_id.like(f"%:{home}"))
    if not see_all:
        mine = select(members.c.channel_id).where(members.c.user_id == viewer)
        invited = select(invites.c.channel_id).where(invites.c.user_id == viewer)
        query = query.where(
            or_(channels.c.visibility == "public", channels.c.channel_id.in_(mine), channels.c.channel_id.in_(invited))
        )
    if search:
        pattern = "%" + search.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(channels.c.name_folded.like(pattern, escape="\\"),
                                func.lower(channels.c.description).like(pattern, escape="\\")))
    if after:
        query = query.where(channels.c.name_folded > after)
    rows = connection.execute(query.order_by(channels.c.name_folded).limit(limit))
    return [_channel(row) for row in rows]


# -- writes that go with events -------------------------------------------------


def op_create_channel(channel: ChannelRecord) -> ChannelOp:
    def apply(connection: Connection) -> None:
        seq = (connection.execute(select(func.max(channels.c.seq))).scalar() or 0) + 1
        connection.execute(insert(channels).values(
            channel_id=channel.channel_id, seq=seq, name=channel.name, name_folded=channel.name.casefold(),
            description=channel.description, topic=channel.topic, visibility=channel.visibility,
            owner=channel.owner, created_ts=channel.created_ts, history_visibility=channel.history_visibility,
            retention_days=channel.retention_days))
    return apply


def op_add_member(member: MemberRecord) -> ChannelOp:
    def apply(connection: Connection) -> None:
        key = (members.c.channel_id == member.channel_id) & (members.c.user_id == member.user_id)
        values = {"alias": member.alias, "title": member.title}
        if connection.execute(update(members).where(key).values(**values)).rowcount == 0:
            connection.execute(insert(members).values(
                channel_id=member.channel_id, user_id=member.user_id, role=member.role, alias=member.alias,
                title=member.title, muted_until=member.muted_until, joined_ts=member.joined_ts))
        connection.execute(delete(invites).where(invites.c.channel_id == member.channel_id,
                                                 invites.c.user_id == member.user_id))
    return apply


def op_set_joined_position(channel_id: str, user_id: str, join_event_id: str) -> ChannelOp:
    """Record where a member's join is in the stream; runs after the join event is stored."""
    def apply(connection: Connection) -> None:
        position = select(events.c.stream_position).where(events.c.event_id == join_event_id).scalar_subquery()
        connection.execute(update(members).where(members.c.channel_id == channel_id, members.c.user_id == user_id)
                           .values(joined_position=position))
    apply.after_events = True  # type: ignore[attr-defined]
    return apply


def op_remove_member(channel_id: str, user_id: str) -> ChannelOp:
    def apply(connection: Connection) -> None:
        connection.execute(delete(members).where(members.c.channel_id == channel_id, members.c.user_id == user_id))
    return apply


def op_ban(channel_id: str, ban: BanRecord) -> ChannelOp:
    def apply(connection: Connection) -> None:
        op_remove_member(channel_id, ban.user_id)(connection)
        connection.execute(delete(bans).where(bans.c.channel_id == channel_id, bans.c.user_id == ban.user_id))
        connection.execute(insert(bans).values(channel_id=channel_id, user_id=ban.user_id, reason=ban.reason,
                                               banned_by=ban.banned_by, banned_ts=ban.banned_ts))
    return apply


def op_unban(channel_id: str, user_id: str) -> ChannelOp:
    def apply(connection: Connection) -> None:
        connection.execute(delete(bans).where(bans.c.channel_id == channel_id, bans.c.user_id == user_id))
    return apply


def op_remove_server(channel_id: str, server_name: str) -> ChannelOp:
    """Every member of ``server_name`` leaves the channel (a server kicked, banned or leaving)."""
    def apply(connection: Connection) -> None:
        user_ids = connection.execute(select(members.c.user_id).where(members.c.channel_id == channel_id)).scalars()
        gone = [user_id for user_id in user_ids if parse_user_id(user_id).server_name == server_name]
        if gone:
            connection.execute(delete(members).where(members.c.channel_id == channel_id,
                                                     members.c.user_id.in_(gone)))
    return apply


def op_ban_server(channel_id: str, ban: ServerBanRecord) -> ChannelOp:
    def apply(connection: Connection) -> None:
        op_remove_server(channel_id, ban.server_name)(connection)
        op_unban_server(channel_id, ban.server_name)(connection)
        connection.execute(insert(server_bans).values(
            channel_id=channel_id, server_name=ban.server_name, reason=ban.reason, banned_by=ban.banned_by,
            banned_ts=ban.banned_ts))
    return apply


def op_unban_server(channel_id: str, server_name: str) -> ChannelOp:
    def apply(connection: Connection) -> None:
        connection.execute(delete(server_bans).where(server_bans.c.channel_id == channel_id,
                                                     server_bans.c.server_name == server_name))
    return apply


def op_server_membership(channel_id: str, membership: str, server_name: str, reason: str, by: str,
                         now_ms: int) -> ChannelOp:
    """What a whole server's kick, ban, unban or leave changes."""
    if membership == "ban":
        return op_ban_server(channel_id, ServerBanRecord(server_name, reason, by, now_ms))
    if membership == "unban":
        return op_unban_server(channel_id, server_name)
    return op_remove_server(channel_id, server_name)


def op_invite(channel_id: str, user_id: str, invited_by: str, now_ms: int) -> ChannelOp:
    def apply(connection: Connection) -> None:
        if not is_invited_txn(connection, channel_id, user_id):
            connection.execute(insert(invites).values(channel_id=channel_id, user_id=user_id,
                                                      invited_by=invited_by, invited_ts=now_ms))
    return apply


def op_update_member(channel_id: str, user_id: str, **values: Any) -> ChannelOp:
    def apply(connection: Connection) -> None:
        connection.execute(
            update(members).where(members.c.channel_id == channel_id, members.c.user_id == user_id).values(**values)
        )
    return apply


def op_update_channel(channel_id: str, **values: Any) -> ChannelOp:
    def apply(connection: Connection) -> None:
        connection.execute(update(channels).where(channels.c.channel_id == channel_id).values(**values))
    return apply


def standing_mute_txn(connection: Connection, channel_id: str, user_id: str) -> int | None:
    """When a mute on ``user_id`` in the channel ends (``FOREVER``-like for no end), if the
    latest mute or unmute about them there is a mute — so leaving and rejoining does not
    shake it off. None if they are not muted."""
    from vibemuse.storage.event_txns import event_recipients

    about_them = select(event_recipients.c.stream_position).where(event_recipients.c.user_id == user_id)
    query = (
        select(events.c.event_json)
        .where(events.c.channel_id == channel_id, events.c.event_type == "vm.channel.member",
               events.c.stream_position.in_(about_them), events.c.kind.in_(("mute", "unmute")))
        .order_by(events.c.stream_position.desc())
        .limit(1)
    )
    row = connection.execute(query).first()
    if row is None:
        return None
    content = json.loads(row.event_json).get("content", {})
    if content.get("membership") != "mute":
        return None
    return content.get("until", MUTED_FOREVER)


MUTED_FOREVER = 2**62
