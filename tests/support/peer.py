"""A stand-in for another server, on a real loopback socket: it records the
transactions it is sent and answers each as the test tells it.

It stands in for the peer, not for the thing under test: the sender talks
to it over real HTTP. ``answer`` decides each reply: ``"ok"`` (200 with a
result per event, refusing those in ``refuse``), ``"error"`` (500),
``("busy", seconds)`` (429 with ``Retry-After``) or ``"hang"`` (no answer until
``release`` is set; then 200). A body over ``max_body_bytes`` (0: no limit)
gets 413, as a receiver with that ``max_http_body_bytes`` answers.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Callable

import tornado.httpserver
import tornado.netutil
import tornado.web


async def until(condition: Callable[[], Any], what: str, seconds: float = 60.0) -> None:
    """Wait (polling) until ``condition()`` (a value or an awaitable) holds; fail naming ``what`` after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        held = condition()
        if asyncio.iscoroutine(held):
            held = await held
        if held:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still not true after {seconds:g} s: {what}")
        await asyncio.sleep(0.01)


@dataclass
class Received:
    txn_id: str
    body: dict[str, Any]
    authorization: str | None
    uri: str
    status: int | None = None  # what the peer answered (None: not yet, or never)
    size: int = 0  # bytes of the body


@dataclass
class Peer:
    answer: Callable[[int], Any] = lambda n: "ok"  # given the request's number (0, 1, ...)
    refuse: dict[str, str] = field(default_factory=dict)  # event id -> code
    received: list[Received] = field(default_factory=list)
    max_body_bytes: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    base_url: str = ""
    _server: Any = None

    def start(self) -> "Peer":
        app = tornado.web.Application([(r"/federation/v1/send/([^/]+)", _SendHandler, {"peer": self})])
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.add_sockets(sockets)
        self.base_url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        return self

    async def stop(self) -> None:
        self.release.set()
        self._server.stop()
        await self._server.close_all_connections()

    @property
    def event_ids(self) -> list[str]:
        """Every event id in every transaction answered 200, in arrival order (repeats included)."""
        return [pdu["event_id"] for r in self.received if r.status == 200 for pdu in r.body["pdus"]]


class _SendHandler(tornado.web.RequestHandler):
    def initialize(self, peer: Peer) -> None:
        self.peer = peer

    async def put(self, txn_id: str) -> None:
        peer = self.peer
        body = json.loads(self.request.body)
        number = len(peer.received)
        record = Received(txn_id, body, self.request.headers.get("Authorization"), self.request.uri,
                          size=len(self.request.body))
        peer.received.append(record)
        if peer.max_body_bytes and record.size > peer.max_body_bytes:
            self.set_status(413)
            self.finish({"error": {"code": "payload_too_large", "message": "too large"}})
            record.status = 413
            return
        peer.in_flight += 1
        peer.max_in_flight = max(peer.max_in_flight, peer.in_flight)
        try:
            await self._answer(peer.answer(number), body)
            record.status = self.get_status()
        finally:
            peer.in_flight -= 1

    async def _answer(self, how: Any, body: dict[str, Any]) -> None:
        if how == "hang":
            await self.peer.release.wait()
            how = "ok"
        if how == "ok":
            results = {pdu["event_id"]: ({"error": {"code": self.peer.refuse[pdu["event_id"]], "message": "no"}}
                                         if pdu["event_id"] in self.peer.refuse else {}) for pdu in body["pdus"]}
            self.finish({"pdus": results})
        elif how == "error":
            self.set_status(500)
            self.finish({"error": {"code": "internal_error", "message": "down"}})
        else:
            _, seconds = how
            self.set_status(429)
            self.set_header("Retry-After", str(seconds))
            self.finish({"error": {"code": "rate_limited", "message": "busy"}})
