"""Reading what a Client receives, in the tests."""

from __future__ import annotations

import asyncio
from typing import Callable

from vibemuse_client import Client, Event, Frame


async def frame_where(client: Client, predicate: Callable[[Frame], bool], timeout: float = 10) -> Frame:
    async def find() -> Frame:
        async for frame in client.frames():
            if predicate(frame):
                return frame
        raise AssertionError("the client ended before the frame came")

    return await asyncio.wait_for(find(), timeout)


async def events_until(client: Client, last: Callable[[Event], bool], timeout: float = 10) -> list[Event]:
    """Every stream event the client hands out, up to and including the first for which ``last`` is true."""
    seen: list[Event] = []

    async def collect() -> list[Event]:
        async for event in client.events():
            seen.append(event)
            if last(event):
                return seen
        raise AssertionError(f"the client ended after {len(seen)} events")

    return await asyncio.wait_for(collect(), timeout)


def says(events: list[Event]) -> list[str]:
    return [event.body for event in events if event.type == "vm.room.message"]
