"""Per-user page settings (haven, last paged) and blocks."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update

from vibemuse.storage.models import Block, UserSettings

user_settings = UserSettings.__table__
blocks = Block.__table__


@dataclass(frozen=True)
class PageSettings:
    haven: bool = False
    haven_message: str | None = None
    last_paged: tuple[str, ...] = ()


def get_settings_txn(connection: Connection, user_id: str) -> PageSettings:
    row = connection.execute(select(user_settings).where(user_settings.c.user_id == user_id)).first()
    if row is None:
        return PageSettings()
    last = tuple(json.loads(row.last_paged)) if row.last_paged else ()
    return PageSettings(bool(row.haven), row.haven_message, last)


def _upsert(connection: Connection, user_id: str, **values: object) -> None:
    if connection.execute(update(user_settings).where(user_settings.c.user_id == user_id).values(**values)).rowcount:
        return
    connection.execute(insert(user_settings).values(user_id=user_id, **values))


def set_haven_txn(connection: Connection, user_id: str, haven: bool, message: str | None) -> None:
    _upsert(connection, user_id, haven=haven, haven_message=message if haven else None)


def set_last_paged_txn(connection: Connection, user_id: str, recipients: tuple[str, ...]) -> None:
    _upsert(connection, user_id, last_paged=json.dumps(list(recipients)))


def set_block_txn(connection: Connection, blocker: str, blocked: str, on: bool, now_ms: int) -> bool:
    """Block or unblock; True if anything changed."""
    exists = connection.execute(
        select(blocks.c.blocker).where(blocks.c.blocker == blocker, blocks.c.blocked == blocked)
    ).first()
    if on and not exists:
        connection.execute(insert(blocks).values(blocker=blocker, blocked=blocked, created_ts=now_ms))
        return True
    if not on and exists:
        connection.execute(delete(blocks).where(blocks.c.blocker == blocker, blocks.c.blocked == blocked))
        return True
    return False


def all_blocks_txn(connection: Connection) -> list[tuple[str, str]]:
    return [(row.blocker, row.blocked) for row in connection.execute(select(blocks.c.blocker, blocks.c.blocked))]
