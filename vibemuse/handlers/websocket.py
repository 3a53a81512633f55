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
import contextvars
import logging
import time
from typing import Any, Callable

import tornado.escape
import tornado.httputil
import tornado.iostream
import tornado.web
import tornado.websocket
from tornado.ioloop import IOLoop

from vibemuse import __version__
from vibemuse.config import Config
from vibemuse.context import ServerContext
from vibemuse.protocol.content import largest_event_bytes
from vibemuse.handlers.base import bearer_token
from vibemuse.handlers.frames import FRAME_HANDLERS, dispatch
from vibemuse.handlers.outbound import Backlog
from vibemuse.handlers.rfc6455 import StrictProtocol
from vibemuse.handlers.session import start_session
from vibemuse.handlers.wire import limits_to_wire, user_to_wire
from vibemuse.logs import connection_id as logged_connection_id, request_id as logged_request_id
from vibemuse.protocol.errors import CloseCode, ErrorCode, ProtocolError
from vibemuse.protocol.frames import ClientFrame, ServerFrame, parse_client_frame
from vibemuse.protocol.numbers import MAX_STREAM_POSITION, parse_whole_number
from vibemuse.protocol.origins import origin_allowed, origin_of_request
from vibemuse.protocol.versions import ProtocolVersion, negotiate
from vibemuse.realtime.answers import AnswerOrder, Slot
from vibemuse.realtime.wire import encode_text_frame
from vibemuse.services.accounts import Principal
from vibemuse.services.remote_channels import ANSWER_LATER
from vibemuse.storage import Receipt

log = logging.getLogger(__name__)

ANSWERING: contextvars.ContextVar[Slot[ServerFrame] | None] = contextvars.ContextVar("answering", default=None)


# Frames that do not count as the user's input for idle time: a browser's
# keep-alive pings are not the player, and set_presence sets the status itself.
NOT_INPUT = frozenset({"ping", "set_presence"})


def outbound_bound(config: Config) -> int:
    """Bytes a socket may have waiting: the configured queue plus room for the
    largest frame, so one big event never trips the bound of an idle reader."""
    return config.outbound_queue_bytes + largest_event_bytes(config.max_text_length)


class _SocketState:
    __slots__ = ("principal", "version", "connection_id", "last_seen", "auth_deadline",
                 "overflowed", "since", "held", "address", "backlog", "replayed_upto")

    def __init__(self) -> None:
        self.address: str | None = None
        self.backlog: Backlog | None = None  # made the first time the kernel does not take a frame
        # The newest position a resume replay covered: a live frame at or below it comes late (it
        # was queued on the bus while Redis was away) and the replay carried what it carries.
        self.replayed_upto = 0


def _state(name: str) -> property:
    def get(self: "ClientSocketHandler") -> Any:
        return getattr(self._s, name)

    def set(self: "ClientSocketHandler", value: Any) -> None:
        setattr(self._s, name, value)

    return property(get, set)


class ClientSocketHandler(tornado.websocket.WebSocketHandler):
    context: ServerContext
    transport = "websocket"  # what GET /api/admin/sessions calls it

    # The socket's own state lives in one slotted object: with few instance
    # attributes a handler keeps a compact (key-sharing) __dict__, which saves
    # over a kilobyte per socket when thousands are open.
    principal = _state("principal")
    version = _state("version")
    connection_id = _state("connection_id")
    last_seen = _state("last_seen")
    _auth_deadline = _state("auth_deadline")
    _overflowed = _state("overflowed")
    _since = _state("since")
    _held = _state("held")
    _address = _state("address")

    def initialize(self, context: ServerContext) -> None:
        self._s = _SocketState()
        self.context = context
        self.principal: Principal | None = None
        self.version: ProtocolVersion | None = None
        self.connection_id = context.registry.new_connection_id()
        self.last_seen = time.monotonic()
        self._auth_deadline: asyncio.TimerHandle | None = None
        self._overflowed = False
        self._since: int | None = None  # the stream position a resuming client last saw
        # Deliveries held (with their stream positions) while the session starts
        # (roster, replay, waiting pages); None once live.
        self._held: list[tuple[int | None, bytes]] | None = None
        self._answers: AnswerOrder[ServerFrame] = AnswerOrder(self._send_answer)  # answers in frame order
        self._later: set[Slot[ServerFrame]] = set()  # frames whose answer waits for another server

    # Connection interface of the registry.
    @property
    def user_id(self) -> str:
        return self.principal.user_id if self.principal else ""

    @property
    def expires_ms(self) -> int | None:
        """When the socket's access token expires (the heartbeat closes it then, 4006)."""
        return self.principal.expires_ts if self.principal else None

    @property
    def token_hash(self) -> str:
        return self.principal.token_hash if self.principal else ""

    # -- handshake ------------------------------------------------------

    async def get(self, *args: Any, **kwargs: Any) -> None:
        logged_connection_id.set(self.connection_id)  # for every log record of this socket's life
        logged_request_id.set(None)  # not an earlier request's of the same keep-alive connection
        held = False
        try:
            self._check_handshake()
            held = self.context.registry.hold_address(self.address, self.context.config.max_connections_per_address)
            if not held:
                raise ProtocolError(ErrorCode.TOO_MANY_CONNECTIONS, "Too many sockets from your address.")
            self._since = _since(self.get_query_argument("since", None, strip=False))
            token = bearer_token(self.request.headers.get("Authorization"))
            if token is not None:
                self.principal = await self.context.accounts.authenticate(token)
                self._check_connection_limit()
            # Tornado's get() runs the whole life of the socket: the address is
            # counted until it ends, whatever way it ends.
            await super().get(*args, **kwargs)
        except ProtocolError as error:
            self._refuse_handshake(error)
        finally:
            if held:
                self.context.registry.release_address(self.address)

    def set_default_headers(self) -> None:
        # Every answer of /api/ws that is not an upgrade is a refusal: never cached.
        self.set_header("Cache-Control", "no-store")

    def _check_handshake(self) -> None:
        """What is refused before any work: not a WebSocket upgrade, a foreign origin,
        too many handshakes from the address, only unknown protocol versions."""
        _check_upgrade(self.request.headers)
        origin = self.request.headers.get("Origin")
        if origin is not None and not self.check_origin(origin):
            raise ProtocolError(ErrorCode.FORBIDDEN_ORIGIN, "WebSocket connections from this origin are refused.")
        self.context.guard.limit("handshake_address", self.address)
        self.version = negotiate(self.request.headers.get("Sec-WebSocket-Protocol", "").split(","))

    def _refuse_handshake(self, error: ProtocolError) -> None:
        self.context.metrics.refused(error.code)
        self.set_status(error.http_status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Sec-WebSocket-Version", "13")  # the version spoken here (RFC 6455 4.4)
        self.finish(tornado.escape.json_encode({"error": error.to_wire()}))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """A failure of ours during the handshake: the protocol's error body, not Tornado's page."""
        code = ErrorCode.INVALID_REQUEST if 400 <= status_code < 500 else ErrorCode.INTERNAL_ERROR
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(tornado.escape.json_encode({"error": ProtocolError(code, "The handshake failed.").to_wire()}))

    @property
    def address(self) -> str:
        return self._address or self.request.remote_ip or "unknown"

    def check_origin(self, origin: str) -> bool:
        """Same origin (scheme, host and port of the request: https behind TLS, the
        ``Host`` header, default ports filled in), or one of ``allowed_origins``;
        clients that send no Origin (non-browser clients) are not asked. A refusal
        is a 403 before the upgrade, so a foreign page cannot use a player's
        browser to connect."""
        own = origin_of_request(self.request.protocol, self.request.host)
        return origin_allowed(origin, own, self.context.config.allowed_origins)

    def get_websocket_protocol(self) -> StrictProtocol | None:
        """Tornado's protocol 13 with a frame reader strict to RFC 6455 (see rfc6455.py)."""
        tornados = super().get_websocket_protocol()
        return StrictProtocol(self, False, tornados.params) if tornados is not None else None

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return self.version.subprotocol if subprotocols and self.version else None

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)
        self._forget_handshake()
        if self.principal is not None:
            self._activate()
        else:
            loop = asyncio.get_running_loop()
            self._auth_deadline = loop.call_later(self.context.config.auth_timeout_seconds, self._auth_timed_out)

    def _forget_handshake(self) -> None:
        """Drop what only the handshake needed (its request and response headers):
        a socket lives for hours, and thousands of them live at once."""
        self._address = self.request.remote_ip or "unknown"
        self.request.headers = _NO_HEADERS  # nothing writes to them once the socket is open
        self._headers = _NO_HEADERS
        self.request.query_arguments = _NO_ARGUMENTS
        self.request.arguments = _NO_ARGUMENTS
        # Per-request leftovers of RequestHandler, unused once upgraded: shared empties.
        self.path_kwargs = self.open_kwargs = _NO_ARGUMENTS
        self._write_buffer = self._transforms = _NOTHING
        self.ui = None

    def _auth_timed_out(self) -> None:
        self._auth_deadline = None
        if self.principal is None:
            self.close(CloseCode.AUTH_TIMEOUT, "no auth frame in time")

    def _check_connection_limit(self) -> None:
        assert self.principal is not None
        limit = self.context.config.max_connections_per_user
        if self.context.presence.sockets_anywhere(self.principal.user_id) >= limit:
            raise ProtocolError(ErrorCode.TOO_MANY_CONNECTIONS, f"At most {limit} sockets per user.")

    def _activate(self) -> None:
        assert self.principal is not None and self.version is not None
        context = self.context
        self._held = []  # live deliveries wait until the session has started
        context.registry.add(self)
        user = self.principal.user
        location = context.presence.location_of(user)
        welcome = {
            "user": user_to_wire(user),
            "location": location,
            "connectionId": self.connection_id,
            "serverName": context.server_name,
            "serverVersion": __version__,
            "protocolVersion": self.version.name,
            "limits": limits_to_wire(context.config),
        }
        self.send_session_frame(context.broadcaster.frame("welcome", welcome, to_user=user.user_id))
        context.presence.socket_opened(user)
        IOLoop.current().spawn_callback(self._start_session, location)

    async def _start_session(self, location: str) -> None:
        """After welcome: roster, replay (when resuming), waiting pages — then live.

        A session never goes live half-started: if any step fails (the database
        refuses, the process is out of descriptors), the socket is closed with
        1011 and what it held is dropped; the client reconnects and resumes,
        and what was not handed out (waiting pages) is still waiting."""
        try:
            sent = await start_session(self, location, self._since)
        except Exception:
            log.exception("could not start the session of %s: closing it with 1011", self.user_id)
            self._held = None
            self._unregister()
            self.close(CloseCode.INTERNAL_ERROR, "session start failed: reconnect and resume")
            return
        self._go_live(sent)

    def _go_live(self, already_sent: set[int]) -> None:
        """Send what was held during the start, minus what the replay carried already."""
        held, self._held = self._held or [], None
        for position, frame in held:
            if position is None or position not in already_sent:
                self._write(frame)
        if self.principal is not None:  # the user's own arrival, after what was held (spec 5.3)
            self.context.presence.went_live(self.principal.user_id)

    # -- frames in ------------------------------------------------------

    async def on_message(self, message: str | bytes) -> None:
        self.last_seen = time.monotonic()
        started = time.perf_counter()
        frame = None
        metrics = self.context.metrics
        slot = self._answers.open()  # this frame's place among the answers (spec 5.4)
        answering = ANSWERING.set(slot)
        later = ANSWER_LATER.set(True)
        try:
            frame = parse_client_frame(message, self.context.schemas)
            metrics.frame_received(frame.type)
            if self.principal is None:
                await self._authenticate(frame)
            else:
                if frame.type not in NOT_INPUT:
                    self.context.presence.input(self.principal.user_id)
                await self._dispatch(frame)
                metrics.frame_answered(frame.type, started)
        except ProtocolError as error:
            if error.in_reply_to is None and frame is not None:
                error.in_reply_to = frame.message_id
            self.send_error_frame(error)
        finally:
            ANSWER_LATER.reset(later)
            ANSWERING.reset(answering)
            if slot not in self._later:
                self._answers.close(slot)

    def answer_later(self, frame: ClientFrame, answer: "asyncio.Future[Receipt]",
                     then: Callable[[Receipt], None]) -> None:
        """The frame's answer waits for another server (a channel's home, federation.md 10.3):
        the next frames are handled meanwhile, their answers kept behind this one's (spec 5.4)."""
        slot = ANSWERING.get()
        assert slot is not None
        self._later.add(slot)

        def done(finished: "asyncio.Future[Receipt]") -> None:
            token = ANSWERING.set(slot)
            try:
                error = finished.exception() if not finished.cancelled() else None
                if isinstance(error, ProtocolError):
                    error.in_reply_to = frame.message_id
                    self.send_error_frame(error)
                elif error is not None or finished.cancelled():
                    log.error("the answer to %s of %s failed: %r", frame.message_id, self.user_id, error)
                    self.send_error_frame(ProtocolError(ErrorCode.INTERNAL_ERROR, "The request failed; retry it.",
                                                        in_reply_to=frame.message_id))
                else:
                    then(finished.result())
            finally:
                ANSWERING.reset(token)
                self._later.discard(slot)
                self._answers.close(slot)

        answer.add_done_callback(done)

    async def _authenticate(self, frame: ClientFrame) -> None:
        if frame.type != "auth":
            raise ProtocolError(
                ErrorCode.NOT_AUTHENTICATED, "Send an auth frame first.", in_reply_to=frame.message_id
            )
        try:
            self._since = frame.data.get("since")
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
        if frame.type not in FRAME_HANDLERS:  # in spec/ but not served here: never drop the socket for it
            raise ProtocolError(
                ErrorCode.UNKNOWN_TYPE, f"{frame.type!r} is not handled by this server.", in_reply_to=frame.message_id
            )
        await dispatch(self, frame)

    def on_pong(self, data: bytes) -> None:
        self.last_seen = time.monotonic()

    def on_close(self) -> None:
        if self._auth_deadline is not None:
            self._auth_deadline.cancel()
            self._auth_deadline = None
        self._unregister()

    # -- frames out -----------------------------------------------------

    def send_frame(self, frame: ServerFrame) -> None:
        """An answer to one of this socket's frames (ack, pong, error, ...), after the answers of
        the frames before it (``AnswerOrder``). While the session starts it waits with the held
        live frames, behind them: the client's own event comes before its ack (spec 5.3, 14.7)."""
        slot = ANSWERING.get()
        if slot is not None and self._answers.waiting:
            self._answers.answer(slot, frame)
        else:
            self._send_answer(frame)

    def _send_answer(self, frame: ServerFrame) -> None:
        self.context.metrics.frames_queued(frame.type)
        self.send_encoded(self.context.broadcaster.encode(frame))

    def send_session_frame(self, frame: ServerFrame) -> None:
        """A frame of the session's start (welcome, roster, resumed, resume_gap): never held."""
        self.context.metrics.frames_queued(frame.type)
        self._write(self.context.broadcaster.encode(frame))

    def send_prepared(self, frame: bytes) -> None:
        """A pre-encoded frame for this socket (a replayed event's, shared): never held."""
        self._write(frame)

    def send_text(self, text: str) -> None:
        self._write(encode_text_frame(text.encode("utf-8")))

    def send_encoded(self, frame: bytes, position: int | None = None) -> None:
        """A delivery from the bus: held while the session starts, else written (unless it comes
        after a replay that covered its position already)."""
        if self._held is not None:
            self._held.append((position, frame))
            return
        if position is not None and position <= self._s.replayed_upto:
            return
        self._write(frame)

    def replayed_through(self, position: int) -> None:
        self._s.replayed_upto = position

    def _write(self, frame: bytes) -> None:
        """Send one pre-encoded WebSocket frame; never blocks, never awaits.

        What the kernel does not take waits in the socket's ``Backlog``,
        bounded (limits.outboundQueueBytes). A client that reads too slowly to
        keep under the bound loses what waits (whole frames only), is closed
        with 4008 on the next loop turn, and nothing more is queued for it.
        """
        state = self._s  # the hot path of fan-out: the slots directly, not the properties
        if state.overflowed or self.ws_connection is None or self.ws_connection.is_closing():
            return
        backlog = state.backlog
        try:
            if backlog is not None and backlog.busy:
                if not backlog.add(frame):
                    self._overflow(backlog)
                return
            stream = self.ws_connection.stream
            if not stream.writing() and not isinstance(stream, tornado.iostream.SSLIOStream):
                # Nothing queued: hand the bytes to the kernel ourselves. Saves
                # IOStream's copy, Future and callback per copy — most of the cost
                # of fan-out — and queues only what the kernel did not take.
                sent = _send_now(stream, frame)
                if sent == len(frame):
                    return
                frame = frame[sent:]
            if backlog is None:
                backlog = state.backlog = Backlog(stream, outbound_bound(self.context.config))
            backlog.hand_over(frame)
        except tornado.iostream.StreamClosedError:
            pass

    def _overflow(self, backlog: Backlog) -> None:
        self._overflowed = True
        backlog.drop()  # the close frame goes right after the in-flight bytes
        IOLoop.current().add_callback(self._drop_slow_consumer)

    def send_error_frame(self, error: ProtocolError) -> None:
        self.context.metrics.refused(error.code)
        data = error.to_wire()
        if error.in_reply_to is not None:
            data["inReplyTo"] = error.in_reply_to
        self.send_frame(self.context.broadcaster.frame("error", data, to_user=self.user_id or None))

    def _drop_slow_consumer(self) -> None:
        """Unregister at once (the user may go offline now), then close with 4008.

        The close frame follows the in-flight bytes only (the rest was dropped);
        Tornado aborts the connection if the client does not answer the close
        within 5 seconds."""
        self.context.metrics.slow_consumer_closes.inc()
        self._unregister()
        self.close(CloseCode.SLOW_CONSUMER, "slow consumer")

    def _unregister(self) -> None:
        if self.principal is not None and self.context.registry.discard(self):
            self.context.presence.socket_closed(self.principal.user_id)

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting for the client to read (the Connection shape of the registry)."""
        backlog = self._s.backlog
        return backlog.in_flight + backlog.waiting if backlog is not None else 0

    def ping(self) -> None:
        """A WebSocket ping (one pre-encoded control frame), for the heartbeat."""
        self._write(PING_FRAME)



def _check_upgrade(headers: tornado.httputil.HTTPHeaders) -> None:
    """An RFC 6455 opening handshake, version 13; refused with ``invalid_request`` otherwise
    (Tornado would answer these in plain text)."""
    connection = {token.strip().lower() for token in headers.get("Connection", "").split(",")}
    if headers.get("Upgrade", "").lower() != "websocket" or "upgrade" not in connection:
        raise ProtocolError(ErrorCode.INVALID_REQUEST, "/api/ws speaks WebSocket only (RFC 6455).")
    if not headers.get("Sec-WebSocket-Key"):
        raise ProtocolError(ErrorCode.INVALID_REQUEST, "The upgrade needs a Sec-WebSocket-Key.")
    if headers.get("Sec-WebSocket-Version") != "13":
        raise ProtocolError(ErrorCode.INVALID_REQUEST, "Only WebSocket version 13 is spoken (Sec-WebSocket-Version: 13).")


def _since(raw: str | None) -> int | None:
    """The ``since`` query argument: a stream position, or absent."""
    return None if raw is None else parse_whole_number("since", raw, 0, MAX_STREAM_POSITION)


_NO_HEADERS = tornado.httputil.HTTPHeaders()
_NO_ARGUMENTS: dict[str, Any] = {}
_NOTHING: list[Any] = []
PING_FRAME = b"\x89\x00"  # FIN + ping, no payload (RFC 6455 5.5.2)


def _send_now(stream: tornado.iostream.IOStream, frame: bytes) -> int:
    """Write to a non-blocking socket with nothing queued; how many bytes it took."""
    sock = stream.socket
    if sock is None:
        raise tornado.iostream.StreamClosedError()
    try:
        return sock.send(frame)
    except (BlockingIOError, InterruptedError):
        return 0
    except OSError:
        return 0  # let the stream see the error on its own write
