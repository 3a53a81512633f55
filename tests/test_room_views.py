"""``RoomViews``: one storage read per room serves every roster until the room changes."""

from __future__ import annotations

import asyncio

import pytest

from vibemuse.services.room_views import RoomViews, within_budget
from vibemuse.storage import RoomRecord

ROOM = "!Room:test.localhost"


class CountingStorage:
    """The two reads a room view needs, counted; each waits for ``release`` so reads overlap."""

    def __init__(self) -> None:
        self.reads = 0
        self.events: list[dict] = [{"room_id": ROOM, "event_id": "$1", "content": {"body": "one"}}]
        self.release = asyncio.Event()
        self.release.set()

    async def get_room(self, room_id: str):
        self.reads += 1
        await self.release.wait()
        return RoomRecord(1, room_id, "Hall", "", None, 0) if room_id == ROOM else None

    async def recent_room_events(self, room_id: str, limit: int):
        return list(self.events[-limit:])


def views_of(storage, clock):
    return RoomViews(storage, recent=20, budget_bytes=10_000, clock=clock, max_age_ms=1000)


@pytest.mark.gen_test
async def test_rosters_asked_for_at_once_share_one_read():
    storage, now = CountingStorage(), [0]
    views = views_of(storage, lambda: now[0])
    storage.release.clear()
    waiting = [asyncio.ensure_future(views.get(ROOM)) for _ in range(50)]
    await asyncio.sleep(0)
    storage.release.set()
    got = await asyncio.gather(*waiting)
    assert storage.reads == 1
    assert {id(view) for view in got} == {id(got[0])} and got[0].room.name == "Hall"


@pytest.mark.gen_test
async def test_a_stored_event_of_the_room_makes_the_next_roster_read_again():
    storage, now = CountingStorage(), [0]
    views = views_of(storage, lambda: now[0])
    assert [e["event_id"] for e in (await views.get(ROOM)).recent] == ["$1"]
    views.stored([{"room_id": "!Other:test.localhost"}, {"type": "vm.page"}])  # other rooms, pages: no change
    await views.get(ROOM)
    assert storage.reads == 1
    storage.events.append({"room_id": ROOM, "event_id": "$2", "content": {"body": "two"}})
    views.stored([storage.events[-1]])
    assert [e["event_id"] for e in (await views.get(ROOM)).recent] == ["$1", "$2"]
    assert storage.reads == 2


@pytest.mark.gen_test
async def test_a_read_overtaken_by_an_event_serves_who_asked_before_it_and_is_not_kept():
    storage, now = CountingStorage(), [0]
    views = views_of(storage, lambda: now[0])
    storage.release.clear()
    early = asyncio.ensure_future(views.get(ROOM))
    await asyncio.sleep(0)
    views.stored([{"room_id": ROOM}])  # stored while the read was under way
    storage.release.set()
    assert (await early).room.room_id == ROOM
    await views.get(ROOM)
    assert storage.reads == 2


@pytest.mark.gen_test
async def test_views_expire_for_events_stored_elsewhere_and_unknown_rooms_are_none():
    storage, now = CountingStorage(), [0]
    views = views_of(storage, lambda: now[0])
    await views.get(ROOM)
    now[0] = 1000
    await views.get(ROOM)
    assert storage.reads == 1
    now[0] = 1001
    await views.get(ROOM)
    assert storage.reads == 2
    assert await views.get("!Nowhere:test.localhost") is None
    assert await views.get("!Nowhere:test.localhost") is None
    assert storage.reads == 4  # an unknown room is asked again each time


def test_recent_events_keep_within_the_byte_budget_newest_first():
    events = [{"n": index, "pad": "x" * 100} for index in range(10)]
    kept = within_budget(events, 350)
    assert [e["n"] for e in kept] == [7, 8, 9]


@pytest.mark.gen_test
async def test_results_no_one_asks_for_again_are_forgotten():
    from vibemuse.services.shared_reads import SWEEP_ABOVE, SharedReads

    now = [0]

    async def read(key):
        return key * 2

    reads = SharedReads(read, clock=lambda: now[0], max_age_ms=1000)
    for key in range(SWEEP_ABOVE):
        assert await reads.get(key) == key * 2
    now[0] = 2000
    assert await reads.get(-1) == -2
    assert len(reads._entries) == 1
