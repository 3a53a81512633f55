"""Reads for starting a socket's session and resuming it: what happened since a
stream position that a user may see, and the membership changes that decide it.

A connect storm after a restart starts thousands of sessions at once, so a
starting socket costs part of one read (``session_starts_txn``, batched), and sockets resuming
from the same position share one read of what followed it (``tail_txn``);
``resume_point_txn`` and ``events_since_txn`` serve a replay the shared read
cannot (more events followed than it holds)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, or_, select

from vibemuse.storage.channel_txns import ChannelRecord, MemberRecord, memberships_of_many_txn
from vibemuse.storage.event_txns import (
    event_recipients, events, latest_position_txn, with_pending_txn, with_position,
)


@dataclass(frozen=True)
class ResumePoint:
    """What decides the replay of a socket resuming after ``since``."""

    latest: int  # the newest stream position
    oldest: int  # the oldest still kept (0: none)
    moves: list[dict[str, Any]]  # the user's arrivals and departures after since
    channel_changes: list[dict[str, Any]]  # membership events about the user after since


@dataclass(frozen=True)
class SessionStart:
    memberships: list[tuple[MemberRecord, ChannelRecord]]  # the channels the user hears
    has_pending: bool  # events wait for the user (pages, receipts)


@dataclass(frozen=True)
class Tail:
    """Every event after ``since`` (all scopes, at most ``limit`` of them): what several
    users resuming from the same position are replayed from, read once."""

    since: int
    latest: int
    oldest: int
    events: list[dict[str, Any]]
    complete: bool  # False: more events follow than were read


def session_starts_txn(connection: Connection, user_ids: list[str]) -> dict[str, SessionStart]:
    """The session starts of several users at once (``storage.batching``)."""
    memberships = memberships_of_many_txn(connection, user_ids)
    waiting = with_pending_txn(connection, user_ids)
    return {user_id: SessionStart(memberships.get(user_id, []), user_id in waiting) for user_id in user_ids}


def resume_point_txn(connection: Connection, user_id: str, since: int) -> ResumePoint:
    latest = latest_position_txn(connection)
    if since >= latest:
        return ResumePoint(latest, 0, [], [])
    return ResumePoint(latest, oldest_position_txn(connection), moves_since_txn(connection, user_id, since),
                       channel_changes_since_txn(connection, user_id, since))


def tail_txn(connection: Connection, since: int, limit: int) -> Tail:
    latest, oldest = latest_position_txn(connection), oldest_position_txn(connection)
    query = select(events.c.stream_position, events.c.event_json).where(
        events.c.stream_position > since).order_by(events.c.stream_position).limit(limit)
    found = [with_position(row.event_json, row.stream_position) for row in connection.execute(query)]
    return Tail(since, latest, oldest, found, len(found) < limit)


def oldest_position_txn(connection: Connection) -> int:
    return connection.execute(select(func.min(events.c.stream_position))).scalar() or 0


def moves_since_txn(connection: Connection, user_id: str, since: int) -> list[dict[str, Any]]:
    """The user's own arrivals and departures after ``since``, in order."""
    query = select(events.c.stream_position, events.c.event_json).where(
        events.c.event_type == "vm.room.member", events.c.sender == user_id, events.c.stream_position > since
    ).order_by(events.c.stream_position)
    return [with_position(row.event_json, row.stream_position) for row in connection.execute(query)]


def channel_changes_since_txn(connection: Connection, user_id: str, since: int) -> list[dict[str, Any]]:
    """Membership events about the user (joins, leaves, kicks, bans ...) after ``since``, in order."""
    mine = select(event_recipients.c.stream_position).where(
        event_recipients.c.user_id == user_id, event_recipients.c.stream_position > since
    )
    query = select(events.c.stream_position, events.c.event_json).where(
        events.c.event_type == "vm.channel.member", events.c.stream_position.in_(mine)
    ).order_by(events.c.stream_position)
    return [with_position(row.event_json, row.stream_position) for row in connection.execute(query)]


def events_since_txn(
    connection: Connection, user_id: str, since: int, rooms: list[str], channels: list[str], limit: int
) -> list[dict[str, Any]]:
    """Candidate events after ``since``: in the given rooms or channels, addressed to the
    user, pages the user sent, and announcements; at most ``limit``, in order."""
    addressed = select(event_recipients.c.stream_position).where(
        event_recipients.c.user_id == user_id, event_recipients.c.stream_position > since
    )
    query = select(events.c.stream_position, events.c.event_json).where(
        events.c.stream_position > since,
        or_(
            events.c.room_id.in_(rooms),
            events.c.channel_id.in_(channels),
            events.c.stream_position.in_(addressed),
            (events.c.sender == user_id) & events.c.event_type.in_(("vm.page", "vm.receipt")),
            events.c.event_type == "vm.system",
        ),
    ).order_by(events.c.stream_position).limit(limit)
    return [with_position(row.event_json, row.stream_position) for row in connection.execute(query)]


def channel_joins_until_txn(connection: Connection, user_id: str, until: int) -> dict[str, tuple[int, int]]:
    """The user's latest join of each channel at or before position ``until``: channel id ->
    (its stream position, its origin_server_ts) — where their view of a 'joined' channel started."""
    mine = select(event_recipients.c.stream_position).where(
        event_recipients.c.user_id == user_id, event_recipients.c.stream_position <= until
    )
    query = select(events.c.channel_id, events.c.stream_position, events.c.origin_server_ts).where(
        events.c.event_type == "vm.channel.member", events.c.kind == "join", events.c.stream_position.in_(mine)
    ).order_by(events.c.stream_position)
    return {row.channel_id: (row.stream_position, row.origin_server_ts) for row in connection.execute(query)}


def events_by_id_txn(connection: Connection, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The kept events among ``event_ids``, by id (with ``unsigned.stream_position``)."""
    if not event_ids:
        return {}
    query = select(events.c.event_id, events.c.stream_position, events.c.event_json).where(
        events.c.event_id.in_(sorted(set(event_ids))))
    return {row.event_id: with_position(row.event_json, row.stream_position) for row in connection.execute(query)}
