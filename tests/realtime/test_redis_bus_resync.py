"""``RedisBus`` on a real Redis: after a resync (frames may have been missed) the stream is
caught up from the database at once, so the next append through the bus follows on and the
sockets that have just resumed are not closed a second time by the gap watch."""

from __future__ import annotations

import asyncio
import time

import pytest

from vibemuse.realtime.bus import Delivery
from vibemuse.realtime.redis_bus import RESYNC, RedisBus
from vibemuse.realtime.stream import Append, StreamOrder


def events(*positions: int) -> tuple[dict, ...]:
    return tuple({"event_id": f"$e{p}", "type": "vm.room.message", "room_id": "!r:t"} for p in positions)


@pytest.mark.gen_test(timeout=30)
async def test_a_resync_catches_the_stream_up_from_the_database_at_once(bus):
    clock = lambda: int(time.time() * 1000)  # noqa: E731
    committed = {1: events(1)[0], 2: events(2)[0], 3: events(3)[0]}  # what the database holds

    async def read_gap(after: int, upto: int) -> list[Append]:
        found = [p for p in sorted(committed) if after < p <= upto]
        return [Append(after, tuple(found), tuple(committed[p] for p in found))]

    async def read_head() -> int:
        return max(committed)

    writer = RedisBus(bus["bus_url"], bus["bus_channel"], instance="writer", clock=clock)
    reader = RedisBus(bus["bus_url"], bus["bus_channel"], instance="reader", clock=clock)
    taken: list[int] = []
    delivered: list[int | None] = []
    order = StreamOrder(0, deliver=lambda d: delivered.append(d.position),
                        on_appended=[lambda _, positions: taken.extend(positions)])
    reader.attach_stream(order, read_gap, read_head)
    resyncs, lost = [], []
    reader.on_resync = lambda: resyncs.append(True)
    reader.on_lost = lambda gone: lost.extend(gone)
    await writer.start()
    await reader.start()
    try:
        writer.signal(RESYNC, {"from": "writer"})  # the writer dropped records while Redis was away
        for _ in range(200):
            if order.released == 3:
                break
            await asyncio.sleep(0.02)
        assert resyncs and order.released == 3 and taken == [1, 2, 3]  # caught up, no gap left open

        writer.publish(Delivery("room:!r:t", b"frame 4", position=4))
        writer.appended(Append(3, (4,), events(4)))  # the next append follows on at once
        for _ in range(200):
            if order.released == 4:
                break
            await asyncio.sleep(0.02)
        assert order.released == 4 and taken == [1, 2, 3, 4] and delivered == [4]
        assert lost == [] and order.stalled_since is None  # nobody told to resume a second time
    finally:
        await writer.stop()
        await reader.stop()
