"""The visibility rule (``vibemuse.protocol.visibility.may_see``) as SQL, for the paths that
read many events at once: a channel's history and its search.

Theory of operation. Within one channel's events, ``may_see`` for a member whose
view starts at a ``Floor`` comes down to: a row is seen when its sender is the
viewer, it is addressed to them, or the floor admits it; an edit or deletion besides needs its target —
the row whose ``event_id`` its ``content.relates_to`` (``content.redacts``)
names — to be seen, or gone. A row is addressed to the viewer (the member a
membership event is about) when ``event_recipients`` names them for it. ``channel_condition`` builds exactly that, reading
the target's id out of the stored JSON (``json_extract`` on SQLite,
``json_extract_path_text`` on PostgreSQL) and finding the target through the
unique index on ``event_id``. Every other path (single messages, live
fan-out, the resume replay) calls ``may_see`` itself; a test checks that both
forms agree, event by event.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Connection, and_, cast, exists, func, or_, select

from vibemuse.protocol.visibility import TARGET_KEYS, WHOLE_HISTORY, Floor
from vibemuse.storage.models import Event, EventRecipient, User

events = Event.__table__
event_recipients = EventRecipient.__table__
users = User.__table__


def channel_condition(viewer_id: str, floor: Floor, position: Any, dialect: str) -> Any | None:
    """The WHERE condition for the rows of one channel that ``viewer_id`` sees from ``floor`` on
    (``position``: the column the rows are read by); None when it holds for every row."""
    if floor == WHOLE_HISTORY:
        return None
    targets = events.alias("targets")
    hidden_target = exists().where(targets.c.event_id == _target_id(dialect),
                                   ~_seen(targets, targets.c.stream_position, viewer_id, floor))
    return and_(_seen(events, position, viewer_id, floor),
                or_(events.c.event_type.not_in(tuple(TARGET_KEYS)), ~hidden_target))


def _seen(rows: Any, position: Any, viewer_id: str, floor: Floor) -> Any:
    if floor.position is not None:
        admitted = position >= floor.position
    else:
        admitted = rows.c.origin_server_ts >= floor.ts
    addressed = exists().where(event_recipients.c.stream_position == position,
                               event_recipients.c.user_id == viewer_id)
    return or_(rows.c.sender == viewer_id, admitted, addressed)


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
