"""Database engines: SQLite (WAL) by default, PostgreSQL by URL.

SQLite notes. The Python driver's own transaction handling is switched off and
SQLAlchemy's ``begin`` event issues ``BEGIN`` itself, so that writing
transactions can start with ``BEGIN IMMEDIATE``: the write lock is taken up
front (waiting up to ``busy_timeout`` for another process, e.g. the CLI), and
a reader never has to upgrade its lock half-way through, which in WAL mode
fails at once with SQLITE_BUSY. ``synchronous=NORMAL`` in WAL mode keeps every
committed transaction across a crash of the process (``kill -9``); only an
operating-system crash may lose the last commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE = {"sqlite_begin": "IMMEDIATE"}


def normalize_database_url(url: str) -> str:
    """Pin PostgreSQL URLs without a driver to psycopg2 (SQLAlchemy 2.1 would pick psycopg 3)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def create_database_engine(url: str, *, pool_size: int = 4, **options: Any) -> Engine:
    url = normalize_database_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url, pool_size, options)
    return create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, future=True, **options
    )


def _sqlite_engine(url: str, pool_size: int, options: dict[str, Any]) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=pool_size,
        max_overflow=pool_size,
        **options,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine
