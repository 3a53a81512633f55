"""Schema versions: where the database is, where this code needs it, and the
upgrade between them (Alembic, driven from code)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class SchemaOutOfDate(Exception):
    """The database is at an older schema than this code needs."""


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None  # None: no VibeMUSE tables at all
    head: str
    empty: bool  # the database holds no tables of any kind

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def schema_status(engine: Engine) -> SchemaStatus:
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        empty = not inspect(connection).get_table_names()
    return SchemaStatus(current=current, head=head_revision(), empty=empty)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest revision, or to ``revision`` (idempotent)."""
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def ensure_schema(engine: Engine, *, auto_migrate: bool) -> SchemaStatus:
    """Make sure the schema is current before serving.

    An empty database is a first start and is set up at once. A database at an
    older revision is upgraded only when ``auto_migrate`` is on; otherwise the
    server refuses to start and says which command to run.
    """
    status = schema_status(engine)
    if status.up_to_date:
        return status
    if status.empty or auto_migrate:
        upgrade(engine)
        return schema_status(engine)
    raise SchemaOutOfDate(
        f"the database schema is at revision {status.current or 'none (foreign tables present)'}, "
        f"this server needs {status.head}: run `vibemuse migrate` first "
        "(or start with --migrate / auto_migrate = true)"
    )
