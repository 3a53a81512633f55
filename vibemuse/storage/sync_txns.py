"""Reads for starting a socket's session and resuming it: what happened since a
stream position that a user may see, and the membership changes that decide it.

``session_start_txn`` reads everything a starting socket needs but its
roster and its replay's events in one transaction (one trip to a database
thread instead of six): a connect storm after a restart makes thousands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, or_, select

from vibemuse.storage.channel_txns import ChannelRecord, MemberRecord, memberships_of_txn
from vibemuse.storage.event_txns import event_recipients, events, has_pending_txn, with_position


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
    resume: ResumePoint | None  # None unless resuming


def session_start_txn(connection: Connection, user_id: str, since: int | None) -> SessionStart:
    resume = None
    if since is not None:
        latest = latest_position_txn(connection)
        if since >= latest:
            resume = ResumePoint(latest, 0, [], [])
        else:
            resume = ResumePoint(latest, oldest_position_txn(connection), moves_since_txn(connection, user_id, since),
                                 channel_changes_since_txn(connection, user_id, since))
    return SessionStart(memberships_of_txn(connection, user_id), has_pending_txn(connection, user_id), resume)


def latest_position_txn(connection: Connection) -> int:
    return connection.execute(select(func.max(events.c.stream_position))).scalar() or 0


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
