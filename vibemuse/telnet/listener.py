"""The telnet port: accepts connections in the server's own event loop.

Connections are admitted like the server's others (``vibemuse.admission``):
each one holds its address in the registry from accept to close (so
``max_connections_per_address`` and the server-wide ``max_connections`` count
it), one past either limit is told so in a line and closed, and the accept loop
survives running out of file descriptors (``AcceptLoop``). The socket gets TCP
keep-alive, which finds dead peers of clients that answer no timing mark.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Callable

from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

from vibemuse.admission import AcceptLoop, RefusalLog, Reserve
from vibemuse.context import ServerContext
from vibemuse.handlers.websocket import outbound_bound
from vibemuse.telnet.codec import encode_text
from vibemuse.telnet.connection import TelnetConnection

FULL_LINE = "The server is full; try again in a minute."
ADDRESS_FULL_LINE = "Too many connections from your address."
KEEPALIVE_IDLE_SECONDS = 60


class TelnetListener:
    def __init__(self, context: ServerContext, connections: Callable[[], int]):
        """``connections``: how many client connections the server holds now (HTTP and sockets)."""
        self.context = context
        self.connections = connections
        self.refusals = RefusalLog()
        self._reserve = Reserve(plain=False)
        self._loops: list[AcceptLoop] = []
        self._sockets: list[socket.socket] = []
        self.open: set[TelnetConnection] = set()
        self.started_s = context.clock() // 1000

    def add_sockets(self, sockets: list[socket.socket]) -> None:
        for sock in sockets:
            self._sockets.append(sock)
            self._loops.append(AcceptLoop(sock, self._accepted, self._reserve, self.refusals))

    def _accepted(self, sock: socket.socket, address: Any) -> None:
        config = self.context.config
        _keep_alive(sock)
        stream = IOStream(sock, max_write_buffer_size=outbound_bound(config))
        host = address[0] if isinstance(address, tuple) else "unix"
        if self.connections() >= config.max_connections:
            self.refusals.refused(f"max_connections ({config.max_connections}) reached")
            IOLoop.current().spawn_callback(_refuse, stream, FULL_LINE)
            return
        if not self.context.registry.hold_address(host, config.max_connections_per_address):
            IOLoop.current().spawn_callback(_refuse, stream, ADDRESS_FULL_LINE)
            return
        connection = TelnetConnection(self.context, stream, host, self.started_s)
        self.open.add(connection)
        IOLoop.current().spawn_callback(self._serve, connection)

    async def _serve(self, connection: TelnetConnection) -> None:
        try:
            await connection.run()
        finally:
            self.open.discard(connection)
            self.context.registry.release_address(connection.address)

    def stop(self) -> None:
        """Stop accepting (connections already open go on)."""
        for loop in self._loops:
            loop.stop()
        for sock in self._sockets:
            sock.close()
        self._loops, self._sockets = [], []
        self._reserve.close()

    def close_all(self, code: int, reason: str) -> None:
        """Close the connections still on the login screen (the registry closes the others)."""
        for connection in list(self.open):
            if connection.principal is None:
                connection.close(code, reason)


async def _refuse(stream: IOStream, line: str) -> None:
    try:
        await asyncio.wait_for(stream.write(encode_text(line + "\n")), 2.0)
    except Exception:
        pass
    stream.close()


def _keep_alive(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if hasattr(socket, "TCP_KEEPIDLE"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE_SECONDS)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_IDLE_SECONDS // 4)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4)
