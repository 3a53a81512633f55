"""``SharedReads``: one storage read per key, shared by everyone who asks for it
until it is out of date.

Theory of operation. In a connect storm (everyone reconnecting after a
restart) thousands of sockets ask for the same thing within a second: the
same room's roster, the same events since the same position. The first to
ask starts the read; everyone asking meanwhile awaits the same read; later
callers get its result until the owner says the key changed (``invalidate``,
e.g. when an event is stored, before it is fanned out) or the result is
older than ``max_age_ms`` (changes made by another process of the server).
A read that a change overtook is handed to those who asked before the
change, and not kept. Results that are None, and reads that fail, are not
kept either.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable, Generic, Hashable, TypeVar

from vibemuse.clock import Clock

SWEEP_ABOVE = 64  # entries kept before old ones are looked for and forgotten
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class _Entry(Generic[V]):
    generation: tuple[int, int]  # (epoch, the key's generation)
    read_at_ms: int
    result: "asyncio.Future[V]"


class SharedReads(Generic[K, V]):
    def __init__(self, read: Callable[[K], Awaitable[V]], *, clock: Clock, max_age_ms: int = 1000):
        self._read = read
        self._clock = clock
        self._max_age_ms = max_age_ms
        self._generations: dict[K, int] = {}
        self._epoch = 0  # bumped by invalidate_all: every generation is then new
        self._entries: dict[K, _Entry[V]] = {}

    async def get(self, key: K) -> V:
        now, generation = self._clock(), self._generation(key)
        entry = self._entries.get(key)
        if entry is None or entry.generation != generation or now - entry.read_at_ms > self._max_age_ms:
            entry = _Entry(generation, now, asyncio.ensure_future(self._read_once(key, generation)))
            self._entries[key] = entry
            if len(self._entries) > SWEEP_ABOVE:
                self._sweep(now)
        if entry.result.done():
            return entry.result.result()
        return await asyncio.shield(entry.result)  # a caller cancelled must not cancel the others' read

    def _sweep(self, now: int) -> None:
        """Forget results too old to be handed out (keys no one asked for again)."""
        for key in [key for key, entry in self._entries.items() if now - entry.read_at_ms > self._max_age_ms]:
            del self._entries[key]

    def invalidate(self, key: K) -> None:
        self._generations[key] = self._generations.get(key, 0) + 1
        self._entries.pop(key, None)

    def invalidate_all(self) -> None:
        self._epoch += 1
        self._generations.clear()
        self._entries.clear()

    def _generation(self, key: K) -> tuple[int, int]:
        return self._epoch, self._generations.get(key, 0)

    async def _read_once(self, key: K, generation: tuple[int, int]) -> V:
        try:
            result = await self._read(key)
        except BaseException:
            self._forget(key, generation)
            raise
        if result is None:
            self._forget(key, generation)
        return result

    def _forget(self, key: K, generation: tuple[int, int]) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry.generation == generation:
            del self._entries[key]
