"""The suite's two kinds of socket: a ``Player`` (one SDK ``Client`` that keeps every frame it got,
in order, so that a check can wait for a frame, look at the order of what came and fence what a
request caused with ``barrier``) and a ``RawSocket`` (Tornado's WebSocket client, for what the SDK
will not do on purpose: a bad subprotocol, malformed JSON, an oversized frame). See ``harness``."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, Callable, Mapping

from vibemuse_client import Client, Frame, VibeMuseError
from vibemuse_client.errors import ConnectionClosed, SchemaViolation
from vibemuse_conformance.runner import CheckFailed

if TYPE_CHECKING:
    from vibemuse_conformance.harness import Account, Harness, Server

WAIT_SECONDS = 10.0
SUBPROTOCOL = "vibemuse.v1"


class Player:
    def __init__(self, harness: "Harness", account: Account, client: Client):
        self.harness, self.account, self.client = harness, account, client
        self.frames: list[Frame] = []
        self._arrived = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self.ended: VibeMuseError | None = None

    @property
    def user_id(self) -> str:
        return self.account.user_id

    @property
    def server(self) -> Server:
        return self.account.server

    async def start(self) -> "Player":
        await self.harness.pacer.take(self.server.base_url, "address", "handshake_address")
        await self.client.connect()
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        while True:
            try:
                async for frame in self.client.frames():
                    async with self._arrived:
                        self.frames.append(frame)
                        self._arrived.notify_all()
                return
            except (SchemaViolation, VibeMuseError) as error:
                if isinstance(error, ConnectionClosed):
                    self.ended = error
                    async with self._arrived:
                        self._arrived.notify_all()
                    return
                continue  # a violation in place of a frame: kept in client.violations; read on

    def mark(self) -> int:
        return len(self.frames)

    def frames_since(self, mark: int, frame_type: str | None = None) -> list[Frame]:
        return [f for f in self.frames[mark:] if frame_type is None or f.type == frame_type]

    async def wait(self, predicate: Callable[[Frame], bool], what: str, *, after: int = 0,
                   timeout: float = WAIT_SECONDS) -> Frame:
        """The first frame from index ``after`` on for which ``predicate`` holds; a failed check if none
        comes within ``timeout`` seconds."""

        def found() -> Frame | None:
            return next((f for f in self.frames[after:] if predicate(f)), None)

        async def watch() -> Frame:
            async with self._arrived:
                while True:
                    frame = found()
                    if frame is not None:
                        return frame
                    if self.ended is not None:
                        raise CheckFailed(what, f"the socket closed first ({self.ended.code})")
                    await self._arrived.wait()

        try:
            return await asyncio.wait_for(watch(), timeout)
        except asyncio.TimeoutError:
            seen = [f.type for f in self.frames[after:]][-12:]
            raise CheckFailed(f"{what} within {timeout:.0f} s", f"{self.account.username} got only {seen}") from None

    async def wait_type(self, frame_type: str, what: str | None = None, *, after: int = 0,
                        where: Callable[[Frame], bool] | None = None, timeout: float = WAIT_SECONDS) -> Frame:
        return await self.wait(lambda f: f.type == frame_type and (where is None or where(f)),
                               what or f"a {frame_type} frame", after=after, timeout=timeout)

    async def wait_event(self, event_id: str, frame_type: str | None = None, *, after: int = 0,
                         timeout: float = WAIT_SECONDS) -> Frame:
        return await self.wait(lambda f: (frame_type is None or f.type == frame_type) and
                               isinstance(f.data.get("event"), dict) and f.data["event"].get("event_id") == event_id,
                               f"{frame_type or 'a frame'} carrying {event_id}", after=after, timeout=timeout)

    async def index_of(self, frame: Frame) -> int:
        """Where a frame (an answer the SDK resolved, say) stands among this player's frames."""
        await self.wait(lambda f: f is frame or (f.type == frame.type and f.message_id == frame.message_id),
                        f"the {frame.type} frame among those received")
        return next(i for i, f in enumerate(self.frames) if f.type == frame.type and f.message_id == frame.message_id)

    def carrying(self, event_id: str, mark: int = 0) -> list[Frame]:
        """The frames from ``mark`` on that carry this event."""
        return [f for f in self.frames[mark:] if isinstance(f.data.get("event"), dict)
                and f.data["event"].get("event_id") == event_id]

    async def send(self, frame_type: str, data: Mapping[str, Any] | None = None, *,
                   message_id: str | None = None) -> Frame:
        data = dict(data or {})
        coverage = self.harness.coverage
        await self.harness.pacer.frame(self.server.base_url, self.user_id, frame_type, data)
        coverage.sent(frame_type)
        try:
            answer = await self.client.send(frame_type, data, message_id=message_id, timeout=WAIT_SECONDS * 2)
        except SchemaViolation:
            raise
        except VibeMuseError:
            coverage.answered(frame_type, "error")
            raise
        if answer is None:
            raise CheckFailed(f"an answer to {frame_type}", None)
        coverage.answered(frame_type, answer.type)
        return answer

    async def notify(self, frame_type: str, data: Mapping[str, Any] | None = None, *,
                     message_id: str | None = None) -> None:
        """Send a frame the server answers with nothing (``typing``)."""
        data = dict(data or {})
        await self.harness.pacer.frame(self.server.base_url, self.user_id, frame_type, data)
        self.harness.coverage.sent(frame_type)
        await self.client.send(frame_type, data, message_id=message_id)

    async def ack(self, frame_type: str, data: Mapping[str, Any] | None = None, **options: Any) -> Frame:
        answer = await self.send(frame_type, data, **options)
        if answer.type != "ack":
            raise CheckFailed(f"an ack to {frame_type}", f"a {answer.type} frame: {dict(answer.data)}")
        return answer

    async def refused(self, frame_type: str, data: Mapping[str, Any] | None, code: str, **options: Any) -> VibeMuseError:
        """Send a frame that the spec says is refused with ``code``."""
        try:
            answer = await self.send(frame_type, data, **options)
        except SchemaViolation:
            raise
        except VibeMuseError as error:
            if error.code != code:
                raise CheckFailed(f"{frame_type} refused with {code}", f"{error.code}: {error.message}") from None
            return error
        raise CheckFailed(f"{frame_type} refused with {code}", f"a {answer.type} frame: {dict(answer.data)}")

    async def barrier(self) -> Frame:
        """A ping and its pong: every frame this socket's earlier frames caused for it came before."""
        return await self.send("ping", {})

    async def http(self, method: str, path: str, body: Any = None, **options: Any) -> Any:
        return await self.harness.http(self.client.http, self.user_id, method, path, body, **options)

    async def http_refused(self, method: str, path: str, code: str, body: Any = None, **options: Any) -> VibeMuseError:
        return await self.harness.http_refused(self.client.http, self.user_id, method, path, code, body, **options)

    async def close(self) -> None:
        await self.client.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


class RawSocket:
    """A WebSocket without the SDK's manners: for what a well-behaved client never sends."""

    def __init__(self, harness: "Harness", socket: Any):
        self.harness, self.socket = harness, socket
        self.frames: list[dict[str, Any]] = []
        self._asked: dict[str, str] = {}  # messageId -> the type of the frame sent with it, not yet answered

    @property
    def close_code(self) -> int | None:
        return self.socket.close_code

    @property
    def selected_subprotocol(self) -> str | None:
        return self.socket.selected_subprotocol

    def send(self, frame: Mapping[str, Any] | str | bytes) -> None:
        payload = frame if isinstance(frame, (str, bytes)) else json.dumps(frame)
        if isinstance(frame, Mapping):
            self.harness.coverage.sent(frame.get("type"))
            if isinstance(frame.get("messageId"), str) and isinstance(frame.get("type"), str):
                self._asked[frame["messageId"]] = frame["type"]
        self.socket.write_message(payload, binary=isinstance(payload, bytes))

    async def read(self, timeout: float = WAIT_SECONDS) -> dict[str, Any] | None:
        """The next frame (checked against its schema), or None once the socket closed."""
        try:
            message = await asyncio.wait_for(self.socket.read_message(), timeout)
        except asyncio.TimeoutError:
            raise CheckFailed(f"a frame within {timeout:.0f} s", "nothing") from None
        if message is None:
            return None
        if isinstance(message, bytes):
            raise CheckFailed("text messages only (protocol.md 1)", "a binary message")
        try:
            frame = json.loads(message)
        except ValueError:
            raise CheckFailed("JSON frames (protocol.md 1)", message[:200]) from None
        if self.harness.check_frame(frame):
            self._answered(frame)
        self.frames.append(frame)
        return frame

    def _answered(self, frame: dict[str, Any]) -> None:
        """Record a conforming answer to a frame this socket sent (``welcome`` answers ``auth``)."""
        data = frame.get("data", {})
        asked = self._asked.pop(data.get("inReplyTo"), None) if isinstance(data.get("inReplyTo"), str) else None
        if asked is None and frame.get("type") == "welcome":
            asked = next((t for t in self._asked.values() if t == "auth"), None)
            self._asked = {m: t for m, t in self._asked.items() if t != "auth"}
        if asked is not None:
            self.harness.coverage.answered(asked, str(frame.get("type")))

    async def read_type(self, frame_type: str, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
        """Read on to the first frame of this type (frames before it are kept in ``frames``)."""
        while True:
            frame = await self.read(timeout)
            if frame is None:
                raise CheckFailed(f"a {frame_type} frame", f"the socket closed ({self.close_code})")
            if frame.get("type") == frame_type:
                return frame

    async def closed(self, timeout: float = WAIT_SECONDS) -> int | None:
        """Read until the server closes the socket; its close code."""
        while await self.read(timeout) is not None:
            pass
        return self.close_code

    def close(self) -> None:
        self.socket.close(1000)
