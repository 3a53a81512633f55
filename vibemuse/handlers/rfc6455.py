"""The frame layer of /api/ws, strict to RFC 6455.

Theory of operation. Tornado's ``WebSocketProtocol13`` reads frames for the
handler; it drops the TCP connection on most violations (so a client sees
1006 and cannot tell a bug of its own from a network failure) and lets some
through (unmasked frames). ``StrictProtocol`` replaces its frame reader and
its dispatch: every violation *fails the connection* (RFC 6455 7.1.7) with
the close code the RFC names for it:

- 1002 (protocol error): an unmasked frame, reserved bits set (no extension
  is ever negotiated), an unknown opcode, a control frame over 125 bytes or
  fragmented, a continuation with nothing to continue, a new message in the
  middle of a fragmented one, a close frame of one byte or with a close code
  a peer may not send (RFC 6455 7.4: 1005, 1006, 1015, anything below 1000,
  unassigned codes of 1000-2999, 5000 and up);
- 1003 (unsupported data): a binary message: frames are JSON text messages;
- 1007 (invalid payload): a text message, or a close reason, that is not UTF-8;
- 1009 (message too big): a message over ``limits.maxFrameBytes``.

Failing sends the close frame, half-closes the TCP connection once that frame
is written (the peer reads the close, then end of file, never a reset), and
then only discards what still arrives until the peer closes, or Tornado's
usual five seconds pass. Nothing of a failed connection reaches the handler.
A valid close frame is answered with the same code, as Tornado does.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from tornado.iostream import StreamClosedError
from tornado.util import _websocket_mask
from tornado.websocket import WebSocketProtocol13

from vibemuse.protocol.errors import CloseCode

TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
KNOWN_OPCODES = frozenset({CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG})
DRAIN_CHUNK = 64 * 1024


def close_code_allowed(code: int) -> bool:
    """May a peer send this close code (RFC 6455 7.4, with the IANA registry's 1012-1014)?"""
    return code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999


class ProtocolViolation(Exception):
    """The peer broke RFC 6455 (or sent what this protocol does not take): fail with ``code``."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class StrictProtocol(WebSocketProtocol13):
    _failed = False  # set on the instance only when failing: most sockets never pay for it

    async def _receive_frame(self) -> None:
        if self._failed:
            await self.stream.read_bytes(DRAIN_CHUNK, partial=True)  # discarded
            return
        try:
            opcode, final, payload = await self._read_frame()
            message = self._assemble(opcode, final, payload)
            if message is not None:
                handled = self._handle_message(*message)
                if handled is not None:
                    await handled
        except ProtocolViolation as violation:
            self._fail(violation.code, violation.reason)

    async def _read_frame(self) -> tuple[int, bool, bytes]:
        """One frame's opcode, FIN bit and unmasked payload; checks the header before reading on."""
        first, second = await self._read_bytes(2)
        opcode, final, length = first & self.OPCODE_MASK, bool(first & self.FIN), second & 0x7F
        if first & self.RSV_MASK:
            raise ProtocolViolation(CloseCode.PROTOCOL_ERROR, "reserved bits set")
        if opcode not in KNOWN_OPCODES:
            raise ProtocolViolation(CloseCode.PROTOCOL_ERROR, f"unknown opcode {opcode}")
        if not second & 0x80:
            raise ProtocolViolation(CloseCode.PROTOCOL_ERROR, "client frames must be masked")
        if opcode & 0x8 and (length > 125 or not final):
            raise ProtocolViolation(CloseCode.PROTOCOL_ERROR, "control frames are unfragmented, at most 125 bytes")
        if length == 126:
            length = struct.unpack("!H", await self._read_bytes(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await self._read_bytes(8))[0]
            if length >> 63:
                raise ProtocolViolation(CloseCode.PROTOCOL_ERROR, "payload length out of range")
        pending = len(self._fragmented_message_buffer) if self._fragmented_message_buffer is not None else 0
        if length + pending > self.params.max_message_size:
            raise ProtocolViolation(CloseCode.MESSAGE_TOO_BIG, "message too big")
        mask = await self._read_bytes(4)
        return opcode, final, _websocket_mask(mask, await self._read_bytes(length)) if length else b""

    def _assemble(self, opcode: int, final: bool, payload: bytes) -> tuple[int, bytes] | None:
        """The complete message (opcode, payload) once its last fragment is in; None before."""
        if opcode & 0x8:  # control frames may come between fragments and do not touch them
            return opcode, payload
        if opcode == CONTINUATION:
            if self._fragmented_message_buffer is None:
                raise ProtocolViolation(CloseCode.PROTOCOL_ERROR, "continuation without a message to continue")
            self._fragmented_message_buffer.extend(payload)
            if not final:
                return None
            whole, self._fragmented_message_buffer = bytes(self._fragmented_message_buffer), None
            return self._fragmented_message_opcode, whole  # type: ignore[return-value]
        if self._fragmented_message_buffer is not None:
            raise ProtocolViolation(CloseCode.PROTOCOL_ERROR, "a new message inside a fragmented one")
        if not final:
            self._fragmented_message_opcode = opcode
            self._fragmented_message_buffer = bytearray(payload)
            return None
        return opcode, payload

    def _handle_message(self, opcode: int, data: bytes) -> Any:
        if self.client_terminated:
            return None
        if opcode == TEXT:
            if self.server_terminated:
                return None  # after our close frame, data is no longer read
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolViolation(CloseCode.INVALID_PAYLOAD, "text messages are UTF-8") from None
            self._message_bytes_in += len(data)
            return self._run_callback(self.handler.on_message, text)
        if opcode == BINARY:
            raise ProtocolViolation(CloseCode.UNSUPPORTED_DATA, "frames are JSON in text messages")
        if opcode == CLOSE:
            self._peer_closed(data)
            return None
        return super()._handle_message(opcode, data)  # ping, pong

    def _peer_closed(self, data: bytes) -> None:
        """A close frame: checked, then answered with its own code (RFC 6455 5.5.1)."""
        code = reason = None
        if len(data) == 1:
            raise ProtocolViolation(CloseCode.PROTOCOL_ERROR, "a close payload of one byte")
        if len(data) >= 2:
            code = struct.unpack("!H", data[:2])[0]
            if not close_code_allowed(code):
                raise ProtocolViolation(CloseCode.PROTOCOL_ERROR, f"close code {code} may not be sent")
            try:
                reason = data[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolViolation(CloseCode.INVALID_PAYLOAD, "close reasons are UTF-8") from None
        self.client_terminated = True
        self.close_code, self.close_reason = code, reason
        self.close(code)

    def _fail(self, code: int, reason: str) -> None:
        """Fail the WebSocket connection (RFC 6455 7.1.7): close frame, half-close, drain."""
        self._failed = True
        self._fragmented_message_buffer = None
        if self.server_terminated or self.stream.closed():  # our close is out already: just go
            self._abort()
            return
        try:
            written = self._write_frame(True, CLOSE, struct.pack("!H", code) + reason.encode("utf-8"))
        except StreamClosedError:
            self._abort()
            return
        self.server_terminated = True
        written.add_done_callback(self._close_written)
        self.close()  # no second close frame; starts Tornado's wait for the peer, stops pinging

    def _close_written(self, written: Any) -> None:
        if not written.cancelled() and written.exception() is None:
            self._half_close()

    def _half_close(self) -> None:
        sock = self.stream.socket
        if sock is None or self.stream.closed():
            return
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._abort()
