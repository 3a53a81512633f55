"""``StreamOrder``: the event stream put back in order, as several processes learn of it.

Theory of operation. When one server runs as several processes (``bus_url``),
each appends events to the one database, and positions commit in the order
they are handed out (``storage/event_txns.py``: one appender at a time). But
each process learns of the others' appends through the bus, and two
processes' messages can cross there: the append of 11 may arrive before the
append of 10, and so may the frames that carry them. Delivering 11 first
would break the promise of resume (a client that saw 11 and reconnects asks
for what followed 11, and never gets 10).

So every append travels with the position it follows (``after``: the newest
position committed before it), and each process keeps ``released``, the
position up to which it has learnt every append, in order. An append that
follows ``released`` is taken at once (its events are handed to the
``on_appended`` listeners, e.g. the room views and the resume tails), then
those that were waiting for it; a frame whose event is at or below
``released`` is delivered at once, one above it waits for its append. The
appends form a chain, like the channels' stamps (``protocol/channel_chain.py``),
so a missing link is seen, never guessed: an append that waits for one that
never comes (its process died between its commit and its publish, or the
bus lost it) stalls the stream until the caller fills the gap from the
database (``stalled_since`` / ``fill``), and the frames of the lost append,
which nobody will send, are what a resume is for.

This module is pure: no I/O, no clock of its own; the bus drives it.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from vibemuse.realtime.bus import Delivery

AppendedListener = Callable[[list[dict[str, Any]], list[int]], None]
FILLED_KEPT = 10_000  # the newest positions filled from the database whose late frames are dropped


@dataclass(frozen=True)
class Append:
    """One committed append: its events (as stored, without ``unsigned``), their positions,
    and the newest position committed before them."""

    after: int
    positions: tuple[int, ...]
    events: tuple[dict[str, Any], ...] = field(compare=False)

    @property
    def last(self) -> int:
        return self.positions[-1] if self.positions else self.after


class StreamOrder:
    def __init__(self, released: int, *, deliver: Callable[[Delivery], None],
                 on_appended: list[AppendedListener] | None = None):
        self.released = released  # every append up to here is known and handed on, in order
        self._deliver = deliver
        self.on_appended = on_appended if on_appended is not None else []
        self._waiting: dict[int, Append] = {}  # appends that arrived early, by the position they follow
        # frames (and actions) above ``released``: (position, arrival, frame or action)
        self._held: list[tuple[int, int, Delivery | Callable[[], None]]] = []
        self._arrivals = itertools.count()
        self._stalled_since: int | None = None  # when an early append first waited (the caller's clock)
        self._filled: set[int] = set()  # positions read from the database (``fill``), the newest ones
        self._filled_order: deque[int] = deque()
        self.dropped = 0  # late frames of those positions, not delivered

    # -- what arrives ------------------------------------------------------------------------

    def appended(self, append: Append, now_ms: int = 0) -> None:
        """An append learnt (from this process or through the bus)."""
        if append.last <= self.released:
            return  # known already (our own, coming back; or filled from the database)
        if append.after > self.released:
            self._waiting.setdefault(append.after, append)
            if self._stalled_since is None:
                self._stalled_since = now_ms
            return
        self._take(append)
        while self.released in self._waiting:
            self._take(self._waiting.pop(self.released))
        self._waiting = {after: early for after, early in self._waiting.items() if after > self.released}
        self._stalled_since = now_ms if self._waiting else None  # progress: a wait starts anew
        self._release_frames()

    def deliver(self, delivery: Delivery) -> None:
        """A frame to hand to this process's sockets, in stream order."""
        if delivery.position is not None and delivery.position in self._filled:
            self.dropped += 1  # late: after the frames that followed it (``fill``)
            return
        if delivery.position is None or delivery.position <= self.released:
            self._deliver(delivery)
        else:
            heapq.heappush(self._held, (delivery.position, next(self._arrivals), delivery))

    def act(self, position: int | None, action: Callable[[], None]) -> None:
        """Do something to this process's sockets (tune one out of a channel, move one) at its place in
        the stream: after the frames of ``position`` that came before it, before any later ones."""
        if position is None or position <= self.released:
            action()
        else:
            heapq.heappush(self._held, (position, next(self._arrivals), action))

    # -- gaps ----------------------------------------------------------------------------------

    @property
    def stalled_since(self) -> int | None:
        """Since when (the caller's clock) an append has waited for a predecessor; None: nothing waits."""
        return self._stalled_since if self._waiting else None

    @property
    def gap(self) -> tuple[int, int] | None:
        """The positions missing before the earliest waiting append: (after, up to), or None."""
        if not self._waiting:
            return None
        return self.released, min(self._waiting)

    def fill(self, appends: list[Append], now_ms: int = 0) -> None:
        """The appends of a gap, read from the database, in order. Their frames, should they come
        late after all, are dropped: the sockets that wanted them were told to resume."""
        for append in appends:
            for position in append.positions:
                if len(self._filled_order) == FILLED_KEPT:
                    self._filled.discard(self._filled_order.popleft())
                self._filled_order.append(position)
                self._filled.add(position)
            self.appended(append, now_ms)

    @property
    def held(self) -> int:
        """How many frames wait for their append."""
        return len(self._held)

    # -- plumbing ---------------------------------------------------------------------------------

    def _take(self, append: Append) -> None:
        events, positions = list(append.events), list(append.positions)
        if positions:
            for listener in self.on_appended:
                listener(events, positions)
        self.released = max(self.released, append.last)

    def _release_frames(self) -> None:
        held = self._held
        while held and held[0][0] <= self.released:
            item = heapq.heappop(held)[2]
            if isinstance(item, Delivery):
                self._deliver(item)
            else:
                item()
