"""The connect-storm benchmark's client side (see connect_storm.py): worker
processes that open many sockets at one moment, one account each, and record
when each socket got its roster (and, resuming, its replay and ``resumed``).

A minimal RFC 6455 client on asyncio protocols, so that the clients cost the
shared CPU as little as possible: a frame is parsed as JSON only when its
content matters (not the roster: its type is read from the first bytes, as
the server writes ``type`` first).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from typing import Any

ROSTER = b'{"type":"roster"'
EVENT_FRAMES = (b'{"type":"system_message"', b'{"type":"message"')


def handshake(host: str, port: int, path: str, token: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: vibemuse.v1\r\nAuthorization: Bearer {token}\r\n\r\n").encode()


class StormSocket(asyncio.Protocol):
    """One socket: bytes and frames received, when the roster came, and (resuming) the
    stream positions of event frames in arrival order, and how the replay ended."""

    def __init__(self, request: bytes, started: float, since: int | None):
        self.request, self.started, self.since = request, started, since
        self.resuming = since is not None
        self.buf = b""
        self.upgraded = False
        self.bytes = 0
        self.frames = 0
        self.roster_at: float | None = None
        self.resumed_at: float | None = None
        self.ending: str | None = None  # "resumed" | "resume_gap"
        self.positions: list[int] = []
        self.order: list[str] = []  # the first frame types, to check the order after welcome
        self.failure: str | None = None
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.failure is None:
            self.failure = "closed" + (f": {exc}" if exc else "")

    def data_received(self, data: bytes) -> None:
        self.bytes += len(data)
        buf = self.buf + data if self.buf else data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            if b" 101 " not in buf[:buf.find(b"\r\n")]:
                self.failure = "refused: " + buf[:200].decode("latin-1").replace("\r\n", " | ")
                self.transport.close()
                return
            self.upgraded, buf = True, buf[end + 4:]
        self.buf = self._frames(buf)

    def _frames(self, buf: bytes) -> bytes:
        at, size = 0, len(buf)
        while size - at >= 2:
            length, head = buf[at + 1] & 0x7F, 2
            if length == 126:
                if size - at < 4:
                    break
                length, head = int.from_bytes(buf[at + 2:at + 4], "big"), 4
            elif length == 127:
                if size - at < 10:
                    break
                length, head = int.from_bytes(buf[at + 2:at + 10], "big"), 10
            if size - at < head + length:
                break
            if buf[at] & 0x0F == 1:
                self._text(buf[at + head:at + head + length])
            at += head + length
        return buf[at:]

    def _text(self, payload: bytes) -> None:
        self.frames += 1
        if payload.startswith(ROSTER):
            self.roster_at = time.time() - self.started
            self._note("roster")
            return
        if not self.resuming and len(self.order) >= 6:
            return
        frame = json.loads(payload)
        kind = frame["type"]
        self._note(kind)
        if kind in ("system_message", "message") and "event" in frame["data"]:
            self.positions.append(frame["data"]["event"]["unsigned"]["stream_position"])
        elif kind in ("resumed", "resume_gap"):
            self.ending, self.resumed_at = kind, time.time() - self.started

    def _note(self, kind: str) -> None:
        if len(self.order) < 6:
            self.order.append(kind)


async def storm(host: str, port: int, accounts: list[tuple[str, int | None]], start_at: float,
                listen_for: float, done_when: Any = None) -> list[StormSocket]:
    """Open one socket per (token, since) at ``start_at`` (epoch seconds), all at once; keep
    reading for ``listen_for`` seconds after the start, or until ``done_when(sockets)``."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, start_at - time.time()))
    sockets = []
    for token, since in accounts:
        path = "/api/ws" if since is None else f"/api/ws?since={since}"
        sockets.append(StormSocket(handshake(host, port, path, token), start_at, since))

    async def connect(sock: StormSocket) -> None:
        try:
            await loop.create_connection(lambda: sock, host, port)
        except OSError as error:
            sock.failure = f"connect: {error}"

    await asyncio.gather(*(connect(sock) for sock in sockets))
    while time.time() - start_at < listen_for and not (done_when and done_when(sockets)):
        await asyncio.sleep(0.05)
    for sock in sockets:
        if sock.transport is not None:
            sock.transport.abort()
    return sockets


def summary(sock: StormSocket) -> dict[str, Any]:
    return {"since": sock.since, "roster_at": sock.roster_at, "resumed_at": sock.resumed_at, "ending": sock.ending,
            "positions": sock.positions, "bytes": sock.bytes, "frames": sock.frames, "order": sock.order,
            "failure": sock.failure}


def worker(pipe: Any, host: str, port: int, accounts: list[tuple[str, int | None]], start_at: float,
           listen_for: float, final_position_file: str | None) -> None:
    """A client process: run the storm, send back one summary per socket."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    quiet = {"bytes": -1, "since": time.time()}

    def done(sockets: list[StormSocket]) -> bool:
        if final_position_file is None:  # connect scenario: every roster in, then a quiet second
            total = sum(s.bytes for s in sockets)
            if total != quiet["bytes"]:
                quiet.update(bytes=total, since=time.time())
            return time.time() - quiet["since"] > 1.0 and all(s.failure or s.roster_at for s in sockets)
        try:
            with open(final_position_file) as handle:
                final = int(handle.read() or 0)
        except (OSError, ValueError):
            return False
        return final > 0 and all(s.failure or (s.positions and s.positions[-1] >= final) for s in sockets)

    sockets = asyncio.run(storm(host, port, accounts, start_at, listen_for, done))
    pipe.send([summary(sock) for sock in sockets])
    pipe.close()
