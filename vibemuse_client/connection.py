"""One WebSocket to ``/api/ws``: the handshake, authentication, and frames in and out.

``Connection.open`` does protocol.md section 5 up to ``welcome``: it offers the
subprotocol ``vibemuse.v1``, authenticates with the ``Authorization`` header
(``since`` in the query) or with an ``auth`` frame (``since`` in its data),
and returns once the server's first frame, ``welcome``, has come. A refused
handshake raises ``VibeMuseError`` with the code of its error body; a refused
``auth`` frame raises ``SessionEnded`` carrying the error frame's code.
Afterwards ``read`` gives decoded frames until the socket closes (``None``);
``close_code`` then says how.
"""

from __future__ import annotations

import json
from typing import Any

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

from vibemuse_client.errors import ConnectionClosed, SchemaViolation, SessionEnded, VibeMuseError
from vibemuse_client.frames import Frame, Welcome
from vibemuse_client.http import query_string
from vibemuse_client.spec import Spec

SUBPROTOCOL = "vibemuse.v1"
# Closes after which reconnecting as is would not help (protocol.md 5.6): a new token
# first (4002 auth failed, 4006 expired), never after a logout (4003) or a ban (4011),
# or close another socket first (4005).
TERMINAL_CLOSES = frozenset({4002, 4003, 4005, 4006, 4011})


def ws_url(base_url: str) -> str:
    scheme, rest = base_url.rstrip("/").split("://", 1)
    return {"http": "ws", "https": "wss"}[scheme] + "://" + rest + "/api/ws"


class Connection:
    def __init__(self, socket: WebSocketClientConnection, spec: Spec):
        self._socket = socket
        self.spec = spec
        self.welcome_frame: Frame | None = None

    @classmethod
    async def open(cls, base_url: str, token: str, spec: Spec, *, since: int | None = None, auth: str = "header",
                   connect_timeout: float = 20.0, ping_interval: float | None = None,
                   max_message_size: int = 1 << 20, message_id: str = "auth") -> "Connection":
        if auth not in ("header", "frame"):
            raise ValueError("auth is 'header' or 'frame'")
        headers = {"Authorization": f"Bearer {token}"} if auth == "header" else {}
        query = query_string({"since": since}) if auth == "header" else ""
        request = HTTPRequest(ws_url(base_url) + query, headers=headers, connect_timeout=connect_timeout,
                              request_timeout=connect_timeout)
        try:
            socket = await websocket_connect(request, subprotocols=[SUBPROTOCOL], ping_interval=ping_interval,
                                             max_message_size=max_message_size)
        except HTTPClientError as refusal:
            if refusal.code == 599:  # no HTTP answer: a timeout, the connection failed
                raise ConnectionError(f"no answer from {request.url}: {refusal}") from None
            raise _handshake_error(refusal) from None
        connection = cls(socket, spec)
        if socket.selected_subprotocol not in (SUBPROTOCOL, None):
            connection.close()
            raise VibeMuseError("unsupported_version", f"the server chose {socket.selected_subprotocol!r}")
        if auth == "frame":
            data: dict[str, Any] = {"token": token}
            if since is not None:
                data["since"] = since
            connection.send({"type": "auth", "messageId": message_id, "data": data})
        first = await connection.read()
        if first is None or first.type != "welcome":
            error = (VibeMuseError.from_error_object(first.data) if first is not None and first.type == "error"
                     else None)
            if first is not None:  # an error frame, then the close (4002, 4005): wait for the close
                while await connection.read() is not None:
                    pass
            connection.close()
            raise connection.closed(error)
        connection.welcome_frame = first
        return connection

    @property
    def welcome(self) -> Welcome:
        assert self.welcome_frame is not None
        return self.welcome_frame.welcome()

    @property
    def close_code(self) -> int | None:
        return self._socket.close_code

    @property
    def close_reason(self) -> str:
        return self._socket.close_reason or ""

    def closed(self, error: VibeMuseError | None = None) -> ConnectionClosed:
        """The exception that tells how this socket closed."""
        code = self.close_code
        kind = SessionEnded if code in TERMINAL_CLOSES else ConnectionClosed
        return kind(code, self.close_reason, name=self.spec.close_names.get(code or 1006), error=error)

    async def read(self) -> Frame | None:
        """The next frame, or None once the socket has closed. Something that is not even a frame
        (binary, not JSON, no type or data) raises ``SchemaViolation``; the socket stays usable."""
        message = await self._socket.read_message()
        if message is None:
            return None
        if isinstance(message, bytes):
            raise SchemaViolation("bad_json", "the server sent a binary message")
        try:
            raw = json.loads(message)
        except ValueError:
            raise SchemaViolation("bad_json", "the server sent a frame that is not JSON") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict) or not isinstance(raw.get("type"), str):
            raise SchemaViolation("invalid_frame", "the server sent a frame without a type or data")
        try:
            return Frame.from_json(raw)
        except TypeError:  # a required envelope field is missing
            raise SchemaViolation("invalid_frame", f"the server sent a {raw['type']} frame without "
                                  "its envelope (messageId, timestamp, fromUser)") from None

    def send(self, frame: dict[str, Any]) -> bool:
        """Queue a frame for writing; False if the socket has closed already."""
        try:
            self._socket.write_message(json.dumps(frame, ensure_ascii=False))
            return True
        except WebSocketClosedError:
            return False

    def close(self, code: int = 1000, reason: str = "") -> None:
        self._socket.close(code, reason)


def _handshake_error(refusal: HTTPClientError) -> VibeMuseError:
    body = refusal.response.body if refusal.response is not None else b""
    try:
        error = json.loads(body)["error"]
        return VibeMuseError.from_error_object(error, status=refusal.code)
    except (ValueError, KeyError, TypeError):
        return VibeMuseError("internal_error", f"the handshake was refused with HTTP {refusal.code}",
                             status=refusal.code)
