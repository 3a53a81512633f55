"""Database engines: SQLite (WAL) by default, PostgreSQL by URL.

SQLite notes. The Python driver's own transaction handling is switched off and
SQLAlchemy's ``begin`` event issues ``BEGIN`` itself, so that writing
transactions can start with ``BEGIN IMMEDIATE``: the write lock is taken up
front (waiting up to ``busy_timeout`` for another process, e.g. the CLI), and
a reader never has to upgrade its lock half-way through, which in WAL mode
fails at once with SQLITE_BUSY. ``synchronous=NORMAL`` in WAL mode keeps every
committed transaction across a crash of the process (``kill -9``); only an
operating-system crash may lose the last commits.

PostgreSQL away (restarted, or the network to it cut). Connections are checked
before use (``pool_pre_ping``: a dead one is replaced, and the first query
after the database is back works), a connection attempt gives up after
``CONNECT_TIMEOUT_SECONDS`` (unless the URL says otherwise), and
``is_unreachable`` tells an error of the link (the request may be retried
later) from a refusal of the statement. ``Storage`` turns the first into
``DatabaseUnavailable``: the wire's 503 ``unavailable``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

SQLITE_BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_SECONDS = 10
# SQLSTATEs of a server that is going or not there yet: admin_shutdown, crash_shutdown, cannot_connect_now
_SERVER_GOING = frozenset({"57P01", "57P02", "57P03"})
WRITE = {"sqlite_begin": "IMMEDIATE"}


def normalize_database_url(url: str) -> str:
    """Pin PostgreSQL URLs without a driver to psycopg2 (SQLAlchemy 2.1 would pick psycopg 3)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def create_database_engine(url: str, *, pool_size: int = 4, **options: Any) -> Engine:
    url = normalize_database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, pool_size, options)
    if "connect_timeout" not in parsed.query:
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **options.get("connect_args", {})}
    return create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, future=True, **options
    )


def is_unreachable(error: DBAPIError) -> bool:
    """Whether the error says the database cannot be reached (the connection failed, broke, or
    the server is shutting down or starting), not that it refused the statement."""
    if error.connection_invalidated:
        return True
    if not isinstance(error, (OperationalError, InterfaceError)):
        return False
    if not hasattr(error.orig, "pgcode"):
        return False  # SQLite: a busy or broken file is not a link that comes back
    code = error.orig.pgcode  # None: the driver's own error (no answer from the server at all)
    return code is None or code.startswith("08") or code in _SERVER_GOING


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
