"""What a roster needs from storage — the room and its recent events — read once
per room and shared by every roster sent until the room changes.

Theory of operation. A connect storm (everyone reconnecting after a restart)
asks for the same room's roster hundreds of times within a second; reading
the room and its recent events each time costs two queries per socket. A
``RoomView`` is read once, and every roster asked for meanwhile waits on that
one read. It stays good until an event of the room is stored (``stored``,
called by the event writer before the event is fanned out, so a roster asked
for after the fan-out reads again) or, for events stored by another process
of the same server, at most ``max_age_ms``. A read that an event overtook is
handed to those who asked before the event, and not kept.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Iterable

from vibemuse.clock import Clock
from vibemuse.protocol.frames import encode_frame
from vibemuse.storage import RoomRecord, Storage


@dataclass(frozen=True)
class RoomView:
    room: RoomRecord
    recent: list[dict[str, Any]]  # oldest first, within the byte budget


@dataclass
class _Entry:
    generation: int
    read_at_ms: int
    view: "asyncio.Future[RoomView | None]"


class RoomViews:
    def __init__(self, storage: Storage, *, recent: int, budget_bytes: int, clock: Clock, max_age_ms: int = 1000):
        self._storage = storage
        self._recent = recent
        self._budget_bytes = budget_bytes
        self._clock = clock
        self._max_age_ms = max_age_ms
        self._generations: dict[str, int] = {}
        self._entries: dict[str, _Entry] = {}

    async def get(self, room_id: str) -> RoomView | None:
        """The room and its recent events; None for an unknown room."""
        now = self._clock()
        entry = self._entries.get(room_id)
        generation = self._generations.get(room_id, 0)
        if entry is None or entry.generation != generation or now - entry.read_at_ms > self._max_age_ms:
            entry = _Entry(generation, now, asyncio.ensure_future(self._read(room_id, generation)))
            self._entries[room_id] = entry
        return await asyncio.shield(entry.view)

    def stored(self, events: Iterable[dict[str, Any]]) -> None:
        """Events were stored: the views of their rooms are out of date."""
        for room_id in {event["room_id"] for event in events if "room_id" in event}:
            self._generations[room_id] = self._generations.get(room_id, 0) + 1
            self._entries.pop(room_id, None)

    async def _read(self, room_id: str, generation: int) -> RoomView | None:
        try:
            room = await self._storage.get_room(room_id)
            if room is None:
                self._forget(room_id, generation)
                return None
            recent = await self._storage.recent_room_events(room_id, self._recent)
        except BaseException:
            self._forget(room_id, generation)
            raise
        return RoomView(room, within_budget(recent, self._budget_bytes))

    def _forget(self, room_id: str, generation: int) -> None:
        entry = self._entries.get(room_id)
        if entry is not None and entry.generation == generation:
            del self._entries[room_id]


def within_budget(events: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The newest events whose encoded size fits in ``budget`` bytes, oldest first."""
    kept: list[dict[str, Any]] = []
    for event in reversed(events):
        budget -= len(encode_frame(event).encode("utf-8"))
        if budget < 0:
            break
        kept.append(event)
    return kept[::-1]
