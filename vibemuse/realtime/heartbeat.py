"""Heartbeat: one timer for all sockets, not one per socket.

A ``Ticker`` calls ``beat`` every ``interval`` seconds: it pings each socket (a WebSocket ping,
which browsers answer on their own) and closes with 4004 those that have sent
nothing — no frame and no pong — for ``timeout`` seconds.
"""

from __future__ import annotations

import time
from typing import Callable

from vibemuse.protocol.errors import CloseCode
from vibemuse.realtime.connections import ConnectionRegistry


class Heartbeat:
    def __init__(
        self,
        registry: ConnectionRegistry,
        *,
        timeout: float,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._registry = registry
        self._timeout = timeout
        self._monotonic = monotonic

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
