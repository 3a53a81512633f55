"""The storage interface, the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from vibemuse.storage import (
    Conflict,
    NotFound,
    SchemaOutOfDate,
    Storage,
    create_database_engine,
    ensure_schema,
    schema_status,
    upgrade,
)
from vibemuse.storage.schema import head_revision

ROOM_A = "!AAAAAAAAAAAAAAAA:test"
ROOM_B = "!BBBBBBBBBBBBBBBB:test"


@pytest.fixture
def engine(database_url):
    engine = create_database_engine(database_url, pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture
def storage(engine):
    ensure_schema(engine, auto_migrate=False)
    storage = Storage(engine, threads=2)
    yield storage
    storage.close()


def run(coroutine):
    return asyncio.run(coroutine)


def test_first_start_creates_the_schema(engine):
    assert schema_status(engine).empty
    status = ensure_schema(engine, auto_migrate=False)
    assert status.up_to_date and status.current == head_revision()


def test_out_of_date_schema_is_refused_unless_migrating(engine):
    upgrade(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM alembic_version")
    with pytest.raises(SchemaOutOfDate, match="vibemuse migrate"):
        ensure_schema(engine, auto_migrate=False)


def test_upgrade_is_idempotent(engine):
    upgrade(engine)
    upgrade(engine)
    assert schema_status(engine).up_to_date


def test_accounts_made_before_0006_get_the_position_of_their_time(engine):
    """Migration 0006 gives each existing account the newest position older than it (resume floor)."""
    upgrade(engine, "0005")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO rooms (room_id, name, name_folded, description, created_ts) "
            "VALUES ('!AAAAAAAAAAAAAAAA:test', 'A', 'a', '', 0)")
        for position, ts in ((1, 100), (2, 200), (3, 300)):
            connection.exec_driver_sql(
                "INSERT INTO events (stream_position, event_id, event_type, sender, origin_server_ts, event_json) "
                f"VALUES ({position}, '$e{position}', 'vm.system', '@a:test', {ts}, '{{}}')")
        for user, created in (("@old:test", 50), ("@mid:test", 250), ("@new:test", 900)):
            connection.exec_driver_sql(
                "INSERT INTO users (user_id, username, role, password_hash, created_ts, location_room_id) "
                f"VALUES ('{user}', 'x', 'player', 'x', {created}, '!AAAAAAAAAAAAAAAA:test')")
    upgrade(engine)
    with engine.connect() as connection:
        rows = dict(connection.exec_driver_sql("SELECT user_id, created_position FROM users").all())
    assert rows == {"@old:test": 0, "@mid:test": 2, "@new:test": 3}


def test_a_new_account_starts_at_the_newest_position(storage):
    run(storage.create_room(ROOM_A, "A", "", None, 1))
    made = run(storage.create_user("@alice:test", "Alice", "player", "h", ROOM_A, 5))
    assert made.created_position == run(storage.latest_position())
    assert run(storage.get_user("@alice:test")).created_position == made.created_position


def test_sqlite_runs_in_wal_mode(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path}/wal.db")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_default_room_is_made_once(storage):
    first = run(storage.ensure_default_room(ROOM_A, "Town Square", "d", 1))
    second = run(storage.ensure_default_room(ROOM_B, "Elsewhere", "d", 2))
    assert second == first
    assert run(storage.get_state("default_room_id")) == ROOM_A


def test_rooms(storage):
    run(storage.create_room(ROOM_A, "Hall", "big", None, 10))
    with pytest.raises(Conflict):
        run(storage.create_room(ROOM_B, "HALL", "same name", None, 11))
    run(storage.create_room(ROOM_B, "Kitchen", "", "@w:test", 12))
    rooms = run(storage.list_rooms(0, 10))
    assert [room.name for room in rooms] == ["Hall", "Kitchen"]
    assert run(storage.list_rooms(rooms[0].seq, 10)) == rooms[1:]
    assert run(storage.get_room(ROOM_B)).created_by == "@w:test"
    assert run(storage.get_room("!CCCCCCCCCCCCCCCC:test")) is None


def test_users_and_locations(storage):
    run(storage.create_room(ROOM_A, "Hall", "", None, 1))
    run(storage.create_room(ROOM_B, "Kitchen", "", None, 1))
    user = run(storage.create_user("@alice:test", "Alice", "player", "hash", ROOM_A, 5))
    assert run(storage.get_user("@alice:test")) == user
    with pytest.raises(Conflict):
        run(storage.create_user("@alice:test", "ALICE", "player", "hash", ROOM_A, 6))
    run(storage.set_location("@alice:test", ROOM_B))
    assert [u.user_id for u in run(storage.users_located_in(ROOM_B))] == ["@alice:test"]
    assert run(storage.users_located_in(ROOM_A)) == []
    with pytest.raises(NotFound):
        run(storage.set_location("@alice:test", "!CCCCCCCCCCCCCCCC:test"))
    assert run(storage.set_role("@alice:test", "admin")).role == "admin"


def test_a_user_needs_an_existing_room(storage):
    with pytest.raises(Exception):
        run(storage.create_user("@bob:test", "Bob", "player", "hash", ROOM_A, 1))
    assert run(storage.get_user("@bob:test")) is None


def test_access_tokens(storage):
    run(storage.create_room(ROOM_A, "Hall", "", None, 1))
    run(storage.create_user("@alice:test", "Alice", "player", "hash", ROOM_A, 1))
    run(storage.create_access_token("a" * 64, "@alice:test", 100, 200))
    run(storage.create_access_token("b" * 64, "@alice:test", 100, 1000))
    token, user = run(storage.get_access_token("a" * 64))
    assert (token.expires_ts, token.revoked_ts, user.user_id) == (200, None, "@alice:test")
    assert run(storage.revoke_access_token("a" * 64, 150)) is True
    assert run(storage.revoke_access_token("a" * 64, 160)) is False
    assert run(storage.get_access_token("a" * 64))[0].revoked_ts == 150
    assert run(storage.purge_expired_tokens(500)) == 1
    assert run(storage.get_access_token("a" * 64)) is None
    assert run(storage.get_access_token("b" * 64)) is not None


def test_concurrent_writes_all_land(storage):
    run(storage.create_room(ROOM_A, "Hall", "", None, 1))

    async def many():
        await asyncio.gather(
            *(storage.create_user(f"@u{n}:test", f"u{n}", "player", "h", ROOM_A, n) for n in range(40))
        )

    run(many())
    assert len(run(storage.users_located_in(ROOM_A))) == 40


def test_concurrent_duplicates_make_exactly_one(storage):
    run(storage.create_room(ROOM_A, "Hall", "", None, 1))

    async def race():
        return await asyncio.gather(
            *(storage.create_user("@same:test", "Same", "player", "h", ROOM_A, n) for n in range(10)),
            return_exceptions=True,
        )

    results = run(race())
    assert sum(not isinstance(result, Exception) for result in results) == 1
    assert all(isinstance(result, Conflict) for result in results if isinstance(result, Exception))


def test_models_match_the_migrations(engine):
    """The models queries are written against are exactly what the migrations make."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from vibemuse.storage.models import Base

    upgrade(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    def engine_specific(difference) -> bool:
        """Alembic's own table and what each engine's full-text search adds."""
        if isinstance(difference, tuple) and difference[0] == "remove_table":
            return difference[1].name == "alembic_version" or difference[1].name.startswith("events_fts")
        if isinstance(difference, tuple) and difference[0] in ("remove_column", "remove_index"):
            return "body_tsv" in str(difference)
        return False

    differences = [d for d in differences if not engine_specific(d)]
    assert differences == []


def test_processes_starting_at_once_agree_on_one_default_room(engine, database_url):
    ensure_schema(engine, auto_migrate=False)
    storages = [Storage(create_database_engine(database_url, pool_size=2), threads=2) for _ in range(4)]

    async def start_all():
        return await asyncio.gather(*(s.ensure_default_room(f"!{'ABCD'[n] * 16}:test", "Town Square", "", n)
                                      for n, s in enumerate(storages)))

    try:
        rooms = run(start_all())
    finally:
        for s in storages:
            s.close()
    assert len({room.room_id for room in rooms}) == 1  # one room, whoever made it
