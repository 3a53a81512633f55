"""``Lease``: one process of several does a job (the federation sender), held in PostgreSQL.

Theory of operation. A lease is a session-level advisory lock
(``pg_try_advisory_lock``) on a connection of its own, kept open while the
process holds it. PostgreSQL frees the lock when that connection ends, so a
process that dies (``kill -9`` included) gives the job up at once, and the
next process that tries (``Leader`` tries every few seconds) takes it over;
the holder checks its connection as often, and stops the job when the
connection is gone (the database restarted: someone else may hold it now).
The lock is per schema, like the event stream's (``event_txns.EVENTS_LOCK``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from sqlalchemy import Engine

log = logging.getLogger(__name__)

LEASES = {"federation_sender": 0x766D_6673}  # "vmfs"
TRY_EVERY_SECONDS = 3.0


class Lease:
    def __init__(self, engine: Engine, name: str):
        self._engine = engine
        self._key = LEASES[name]
        self.name = name
        self._connection: Any = None

    def try_take(self) -> bool:
        """Take the lease if nobody holds it (blocking: run it in a thread)."""
        self.release()
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT pg_try_advisory_lock(%s, hashtext(current_schema()))", (self._key,))
            taken = bool(cursor.fetchone()[0])
            connection.commit()
        except Exception:
            connection.invalidate()
            raise
        if taken:
            self._connection = connection
        else:
            connection.close()
        return taken

    def still_held(self) -> bool:
        """Whether the lease's connection is still there (blocking)."""
        if self._connection is None:
            return False
        try:
            cursor = self._connection.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchone()
            self._connection.commit()
            return True
        except Exception:
            self._connection.invalidate()
            self._connection = None
            return False

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.invalidate()  # closing the session frees the lock
            finally:
                self._connection = None


class Leader:
    """Runs ``start`` while this process holds ``lease``, ``stop`` when it loses it."""

    def __init__(self, lease: Lease, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]],
                 every: float = TRY_EVERY_SECONDS):
        self._lease = lease
        self._start = start
        self._stop = stop
        self._every = every
        self.leading = False
        self._task: asyncio.Task[None] | None = None

    def run(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            try:
                if self.leading and not await asyncio.to_thread(self._lease.still_held):
                    log.warning("lost the %s lease (database connection gone)", self._lease.name)
                    self.leading = False
                    await self._stop()
                if not self.leading and await asyncio.to_thread(self._lease.try_take):
                    log.info("this process runs the %s", self._lease.name.replace("_", " "))
                    self.leading = True
                    await self._start()
            except Exception:
                log.exception("lease %s", self._lease.name)
            await asyncio.sleep(self._every)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.leading:
            self.leading = False
            await self._stop()
        await asyncio.to_thread(self._lease.release)
