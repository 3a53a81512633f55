"""Transactions over the federation outbox: events queued for other servers.

An event bound for other servers is queued by ``op_enqueue``, an op of
``append_events_txn``: the rows are written in the very transaction that
stores the event, so either both are kept or neither (a crash between
storing and sending loses nothing). The sender reads a destination's rows in
``outbox_id`` order (``pending_txn``) and deletes them once the destination
answered for them (``mark_delivered_txn``), accepted or refused; the
destination's backoff and figures live in ``federation_destinations``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from vibemuse.protocol.canonical_json import encode_canonical_json
from vibemuse.storage.models import FederationDestination, OutboxEntry

outbox = OutboxEntry.__table__
destinations = FederationDestination.__table__


@dataclass(frozen=True)
class QueuedEvent:
    outbox_id: int
    event: dict[str, Any]
    enqueued_ts: int
    size: int = 0  # bytes of the event's canonical JSON (what it adds to a transaction's body)


@dataclass(frozen=True)
class DestinationState:
    destination: str
    failures: int = 0
    next_attempt_ts: int = 0
    last_success_ts: int | None = None
    last_contact_ts: int | None = None
    last_delivery_lag_ms: int | None = None
    delivered: int = 0
    refused: int = 0
    last_refusal: str | None = None


@dataclass(frozen=True)
class QueueStats:
    """One destination's queue as the admin endpoint shows it."""

    state: DestinationState
    depth: int
    oldest_enqueued_ts: int | None


def op_enqueue(event: dict[str, Any], destinations_of_event: Sequence[str], now_ms: int) -> Callable[[Connection], None]:
    """An op for ``append_events``: queue ``event`` for each destination, in the event's transaction."""
    return op_enqueue_all([event], destinations_of_event, now_ms)


def op_enqueue_all(events_in_order: Sequence[dict[str, Any]], destinations_of_events: Sequence[str],
                   now_ms: int) -> Callable[[Connection], None]:
    """``op_enqueue`` for several events bound for the same destinations, queued in order."""
    rows = [(event["event_id"], encode_canonical_json(event).decode("utf-8")) for event in events_in_order]
    names = sorted(set(destinations_of_events))

    def apply(connection: Connection) -> None:
        if names and rows:
            connection.execute(insert(outbox), [
                {"destination": name, "event_id": event_id, "event_json": event_json, "enqueued_ts": now_ms}
                for event_id, event_json in rows
                for name in names
            ])

    apply.destinations = tuple(names)  # type: ignore[attr-defined]  # whom EventWriter wakes after the commit
    return apply


def pending_txn(connection: Connection, destination: str, limit: int) -> list[QueuedEvent]:
    """The oldest ``limit`` events waiting for ``destination``, in order."""
    query = (
        select(outbox.c.outbox_id, outbox.c.event_json, outbox.c.enqueued_ts)
        .where(outbox.c.destination == destination)
        .order_by(outbox.c.outbox_id)
        .limit(limit)
    )
    return [QueuedEvent(row.outbox_id, json.loads(row.event_json), row.enqueued_ts, len(row.event_json.encode()))
            for row in connection.execute(query)]


def destinations_with_pending_txn(connection: Connection) -> list[str]:
    query = select(outbox.c.destination).distinct().order_by(outbox.c.destination)
    return [row.destination for row in connection.execute(query)]


@dataclass(frozen=True)
class Delivery:
    """A destination's answer to one transaction: these outbox rows are done."""

    outbox_ids: tuple[int, ...]
    accepted: int
    refusals: tuple[tuple[str, str], ...]  # (event_id, code)
    oldest_enqueued_ts: int
    now_ms: int


def mark_delivered_txn(connection: Connection, destination: str, delivery: Delivery) -> None:
    """Remove the answered rows; reset the backoff; count what was accepted and refused."""
    connection.execute(delete(outbox).where(outbox.c.destination == destination,
                                            outbox.c.outbox_id.in_(list(delivery.outbox_ids))))
    values: dict[str, Any] = {
        "failures": 0, "next_attempt_ts": 0, "last_success_ts": delivery.now_ms,
        "last_contact_ts": delivery.now_ms, "last_delivery_lag_ms": delivery.now_ms - delivery.oldest_enqueued_ts,
        "delivered": destinations.c.delivered + delivery.accepted,
        "refused": destinations.c.refused + len(delivery.refusals),
    }
    if delivery.refusals:
        event_id, code = delivery.refusals[-1]
        values["last_refusal"] = f"{event_id} {code}"
    _update_state(connection, destination, values)


def record_failure_txn(connection: Connection, destination: str, failures: int, next_attempt_ts: int) -> None:
    _update_state(connection, destination, {"failures": failures, "next_attempt_ts": next_attempt_ts})


def record_contact_txn(connection: Connection, destination: str, now_ms: int) -> None:
    """The destination contacted us: it is up, so the backoff starts over."""
    _update_state(connection, destination, {"failures": 0, "next_attempt_ts": 0, "last_contact_ts": now_ms})


def _update_state(connection: Connection, destination: str, values: dict[str, Any]) -> None:
    dialect_insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    connection.execute(dialect_insert(destinations).values(destination=destination)
                       .on_conflict_do_nothing(index_elements=["destination"]))
    connection.execute(update(destinations).where(destinations.c.destination == destination).values(**values))


def get_state_txn(connection: Connection, destination: str) -> DestinationState:
    row = connection.execute(select(destinations).where(destinations.c.destination == destination)).first()
    return _state(row) if row else DestinationState(destination)


def queue_stats_txn(connection: Connection) -> list[QueueStats]:
    """Every destination with queued events or a history of sending, by name."""
    queued = {row.destination: (row.depth, row.oldest) for row in connection.execute(
        select(outbox.c.destination, func.count().label("depth"), func.min(outbox.c.enqueued_ts).label("oldest"))
        .group_by(outbox.c.destination))}
    states = {row.destination: _state(row) for row in connection.execute(select(destinations))}
    return [
        QueueStats(states.get(name, DestinationState(name)), *queued.get(name, (0, None)))
        for name in sorted(set(queued) | set(states))
    ]


def _state(row: Any) -> DestinationState:
    return DestinationState(
        destination=row.destination, failures=row.failures, next_attempt_ts=row.next_attempt_ts,
        last_success_ts=row.last_success_ts, last_contact_ts=row.last_contact_ts,
        last_delivery_lag_ms=row.last_delivery_lag_ms, delivered=row.delivered, refused=row.refused,
        last_refusal=row.last_refusal,
    )
