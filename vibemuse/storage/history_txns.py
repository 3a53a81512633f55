"""History: the one query behind every history (rooms, channels, page conversations),
and archival of events past their retention.

Theory of operation. ``history_txn`` builds one SELECT from a ``HistoryQuery``:
the *scope* gives one or two index-ordered branches (a room or a channel is
``events`` read through ``(room_id | channel_id, stream_position)``; a page
conversation is two branches, each driven by the recipients' primary key
``(user_id, stream_position)``: pages I sent that name them, pages they sent
that name me), and every filter, the cursor, the order and the limit are added
to each branch the same way. Two branches are merged with ``UNION ALL`` and
limited again. One more row than asked for is read, so the caller knows
whether there is more without a second query.

Search uses the engine's own full-text index behind the same interface: FTS5
``MATCH`` on SQLite (the user's words, each as a quoted string, so FTS syntax
never reaches the engine), ``body_tsv @@ plainto_tsquery('simple', ...)`` on
PostgreSQL. Both index ``events.body``.

Archival moves events older than their scope's retention out of ``events``
into ``archived_events`` (the same canonical JSON, signatures intact), in
batches of one transaction each, deleting their recipients and pending
deliveries; the FTS5 triggers (SQLite) and the row itself (PostgreSQL's
generated ``body_tsv``) take their search entries with them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import IO, Any, Iterator

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    and_,
    column,
    delete,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    table,
    union_all,
)

from vibemuse.protocol.visibility import WHOLE_HISTORY, Floor
from vibemuse.storage.engine import WRITE
from vibemuse.storage.event_txns import event_recipients, events, pending_deliveries, with_position
from vibemuse.storage.models import ArchivedEvent, Channel, Room
from vibemuse.storage.visibility_txns import channel_branches

archived_events = ArchivedEvent.__table__
channels = Channel.__table__
rooms = Room.__table__
events_fts = table("events_fts", column("rowid"), column("events_fts"))

PAGE_TYPES = ("vm.page", "vm.receipt")
MEMBER_TYPES = ("vm.room.member", "vm.channel.member")
MODERATION = ("kick", "ban", "unban", "invite", "mute", "unmute", "promote", "demote")
MESSAGE_KINDS = ("say", "pose", "semipose", "ooc", "emit", "page", "channel", "wall")
# The ``kind`` filter's vocabulary (protocol.md section 19.3).
KINDS = MESSAGE_KINDS + ("join", "leave", "moderation", "settings")


@dataclass(frozen=True)
class HistoryQuery:
    """What to read. Exactly one scope: ``room_id``, ``channel_id`` or ``conversation``
    (me, other). ``before``/``after`` are exclusive stream positions (at most one);
    On a channel, ``viewer`` and ``floor`` apply the visibility rule (``visibility_txns``):
    what a member of a 'joined' channel may not see is left out."""

    limit: int
    room_id: str | None = None
    channel_id: str | None = None
    conversation: tuple[str, str] | None = None
    before: int | None = None
    after: int | None = None
    kinds: tuple[str, ...] = ()
    sender: str | None = None
    since_ms: int | None = None  # origin_server_ts >= since_ms
    until_ms: int | None = None  # origin_server_ts < until_ms
    words: tuple[str, ...] = ()  # full-text search: every word must appear
    viewer: str = ""  # the reader's user id (they see their own events)
    floor: Floor = WHOLE_HISTORY  # where the reader's view of the channel starts


@dataclass(frozen=True)
class HistoryPage:
    events: list[dict[str, Any]]  # oldest first
    more: bool  # there are more events in the direction read


def history_txn(connection: Connection, query: HistoryQuery) -> HistoryPage:
    dialect = connection.dialect.name
    if dialect == "postgresql":
        # One small page: starting parallel workers costs more than they save (and a plan
        # misled by correlated columns, e.g. a chatty pair's pages, would start them).
        connection.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
    fts_first = dialect == "sqlite" and bool(query.words) and query.conversation is None and _fts_leads(
        connection, query)
    rows = list(connection.execute(history_select(query, dialect, fts_first=fts_first)))
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    if query.after is None:
        rows.reverse()
    return HistoryPage([with_position(row.event_json, row.stream_position) for row in rows], more)


# SQLite search plans. Rows reached through the FTS index cost about this many times
# less than rows of the room (or channel) checked one by one against it (measured).
PROBE_ROWS, CHECK_COST = 2048, 50


def _fts_leads(connection: Connection, query: HistoryQuery) -> bool:
    """SQLite: should a search be driven by the FTS index rather than the room's (or channel's)?

    SQLite's planner cannot tell a rare word from a common one, nor a busy room
    from a quiet one, so two bounded probes (at most ``PROBE_ROWS`` newest rows
    each, in the cursor's range) measure how dense the word's matches and the
    scope's events are, and the cheaper way is taken: through the FTS index,
    about ``need / scope density`` matches are read; through the scope's index,
    about ``need / match density`` rows are checked, each costing ``CHECK_COST``.
    """
    scope_column, scope = (events.c.room_id, query.room_id) if query.room_id else (events.c.channel_id,
                                                                                    query.channel_id)
    matches = _probe(connection, events_fts.c.rowid, query,
                     events_fts.c.events_fts.op("MATCH")(fts5_query(query.words)))
    if matches[0] < PROBE_ROWS:  # a rare word: all its matches are at hand
        return True
    rows = _probe(connection, events.c.stream_position, query, scope_column == scope)
    if rows[0] == 0:
        return False
    need = query.limit + 1
    match_density, row_density = matches[0] / matches[1], rows[0] / rows[1]
    through_fts = need / row_density
    through_scope = min(need / match_density, rows[0] if rows[0] < PROBE_ROWS else float("inf")) * CHECK_COST
    return through_fts <= through_scope


def _probe(connection: Connection, position: Any, query: HistoryQuery, condition: Any) -> tuple[int, int]:
    """(rows, positions spanned) of the ``PROBE_ROWS`` rows nearest the cursor that meet ``condition``."""
    probe = select(position.label("p")).where(condition)
    if query.before is not None:
        probe = probe.where(position < query.before)
    if query.after is not None:
        probe = probe.where(position > query.after)
    order = position.asc() if query.after is not None else position.desc()
    sample = probe.order_by(order).limit(PROBE_ROWS).subquery()
    count, low, high = connection.execute(
        select(func.count(), func.min(sample.c.p), func.max(sample.c.p))).one()
    if count == PROBE_ROWS:
        return count, high - low + 1
    # all of them: they are spread over the whole range the cursor leaves
    last = connection.execute(select(func.max(events.c.stream_position))).scalar() or 0
    start = query.after + 1 if query.after is not None else 1
    end = min(query.before - 1, last) if query.before is not None else last
    return count, max(end - start + 1, 1)


def history_select(query: HistoryQuery, dialect: str, *, fts_first: bool = False) -> Select:
    """The SELECT (stream_position, event_json) for ``query``, newest first (oldest first with
    ``after``). ``fts_first`` (SQLite, room or channel): drive it from the FTS index."""
    if (query.before is not None) and (query.after is not None):
        raise ValueError("before and after are exclusive")
    branches = [_filtered(base, position, query, dialect)
                for base, position in _branches(query, dialect, fts_first)]
    if len(branches) == 1:
        return branches[0]
    merged = union_all(*(select(branch.subquery()) for branch in branches)).subquery()
    order = merged.c.stream_position.asc() if query.after is not None else merged.c.stream_position.desc()
    return select(merged.c.stream_position, merged.c.event_json).order_by(order).limit(query.limit + 1)


def _branches(query: HistoryQuery, dialect: str, fts_first: bool) -> Iterator[tuple[Select, Any]]:
    """(base select, the position column that orders it) for each part of the scope."""
    scopes = [query.room_id is not None, query.channel_id is not None, query.conversation is not None]
    if sum(scopes) != 1:
        raise ValueError("a history has exactly one scope")
    if query.conversation is None:
        base, position = _scope_base(query, fts_first)
        if query.room_id is not None:
            yield base, position
        else:  # what the reader may see of the channel (the visibility rule)
            yield from channel_branches(base, position, query.channel_id, query.viewer, query.floor, dialect)
        return
    me, other = query.conversation
    sides = [(me, other)] if me == other else [(me, other), (other, me)]
    for sender, recipient in sides:
        position = event_recipients.c.stream_position
        base = (
            select(position.label("stream_position"), events.c.event_json)
            .select_from(event_recipients.join(events, events.c.stream_position == position))
            .where(event_recipients.c.user_id == recipient, events.c.sender == sender,
                   events.c.event_type == "vm.page")
        )
        yield base, position


def _scope_base(query: HistoryQuery, fts_first: bool) -> tuple[Select, Any]:
    """All of a room's or channel's rows, and the position column that orders them."""
    scope_column, scope = (events.c.room_id, query.room_id) if query.room_id else (
        events.c.channel_id, query.channel_id)
    if fts_first:  # `column || ''` keeps SQLite off the scope's index: the FTS index leads
        return (select(events_fts.c.rowid.label("stream_position"), events.c.event_json)
                .select_from(events_fts.join(events, events.c.stream_position == events_fts.c.rowid))
                .where((scope_column + "") == scope)), events_fts.c.rowid
    return select(events.c.stream_position, events.c.event_json).where(scope_column == scope), events.c.stream_position


def _filtered(base: Select, position: Any, query: HistoryQuery, dialect: str) -> Select:
    conditions = []
    if query.kinds:
        conditions.append(kind_condition(query.kinds))
    if query.sender is not None:
        conditions.append(events.c.sender == query.sender)
    if query.since_ms is not None:
        conditions.append(events.c.origin_server_ts >= query.since_ms)
    if query.until_ms is not None:
        conditions.append(events.c.origin_server_ts < query.until_ms)
    if query.before is not None:
        conditions.append(position < query.before)
    if query.after is not None:
        conditions.append(position > query.after)
    if query.words:
        if dialect == "sqlite":
            if position is not events_fts.c.rowid:
                base = base.join(events_fts, events_fts.c.rowid == position)
            conditions.append(events_fts.c.events_fts.op("MATCH")(fts5_query(query.words)))
        else:
            conditions.append(literal_column("events.body_tsv").op("@@")(
                func.plainto_tsquery(literal_column("'simple'::regconfig"), " ".join(query.words))))
    order = position.asc() if query.after is not None else position.desc()
    return base.where(*conditions).order_by(order).limit(query.limit + 1)


def kind_condition(kinds: tuple[str, ...]) -> Any:
    """``kind`` filter names (``KINDS``) to a condition on ``events.kind`` / ``event_type``."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)}")
    parts = []
    plain = sorted({kind for kind in kinds if kind in MESSAGE_KINDS})
    if plain:
        parts.append(events.c.kind.in_(plain))
    memberships = sorted({kind for kind in kinds if kind in ("join", "leave")})
    if memberships:
        parts.append(and_(events.c.event_type.in_(MEMBER_TYPES), events.c.kind.in_(memberships)))
    if "moderation" in kinds:
        parts.append(and_(events.c.event_type == "vm.channel.member", events.c.kind.in_(MODERATION)))
    if "settings" in kinds:
        parts.append(events.c.event_type.in_(("vm.channel.create", "vm.channel.settings")))
    return or_(*parts) if parts else false()


def fts5_query(words: tuple[str, ...]) -> str:
    """An FTS5 query that matches rows holding every word: each is a quoted string
    (``"`` doubled), so nothing the user typed is read as FTS5 syntax."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


# -- archival ---------------------------------------------------------------------------

DAY_MS = 86_400_000
SCOPES = ("room", "channel", "page", "system")


@dataclass(frozen=True)
class RetentionPolicy:
    """Days each scope keeps its events; 0 keeps them for ever. A channel's own
    ``retention_days`` (when set) overrides ``channel_days``."""

    room_days: int = 90
    channel_days: int = 365
    page_days: int = 0
    system_days: int = 0


@dataclass
class ArchiveReport:
    counts: dict[str, int] = field(default_factory=lambda: {scope: 0 for scope in SCOPES})
    dry_run: bool = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _cutoff(now_ms: int, days: int | None) -> int | None:
    return None if not days else now_ms - days * DAY_MS


def _expired_selects(connection: Connection, policy: RetentionPolicy, now_ms: int) -> Iterator[tuple[str, Select]]:
    """(scope, a SELECT of expired events' positions) for every part of every scope,
    each using an index on (room_id | channel_id | event_type, ...)."""
    room_cutoff = _cutoff(now_ms, policy.room_days)
    if room_cutoff is not None:
        for (room_id,) in connection.execute(select(rooms.c.room_id).order_by(rooms.c.seq)):
            yield "room", select(events.c.stream_position).where(
                events.c.room_id == room_id, events.c.origin_server_ts < room_cutoff)
    for channel_id, own_days in connection.execute(
            select(channels.c.channel_id, channels.c.retention_days).order_by(channels.c.seq)):
        cutoff = _cutoff(now_ms, policy.channel_days if own_days is None else own_days)
        if cutoff is not None:
            yield "channel", select(events.c.stream_position).where(
                events.c.channel_id == channel_id, events.c.origin_server_ts < cutoff)
    page_cutoff = _cutoff(now_ms, policy.page_days)
    if page_cutoff is not None:
        for event_type in PAGE_TYPES:
            yield "page", select(events.c.stream_position).where(
                events.c.event_type == event_type, events.c.origin_server_ts < page_cutoff)
    system_cutoff = _cutoff(now_ms, policy.system_days)
    if system_cutoff is not None:  # neither in a room, nor on a channel, nor a page: @wall ...
        yield "system", select(events.c.stream_position).where(
            events.c.room_id.is_(None), events.c.origin_server_ts < system_cutoff, events.c.channel_id.is_(None),
            events.c.event_type.not_in(PAGE_TYPES))


def archive_expired(
    engine: Engine, policy: RetentionPolicy, now_ms: int, *, export: IO[str] | None = None,
    dry_run: bool = False, batch: int = 1000,
) -> ArchiveReport:
    """Move every event past its retention into ``archived_events`` (or only count them,
    with ``dry_run``); with ``export``, also write each as one JSON line (the stored
    event plus ``unsigned.stream_position``) before its batch commits."""
    report = ArchiveReport(dry_run=dry_run)
    with engine.connect() as connection, connection.begin():
        parts = list(_expired_selects(connection, policy, now_ms))
    for scope, expired in parts:
        if dry_run:
            with engine.connect() as connection, connection.begin():
                counted = select(func.count()).select_from(expired.subquery())
                report.counts[scope] += connection.execute(counted).scalar_one()
            continue
        while True:
            with engine.connect() as connection:
                connection = connection.execution_options(**WRITE)
                with connection.begin():
                    moved = _archive_batch(connection, expired, batch, now_ms, export)
            report.counts[scope] += moved
            if moved < batch:
                break
    return report


def _archive_batch(connection: Connection, expired: Select, batch: int, now_ms: int, export: IO[str] | None) -> int:
    positions = [row.stream_position for row in connection.execute(
        expired.order_by(events.c.stream_position).limit(batch))]
    if not positions:
        return 0
    chosen = events.c.stream_position.in_(positions)
    rows = list(connection.execute(
        select(events.c.stream_position, events.c.event_id, events.c.event_type, events.c.sender,
               events.c.room_id, events.c.channel_id, events.c.origin_server_ts, events.c.event_json)
        .where(chosen).order_by(events.c.stream_position)))
    connection.execute(insert(archived_events), [
        {"stream_position": row.stream_position, "event_id": row.event_id, "event_type": row.event_type,
         "sender": row.sender, "room_id": row.room_id, "channel_id": row.channel_id,
         "origin_server_ts": row.origin_server_ts, "event_json": row.event_json, "archived_ts": now_ms}
        for row in rows])
    connection.execute(delete(event_recipients).where(event_recipients.c.stream_position.in_(positions)))
    connection.execute(delete(pending_deliveries).where(pending_deliveries.c.stream_position.in_(positions)))
    connection.execute(delete(events).where(chosen))
    if export is not None:
        for row in rows:
            line = json.dumps(with_position(row.event_json, row.stream_position), ensure_ascii=False,
                              separators=(",", ":"))
            export.write(line + "\n")
        export.flush()
    return len(rows)
