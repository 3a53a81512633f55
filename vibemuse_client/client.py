"""A VibeMUSE client: one logical session over as many sockets as it takes.

Theory of operation. ``Client`` keeps what must outlive a socket: the token
(and, when it logged in, the credentials to get a new one), the highest
stream position seen (the next ``since``), the ids of the events already
handed out (to drop duplicates), and every request not yet answered. A task
reads the current socket; when it closes unexpectedly the task reconnects
with exponential backoff and jitter, resuming from that position
(protocol.md 5.7), and, once ``welcome`` has come, sends every unanswered
request again *with the same messageId*, so the server answers a request it
had already done with its first ack (``duplicate: true``) and does nothing
twice (14.7). Requests made while disconnected wait and go out then.

Frames reach the application through one queue, read with ``frames()`` (or
``events()``, the events of the stream only). Event frames whose ``event_id``
was handed out before are dropped. With ``validate=True`` every frame is
checked against spec/'s schema, and with ``verify=True`` every event of the
stream against its origin's published keys; a frame failing either is not
handed out: the iterator raises the ``SchemaViolation`` or ``SignatureError``
in its place (iterate again to go on), and ``violations`` keeps them all.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
import secrets
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Mapping

from vibemuse_client.connection import Connection
from vibemuse_client.errors import ConnectionClosed, SessionEnded, SignatureError, VibeMuseError
from vibemuse_client.frames import ANSWER_FRAME_TYPES, Ack, Event, Frame, ResumeGap, Resumed, Session, Welcome
from vibemuse_client.history import History
from vibemuse_client.http import HttpApi
from vibemuse_client.keys import KeyStore
from vibemuse_client.signing import Verification
from vibemuse_client.spec import load_spec

# Refusals of the handshake worth trying again later; any other ends the session.
RETRYABLE_REFUSALS = frozenset({"rate_limited", "server_full", "internal_error", "unavailable"})
NEW_TOKEN_CODES = frozenset({"invalid_token", "token_expired"})
NEW_TOKEN_CLOSES = frozenset({4002, 4006})
UNANSWERED_FRAMES = frozenset({"typing"})  # the server answers these with nothing (14.7)
_END = object()


@dataclass
class Backoff:
    """Delays between reconnection attempts: ``initial * factor**n``, capped, minus up to ``jitter`` of it."""

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    jitter: float = 0.5
    max_attempts: int | None = None  # None: try for ever

    def delay(self, attempt: int) -> float:
        base = min(self.maximum, self.initial * self.factor ** attempt)
        return base * (1 - self.jitter * random.random())


@dataclass
class _Request:
    frame: dict[str, Any]
    future: asyncio.Future[Frame]
    rate_retries: int = field(default=0)
    unavailable_retries: int = field(default=0)


class Client:
    def __init__(self, base_url: str, token: str | None = None, *, username: str | None = None,
                 password: str | None = None, auth: str = "header", since: int | None = None,
                 validate: bool = False, verify: bool = False, backoff: Backoff | None = None,
                 spec_dir: str | None = None, key_servers: Mapping[str, str] | None = None,
                 ping_interval: float | None = None, rate_limit_retries: int = 5, unavailable_retries: int = 8,
                 remember_events: int = 100_000,
                 keep_frames: bool = True):
        self.spec = load_spec(spec_dir)
        self.http = HttpApi(base_url, self.spec, token=token, validate=validate)
        self.history = History(self.http)
        self.keys = KeyStore(self._fetch_keys)
        self.auth, self.validate, self.verify = auth, validate, verify
        self.backoff = backoff or Backoff()
        self.key_servers = dict(key_servers or {})
        self.ping_interval = ping_interval
        self.rate_limit_retries = rate_limit_retries
        self.unavailable_retries = unavailable_retries
        self.keep_frames = keep_frames  # False: a sender that never reads frames() (a benchmark) keeps none
        self.position: int | None = since  # the highest stream position seen: the next since
        self.welcome: Welcome | None = None
        self.session: Session | None = None  # set by login() and register()
        self.violations: list[VibeMuseError] = []
        self.reconnects = 0
        self.resumed: Resumed | ResumeGap | None = None  # how the latest socket resumed, if it did
        self.duplicates_dropped = 0
        self._credentials = (username, password) if username and password else None
        self._prefix = secrets.token_urlsafe(9)
        self._counter = itertools.count(1)
        self._pending: dict[str, _Request] = {}
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._remember = remember_events
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._connection: Connection | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._ended: VibeMuseError | None = None
        self._server_name: str | None = None

    # -- accounts -----------------------------------------------------------------

    @classmethod
    async def login(cls, base_url: str, username: str, password: str, **options: Any) -> "Client":
        """Log in over HTTP (``POST /api/auth/login``); the client logs in again by itself if the
        token expires. Connect with ``await client.connect()`` or ``async with client``."""
        client = cls(base_url, username=username, password=password, **options)
        client.session = await client.http.login(username, password)
        return client

    @classmethod
    async def register(cls, base_url: str, username: str, password: str, **options: Any) -> "Client":
        client = cls(base_url, username=username, password=password, **options)
        client.session = await client.http.register(username, password)
        return client

    @property
    def token(self) -> str | None:
        return self.http.token

    @property
    def user_id(self) -> str | None:
        return self.welcome.user.id if self.welcome else None

    @property
    def connected(self) -> bool:
        return self._connection is not None

    # -- the session ----------------------------------------------------------------

    async def connect(self) -> Welcome:
        """Open the first socket and wait for ``welcome``; a refusal raises ``VibeMuseError``."""
        if self._runner is None:
            connection = await self._open()
            self._attach(connection)
            self._runner = asyncio.create_task(self._run(connection))
        assert self.welcome is not None
        return self.welcome

    async def close(self) -> None:
        """End the session (close 1000); unanswered requests fail with ``ConnectionClosed``."""
        self._closing.set()
        if self._connection is not None:
            self._connection.close(1000)
        if self._runner is not None:
            await asyncio.gather(self._runner, return_exceptions=True)
        self._end(ConnectionClosed(1000, "closed by the client", name="normal"))

    async def __aenter__(self) -> "Client":
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _open(self) -> Connection:
        if self.token is None:
            raise VibeMuseError("not_authenticated", "no access token: log in or register first")
        return await Connection.open(self.http.base_url, self.token, self.spec, since=self.position,
                                     auth=self.auth, ping_interval=self.ping_interval, message_id=self._next_id())

    def _attach(self, connection: Connection) -> None:
        """A socket is ready: hand out its welcome, then send every unanswered request again."""
        self._connection = connection
        self.welcome = connection.welcome
        self._server_name = self.welcome.server_name
        assert connection.welcome_frame is not None
        if self._conforms(connection.welcome_frame):
            self._deliver(connection.welcome_frame)
        for request in list(self._pending.values()):
            connection.send(request.frame)

    async def _run(self, connection: Connection) -> None:
        while True:
            try:
                await self._read(connection)
            except Exception as failure:  # a fault of this client: end loudly rather than hang
                connection.close(1011)
                self._connection = None
                self._end(VibeMuseError("internal_error", f"the client failed: {failure!r}"))
                return
            self._connection = None
            if self._closing.is_set():
                return
            closed = connection.closed()
            new_token = closed.close_code in NEW_TOKEN_CLOSES and self._credentials is not None
            if isinstance(closed, SessionEnded) and not new_token:
                self._end(closed)
                return
            reconnected = await self._reconnect(new_token)
            if reconnected is None:
                return
            connection = reconnected
            self._attach(connection)

    async def _read(self, connection: Connection) -> None:
        while True:
            try:
                frame = await connection.read()
            except VibeMuseError as violation:  # not even a frame
                self._violation(violation)
                continue
            if frame is None:
                return
            await self._handle(frame)

    async def _reconnect(self, new_token: bool) -> Connection | None:
        for attempt in itertools.count():
            if self.backoff.max_attempts is not None and attempt >= self.backoff.max_attempts:
                self._end(ConnectionClosed(None, f"gave up after {attempt} attempts to reconnect"))
                return None
            try:  # not wait_for: on Python 3.11 it can swallow the cancel of a closing client
                async with asyncio.timeout(self.backoff.delay(attempt)):
                    await self._closing.wait()
                return None  # closed while waiting
            except TimeoutError:
                pass
            try:
                if new_token:
                    await self.http.login(*self._credentials)  # type: ignore[misc]
                    new_token = False
                connection = await self._open()
            except (OSError, asyncio.TimeoutError):
                continue  # the server is not there (yet)
            except SessionEnded as ended:
                if ended.close_code in NEW_TOKEN_CLOSES and self._credentials is not None:
                    new_token = True
                    continue
                self._end(ended)
                return None
            except ConnectionClosed:
                continue  # closed before welcome (1001, 1011 ...): try again
            except VibeMuseError as refusal:
                if refusal.code in NEW_TOKEN_CODES and self._credentials is not None:
                    new_token = True
                    continue
                if refusal.code in RETRYABLE_REFUSALS:
                    continue
                self._end(refusal)
                return None
            if self._closing.is_set():
                connection.close(1000)
                return None
            self.reconnects += 1
            return connection
        return None

    def _end(self, error: VibeMuseError) -> None:
        """No more sockets: fail what waits, and tell the reader of ``frames()``."""
        if self._ended is not None:
            return
        self._ended = error
        for request in self._pending.values():
            if not request.future.done():
                request.future.set_exception(error)
                request.future.exception()  # retrieved here: the sender may be gone
        self._pending.clear()
        if not isinstance(error, ConnectionClosed) or error.close_code != 1000:
            self._inbox.put_nowait(error)
        self._inbox.put_nowait(_END)

    # -- frames in ------------------------------------------------------------------

    async def _handle(self, frame: Frame) -> None:
        if not self._conforms(frame):
            return
        if frame.type in ANSWER_FRAME_TYPES and frame.in_reply_to in self._pending:
            self._answer(frame)
        if frame.is_stream_event:
            event = frame.event
            assert event is not None
            self._advance(event.stream_position)
            if event.event_id in self._seen:
                self.duplicates_dropped += 1
                return
            self._seen[event.event_id] = None
            if len(self._seen) > self._remember:
                self._seen.popitem(last=False)
            if self.verify:
                try:
                    await self.keys.verify_event(event.raw, require_intact=True)
                except SignatureError as forged:
                    self._violation(forged, frame)
                    return
                except (VibeMuseError, OSError) as failure:  # the keys could not be fetched
                    self._violation(SignatureError("invalid_event_signature",
                                                   f"the keys of {event.origin} could not be fetched: {failure}"), frame)
                    return
        elif frame.type == "resumed":
            self.resumed = Resumed.from_json(frame.data)
        elif frame.type == "resume_gap":  # read the history up to there; live frames from here on
            self.resumed = ResumeGap.from_json(frame.data)
            self._advance(frame.data.get("latestPosition"))
        elif self.position is None:  # nothing resumed yet: start after what the first frames show
            self._seed(frame)
        self._deliver(frame)

    def _conforms(self, frame: Frame) -> bool:
        """True unless ``validate`` is on and the frame breaks its schema (then it is a violation)."""
        if self.validate:
            try:
                self.spec.check_server_frame(dict(frame.raw))
            except VibeMuseError as violation:
                self._violation(violation, frame)
                return False
        return True

    def _deliver(self, item: Frame | VibeMuseError) -> None:
        if self.keep_frames:
            self._inbox.put_nowait(item)

    def _seed(self, frame: Frame) -> None:
        """On a first connection (no ``since``) nothing is replayed, so the roster's newest event and
        the acks of our own requests are safe starting points for the next ``since``."""
        if frame.type == "roster":
            positions = [event.get("unsigned", {}).get("stream_position") for event in frame.data.get("recent", [])]
            self._advance(max((p for p in positions if isinstance(p, int)), default=None))
        elif frame.type == "ack":
            self._advance(frame.data.get("streamPosition"))

    def _advance(self, position: Any) -> None:
        if isinstance(position, int) and (self.position is None or position > self.position):
            self.position = position

    def _answer(self, frame: Frame) -> None:
        request = self._pending[frame.in_reply_to]  # type: ignore[index]
        if frame.type == "error":
            error = VibeMuseError.from_error_object(frame.data, status=self.spec.error_status.get(frame.data.get("code")))
            if error.code == "rate_limited" and request.rate_retries < self.rate_limit_retries:
                request.rate_retries += 1  # the same frame, same messageId, once the bucket has refilled
                delay = max(0.0, float(error.details.get("retryAfterMs", 1000)) / 1000)
                asyncio.get_running_loop().call_later(delay, self._resend, request)
                return
            if error.code == "unavailable" and request.unavailable_retries < self.unavailable_retries:
                # the server's database is away (20.1): the same frame, same messageId, with backoff
                delay = self.backoff.delay(request.unavailable_retries)
                request.unavailable_retries += 1
                asyncio.get_running_loop().call_later(delay, self._resend, request)
                return
            del self._pending[frame.in_reply_to]  # type: ignore[arg-type]
            request.future.set_exception(error)
        else:
            del self._pending[frame.in_reply_to]  # type: ignore[arg-type]
            request.future.set_result(frame)

    def _resend(self, request: _Request) -> None:
        if self._connection is not None and self._pending.get(request.frame["messageId"]) is request:
            self._connection.send(request.frame)

    def _violation(self, violation: VibeMuseError, frame: Frame | None = None) -> None:
        self.violations.append(violation)
        answered = frame.in_reply_to if frame is not None else None
        if answered in self._pending:
            self._pending.pop(answered).future.set_exception(violation)  # type: ignore[arg-type]
        self._deliver(violation)

    async def frames(self) -> AsyncIterator[Frame]:
        """Every frame, in order, event frames once each. Ends when the client is closed; raises the
        error that ended the session, or a violation in place of a bad frame."""
        while True:
            item = await self._inbox.get()
            if item is _END:
                self._inbox.put_nowait(_END)  # every later reader ends too
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def events(self) -> AsyncIterator[Event]:
        """The events of the stream (replayed and live), each once, in the order they came."""
        async for frame in self.frames():
            if frame.is_stream_event:
                yield frame.event  # type: ignore[misc]

    # -- frames out -----------------------------------------------------------------

    def _next_id(self) -> str:
        return f"{self._prefix}.{next(self._counter)}"

    async def send(self, frame_type: str, data: Mapping[str, Any] | None = None, *, message_id: str | None = None,
                   timeout: float | None = None) -> Frame | None:
        """Send a frame and wait for its answer (``ack``, ``who``, ``pong`` ...), through reconnects.
        An ``error`` answer raises ``VibeMuseError`` with its code; ``typing`` waits for nothing."""
        if self._ended is not None:
            raise self._ended
        message_id = message_id or self._next_id()
        frame = {"type": frame_type, "messageId": message_id, "data": dict(data or {})}
        if self.validate:
            self.spec.check_client_frame(frame)
        if frame_type in UNANSWERED_FRAMES:
            if self._connection is not None:
                self._connection.send(frame)
            return None
        request = self._pending.get(message_id)
        if request is None:
            request = _Request(frame, asyncio.get_running_loop().create_future())
            self._pending[message_id] = request
            if self._connection is not None:
                self._connection.send(frame)
        try:
            return await asyncio.wait_for(asyncio.shield(request.future), timeout)
        except asyncio.TimeoutError:
            if self._pending.get(message_id) is request:
                del self._pending[message_id]
            raise

    async def request_ack(self, frame_type: str, data: Mapping[str, Any] | None = None, **options: Any) -> Ack:
        answer = await self.send(frame_type, data, **options)
        assert answer is not None
        if answer.type != "ack":
            raise VibeMuseError("unexpected_answer", f"{frame_type} was answered with {answer.type}")
        return answer.ack()

    async def say(self, text: str, *, room_id: str | None = None, **options: Any) -> Ack:
        return await self.request_ack("say", _some(text=text, roomId=room_id), **options)

    async def pose(self, text: str, *, semipose: bool | None = None, room_id: str | None = None, **options: Any) -> Ack:
        return await self.request_ack("pose", _some(text=text, semipose=semipose, roomId=room_id), **options)

    async def page(self, to: list[str], text: str, *, style: str | None = None, **options: Any) -> Ack:
        return await self.request_ack("page", _some(to=to, text=text, style=style), **options)

    async def join_room(self, room_id: str, **options: Any) -> Ack:
        return await self.request_ack("join_room", {"roomId": room_id}, **options)

    async def leave_room(self, **options: Any) -> Ack:
        return await self.request_ack("leave_room", {}, **options)

    async def join_channel(self, channel: str, *, alias: str | None = None, title: str | None = None,
                           **options: Any) -> Ack:
        return await self.request_ack("join_channel", _some(channelId=channel, alias=alias, title=title), **options)

    async def channel(self, channel: str, text: str, *, style: str | None = None, **options: Any) -> Ack:
        return await self.request_ack("channel", _some(channelId=channel, text=text, style=style), **options)

    async def command(self, line: str, **options: Any) -> Frame:
        """A MUSH command line; answered as the frame it stands for (an ack, a who, a notice)."""
        answer = await self.send("command", {"line": line}, **options)
        assert answer is not None
        return answer

    async def who(self) -> Frame:
        answer = await self.send("who", {})
        assert answer is not None
        return answer

    async def ping(self) -> Frame:
        answer = await self.send("ping", {})
        assert answer is not None
        return answer

    async def typing(self, typing: bool = True, *, room_id: str | None = None) -> None:
        await self.send("typing", _some(typing=typing, roomId=room_id))

    # -- signatures -----------------------------------------------------------------

    async def verify_event(self, event: Event | Mapping[str, Any], *, require_intact: bool = False) -> Verification:
        """Check an event with its origin's published keys (cached); raises ``SignatureError``."""
        raw = event.raw if isinstance(event, Event) else event
        return await self.keys.verify_event(raw, require_intact=require_intact)

    async def _fetch_keys(self, server_name: str) -> Mapping[str, Any]:
        if self._server_name is None:
            self._server_name = (await self.http.versions()).server["name"]
        if server_name == self._server_name:
            return await self.http.server_keys()
        base_url = self.key_servers.get(server_name) or await self.http.discover(server_name)
        return await self.http.server_keys(base_url)


def _some(**data: Any) -> dict[str, Any]:
    """The data of a frame without its absent (None) fields."""
    return {key: value for key, value in data.items() if value is not None}
