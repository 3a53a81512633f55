"""A blocking WebSocket client for hostile tests: any opcode, any payload.

``RawWebSocket`` (tests/support/rawws.py) builds frames for the RFC 6455
tests; a fuzzer sends many and large payloads, so this one masks quickly and
reads answers as JSON frames until a marker frame arrives.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Any

from tests.support.rawws import RawWebSocket

TEXT, BINARY, CLOSE = 0x1, 0x2, 0x8


class SocketClosed(Exception):
    """The server closed the socket: ``code`` is its close code (None: no close frame)."""

    def __init__(self, code: int | None, frames: list[dict[str, Any]]):
        super().__init__(f"closed with {code}")
        self.code = code
        self.frames = frames


def _mask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return payload
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


class FuzzSocket(RawWebSocket):
    def __init__(self, host: str, port: int, token: str | None = None, headers: dict[str, str] | None = None):
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        super().__init__(host, port, headers=all_headers)
        self._ids = 0

    def send_raw(self, payload: bytes, opcode: int = TEXT) -> None:
        key = os.urandom(4)
        length = len(payload)
        header = bytes([0x80 | opcode])
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        try:
            self.sock.sendall(header + key + _mask(payload, key))
        except OSError:  # the server closed the connection (what it sent before may still be readable)
            raise SocketClosed(None, []) from None

    def send_json(self, frame: Any) -> None:
        self.send_raw(json.dumps(frame, ensure_ascii=False).encode("utf-8"))

    def next_json(self) -> dict[str, Any]:
        """The next text frame, decoded; ``SocketClosed`` if a close frame (or EOF) comes instead."""
        while True:
            try:
                opcode, payload = self.read_frame()
            except (ConnectionError, socket.timeout, OSError):
                raise SocketClosed(None, []) from None
            if opcode == CLOSE:
                raise SocketClosed(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None, [])
            if opcode == TEXT:
                return json.loads(payload.decode("utf-8"))
            # pings from the heartbeat are answered by nobody here; the tests are short

    def sync(self) -> list[dict[str, Any]]:
        """Send a ping frame and return every frame that came before its pong (the pong excluded)."""
        self._ids += 1
        marker = f"sync-{self._ids}"
        try:
            self.send_json({"type": "ping", "messageId": marker, "data": {}})
        except SocketClosed:
            pass  # read what came before the close
        frames: list[dict[str, Any]] = []
        while True:
            try:
                frame = self.next_json()
            except SocketClosed as closed:
                closed.frames = frames
                raise
            if frame.get("type") == "pong" and frame.get("data", {}).get("inReplyTo") == marker:
                return frames
            frames.append(frame)

    def welcome(self) -> dict[str, Any]:
        frame = self.next_json()
        assert frame["type"] == "welcome", frame
        return frame
