"""Positions commit in the order they are handed out, also with several writers.

Two ``Storage`` objects on one database stand for two processes of one
server. Writer A takes a position and stops inside its transaction (an op
that waits); writer B then appends. If B could commit meanwhile, position
11 would be visible while 10 was not, and a reader (a resume, a history
page) that saw 11 would never see 10. B waits for A instead: a reader sees
no position above A's until A commits, and each append names the one it
follows (``Appended.after``), which ``realtime/stream.py`` chains.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from vibemuse.protocol.events import build_event
from vibemuse.protocol.signing import generate_signing_key
from vibemuse.storage import Storage, create_database_engine, ensure_schema

KEY = generate_signing_key("t1", seed=b"\x05" * 32)
ROOM = "!AAAAAAAAAAAAAAAA:test"


def say(text: str, ts: int) -> dict:
    return build_event(event_type="vm.room.message", sender="@ann:test", origin="test", origin_server_ts=ts,
                       room_id=ROOM, content={"kind": "say", "body": text, "speaker": "ann",
                                              "rendered": f'ann says, "{text}"'}, signing_key=KEY)


@pytest.fixture
def writers(database_url):
    yield from _writers(database_url)


def _writers(database_url):
    engines = [create_database_engine(database_url, pool_size=2) for _ in range(3)]
    ensure_schema(engines[0], auto_migrate=False)
    storages = [Storage(engine, threads=2) for engine in engines]
    yield storages
    for storage in storages:
        storage.close()
    for engine in engines:
        engine.dispose()


@pytest.fixture
def postgres_writers(postgres_url):
    """Three storages on one PostgreSQL schema (several processes run on PostgreSQL only)."""
    yield from _writers(postgres_url)


def test_a_later_position_never_commits_before_an_earlier_one(postgres_writers):
    a, b, reader = postgres_writers

    async def scenario():
        await a.append_events([say("first", 1)], transaction=None, now_ms=1)
        entered, go_on = threading.Event(), threading.Event()

        def stop_inside(connection):  # runs in A's transaction, after its events got positions
            entered.set()
            go_on.wait(30)
        stop_inside.after_events = True

        slow = asyncio.ensure_future(a.append_events([say("from A", 2)], transaction=None, now_ms=2,
                                                     ops=[stop_inside]))
        await asyncio.to_thread(entered.wait, 30)
        quick = asyncio.ensure_future(b.append_events([say("from B", 3)], transaction=None, now_ms=3))
        await asyncio.sleep(0.5)  # B had every chance to commit
        assert not quick.done()  # it waits for A's commit
        assert await reader.latest_position() == 1  # nobody sees beyond what is committed in order
        go_on.set()
        first, second = await slow, await quick
        return first, second

    first, second = asyncio.run(scenario())
    assert first.after == 1 and first.positions == [2]
    assert second.after == 2 and second.positions == [3]  # B follows A: the chain has no gap


def test_each_append_names_the_position_it_follows(writers):
    a, b, _ = writers

    async def appends():
        return [await storage.append_events([say(f"n{n}", n)], transaction=None, now_ms=n)
                for n, storage in enumerate((a, b, a, b), start=1)]

    made = asyncio.run(appends())
    assert [(m.after, m.positions) for m in made] == [(0, [1]), (1, [2]), (2, [3]), (3, [4])]
