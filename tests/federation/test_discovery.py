"""Discovery against real servers on loopback: a TLS well-known peer made with a fresh certificate.

The names ``beta.test`` and friends resolve to 127.0.0.1 through the
transport's resolver (as a DNS server would), so TLS checks the certificate
against the name asked for, exactly as in production; only the CA bundle is
the test's own certificate instead of the system's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

from tests.support.attack import self_signed_certificate
from vibemuse.federation.discovery import Discovery, DiscoveryError
from vibemuse.federation.transport import HttpTransport
from vibemuse.protocol.discovery import MAX_WELL_KNOWN_BYTES, WELL_KNOWN_PATH

NAMES = ("beta.test", "gamma.test", "delta.test")
HOUR_MS = 3_600_000
NEGATIVE_MS = 60_000
BETA_URL = "https://federation.beta.test:8448"


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_225_600_000

    def __call__(self) -> int:
        return self.now


class WellKnownPeer:
    """An HTTPS server answering the well-known path as told, counting the requests per host."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.status = 200
        self.body = json.dumps({"base_url": BETA_URL + "/"}).encode()
        self.chunks: list[bytes] | None = None  # sent chunked, without Content-Length
        self.gate: asyncio.Event | None = None

    async def answer(self, handler: tornado.web.RequestHandler) -> None:
        self.requests.append(handler.request.host)
        if self.gate is not None:
            await self.gate.wait()
        handler.set_status(self.status)
        handler.set_header("Content-Type", "application/json")
        for chunk in self.chunks if self.chunks is not None else [self.body] if self.body else []:
            handler.write(chunk)
            if self.chunks is not None:
                await handler.flush()


class _WellKnownHandler(tornado.web.RequestHandler):
    def initialize(self, peer: WellKnownPeer) -> None:
        self.peer = peer

    async def get(self) -> None:
        await self.peer.answer(self)


@contextlib.asynccontextmanager
async def serving(tmp_path, *, trust: str = "peer", names=NAMES, **transport_options):
    """(peer, discovery, clock): ``names`` resolve to the peer; ``dead.test`` to a closed port."""
    cert, key = self_signed_certificate(tmp_path, *names)
    peer = WellKnownPeer()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = tornado.httpserver.HTTPServer(
        tornado.web.Application([(WELL_KNOWN_PATH.replace(".", r"\."), _WellKnownHandler, {"peer": peer})]),
        ssl_options=tls)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    closed = tornado.netutil.bind_sockets(0, "127.0.0.1")
    closed_port = closed[0].getsockname()[1]
    closed[0].close()
    mapping = {(name, 443): ("127.0.0.1", sockets[0].getsockname()[1]) for name in NAMES}
    mapping[("dead.test", 443)] = ("127.0.0.1", closed_port)
    if trust == "other":  # a CA bundle that does not hold the peer's certificate
        (tmp_path / "other").mkdir()
        cert, _ = self_signed_certificate(tmp_path / "other", *names)
    transport = HttpTransport(ca_bundle=str(cert), resolver=tornado.netutil.OverrideResolver(
        tornado.netutil.DefaultLoopResolver(), mapping), **transport_options)
    clock = Clock()
    discovery = Discovery(transport, peers={"alpha.test": "http://127.0.0.1:1"}, clock=clock,
                          cache_ms=HOUR_MS, negative_cache_ms=NEGATIVE_MS, max_entries=2)
    try:
        yield peer, discovery, clock
    finally:
        if peer.gate is not None:
            peer.gate.set()
        server.stop()
        await server.close_all_connections()
        transport.close()


def run(scenario):
    asyncio.run(scenario())


async def failure(discovery: Discovery, name: str = "beta.test") -> DiscoveryError:
    with pytest.raises(DiscoveryError) as raised:
        await discovery.base_url_of(name)
    assert raised.value.server_name == name
    return raised.value


def test_configured_peer_wins_without_a_request(tmp_path):
    async def scenario():
        async with serving(tmp_path) as (peer, _, clock):
            discovery = Discovery(HttpTransport(), peers={"beta.test": "http://127.0.0.1:5000"}, clock=clock,
                                  cache_ms=HOUR_MS)
            assert await discovery.base_url_of("beta.test") == "http://127.0.0.1:5000"
            assert peer.requests == []

    run(scenario)


def test_well_known_over_verified_tls_then_cached_until_it_expires(tmp_path):
    async def scenario():
        async with serving(tmp_path) as (peer, discovery, clock):
            assert await discovery.base_url_of("beta.test") == BETA_URL  # trailing / dropped
            assert peer.requests == ["beta.test"]
            clock.now += HOUR_MS - 1
            assert await discovery.base_url_of("beta.test") == BETA_URL
            assert len(peer.requests) == 1
            peer.body = b'{"base_url": "https://moved.beta.test"}'
            clock.now += 1
            assert await discovery.base_url_of("beta.test") == "https://moved.beta.test"
            assert len(peer.requests) == 2

    run(scenario)


@pytest.mark.parametrize("trust, name", [("other", "beta.test"), ("peer", "gamma.test")])
def test_a_certificate_not_trusted_or_not_for_the_name_is_refused(tmp_path, trust, name):
    async def scenario():
        async with serving(tmp_path, trust=trust, names=("beta.test",)) as (_, discovery, _clock):
            error = await failure(discovery, name)
            assert "certificate" in error.reason.lower() or "hostname" in error.reason.lower(), error.reason

    run(scenario)


def test_failures_are_cached_briefly(tmp_path, caplog):
    async def scenario():
        async with serving(tmp_path) as (peer, discovery, clock):
            peer.status = 404
            first = await failure(discovery)
            assert "404" in first.reason
            clock.now += NEGATIVE_MS - 1
            again = await failure(discovery)
            assert again is not first and again.reason == first.reason
            assert len(peer.requests) == 1
            assert [record.getMessage() for record in caplog.records if record.name.endswith("discovery")] == [
                "cannot discover beta.test (asking again in 60 s): well-known answered HTTP 404"]
            peer.status = 200
            clock.now += 1
            assert await discovery.base_url_of("beta.test") == BETA_URL
            assert len(peer.requests) == 2

    run(scenario)


def test_concurrent_look_ups_share_one_request(tmp_path):
    async def scenario():
        async with serving(tmp_path) as (peer, discovery, _clock):
            peer.gate = asyncio.Event()
            waiting = [asyncio.ensure_future(discovery.base_url_of("beta.test")) for _ in range(8)]
            waiting[0].cancel()  # one impatient caller does not cancel the others' request
            while not peer.requests:
                await asyncio.sleep(0.01)
            peer.gate.set()
            answers = await asyncio.gather(*waiting[1:])
            assert answers == [BETA_URL] * 7 and waiting[0].cancelled()
            assert peer.requests == ["beta.test"]

    run(scenario)


TOO_LARGE = json.dumps({"base_url": BETA_URL, "padding": "x" * MAX_WELL_KNOWN_BYTES}).encode()


@pytest.mark.parametrize("body, chunks, why", [
    (b"<html>not json</html>", None, "not UTF-8 JSON"),
    (b'{"base_url": "https://a.test"', None, "not UTF-8 JSON"),
    (b'\xff{"base_url": "https://a.test"}', None, "not UTF-8 JSON"),
    (b'{"base_url": NaN}', None, "not UTF-8 JSON"),
    (b'["https://a.test"]', None, "not a JSON object"),
    (b'"https://a.test"', None, "not a JSON object"),
    (b"{}", None, "no base_url"),
    (b'{"base_url": 443}', None, "base_url"),
    (b'{"base_url": null}', None, "base_url"),
    (b'{"base_url": "beta.test:8448"}', None, "absolute"),
    (b'{"base_url": "/federation"}', None, "absolute"),
    (b'{"base_url": "ftp://beta.test"}', None, "absolute"),
    (b'{"base_url": "https://beta.test/?x=1"}', None, "no query"),
    (b'{"base_url": "https://beta.test/#top"}', None, "no fragment"),
    (b'{"base_url": "https://eve@beta.test"}', None, "user name"),
    (b'{"base_url": "https://bad host/"}', None, "without spaces"),
    (b'{"base_url": "https://bad_host/"}', None, "host"),
    (b'{"base_url": "https://beta.test:99999"}', None, "host"),
    (TOO_LARGE, None, "larger than"),
    (b"", [b"x" * 4000] * 4, "larger than"),
])
def test_bad_answers_are_discovery_errors(tmp_path, body, chunks, why):
    async def scenario():
        async with serving(tmp_path) as (peer, discovery, _clock):
            peer.body, peer.chunks = body, chunks
            error = await failure(discovery)
            assert why in error.reason, error.reason
            assert len(peer.requests) == 1

    run(scenario)


@pytest.mark.parametrize("status", [500, 503, 301, 204])
def test_an_answer_other_than_200_and_an_unreachable_server_are_discovery_errors(tmp_path, status):
    """Redirects are not followed: a well-known must answer itself."""
    async def scenario():
        async with serving(tmp_path) as (peer, discovery, _clock):
            peer.status = status
            if status == 204:
                peer.body = b""
            assert f"HTTP {status}" in (await failure(discovery)).reason
            assert len(peer.requests) == 1
            assert (await failure(discovery, "dead.test")).reason

    run(scenario)


def test_a_silent_server_times_out(tmp_path):
    async def scenario():
        async with serving(tmp_path, request_timeout=0.3) as (peer, discovery, _clock):
            peer.gate = asyncio.Event()
            error = await failure(discovery)
            assert "timeout" in error.reason.lower(), error.reason
            assert len(peer.requests) == 1

    run(scenario)


@pytest.mark.parametrize("name", ["bad name", "beta.test/evil?", "beta.test:0", "@bob:beta.test", "", "a" * 64])
def test_what_is_not_a_server_name_fails_before_any_request(tmp_path, name):
    async def scenario():
        async with serving(tmp_path) as (peer, discovery, _clock):
            error = await failure(discovery, name)
            assert error.reason == "not a server name"
            assert peer.requests == []

    run(scenario)


def test_the_cache_keeps_the_most_recently_used_names(tmp_path):
    async def scenario():
        async with serving(tmp_path) as (peer, discovery, _clock):  # max_entries=2
            for name in ("beta.test", "gamma.test", "beta.test", "delta.test", "beta.test", "gamma.test"):
                assert await discovery.base_url_of(name) == BETA_URL
            assert peer.requests == ["beta.test", "gamma.test", "delta.test", "gamma.test"]

    run(scenario)
