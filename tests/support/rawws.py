"""A bare WebSocket client on a plain socket, for peers that misbehave.

Tornado's client answers pings by itself; a dead or hostile peer does not.
This one does only what a test tells it to: the opening handshake, sending
masked frames, and reading whatever frames arrive.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct


class RawWebSocket:
    def __init__(
        self,
        host: str,
        port: int,
        path: str = "/api/ws",
        headers: dict[str, str] | None = None,
        receive_buffer: int | None = None,
    ):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:  # a small window makes a stalled reader stall sooner
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Protocol: vibemuse.v1",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self._buffer = b""
        head = self._read_until(b"\r\n\r\n")
        self.status_line = head.split(b"\r\n", 1)[0].decode()
        if " 101 " not in self.status_line:
            raise ConnectionError(self.status_line)

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed during handshake")
            self._buffer += chunk
        head, self._buffer = self._buffer.split(marker, 1)
        return head

    def _read_exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next frame from the server (never fragmented here)."""
        first, second = self._read_exact(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read_exact(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read_exact(8))[0]
        return first & 0x0F, self._read_exact(length)

    def read_until_close(self) -> tuple[list[tuple[int, bytes]], int | None]:
        """All frames up to the close frame, and the close code."""
        frames = []
        while True:
            opcode, payload = self.read_frame()
            if opcode == 0x8:
                return frames, struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            frames.append((opcode, payload))

    def send_text(self, text: str | dict) -> None:
        payload = (json.dumps(text) if isinstance(text, dict) else text).encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        elif len(payload) < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", len(payload))
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send_frame(self, opcode: int, payload: bytes = b"", *, fin: bool = True, masked: bool = True,
                   rsv: int = 0, length: int | None = None) -> None:
        """Any frame, valid or not: ``rsv`` is the three reserved bits (0-7), ``length`` a
        claimed payload length other than the real one."""
        size = len(payload) if length is None else length
        header = bytes([(0x80 if fin else 0) | (rsv & 7) << 4 | opcode & 0x0F])
        mask_bit = 0x80 if masked else 0
        if size < 126:
            header += bytes([mask_bit | size])
        elif size < 65536:
            header += bytes([mask_bit | 126]) + struct.pack("!H", size)
        else:
            header += bytes([mask_bit | 127]) + struct.pack("!Q", size)
        if masked:
            mask = os.urandom(4)
            header += mask
            payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.sock.sendall(header + payload)

    def read_close(self) -> tuple[int | None, bytes, bool]:
        """Skip to the server's close frame: (its code, its reason, whether the server then
        ended the TCP stream cleanly — end of file rather than a reset or silence)."""
        while True:
            opcode, payload = self.read_frame()
            if opcode == 0x8:
                break
        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        try:
            clean_end = self.sock.recv(1) == b""
        except OSError:
            clean_end = False
        return code, payload[2:], clean_end

    def close(self) -> None:
        self.sock.close()
