"""Heartbeat: one timer for all sockets, not one per socket.

Every ``interval`` seconds the heartbeat pings each socket (a WebSocket ping,
which browsers answer on their own) and closes with 4004 those that have sent
nothing — no frame and no pong — for ``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from vibemuse.protocol.errors import CloseCode
from vibemuse.realtime.connections import ConnectionRegistry


class Heartbeat:
    def __init__(
        self,
        registry: ConnectionRegistry,
        *,
        interval: float,
        timeout: float,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._registry = registry
        self._interval = interval
        self._timeout = timeout
        self._monotonic = monotonic
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.beat()

    def beat(self) -> int:
        """Ping the live, close the silent; returns how many were closed."""
        deadline = self._monotonic() - self._timeout
        closed = 0
        for connection in self._registry:
            if connection.last_seen < deadline:
                connection.close(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")
                closed += 1
            else:
                connection.ping()
        return closed
