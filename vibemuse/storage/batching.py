"""``ReadBatcher``: reads of one kind asked for at about the same time, made
together in one transaction.

Theory of operation (Synapse's ``BatchingQueue`` works the same way). The
first ``get`` starts a batch of one at once: no added wait. While a batch is
under way, further keys queue up, and the next batch takes all of them (at
most ``max_keys``) in one trip to a database thread and one query per table
(``WHERE key IN (...)``). In a connect storm thousands of sockets ask for
their token and their session start within a second: a few dozen reads
serve them all, instead of one thread hop and one transaction each.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ReadBatcher(Generic[K, V]):
    def __init__(self, read_many: Callable[[list[K]], Awaitable[dict[K, V]]], *, missing: V, max_keys: int = 500):
        self._read_many = read_many
        self._missing = missing  # the answer for a key the read did not return
        self._max_keys = max_keys
        self._waiting: list[tuple[K, asyncio.Future[V]]] = []
        self._draining = False

    async def get(self, key: K) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._waiting.append((key, future))
        if not self._draining:
            self._draining = True
            asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:self._max_keys], self._waiting[self._max_keys:]
                await self._read(batch)
        finally:
            self._draining = False

    async def _read(self, batch: list[tuple[K, asyncio.Future[V]]]) -> None:
        try:
            found = await self._read_many(list(dict.fromkeys(key for key, _ in batch)))
        except Exception as error:  # every caller of the batch gets the failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for key, future in batch:
            if not future.done():
                future.set_result(found.get(key, self._missing))
