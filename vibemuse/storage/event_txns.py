"""Transactions over the event stream and client transactions.

``append_events_txn`` is the one way events enter the database: it checks the
client transaction first (a retried ``messageId`` returns the first receipt
and inserts nothing), inserts the events in order (each gets the next
``stream_position``), records the receipt, and applies a relocation, all in
one transaction — so a character never moves without its arrival being
recorded, and an ack is never given for something that was not stored.

Positions commit in the order they are handed out, also when several
processes write to one PostgreSQL database: every transaction that appends
events first takes one transaction-scoped advisory lock (``EVENTS_LOCK`` and
the schema),
held until it commits or rolls back, so no position can become visible
while a smaller one is still uncommitted (the trap of several writers:
position 11 committed before 10, and a reader that saw 11 never sees 10).
On SQLite the one writer thread does the same. Each append also says which
position preceded it (``Appended.after``: the newest position committed
before it), so those who learn of appends out of order — other processes,
through the bus — can put them back in order (``realtime/stream.py``).
"""

from __future__ import annotations

import json
from typing import Any, Callable, NamedTuple, Sequence

from sqlalchemy import Connection, func, insert, select

from vibemuse.protocol.canonical_json import encode_canonical_json
from vibemuse.protocol.visibility import about
from vibemuse.storage.models import ClientTransaction, Event, EventRecipient, PendingDelivery, Room, User
from vibemuse.storage.records import NotFound, Receipt, Relocation, TransactionKey

events = Event.__table__
event_recipients = EventRecipient.__table__
pending_deliveries = PendingDelivery.__table__
client_transactions = ClientTransaction.__table__
rooms = Room.__table__
users = User.__table__

# The advisory lock of the event stream: this number and the schema's (one stream per schema).
EVENTS_LOCK = 0x766D_7374  # "vmst"


class Appended(NamedTuple):
    """What an append did: the receipt, the new events' positions, and the newest position
    committed before them (0: none), which is where they follow in the stream."""

    receipt: Receipt
    positions: list[int]
    after: int


def get_receipt_txn(connection: Connection, key: TransactionKey) -> Receipt | None:
    row = connection.execute(
        select(client_transactions.c.event_id, client_transactions.c.stream_position).where(
            client_transactions.c.user_id == key.user_id,
            client_transactions.c.request_kind == key.kind,
            client_transactions.c.message_id == key.message_id,
        )
    ).first()
    return Receipt(row.event_id, row.stream_position, duplicate=True) if row else None


def append_events_txn(
    connection: Connection,
    new_events: Sequence[dict[str, Any]],
    transaction: TransactionKey | None,
    relocation: Relocation | None,
    now_ms: int,
    pending: Sequence[tuple[int, str]] = (),
    ops: Sequence[Callable[[Connection], None]] = (),
) -> Appended:
    """Store ``new_events`` (signed, without ``unsigned``); the receipt names the last one.

    ``pending`` lists (index into ``new_events``, user id) for recipients who
    are offline: the event waits in ``pending_deliveries`` until they connect.
    """
    if transaction is not None:
        earlier = get_receipt_txn(connection, transaction)
        if earlier is not None:
            return Appended(earlier, [], 0)
    if new_events and connection.dialect.name == "postgresql":
        # First, before any row lock: one appender at a time, until it commits.
        connection.execute(select(func.pg_advisory_xact_lock(EVENTS_LOCK, func.hashtext(func.current_schema()))))
    after = latest_position_txn(connection) if new_events else 0
    for op in ops:  # the state changes the events record (channel membership, bans, ...)
        if not getattr(op, "after_events", False):
            op(connection)
    positions = _insert_events(connection, new_events)
    for op in ops:  # state that names the new events (e.g. the position of a channel join)
        if getattr(op, "after_events", False):
            op(connection)
    if pending:
        connection.execute(insert(pending_deliveries), [
            dict(user_id=user_id, stream_position=positions[index]) for index, user_id in pending])
    receipt = Receipt(
        event_id=new_events[-1]["event_id"] if new_events else None,
        stream_position=positions[-1] if positions else None,
    )
    if transaction is not None:
        connection.execute(
            insert(client_transactions).values(
                user_id=transaction.user_id,
                request_kind=transaction.kind,
                message_id=transaction.message_id,
                event_id=receipt.event_id,
                stream_position=receipt.stream_position,
                created_ts=now_ms,
            )
        )
    if relocation is not None:
        _relocate(connection, relocation)
    return Appended(receipt, positions, after)


def events_between_txn(connection: Connection, after: int, upto: int) -> list[tuple[int, dict[str, Any]]]:
    """The events at positions after ``after`` up to ``upto``, in order, as stored (no ``unsigned``)."""
    query = (select(events.c.stream_position, events.c.event_json)
             .where(events.c.stream_position > after, events.c.stream_position <= upto)
             .order_by(events.c.stream_position))
    return [(row.stream_position, json.loads(row.event_json)) for row in connection.execute(query)]


def latest_position_txn(connection: Connection) -> int:
    """The newest stream position stored (0: none)."""
    return connection.execute(select(func.max(events.c.stream_position))).scalar() or 0


def _insert_events(connection: Connection, new_events: Sequence[dict[str, Any]]) -> list[int]:
    """Insert events in order; their stream positions, ascending in that order.

    One statement for all of them (SQLAlchemy's "insertmanyvalues" with
    RETURNING in parameter order), and one for whom they are addressed to.
    """
    if not new_events:
        return []
    if any("unsigned" in event for event in new_events):
        raise ValueError("events are stored without 'unsigned'")
    rows = [
        dict(
            event_id=event["event_id"],
            event_type=event["type"],
            sender=event["sender"],
            room_id=event.get("room_id"),
            channel_id=event.get("channel_id"),
            kind=_kind(event),
            body=event.get("content", {}).get("body"),
            origin_server_ts=event["origin_server_ts"],
            event_json=encode_canonical_json(event).decode("utf-8"),
        )
        for event in new_events
    ]
    statement = insert(events).returning(events.c.stream_position, sort_by_parameter_order=True)
    positions = list(connection.execute(statement, rows).scalars())
    if positions != sorted(positions):  # the total order is the order of the events given
        raise RuntimeError(f"the database assigned positions out of order: {positions}")
    addressed = [dict(user_id=user_id, stream_position=position)
                 for event, position in zip(new_events, positions)
                 for user_id in about(event)]  # who it is addressed to by name (visibility.about)
    if addressed:
        connection.execute(insert(event_recipients), addressed)
    return positions


def _kind(event: dict[str, Any]) -> str | None:
    """``events.kind``: ``content.kind``, or for an arrival, departure or channel
    membership event its ``content.membership`` (``join``, ``leave``, ``kick`` ...)."""
    content = event.get("content", {})
    if event["type"] in ("vm.room.member", "vm.channel.member"):
        return content.get("membership")
    return content.get("kind")


def _relocate(connection: Connection, relocation: Relocation) -> None:
    if connection.execute(select(rooms.c.seq).where(rooms.c.room_id == relocation.room_id)).first() is None:
        raise NotFound(relocation.room_id)
    updated = connection.execute(
        users.update().where(users.c.user_id == relocation.user_id).values(location_room_id=relocation.room_id)
    )
    if updated.rowcount != 1:
        raise NotFound(relocation.user_id)


def recent_room_events_txn(connection: Connection, room_id: str, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` events of a room, oldest first, with ``unsigned.stream_position``."""
    query = (
        select(events.c.stream_position, events.c.event_json)
        .where(events.c.room_id == room_id)
        .order_by(events.c.stream_position.desc())
        .limit(limit)
    )
    rows = list(connection.execute(query))
    return [with_position(row.event_json, row.stream_position) for row in reversed(rows)]


def with_position(event_json: str, position: int) -> dict[str, Any]:
    event = json.loads(event_json)
    event["unsigned"] = {"stream_position": position}
    return event


def events_at_txn(connection: Connection, positions: Sequence[int]) -> list[dict[str, Any]]:
    """The events at these positions, in stream order."""
    if not positions:
        return []
    query = (
        select(events.c.stream_position, events.c.event_json)
        .where(events.c.stream_position.in_(list(positions)))
        .order_by(events.c.stream_position)
    )
    return [with_position(row.event_json, row.stream_position) for row in connection.execute(query)]


def with_pending_txn(connection: Connection, user_ids: list[str]) -> set[str]:
    """Which of the users have events waiting for them (a read: most connecting users have none)."""
    query = select(pending_deliveries.c.user_id).where(pending_deliveries.c.user_id.in_(user_ids)).distinct()
    return {row.user_id for row in connection.execute(query)}


def claim_pending_txn(connection: Connection, user_id: str, limit: int) -> list[dict[str, Any]]:
    """Take (and remove) the oldest events waiting for ``user_id``: each is handed out once."""
    query = (
        select(pending_deliveries.c.stream_position)
        .where(pending_deliveries.c.user_id == user_id)
        .order_by(pending_deliveries.c.stream_position)
        .limit(limit)
    )
    positions = [row.stream_position for row in connection.execute(query)]
    if positions:
        connection.execute(
            pending_deliveries.delete().where(
                pending_deliveries.c.user_id == user_id, pending_deliveries.c.stream_position.in_(positions)
            )
        )
    return events_at_txn(connection, positions)
