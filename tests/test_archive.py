"""Retention and archival, on both engines: at storage level, and ``vibemuse archive`` run
as a real process beside a running server."""

from __future__ import annotations

import asyncio

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.client import PASSWORD, acked
from tests.support.clock import FakeClock
from vibemuse.config import Config, ConfigError, load_config
from vibemuse.protocol.events import verify_event
from vibemuse.storage import create_database_engine, upgrade
from vibemuse.storage.history_txns import DAY_MS, RetentionPolicy, archive_expired

VIBEMUSE = str(Path(sys.executable).parent / "vibemuse")
POLICY = RetentionPolicy(room_days=90, channel_days=365, page_days=30, system_days=100)


@pytest.fixture
def clock():
    """The server's clock starts 400 days ago: what it stores now is old by today's."""
    return FakeClock(time.time_ns() // 1_000_000 - 400 * DAY_MS)


def rows(server, sql: str) -> list[tuple]:
    with server.context.storage.engine.connect() as connection:
        return [tuple(row) for row in connection.exec_driver_sql(sql)]


async def old_and_new_history(world, clock):
    """400 days ago: room talk, channel talk (on Keep, kept for ever by its own setting), a page
    still waiting for offline Bob, an announcement. 10 days ago: more of each."""
    wizard = await world.player("Wizard", role="admin")
    room = await world.room("Library", wizard)
    alice = await world.player("Alice")
    bob = await world.offline_player("Bob")
    await acked(alice.ws, "join_room", {"roomId": room})
    await acked(alice.ws, "say", {"text": "ancient room words"})
    await world.api.call("POST", "/api/communication/channels", {"name": "Public"}, token=alice.token)
    await acked(alice.ws, "channel", {"channelId": "public", "text": "ancient channel words"})
    await world.api.call("POST", "/api/communication/channels", {"name": "Keep"}, token=alice.token)
    await acked(wizard.ws, "channel_update", {"channelId": "keep", "retentionDays": 0})
    await acked(alice.ws, "channel", {"channelId": "keep", "text": "ancient but kept"})
    await acked(alice.ws, "page", {"to": ["bob"], "text": "ancient page words"})
    await acked(wizard.ws, "wall", {"text": "ancient announcement"})
    old = {row[0] for row in rows(world.server, "SELECT stream_position FROM events")}
    clock.advance(390 * 86400)
    status, alice.session = await world.api.call("POST", "/api/auth/login",  # the old token has expired
                                                 {"username": "Alice", "password": PASSWORD})
    assert status == 200
    await acked(alice.ws, "say", {"text": "fresh room words"})
    await acked(alice.ws, "channel", {"channelId": "public", "text": "fresh channel words"})
    await acked(alice.ws, "page", {"to": ["bob"], "text": "fresh page words"})
    await acked(wizard.ws, "wall", {"text": "fresh announcement"})
    return room, alice, bob, old


def scope_of(row) -> str:
    event_type, room_id, channel_id = row
    if room_id:
        return "room"
    if channel_id:
        return "channel"
    return "page" if event_type in ("vm.page", "vm.receipt") else "system"


@pytest.mark.gen_test(timeout=60)
async def test_archive_moves_expired_events_with_their_signatures(world, server, clock, tmp_path):
    room, alice, _, old = await old_and_new_history(world, clock)
    engine, now = server.context.storage.engine, time.time_ns() // 1_000_000
    before = {row[0]: row[1:] for row in rows(server, "SELECT stream_position, event_json, event_type, room_id, "
                                                      "channel_id FROM events")}
    keep = {p for p, (_, _, _, channel) in before.items() if channel == "#keep:test.localhost"}
    expected = {scope: 0 for scope in ("room", "channel", "page", "system")}
    for position in old - keep:
        expected[scope_of(before[position][1:])] += 1
    assert expected == {"room": 3, "channel": 3, "page": 1, "system": 1}  # move x2 + say; create, join, say

    dry = archive_expired(engine, POLICY, now, dry_run=True)
    assert dry.counts == expected and dry.dry_run
    assert len(rows(server, "SELECT stream_position FROM events")) == len(before)  # a dry run changes nothing
    assert rows(server, "SELECT COUNT(*) FROM archived_events") == [(0,)]

    with open(tmp_path / "out.jsonl", "w", encoding="utf-8") as export:
        report = archive_expired(engine, POLICY, now, export=export, batch=2)
    assert report.counts == expected and report.total == 8

    moved = old - keep
    assert {row[0] for row in rows(server, "SELECT stream_position FROM events")} == set(before) - moved
    archived = {row[0]: row[1] for row in rows(server, "SELECT stream_position, event_json FROM archived_events")}
    assert archived == {position: before[position][0] for position in moved}  # the same JSON, byte for byte
    keys = {"test.localhost": server.context.keyring.verify_keys()}
    for event_json in archived.values():
        assert not verify_event(json.loads(event_json), keys).redacted_only  # signatures intact
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(line["unsigned"]["stream_position"] for line in lines) == sorted(moved)
    assert all(json.loads(archived[line["unsigned"]["stream_position"]]) ==
               {k: v for k, v in line.items() if k != "unsigned"} for line in lines)

    # Recipients and waiting deliveries of archived pages go too; the fresh page still waits.
    assert not [p for (p,) in rows(server, "SELECT stream_position FROM event_recipients") if p in moved]
    waiting = rows(server, "SELECT stream_position FROM pending_deliveries")
    assert len(waiting) == 1 and waiting[0][0] not in moved
    if engine.dialect.name == "sqlite":
        assert rows(server, "SELECT COUNT(*) FROM events_fts WHERE events_fts MATCH 'ancient'") == [(1,)]  # kept

    # The histories no longer serve them, searching included.
    _, history = await world.api.call("GET", f"/api/communication/history/{room}", token=alice.token)
    assert [e["content"].get("body") for e in history["events"] if e["type"] == "vm.room.message"] == [
        "fresh room words"]
    status, found = await world.api.call("GET", f"/api/communication/history/{room}?q=ancient", token=alice.token)
    assert found["events"] == []
    status, found = await world.api.call("GET", "/api/communication/channels/public/history?q=words",
                                         token=alice.token)
    assert [e["content"]["body"] for e in found["events"]] == ["fresh channel words"]
    status, kept = await world.api.call("GET", "/api/communication/channels/keep/history?q=ancient",
                                        token=alice.token)
    assert [e["content"]["body"] for e in kept["events"]] == ["ancient but kept"]
    status, pages = await world.api.call("GET", "/api/communication/pages/bob", token=alice.token)
    assert [e["content"]["body"] for e in pages["events"]] == ["fresh page words"]

    again = archive_expired(engine, POLICY, now)
    assert again.total == 0  # nothing left to move


@pytest.mark.gen_test(timeout=60)
async def test_zero_keeps_for_ever_and_a_channel_setting_overrides(world, server, clock):
    await old_and_new_history(world, clock)
    engine, now = server.context.storage.engine, time.time_ns() // 1_000_000
    forever = archive_expired(engine, RetentionPolicy(0, 0, 0, 0), now, dry_run=True)
    assert forever.total == 0
    await acked(world.players[0].ws, "channel_update", {"channelId": "keep", "retentionDays": 1})
    short = archive_expired(engine, RetentionPolicy(0, 0, 0, 0), now)
    # all of Keep (create, join, two settings, say: 10 days old and more), nothing else
    assert short.counts == {"room": 0, "channel": 5, "page": 0, "system": 0}
    assert rows(server, "SELECT COUNT(*) FROM events WHERE channel_id = '#keep:test.localhost'") == [(0,)]
    assert rows(server, "SELECT COUNT(*) FROM events WHERE channel_id = '#public:test.localhost'") == [(4,)]


def test_retention_settings_are_configurable_and_checked(tmp_path):
    config, _ = load_config({}, {})
    assert (config.retention_room_days, config.retention_channel_days, config.retention_page_days,
            config.retention_system_days) == (90, 365, 0, 0)
    config, _ = load_config({"data_dir": str(tmp_path)}, {"VIBEMUSE_RETENTION_PAGE_DAYS": "30"})
    assert config.retention_page_days == 30 and config == Config(data_dir=str(tmp_path), retention_page_days=30)
    with pytest.raises(ConfigError, match="retention_room_days"):
        load_config({}, {"VIBEMUSE_RETENTION_ROOM_DAYS": "-1"})


def vibemuse_archive(database_url: str, data_dir: Path, *args: str, **settings: int):
    env = dict(os.environ, **{f"VIBEMUSE_{name.upper()}": str(value) for name, value in settings.items()})
    return subprocess.run([VIBEMUSE, "archive", "--data-dir", str(data_dir), "--database-url", database_url, *args],
                          capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.gen_test(timeout=120)
async def test_the_archive_command_beside_a_running_server(world, server, clock, database_url, tmp_path):
    await old_and_new_history(world, clock)
    total = rows(server, "SELECT COUNT(*) FROM events")[0][0]
    settings = {"retention_page_days": 30, "retention_system_days": 100}

    # the commands run in a thread: the server (in this event loop) keeps answering pings meanwhile
    dry = await asyncio.to_thread(vibemuse_archive, database_url, tmp_path / "cli", "--dry-run", "--export",
                                  str(tmp_path / "no.jsonl"), **settings)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == ["room: 3", "channel: 3", "page: 1", "system: 1", "would archive 8 events"]
    assert rows(server, "SELECT COUNT(*) FROM events") == [(total,)] and not (tmp_path / "no.jsonl").exists()

    done = await asyncio.to_thread(vibemuse_archive, database_url, tmp_path / "cli", "--export",
                                   str(tmp_path / "old.jsonl"), **settings)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"archived 8 events, appended to {tmp_path / 'old.jsonl'}"
    assert len((tmp_path / "old.jsonl").read_text(encoding="utf-8").splitlines()) == 8
    assert rows(server, "SELECT COUNT(*) FROM events") == [(total - 8,)]
    assert rows(server, "SELECT COUNT(*) FROM archived_events") == [(8,)]
    # The server goes on as before.
    alice = world.players[1]
    await acked(alice.ws, "say", {"text": "still here"})

    forever = await asyncio.to_thread(vibemuse_archive, database_url, tmp_path / "cli", retention_room_days=0,
                                      retention_channel_days=0)
    assert forever.returncode == 0 and forever.stdout.splitlines()[-1] == "archived 0 events"


def test_the_archive_command_needs_a_current_database(tmp_path):
    missing = vibemuse_archive(f"sqlite:///{tmp_path}/none.db", tmp_path)
    assert missing.returncode == 1 and "no VibeMUSE database" in missing.stderr
    engine = create_database_engine(f"sqlite:///{tmp_path}/old.db")
    upgrade(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0003'")
    engine.dispose()
    old = vibemuse_archive(f"sqlite:///{tmp_path}/old.db", tmp_path)
    assert old.returncode == 3 and "vibemuse migrate" in old.stderr
