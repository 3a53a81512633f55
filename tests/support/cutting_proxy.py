"""A loopback TCP proxy that can cut a WebSocket just before a chosen server frame.

It stands between a client and a real server and passes bytes both ways.
Once the server answers a WebSocket upgrade (HTTP 101), it reads the
server's frames one by one (RFC 6455 framing; a server's frames are not
masked) and hands each text frame, decoded, to the predicate given to
``cut_before``: the first frame it accepts is not forwarded, and both TCP
connections are closed at once, as if the network had failed between the
server writing that frame and the client reading it. The predicate is used
once. Plain HTTP (any answer but 101) passes through untouched.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any, Callable

Predicate = Callable[[dict[str, Any]], bool]


class CuttingProxy:
    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.port = 0
        self.cuts = 0
        self._predicate: Predicate | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> "CuttingProxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def cut_before(self, predicate: Predicate) -> None:
        self._predicate = predicate

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.close()
            return
        pumps = [asyncio.ensure_future(_pump(client_reader, server_writer)),
                 asyncio.ensure_future(self._downstream(server_reader, client_writer))]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            for writer in (client_writer, server_writer):
                writer.close()
            self._tasks.discard(task)  # type: ignore[arg-type]

    async def _downstream(self, upstream: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        head = await upstream.readuntil(b"\r\n\r\n")
        client.write(head)
        if not head.startswith(b"HTTP/1.1 101"):
            await _pump(upstream, client)
            return
        while True:
            header = await upstream.readexactly(2)
            length = header[1] & 0x7F
            extended = b""
            if length == 126:
                extended = await upstream.readexactly(2)
                length = struct.unpack("!H", extended)[0]
            elif length == 127:
                extended = await upstream.readexactly(8)
                length = struct.unpack("!Q", extended)[0]
            payload = await upstream.readexactly(length)
            if header[0] & 0x0F == 0x1 and self._predicate is not None and self._predicate(json.loads(payload)):
                self._predicate = None
                self.cuts += 1
                return  # closing both sides: the client never sees this frame
            client.write(header + extended + payload)
            await client.drain()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while chunk := await reader.read(65536):
        writer.write(chunk)
        await writer.drain()
