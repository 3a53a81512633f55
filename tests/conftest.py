"""Shared fixtures: databases on both engines, a live server, spec-checking clients.

PostgreSQL: tests that take the ``database_url`` fixture run once on SQLite
and once on PostgreSQL (``VIBEMUSE_TEST_DATABASE_URL``, default the local
``postgresql://postgres@127.0.0.1:5432/test``), each test in a fresh schema of
its own. If PostgreSQL cannot be reached those runs are skipped — unless
``VIBEMUSE_REQUIRE_POSTGRES=1`` (set by CI), which makes them fail instead.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import pytest

from tests.support.client import Api
from tests.support.clock import FakeClock
from tests.support.spec import SpecValidator
from vibemuse.app import VibeMuseServer
from vibemuse.config import DEFAULT_RATE_LIMITS, Config
from vibemuse.services.passwords import PasswordHasher
from vibemuse.storage import create_database_engine

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL = os.environ.get("VIBEMUSE_TEST_DATABASE_URL", DEFAULT_PG_URL)
REQUIRE_PG = os.environ.get("VIBEMUSE_REQUIRE_POSTGRES") == "1"
FAST_HASHER = PasswordHasher(log_n=12)  # real scrypt, cheaper cost: tests make many accounts

REDIS_URL = os.environ.get("VIBEMUSE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_REDIS = os.environ.get("VIBEMUSE_REQUIRE_REDIS") == "1"

_pg_reachable: bool | None = None


def _postgres_reachable() -> bool:
    global _pg_reachable
    if _pg_reachable is None:
        try:
            engine = create_database_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect():
                pass
            engine.dispose()
            _pg_reachable = True
        except Exception:
            _pg_reachable = False
    return _pg_reachable


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/vibemuse.db"
        return
    if not _postgres_reachable():
        message = f"PostgreSQL not reachable at {PG_URL}"
        if REQUIRE_PG:
            pytest.fail(message + " (VIBEMUSE_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    with postgres_schema() as url:
        yield url


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL schema (for what runs on PostgreSQL only: several processes of one server)."""
    if not _postgres_reachable():
        (pytest.fail if REQUIRE_PG else pytest.skip)(f"PostgreSQL not reachable at {PG_URL}")
    with postgres_schema() as url:
        yield url


@pytest.fixture
def bus():
    """The Redis the processes of a server share, and a pub/sub channel of this test's own."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        (pytest.fail if REQUIRE_REDIS else pytest.skip)(f"Redis not reachable at {REDIS_URL}: {error}")
    return {"bus_url": REDIS_URL, "bus_channel": "vmtest:" + secrets.token_hex(6)}


@contextlib.contextmanager
def postgres_schema():
    """The URL of a fresh PostgreSQL schema of its own, dropped afterwards."""
    schema = "vmtest_" + secrets.token_hex(6)
    admin = create_database_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture
def other_database_url(database_url, tmp_path):
    """A second database on the engine of ``database_url`` (a server of its own needs one)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path}/other.db"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def config(tmp_path, database_url):
    return Config(
        server_name="test.localhost",
        port=0,
        data_dir=str(tmp_path / "data"),
        database_url=database_url,
        auth_timeout_seconds=2.0,
        heartbeat_interval_seconds=5.0,
        heartbeat_timeout_seconds=20.0,
        max_frame_bytes=16 * 1024,
        max_http_body_bytes=16 * 1024,
        max_connections_per_user=3,
        database_threads=2,
        shutdown_grace_seconds=1.0,
        # Functional tests act fast and from one address: limits far away.
        # tests/test_security.py sets real ones.
        rate_limits={action: (1e9, 1e9) for action in DEFAULT_RATE_LIMITS},
        spam_flood_count=1_000_000,
        spam_repeat_count=1_000_000,
        max_connections_per_address=100_000,
    )


@pytest.fixture
def server_config(config):
    """Override in a test module to change settings of the server under test."""
    return config


@pytest.fixture
def server_options():
    """Override in a test module to pass more arguments to ``VibeMuseServer.create``."""
    return {}


@pytest.fixture
def server(io_loop, server_config, clock, server_options):
    async def start():
        server = await VibeMuseServer.create(server_config, clock=clock, hasher=FAST_HASHER, **server_options)
        server.start_background_tasks()
        return server

    server = io_loop.run_sync(start)
    yield server
    io_loop.run_sync(server.shutdown)


@pytest.fixture
def app(server):
    return server.application


@pytest.fixture(scope="session")
def spec():
    return SpecValidator()


@pytest.fixture
def api(server, http_server, base_url, spec):
    return Api(base_url, spec)


@pytest.fixture
def ws_url(server, http_server, base_url):
    return base_url.replace("http://", "ws://") + "/api/ws"


def count_rows(server, table: str) -> int:
    """Rows in one table of the server's database (to prove nothing was stored)."""
    with server.context.storage.engine.connect() as connection:
        return connection.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one()


@pytest.fixture
def world(api, ws_url, spec, server):
    from tests.support.world import World

    world = World(api, ws_url, spec, server)
    yield world
    world.close()
