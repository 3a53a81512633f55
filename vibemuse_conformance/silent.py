"""A WebSocket that never answers the server's pings: for the heartbeat timeout (protocol.md 5.5).

Every WebSocket library answers a ping with a pong by itself, which is what
keeps a socket alive; to see the server close a dead one, the suite needs a
client that reads but stays silent. This is that client, on a bare TCP
stream: the opening handshake of RFC 6455 (its ``Sec-WebSocket-Accept``
checked), masked text frames out, and frames in (unmasked, as a server
sends them) read until the close, counting pings and answering none.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import ssl
import struct
from typing import Any, Callable
from urllib.parse import urlsplit

from vibemuse_conformance.runner import CheckFailed

ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
TEXT, CLOSE, PING = 0x1, 0x8, 0x9


class SilentSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, check: Callable[[Any], Any]):
        self._reader, self._writer, self._check = reader, writer, check
        self.frames: list[dict[str, Any]] = []
        self.pings = 0
        self.close_code: int | None = None

    @classmethod
    async def open(cls, ws_url: str, *, token: str | None, subprotocol: str, check: Callable[[Any], Any],
                   timeout: float = 15.0) -> "SilentSocket":
        """Connect and upgrade; ``check`` gets every text frame read (the schema check of the harness)."""
        url = urlsplit(ws_url)
        secure = url.scheme == "wss"
        port = url.port or (443 if secure else 80)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(url.hostname, port, ssl=ssl.create_default_context() if secure else None),
            timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {url.path or '/'}{'?' + url.query if url.query else ''} HTTP/1.1",
                 f"Host: {url.netloc}", "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13", f"Sec-WebSocket-Protocol: {subprotocol}"]
        if token is not None:
            lines.append(f"Authorization: Bearer {token}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)).decode("latin-1")
        status, *header_lines = head.split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in
                   (line.partition(":") for line in header_lines if line)}
        if status.split(" ")[1:2] != ["101"]:
            writer.close()
            raise CheckFailed("the upgrade (HTTP 101)", status)
        accept = base64.b64encode(hashlib.sha1((key + ACCEPT_GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            writer.close()
            raise CheckFailed("Sec-WebSocket-Accept of RFC 6455 4.2.2", headers.get("sec-websocket-accept"))
        return cls(reader, writer, check)

    def send(self, frame: dict[str, Any]) -> None:
        """One masked text frame (clients must mask, RFC 6455 5.3)."""
        payload = json.dumps(frame).encode()
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | TEXT, 0x80 | length)
        elif length < 1 << 16:
            header = struct.pack("!BBH", 0x80 | TEXT, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | TEXT, 0x80 | 127, length)
        self._writer.write(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    async def _frame(self) -> tuple[int, bytes]:
        first, second = await self._reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self._reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self._reader.readexactly(8))
        mask = await self._reader.readexactly(4) if second & 0x80 else b""
        payload = await self._reader.readexactly(length)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return first & 0x0F, payload

    async def closed(self, timeout: float) -> int | None:
        """Read (answering nothing) until the server's close frame; its code (None: the stream just ended)."""

        async def read() -> int | None:
            while True:
                try:
                    opcode, payload = await self._frame()
                except (asyncio.IncompleteReadError, ConnectionError):
                    return None
                if opcode == PING:
                    self.pings += 1
                elif opcode == CLOSE:
                    self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    return self.close_code
                elif opcode == TEXT:
                    frame = json.loads(payload)
                    self._check(frame)
                    self.frames.append(frame)

        try:
            return await asyncio.wait_for(read(), timeout)
        except asyncio.TimeoutError:
            raise CheckFailed(f"the server to close the socket within {timeout:.0f} s",
                              f"still open after {self.pings} pings") from None
        finally:
            self._writer.close()

    def close(self) -> None:
        self._writer.close()
