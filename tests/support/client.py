"""Clients that talk to a live server over real sockets and check every
answer against spec/."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from tests.support.spec import SpecValidator

PASSWORD = "correct horse battery"


class Api:
    """JSON over HTTP. Error bodies are always checked against http/error.json."""

    def __init__(self, base_url: str, spec: SpecValidator):
        self.base_url = base_url
        self.spec = spec
        self.http = AsyncHTTPClient()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        schema: str | None = None,
    ) -> tuple[int, Any]:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if payload is None and method in ("POST", "PUT"):
            payload = b""
        request = HTTPRequest(self.base_url + path, method=method, headers=all_headers, body=payload)
        response = await self.http.fetch(request, raise_error=False)
        decoded = json.loads(response.body) if response.body else None
        if response.code >= 400:
            self.spec.check_body("error", decoded)
        elif schema is not None:
            self.spec.check_body(schema, decoded)
        return response.code, decoded

    async def register(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        status, body = await self.call(
            "POST", "/api/auth/register", {"username": username, "password": password}, schema="session"
        )
        assert status == 201, body
        return body


class WsClient:
    """One socket; every frame received is validated against spec/."""

    _message_ids = itertools.count(1)

    def __init__(self, connection: WebSocketClientConnection, spec: SpecValidator):
        self.connection = connection
        self.spec = spec
        # One reader task feeds a queue: a timed-out wait must not cancel a
        # read of the socket (that would lose the frame it was reading).
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._pending: list[dict[str, Any]] = []  # read, validated, not yet handed out
        self._reader = asyncio.ensure_future(self._read_forever())
        self.received: list[dict[str, Any]] = []
        self.welcome: dict[str, Any] = {}
        self.roster: dict[str, Any] = {}

    @classmethod
    async def open(
        cls,
        ws_url: str,
        spec: SpecValidator,
        *,
        token: str | None = None,
        subprotocols: list[str] | None = ("vibemuse.v1",),  # type: ignore[assignment]
        headers: dict[str, str] | None = None,
    ) -> "WsClient":
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        request = HTTPRequest(ws_url, headers=all_headers)
        connection = await websocket_connect(request, subprotocols=list(subprotocols) if subprotocols else None)
        return cls(connection, spec)

    @classmethod
    async def logged_in(cls, ws_url: str, spec: SpecValidator, token: str) -> "WsClient":
        """A socket authenticated by header, its welcome and first roster already read."""
        client = await cls.open(ws_url, spec, token=token)
        welcome = await client.receive()
        assert welcome["type"] == "welcome", welcome
        client.welcome = welcome
        client.roster = await client.receive_type("roster")
        return client

    async def receive_type(self, frame_type: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame of one type; frames of other types stay pending for later calls."""
        for index, frame in enumerate(self._pending):
            if frame["type"] == frame_type:
                return self._pending.pop(index)
        while True:
            frame = await self._read(timeout)
            assert frame is not None, f"socket closed while waiting for {frame_type}"
            if frame["type"] == frame_type:
                return frame
            self._pending.append(frame)

    def of_type(self, frame_type: str) -> list[dict[str, Any]]:
        return [frame for frame in self.received if frame["type"] == frame_type]

    async def quiet(self, seconds: float = 0.2) -> list[dict[str, Any]]:
        """Pending frames and those that arrive within ``seconds`` (to show that nothing else came)."""
        frames, self._pending = self._pending, []
        try:
            while True:
                frame = await self._read(seconds)
                if frame is None:
                    return frames
                frames.append(frame)
        except asyncio.TimeoutError:
            return frames

    def next_id(self) -> str:
        return f"m{next(self._message_ids)}"

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        text = frame if isinstance(frame, (str, bytes)) else json.dumps(frame, ensure_ascii=False)
        await self.connection.write_message(text, binary=isinstance(text, bytes))

    async def send_frame(self, frame_type: str, data: dict[str, Any] | None = None, **extra: Any) -> str:
        message_id = extra.pop("messageId", None) or self.next_id()
        await self.send({"type": frame_type, "messageId": message_id, "data": data or {}, **extra})
        return message_id

    async def _read_forever(self) -> None:
        while True:
            message = await self.connection.read_message()
            self._inbox.put_nowait(message)
            if message is None:
                return

    async def receive(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """The next frame not yet handed out, or None once the server has closed the socket."""
        if self._pending:
            return self._pending.pop(0)
        return await self._read(timeout)

    async def _read(self, timeout: float) -> dict[str, Any] | None:
        message = await asyncio.wait_for(self._inbox.get(), timeout)
        if message is None:
            self._inbox.put_nowait(None)  # stays closed for later calls
            return None
        frame = json.loads(message)
        self.spec.check_server_frame(frame)
        self.received.append(frame)
        return frame

    async def closed(self, timeout: float = 5.0) -> tuple[int | None, str | None]:
        """Wait for the server to close; frames still arriving are kept in ``received``."""
        while await self.receive(timeout) is not None:
            pass
        return self.connection.close_code, self.connection.close_reason

    def close(self) -> None:
        self.connection.close()


async def refused_handshake(ws_url: str, spec: SpecValidator, **options: Any) -> tuple[int, dict[str, Any]]:
    """Open a socket that the server must refuse before the upgrade: (HTTP status, error body)."""
    from tornado.httpclient import HTTPClientError

    try:
        client = await WsClient.open(ws_url, spec, **options)
    except HTTPClientError as refusal:
        body = json.loads(refusal.response.body)
        spec.check_body("error", body)
        return refusal.code, body
    client.close()
    raise AssertionError("the handshake was accepted")


async def refused_auth_frame(ws_url: str, spec: SpecValidator, token: str) -> tuple[int | None, dict[str, Any]]:
    """Authenticate by frame where the server must refuse: (close code, error frame data)."""
    client = await WsClient.open(ws_url, spec)
    message_id = await client.send_frame("auth", {"token": token})
    code, _ = await client.closed()
    error = client.received[0]["data"]
    assert error["inReplyTo"] == message_id
    return code, error


async def acked(socket: WsClient, frame_type: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send a frame and return its ``ack`` (other frames stay pending)."""
    message_id = await socket.send_frame(frame_type, data or {})
    ack = await socket.receive_type("ack")
    assert ack["data"]["inReplyTo"] == message_id, ack
    return ack


async def presence_of(socket: WsClient, user_id: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next presence frame about ``user_id`` (a user also sees their own)."""
    while True:
        frame = await socket.receive_type("presence", timeout=timeout)
        if frame["data"]["userId"] == user_id:
            return frame


async def refused(socket: WsClient, frame_type: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send a frame that must be refused; return the ``error`` frame's data."""
    message_id = await socket.send_frame(frame_type, data or {})
    error = await socket.receive_type("error")
    assert error["data"].get("inReplyTo") in (message_id, None), error
    return error["data"]
