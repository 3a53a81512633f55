"""HttpTransport against a real plain-HTTP server on loopback (TLS: tests/federation/test_discovery.py)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

from vibemuse.federation.transport import HttpTransport, TransportError


class _Echo(tornado.web.RequestHandler):
    def put(self) -> None:
        self.set_header("X-Seen-Authorization", self.request.headers.get("Authorization", ""))
        self.set_status(201)
        self.write(self.request.body)


class _Redirect(tornado.web.RequestHandler):
    def get(self) -> None:
        self.redirect("/echo")


class _Sized(tornado.web.RequestHandler):
    def get(self, size: str) -> None:
        self.set_status(503)
        self.write(b"x" * int(size))


@contextlib.asynccontextmanager
async def origin():
    server = tornado.httpserver.HTTPServer(tornado.web.Application(
        [(r"/echo", _Echo), (r"/redirect", _Redirect), (r"/sized/([0-9]+)", _Sized)]))
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    transport = HttpTransport(max_body_bytes=64 * 1024)
    try:
        yield transport, f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    finally:
        transport.close()
        server.stop()
        await server.close_all_connections()


def run(scenario):
    asyncio.run(scenario())


def test_a_request_with_a_body_and_headers_gets_the_answer_whatever_its_status():
    async def scenario():
        async with origin() as (transport, base):
            answer = await transport.request("PUT", base + "/echo", headers={"Authorization": "X-VibeMUSE a=1"},
                                             body=b'{"pdus": []}')
            assert (answer.status, answer.body) == (201, b'{"pdus": []}')
            assert answer.headers["X-Seen-Authorization"] == "X-VibeMUSE a=1"
            failed = await transport.request("GET", base + "/sized/10")
            assert (failed.status, failed.body) == (503, b"x" * 10)

    run(scenario)


def test_redirects_are_answers_not_followed():
    async def scenario():
        async with origin() as (transport, base):
            answer = await transport.request("GET", base + "/redirect")
            assert answer.status == 302 and answer.headers["Location"] == "/echo"

    run(scenario)


@pytest.mark.parametrize("size, limit", [(1001, 1000), (64 * 1024 + 1, None), (1024 * 1024, None)])
def test_an_answer_past_the_limit_is_a_transport_error(size, limit):
    async def scenario():
        async with origin() as (transport, base):
            with pytest.raises(TransportError):
                await transport.request("GET", f"{base}/sized/{size}", max_body_bytes=limit)
            exact = await transport.request("GET", f"{base}/sized/{limit or 64 * 1024}", max_body_bytes=limit)
            assert len(exact.body) == (limit or 64 * 1024)

    run(scenario)


def test_unreachable_and_malformed_urls_are_transport_errors():
    async def scenario():
        closed = tornado.netutil.bind_sockets(0, "127.0.0.1")
        port = closed[0].getsockname()[1]
        closed[0].close()
        transport = HttpTransport()
        try:
            for url in (f"http://127.0.0.1:{port}/", "not a url", "gopher://127.0.0.1/"):
                with pytest.raises(TransportError):
                    await transport.request("GET", url)
        finally:
            transport.close()

    run(scenario)
