"""A loopback proxy in front of a real server that breaks the protocol on purpose.

Everything passes through unchanged — HTTP requests and answers, WebSocket
handshakes (refusals included), frames both ways, close codes — except what
one ``Breakage`` changes in the frames the server sends. The conformance
suite pointed at the proxy must then fail, in the section that saw it.
"""

from __future__ import annotations

import base64
import json
from typing import Callable

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketHandler, websocket_connect

HOP_HEADERS = {"connection", "transfer-encoding", "content-length", "upgrade", "keep-alive", "host",
               "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"}

# A breakage takes each frame the server sends and returns what to write to the client now (it may
# hold a frame back in its own state; one is made per socket).
Breakage = Callable[[dict], list[dict]]


def drop_field(frame_type: str, field: str) -> Callable[[], Breakage]:
    """Frames of ``frame_type`` lose ``data[field]`` (a required field)."""

    def make() -> Breakage:
        def apply(frame: dict) -> list[dict]:
            if frame.get("type") == frame_type:
                frame["data"].pop(field, None)
            return [frame]
        return apply
    return make


def ack_before_message() -> Breakage:
    """The speaker's own room message is held back until the frame after it (its ack) has gone: two
    frames swapped on the speaker's socket (the others get theirs as they come)."""
    held: list[dict] = []
    me: list[str] = []

    def apply(frame: dict) -> list[dict]:
        if frame.get("type") == "welcome":
            me.append(frame["toUser"])
        if (frame.get("type") == "message" and frame["data"]["event"].get("type") == "vm.room.message"
                and frame.get("fromUser") in me):
            held.append(frame)
            return []
        out = [frame] + held
        held.clear()
        return out
    return apply


def forged_signature(frame_type: str) -> Callable[[], Breakage]:
    """Events in frames of ``frame_type`` get a signature of the right form that is wrong."""

    def make() -> Breakage:
        def apply(frame: dict) -> list[dict]:
            event = frame.get("data", {}).get("event")
            if frame.get("type") == frame_type and isinstance(event, dict):
                for keys in event.get("signatures", {}).values():
                    for key_id, signature in keys.items():
                        raw = bytearray(base64.b64decode(signature + "=" * (-len(signature) % 4)))
                        raw[0] ^= 0xFF
                        keys[key_id] = base64.b64encode(bytes(raw)).decode().rstrip("=")
            return [frame]
        return apply
    return make


class Forward(RequestHandler):
    """Any HTTP request, forwarded as it is; the answer sent back as it is."""

    SUPPORTED_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")

    def initialize(self, upstream: str, breakage: Callable[[], Breakage]) -> None:
        self.upstream_base = upstream

    async def forward(self, *args) -> None:
        headers = {k: v for k, v in self.request.headers.get_all() if k.lower() not in HOP_HEADERS}
        body = self.request.body if self.request.method in ("POST", "PUT", "PATCH") or self.request.body else None
        response = await AsyncHTTPClient().fetch(
            HTTPRequest(self.upstream_base + self.request.uri, method=self.request.method, headers=headers, body=body,
                        follow_redirects=False, allow_nonstandard_methods=True, request_timeout=30),
            raise_error=False)
        self.set_status(response.code, response.reason)
        self.clear_header("Content-Type")
        for name, value in response.headers.get_all():
            if name.lower() not in HOP_HEADERS:
                self.add_header(name, value)
        if response.body:
            self.write(response.body)

    get = post = put = delete = patch = head = options = forward


class ForwardSocket(WebSocketHandler):
    """``/api/ws``: the handshake asked of the server first (its refusal, if any, passed back as is),
    then frames relayed both ways, the server's through the breakage."""

    def initialize(self, upstream: str, breakage: Callable[[], Breakage]) -> None:
        self.upstream_url = upstream.replace("http://", "ws://")
        self.upstream_base = upstream
        self.breakage = breakage()
        self.upstream = None

    async def get(self, *args, **kwargs) -> None:
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            await Forward.forward(self)  # not an upgrade: the server's own answer
            return
        headers = {}
        if "Authorization" in self.request.headers:
            headers["Authorization"] = self.request.headers["Authorization"]
        offered = [p.strip() for p in self.request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        try:
            self.upstream = await websocket_connect(
                HTTPRequest(self.upstream_url + self.request.uri, headers=headers, request_timeout=30),
                subprotocols=offered or None, max_message_size=1 << 24)
        except HTTPClientError as refusal:
            self.set_status(refusal.code)
            if refusal.response is not None:
                self.set_header("Content-Type", refusal.response.headers.get("Content-Type", "application/json"))
                self.finish(refusal.response.body)
            return
        await super().get(*args, **kwargs)

    def check_origin(self, origin: str) -> bool:
        return True

    def select_subprotocol(self, subprotocols):
        return self.upstream.selected_subprotocol

    def open(self, *args) -> None:
        self.set_nodelay(True)
        IOLoop.current().add_callback(self.pump)

    async def pump(self) -> None:
        while True:
            message = await self.upstream.read_message()
            if message is None:
                self.close(self.upstream.close_code, self.upstream.close_reason)
                return
            if isinstance(message, bytes):
                await self.write_message(message, binary=True)
                continue
            for frame in self.breakage(json.loads(message)):
                try:
                    await self.write_message(json.dumps(frame))
                except Exception:
                    return

    def on_message(self, message) -> None:
        if self.upstream is not None:
            self.upstream.write_message(message, binary=isinstance(message, bytes))

    def on_close(self) -> None:
        if self.upstream is not None:
            self.upstream.close(self.close_code if self.close_code and self.close_code < 5000 else 1000)


class BreakingProxy:
    def __init__(self, upstream: str, breakage: Callable[[], Breakage]):
        settings = {"upstream": upstream, "breakage": breakage}
        self.app = Application([(r"/api/ws", ForwardSocket, settings), (r"/.*", Forward, settings)],
                               websocket_max_message_size=1 << 24)
        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self.server = HTTPServer(self.app, max_body_size=1 << 24)
        self.server.add_sockets(sockets)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop()
