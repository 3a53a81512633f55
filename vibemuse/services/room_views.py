"""What a roster needs from storage — the room and its recent events — read once
per room and shared by every roster sent until the room changes.

A connect storm (everyone reconnecting after a restart) asks for the same
room's roster hundreds of times within a second; reading the room and its
recent events each time would cost two queries per socket. The event writer
calls ``stored`` before an event is fanned out, so a roster asked for after
the fan-out reads again (``SharedReads`` says the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from vibemuse.clock import Clock
from vibemuse.protocol.frames import encode_frame
from vibemuse.services.shared_reads import SharedReads
from vibemuse.storage import RoomRecord, Storage


@dataclass(frozen=True)
class RoomView:
    room: RoomRecord
    recent: list[dict[str, Any]]  # oldest first, within the byte budget
    room_json: str  # the roster's "room" object, encoded once
    recent_json: str  # "recent", encoded once


class RoomViews:
    def __init__(self, storage: Storage, *, recent: int, budget_bytes: int, clock: Clock, max_age_ms: int = 1000):
        self._storage = storage
        self._recent = recent
        self._budget_bytes = budget_bytes
        self._reads: SharedReads[str, RoomView | None] = SharedReads(self._read, clock=clock, max_age_ms=max_age_ms)

    async def get(self, room_id: str) -> RoomView | None:
        """The room and its recent events; None for an unknown room."""
        return await self._reads.get(room_id)

    def stored(self, events: Iterable[dict[str, Any]], positions: Iterable[int] = ()) -> None:
        """Events were stored: the views of their rooms are out of date."""
        for room_id in {event["room_id"] for event in events if "room_id" in event}:
            self._reads.invalidate(room_id)

    async def _read(self, room_id: str) -> RoomView | None:
        room = await self._storage.get_room(room_id)
        if room is None:
            return None
        recent = within_budget(await self._storage.recent_room_events(room_id, self._recent), self._budget_bytes)
        wire = {"id": room.room_id, "name": room.name, "description": room.description}
        return RoomView(room, recent, encode_frame(wire), encode_frame(recent))


def within_budget(events: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The newest events whose encoded size fits in ``budget`` bytes, oldest first."""
    kept: list[dict[str, Any]] = []
    for event in reversed(events):
        budget -= len(encode_frame(event).encode("utf-8"))
        if budget < 0:
            break
        kept.append(event)
    return kept[::-1]
