"""``WS /api/ws``: the client protocol's socket.

Theory of operation. Before the upgrade, ``get`` negotiates the protocol
version from the offered subprotocols and, when the client sent an
``Authorization: Bearer`` header, authenticates it; either failure is a plain
HTTP refusal with the protocol's error body. Browsers cannot set headers, so a
socket may also open unauthenticated: it then has ``authTimeoutMs`` to send an
``auth`` frame, or it is closed with 4001. Once authenticated the socket is
registered (per-user limit enforced), gets its ``welcome`` frame, and every
later frame is parsed against spec/ and dispatched by type. Tornado does not
read the next frame until ``on_message`` returns, so frames are handled in
order. Refusals are ``error`` frames naming the offending ``messageId``;
they change nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

import tornado.escape
import tornado.web
import tornado.websocket

from vibemuse import __version__
from vibemuse.context import ServerContext
from vibemuse.handlers.base import bearer_token
from vibemuse.handlers.wire import limits_to_wire, user_to_wire
from vibemuse.protocol.errors import CloseCode, ErrorCode, ProtocolError
from vibemuse.protocol.frames import ClientFrame, ServerFrame, parse_client_frame
from vibemuse.protocol.versions import ProtocolVersion, negotiate
from vibemuse.services.accounts import Principal

log = logging.getLogger(__name__)


class ClientSocketHandler(tornado.websocket.WebSocketHandler):
    context: ServerContext

    def initialize(self, context: ServerContext) -> None:
        self.context = context
        self.principal: Principal | None = None
        self.version: ProtocolVersion | None = None
        self.connection_id = context.registry.new_connection_id()
        self.last_seen = time.monotonic()
        self._auth_deadline: asyncio.TimerHandle | None = None
        self._token_expiry: asyncio.TimerHandle | None = None

    # Connection interface of the registry.
    @property
    def user_id(self) -> str:
        return self.principal.user_id if self.principal else ""

    @property
    def token_hash(self) -> str:
        return self.principal.token_hash if self.principal else ""

    # -- handshake ------------------------------------------------------

    async def get(self, *args: Any, **kwargs: Any) -> None:
        try:
            if self.request.headers.get("Upgrade", "").lower() != "websocket":
                raise ProtocolError(ErrorCode.INVALID_REQUEST, "/api/ws speaks WebSocket only (RFC 6455).")
            offered = self.request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            self.version = negotiate(offered)
            token = bearer_token(self.request.headers.get("Authorization"))
            if token is not None:
                self.principal = await self.context.accounts.authenticate(token)
                self._check_connection_limit()
        except ProtocolError as error:
            self._refuse_handshake(error)
            return
        await super().get(*args, **kwargs)

    def _refuse_handshake(self, error: ProtocolError) -> None:
        self.set_status(error.http_status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(tornado.escape.json_encode({"error": error.to_wire()}))

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return self.version.subprotocol if subprotocols and self.version else None

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)
        if self.principal is not None:
            self._activate()
        else:
            loop = asyncio.get_running_loop()
            self._auth_deadline = loop.call_later(self.context.config.auth_timeout_seconds, self._auth_timed_out)

    def _token_expired(self) -> None:
        self._token_expiry = None
        self.close(CloseCode.TOKEN_EXPIRED, "access token expired")

    def _auth_timed_out(self) -> None:
        self._auth_deadline = None
        if self.principal is None:
            self.close(CloseCode.AUTH_TIMEOUT, "no auth frame in time")

    def _check_connection_limit(self) -> None:
        assert self.principal is not None
        limit = self.context.config.max_connections_per_user
        if self.context.registry.count_for(self.principal.user_id) >= limit:
            raise ProtocolError(ErrorCode.TOO_MANY_CONNECTIONS, f"At most {limit} sockets per user.")

    def _activate(self) -> None:
        assert self.principal is not None and self.version is not None
        self.context.registry.add(self)
        remaining = (self.principal.expires_ts - self.context.clock()) / 1000
        self._token_expiry = asyncio.get_running_loop().call_later(max(remaining, 0), self._token_expired)
        user = self.principal.user
        self.send_frame(
            self.context.frame(
                "welcome",
                {
                    "user": user_to_wire(user),
                    "location": user.location_room_id,
                    "connectionId": self.connection_id,
                    "serverName": self.context.server_name,
                    "serverVersion": __version__,
                    "protocolVersion": self.version.name,
                    "limits": limits_to_wire(self.context.config),
                },
                to_user=user.user_id,
            )
        )

    # -- frames in ------------------------------------------------------

    async def on_message(self, message: str | bytes) -> None:
        self.last_seen = time.monotonic()
        try:
            frame = parse_client_frame(message, self.context.schemas)
            if self.principal is None:
                await self._authenticate(frame)
            else:
                await self._dispatch(frame)
        except ProtocolError as error:
            self.send_error_frame(error)

    async def _authenticate(self, frame: ClientFrame) -> None:
        if frame.type != "auth":
            raise ProtocolError(
                ErrorCode.NOT_AUTHENTICATED, "Send an auth frame first.", in_reply_to=frame.message_id
            )
        try:
            self.principal = await self.context.accounts.authenticate(frame.data["token"])
            self._check_connection_limit()
        except ProtocolError as error:
            self.principal = None
            error.in_reply_to = frame.message_id
            self.send_error_frame(error)
            code = CloseCode.TOO_MANY_CONNECTIONS if error.code is ErrorCode.TOO_MANY_CONNECTIONS else CloseCode.AUTH_FAILED
            self.close(code, str(error.code))
            return
        if self._auth_deadline is not None:
            self._auth_deadline.cancel()
            self._auth_deadline = None
        if self.ws_connection is not None and not self.ws_connection.is_closing():
            self._activate()

    async def _dispatch(self, frame: ClientFrame) -> None:
        assert self.principal is not None
        if frame.from_user is not None and frame.from_user != self.principal.user_id:
            raise ProtocolError(
                ErrorCode.FORBIDDEN, "fromUser must be your own user id.", in_reply_to=frame.message_id
            )
        handler = FRAME_HANDLERS.get(frame.type)
        if handler is None:  # in spec/ but not served here: never drop the socket for it
            raise ProtocolError(
                ErrorCode.UNKNOWN_TYPE, f"{frame.type!r} is not handled by this server.", in_reply_to=frame.message_id
            )
        await handler(self, frame)

    async def _on_auth(self, frame: ClientFrame) -> None:
        raise ProtocolError(
            ErrorCode.ALREADY_AUTHENTICATED, "This socket is authenticated already.", in_reply_to=frame.message_id
        )

    async def _on_ping(self, frame: ClientFrame) -> None:
        self.send_frame(self.context.frame("pong", {"inReplyTo": frame.message_id}, to_user=self.user_id))

    def on_pong(self, data: bytes) -> None:
        self.last_seen = time.monotonic()

    def on_close(self) -> None:
        for timer in (self._auth_deadline, self._token_expiry):
            if timer is not None:
                timer.cancel()
        self._auth_deadline = self._token_expiry = None
        self.context.registry.discard(self)

    # -- frames out -----------------------------------------------------

    def send_frame(self, frame: ServerFrame) -> None:
        self.send_text(frame.encode())

    def send_text(self, text: str) -> None:
        try:
            self.write_message(text)
        except tornado.websocket.WebSocketClosedError:
            pass

    def send_error_frame(self, error: ProtocolError) -> None:
        data = error.to_wire()
        if error.in_reply_to is not None:
            data["inReplyTo"] = error.in_reply_to
        self.send_frame(self.context.frame("error", data, to_user=self.user_id or None))

    def ping(self) -> None:
        try:
            super().ping(b"")
        except tornado.websocket.WebSocketClosedError:
            pass


# Every client frame type of spec/v1 and the method that handles it on an
# authenticated socket; a test checks that the keys are exactly spec's types.
FRAME_HANDLERS: dict[str, Callable[[ClientSocketHandler, ClientFrame], Awaitable[None]]] = {
    "auth": ClientSocketHandler._on_auth,
    "ping": ClientSocketHandler._on_ping,
}
