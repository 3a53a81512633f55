"""``OutboxStore``: the storage verbs of the federation outbox (``outbox_txns``).

The same engine and threads as ``Storage`` (like ``MessageStore``). Queuing
itself is not here: it is ``outbox_txns.op_enqueue``, an op of
``Storage.append_events``, so an event and its queue rows commit together.
"""

from __future__ import annotations

from vibemuse.storage import outbox_txns
from vibemuse.storage.outbox_txns import Delivery, DestinationState, QueuedEvent, QueueStats
from vibemuse.storage.store import Storage


class OutboxStore:
    def __init__(self, storage: Storage):
        self._storage = storage

    async def pending(self, destination: str, limit: int) -> list[QueuedEvent]:
        """The oldest events waiting for ``destination``, in order, at most ``limit``."""
        return await self._storage._read(outbox_txns.pending_txn, destination, limit)

    async def destinations_with_pending(self) -> list[str]:
        return await self._storage._read(outbox_txns.destinations_with_pending_txn)

    async def mark_delivered(self, destination: str, delivery: Delivery) -> None:
        await self._storage._write(outbox_txns.mark_delivered_txn, destination, delivery)

    async def record_failure(self, destination: str, failures: int, next_attempt_ts: int) -> None:
        await self._storage._write(outbox_txns.record_failure_txn, destination, failures, next_attempt_ts)

    async def record_contact(self, destination: str, now_ms: int) -> None:
        await self._storage._write(outbox_txns.record_contact_txn, destination, now_ms)

    async def state(self, destination: str) -> DestinationState:
        return await self._storage._read(outbox_txns.get_state_txn, destination)

    async def queue_stats(self) -> list[QueueStats]:
        return await self._storage._read(outbox_txns.queue_stats_txn)
