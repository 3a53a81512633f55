"""Heartbeat: one timer for all sockets, not one per socket.

A ``Ticker`` calls ``beat`` every ``interval`` seconds: it closes sockets
whose access token has expired (4006), and pings each socket (a WebSocket ping,
which browsers answer on their own) and closes with 4004 those that have sent
nothing — no frame and no pong — for ``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from vibemuse.protocol.errors import CloseCode
from vibemuse.realtime.connections import ConnectionRegistry


SLICE = 500  # sockets per turn of the event loop


class Heartbeat:
    def __init__(
        self,
        registry: ConnectionRegistry,
        *,
        timeout: float,
        clock: Callable[[], int],
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._registry = registry
        self._timeout = timeout
        self._clock = clock
        self._monotonic = monotonic

    async def beat(self) -> int:
        """Ping the live, close the silent and those whose token has expired (4006);
        returns how many were closed.

        Works through the sockets in slices, letting the event loop run between
        them, so a beat over thousands of sockets never stalls message delivery."""
        deadline, now_ms = self._monotonic() - self._timeout, self._clock()
        closed = 0
        for count, connection in enumerate(self._registry, start=1):
            expires = connection.expires_ms
            if connection.last_seen < deadline:
                connection.close(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")
                closed += 1
            elif expires is not None and expires <= now_ms:
                connection.close(CloseCode.TOKEN_EXPIRED, "access token expired")
                closed += 1
            else:
                connection.ping()
            if count % SLICE == 0:
                await asyncio.sleep(0)
        return closed
