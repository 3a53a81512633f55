"""``Tails``: every event after a stream position, read once for everyone who
resumes from it.

Theory of operation. After a restart every client reconnects at once, most
of them from the same few positions (the last events before the restart).
Reading, per socket, its moves, its channel changes and its candidate events
costs several queries each; instead the events after a position are read
once, in all scopes (``Storage.tail``), and each socket's replay is picked
from them in memory (``services.sync``). The read is shared (``SharedReads``)
for up to a second.

A tail read a moment ago misses what was stored since. So the event writer
tells ``stored`` of every event it stores (before fanning it out), and a tail
is handed out with those newer events appended: complete up to the moment it
is handed out. Anything stored later reaches the socket live (it holds live
frames while its session starts, and drops what the replay carried). The
newer events are kept in a bounded list; a tail it no longer reaches back to
is read again.

A redaction rewrites a stored event: tails read before it are dropped, and
so are the replayed frames (``frames``: each replayed event's frame, encoded
once and sent to every socket replayed that event, as a live fan-out would).

A tail is read only where it is small: when ``since`` is less than
``max_events`` positions behind the newest known one (positions only grow, so
at most that many events follow); else, or if more followed than a read
holds, ``get`` says None and the caller reads what it needs for its user.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

from vibemuse.clock import Clock
from vibemuse.services.shared_reads import SharedReads
from vibemuse.storage import Storage
from vibemuse.storage.sync_txns import Tail

FRESH_EVENTS = 2000  # events stored lately, kept to bring tails up to date
REDACTION = "vm.redaction"


class Tails:
    def __init__(self, storage: Storage, *, max_events: int, clock: Clock, max_age_ms: int = 1000,
                 fresh_events: int = FRESH_EVENTS):
        self._storage = storage
        self._max_events = max_events
        self._reads: SharedReads[int, Tail] = SharedReads(self._read, clock=clock, max_age_ms=max_age_ms)
        self._fresh: deque[dict[str, Any]] = deque(maxlen=fresh_events)
        self._latest = 0  # the newest position known
        self.frames = ReplayFrames()

    async def get(self, since: int) -> Tail | None:
        """Every event after ``since`` up to now, or None where a tail would be too long."""
        if self._latest and self._latest - since > self._max_events:
            return None
        tail = await self._reads.get(since)
        self._latest = max(self._latest, tail.latest)
        if not tail.complete:
            return None
        newer = self._newer_than(tail)
        if newer is None:  # the fresh events no longer reach back to this tail's end
            self._reads.invalidate(since)
            tail = await self._reads.get(since)
            newer = self._newer_than(tail) or []
            if not tail.complete:
                return None
        if not newer:
            return tail
        return Tail(since, max(tail.latest, _position(newer[-1])), tail.oldest, tail.events + newer, True)

    def stored(self, events: list[dict[str, Any]], positions: list[int]) -> None:
        for event, position in zip(events, positions):
            self._fresh.append(dict(event, unsigned={"stream_position": position}))
            self._latest = max(self._latest, position)
            if event["type"] == REDACTION:  # it rewrote an earlier event: read anew
                self._reads.invalidate_all()
                self.frames.clear()

    def _newer_than(self, tail: Tail) -> list[dict[str, Any]] | None:
        end = max([tail.latest, *(_position(e) for e in tail.events[-1:])])
        if len(self._fresh) == self._fresh.maxlen and _position(self._fresh[0]) > end + 1:
            return None
        newer = []
        for event in reversed(self._fresh):  # the newest last: usually few to look at
            if _position(event) <= end:
                break
            newer.append(event)
        return newer[::-1]

    async def _read(self, since: int) -> Tail:
        return await self._storage.tail(since, self._max_events + 1)


class ReplayFrames:
    """Encoded frames of replayed events by stream position, the most recent few thousand."""

    def __init__(self, size: int = 4096):
        self._size = size
        self._frames: OrderedDict[int, bytes] = OrderedDict()

    def get(self, position: int) -> bytes | None:
        return self._frames.get(position)

    def put(self, position: int, frame: bytes) -> None:
        self._frames[position] = frame
        if len(self._frames) > self._size:
            self._frames.popitem(last=False)

    def clear(self) -> None:
        self._frames.clear()


def _position(event: dict[str, Any]) -> int:
    return event["unsigned"]["stream_position"]
