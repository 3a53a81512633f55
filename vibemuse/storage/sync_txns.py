"""Reads for resuming a socket: what happened since a stream position that a
user may see, and the membership changes that decide it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, or_, select

from vibemuse.storage.event_txns import event_recipients, events, with_position


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
