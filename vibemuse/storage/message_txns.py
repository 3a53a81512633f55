"""Single messages: look one up, record an edit or a redaction, and reports.

An edit is a ``vm.edit`` event; the original's row then points at its
latest edit (``latest_edit_position``) and its searchable ``body`` becomes
the new text. A redaction is a ``vm.redaction`` event; the original's stored
JSON is replaced by its redacted form (which keeps its signature valid), its
``body`` is emptied (so search forgets it), and so are its edits. Both are
``ChannelOp``-style functions that run after the new event is stored, in the
same transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from vibemuse.protocol.canonical_json import encode_canonical_json
from vibemuse.protocol.events import redact_event
from vibemuse.storage.event_txns import events, with_position
from vibemuse.storage.models import Report
from vibemuse.storage.records import Conflict

reports = Report.__table__


@dataclass(frozen=True)
class StoredMessage:
    event: dict[str, Any]  # with unsigned.stream_position (and redacted_because / replaced_by when so)
    redacted: bool
    latest_edit: dict[str, Any] | None


@dataclass(frozen=True)
class ReportRecord:
    report_id: int
    event_id: str
    reporter: str
    reason: str
    created_ts: int
    status: str
    resolved_by: str | None
    resolved_ts: int | None
    resolution: str | None
    channel_id: str | None
    room_id: str | None


def get_message_txn(connection: Connection, event_id: str) -> StoredMessage | None:
    row = connection.execute(
        select(events.c.stream_position, events.c.event_json, events.c.redacted_ts, events.c.latest_edit_position)
        .where(events.c.event_id == event_id)
    ).first()
    if row is None:
        return None
    event = with_position(row.event_json, row.stream_position)
    edit = _event_at(connection, row.latest_edit_position) if row.latest_edit_position else None
    if edit is not None:
        event["unsigned"]["replaced_by"] = edit["event_id"]
    return StoredMessage(event, row.redacted_ts is not None, edit)


def _event_at(connection: Connection, position: int) -> dict[str, Any] | None:
    row = connection.execute(select(events.c.event_json).where(events.c.stream_position == position)).first()
    return with_position(row.event_json, position) if row else None


def edits_of_txn(connection: Connection, positions: list[int]) -> dict[int, dict[str, Any]]:
    """The latest edit of each of these events that has one, by the original's position."""
    if not positions:
        return {}
    rows = connection.execute(
        select(events.c.stream_position, events.c.latest_edit_position)
        .where(events.c.stream_position.in_(positions), events.c.latest_edit_position.is_not(None))
    )
    found = {}
    for row in rows:
        edit = _event_at(connection, row.latest_edit_position)
        if edit is not None:
            found[row.stream_position] = edit
    return found


def op_record_edit(original_id: str, edit_id: str, new_body: str | None) -> Callable[[Connection], None]:
    def apply(connection: Connection) -> None:
        edit_position = select(events.c.stream_position).where(events.c.event_id == edit_id).scalar_subquery()
        connection.execute(update(events).where(events.c.event_id == original_id)
                           .values(body=new_body, latest_edit_position=edit_position))
    apply.after_events = True  # type: ignore[attr-defined]
    return apply


def op_redact(original_id: str, now_ms: int) -> Callable[[Connection], None]:
    """Replace the stored original (and its edits) by their redacted forms."""
    def apply(connection: Connection) -> None:
        targets = connection.execute(
            select(events.c.event_id, events.c.event_json).where(
                (events.c.event_id == original_id)
                | ((events.c.event_type == "vm.edit") & events.c.event_json.like(f'%"relates_to":"{original_id}"%'))
            )
        ).all()
        for row in targets:
            redacted = redact_event(json.loads(row.event_json))
            connection.execute(update(events).where(events.c.event_id == row.event_id).values(
                event_json=encode_canonical_json(redacted).decode("utf-8"), body=None, redacted_ts=now_ms))
    apply.after_events = True  # type: ignore[attr-defined]
    return apply


# -- reports ---------------------------------------------------------------------------


def add_report_txn(connection: Connection, event_id: str, reporter: str, reason: str, now_ms: int) -> int:
    try:
        with connection.begin_nested():
            return connection.execute(insert(reports).values(
                event_id=event_id, reporter=reporter, reason=reason, created_ts=now_ms, status="open",
            ).returning(reports.c.report_id)).scalar_one()
    except IntegrityError:
        raise Conflict("report") from None


def _report(row: Any) -> ReportRecord:
    return ReportRecord(row.report_id, row.event_id, row.reporter, row.reason, row.created_ts, row.status,
                        row.resolved_by, row.resolved_ts, row.resolution, row.channel_id, row.room_id)


def _report_query():
    return select(reports, events.c.channel_id, events.c.room_id).join(
        events, events.c.event_id == reports.c.event_id, isouter=True)


def list_reports_txn(connection: Connection, status: str | None, channels: list[str] | None,
                     after: int, limit: int) -> list[ReportRecord]:
    """Reports by id; ``channels`` None means all, else only reports on messages in those channels."""
    query = _report_query().where(reports.c.report_id > after)
    if status is not None:
        query = query.where(reports.c.status == status)
    if channels is not None:
        query = query.where(events.c.channel_id.in_(channels))
    return [_report(row) for row in connection.execute(query.order_by(reports.c.report_id).limit(limit))]


def get_report_txn(connection: Connection, report_id: int) -> ReportRecord | None:
    row = connection.execute(_report_query().where(reports.c.report_id == report_id)).first()
    return _report(row) if row else None


def resolve_report_txn(connection: Connection, report_id: int, by: str, resolution: str, now_ms: int) -> None:
    connection.execute(update(reports).where(reports.c.report_id == report_id).values(
        status="resolved", resolved_by=by, resolved_ts=now_ms, resolution=resolution))
