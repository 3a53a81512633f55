"""The visibility rule (``vibemuse.protocol.visibility.may_see``) as SQL, for the paths that
read many events at once: a channel's history and its search.

Theory of operation. Within one channel's events, ``may_see`` for a member whose
view starts at a ``Floor`` comes down to: a row is seen when the floor admits it,
its sender is the viewer, or it is addressed to them (``event_recipients`` names
them: the member a membership event is about); an edit or deletion besides
needs its target — the row whose ``event_id`` its ``content.relates_to``
(``content.redacts``) names, read out of the stored JSON — to be seen, or gone.

``channel_branches`` turns that into up to three disjoint SELECTs, each driven by
an index, that the history merges: the rows the floor admits (the channel's
index from the floor on), the viewer's own rows before it (the channel's
index by sender), and the rows before it addressed to them (their recipient
rows); a target is found through the unique index on ``event_id``. Every other
path (single messages, live fan-out, the resume replay) calls ``may_see``
itself; a test checks that both forms agree, event by event.
"""

from __future__ import annotations

from typing import Any, Iterator

from sqlalchemy import JSON, Connection, Select, cast, exists, func, or_, select

from vibemuse.protocol.visibility import TARGET_KEYS, WHOLE_HISTORY, Floor
from vibemuse.storage.models import Event, EventRecipient, User

events = Event.__table__
event_recipients = EventRecipient.__table__
users = User.__table__


def channel_branches(scope: Select, position: Any, channel_id: str, viewer_id: str, floor: Floor,
                     dialect: str) -> Iterator[tuple[Select, Any]]:
    """(select, its position column) for each part of the channel's rows that ``viewer_id`` sees
    from ``floor`` on; ``scope`` selects all of the channel's rows, read by ``position``."""
    if floor == WHOLE_HISTORY:  # every row is seen, and so is every target (in the same channel)
        yield scope, position
        return
    target_seen = _target_seen(viewer_id, floor, dialect)
    yield scope.where(_admitted(events, position, floor), target_seen), position
    before = ~_admitted(events, events.c.stream_position, floor)
    yield (select(events.c.stream_position, events.c.event_json)
           .where(events.c.channel_id == channel_id, events.c.sender == viewer_id, before, target_seen)), \
        events.c.stream_position
    addressed = event_recipients.c.stream_position
    yield (select(addressed.label("stream_position"), events.c.event_json)
           .select_from(event_recipients.join(events, events.c.stream_position == addressed))
           .where(event_recipients.c.user_id == viewer_id, events.c.channel_id == channel_id,
                  events.c.sender != viewer_id, before, target_seen)), addressed


def _admitted(rows: Any, position: Any, floor: Floor) -> Any:
    if floor.position is not None:
        return position >= floor.position
    return rows.c.origin_server_ts >= floor.ts


def _target_seen(viewer_id: str, floor: Floor, dialect: str) -> Any:
    """True for rows that are not edits or deletions, or whose target is seen, or gone."""
    targets = events.alias("targets")
    addressed = exists().where(event_recipients.c.stream_position == targets.c.stream_position,
                               event_recipients.c.user_id == viewer_id)
    seen = or_(_admitted(targets, targets.c.stream_position, floor), targets.c.sender == viewer_id, addressed)
    hidden_target = exists().where(targets.c.event_id == _target_id(dialect), ~seen)
    return or_(events.c.event_type.not_in(tuple(TARGET_KEYS)), ~hidden_target)


def _target_id(dialect: str) -> Any:
    """The target's event id, read from ``events.event_json`` (null for other events)."""
    keys = tuple(dict.fromkeys(TARGET_KEYS.values()))
    if dialect == "sqlite":
        return func.coalesce(*(func.json_extract(events.c.event_json, f"$.content.{key}") for key in keys))
    document = cast(events.c.event_json, JSON)
    return func.coalesce(*(func.json_extract_path_text(document, "content", key) for key in keys))


def admins_among_txn(connection: Connection, user_ids: list[str]) -> set[str]:
    """Which of these users are admins (whom the rule lets see everything)."""
    if not user_ids:
        return set()
    query = select(users.c.user_id).where(users.c.user_id.in_(sorted(set(user_ids))), users.c.role == "admin")
    return {row.user_id for row in connection.execute(query)}
