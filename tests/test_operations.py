"""What operators' machines ask: /metrics (scraped and parsed), /health and /ready.

The metrics are read as Prometheus reads them (prometheus_client's parser)
and must move with real actions on real sockets: a socket opened, a say, a
frame refused by the rate limit, a page queued for another server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tests.support.client import WsClient, acked, refused
from vibemuse.app import VibeMuseServer
from vibemuse.config import DEFAULT_RATE_LIMITS
from vibemuse.metrics import ServerMetrics
from tests.conftest import FAST_HASHER

SPEECH_BURST = 3


@pytest.fixture
def server_config(config):
    # Speech gets a real limit (3, then refused); everything else stays out of the way.
    rates = {action: (1e9, 1e9) for action in DEFAULT_RATE_LIMITS}
    rates["speech"] = (SPEECH_BURST, 0.001)
    return dataclasses.replace(config, rate_limits=rates)


async def scrape(base_url: str, token: str | None = None) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await AsyncHTTPClient().fetch(base_url + "/metrics", headers=headers)
    assert response.code == 200 and response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def settle(base_url: str, name: str, expected: float, **labels) -> dict:
    """Scrape until ``name`` shows ``expected`` (a socket's close is seen a loop turn later)."""
    for _ in range(100):
        samples = await scrape(base_url)
        if value(samples, name, **labels) == expected:
            return samples
        await asyncio.sleep(0.02)
    raise AssertionError(f"{name}{labels} stayed at {value(samples, name, **labels)}, not {expected}")


@pytest.mark.gen_test(timeout=30)
async def test_metrics_follow_sockets_frames_and_refusals(api, ws_url, spec, base_url, server):
    before = await scrape(base_url)
    assert value(before, "vibemuse_sockets_open", transport="websocket") == 0
    assert value(before, "vibemuse_users_online") == 0
    alice, bob = await api.register("Alice"), await api.register("Bob")
    alice_ws = await WsClient.logged_in(ws_url, spec, alice["accessToken"])
    bob_ws = await WsClient.logged_in(ws_url, spec, bob["accessToken"])

    await acked(alice_ws, "say", {"text": "Hello, Bob."})
    await bob_ws.receive_type("message")
    samples = await scrape(base_url)
    assert value(samples, "vibemuse_sockets_open", transport="websocket") == 2
    assert value(samples, "vibemuse_users_online") == 1 + 1
    assert value(samples, "vibemuse_frames_received_total", type="say") == 1
    assert value(samples, "vibemuse_ack_latency_seconds_count", type="say") == 1
    assert value(samples, "vibemuse_frames_sent_total", type="ack") == 1
    # the say's event went to both sockets in one fan-out
    assert value(samples, "vibemuse_frames_sent_total", type="message") == 2
    assert value(samples, "vibemuse_fanout_copies_total") >= 2
    assert value(samples, "vibemuse_database_seconds_count", access="write") > value(
        before, "vibemuse_database_seconds_count", access="write")
    assert value(samples, "vibemuse_refusals_total", code="rate_limited") == 0

    for n in range(SPEECH_BURST - 1):
        await acked(alice_ws, "say", {"text": f"Line {n}."})
    error = await refused(alice_ws, "say", {"text": "One too many."})
    assert error["code"] == "rate_limited"
    samples = await scrape(base_url)
    assert value(samples, "vibemuse_refusals_total", code="rate_limited") == 1
    assert value(samples, "vibemuse_frames_received_total", type="say") == SPEECH_BURST + 1
    assert value(samples, "vibemuse_ack_latency_seconds_count", type="say") == SPEECH_BURST  # refused: not observed

    bob_ws.close()
    samples = await settle(base_url, "vibemuse_sockets_open", 1, transport="websocket")
    assert value(samples, "vibemuse_users_online") == 1
    alice_ws.close()
    await settle(base_url, "vibemuse_users_online", 0)


@pytest.mark.gen_test(timeout=30)
async def test_http_refusals_count_by_code(api, base_url):
    status, _ = await api.call("GET", "/api/users/me")
    assert status == 401
    status, _ = await api.call("GET", "/api/no-such-thing")
    assert status == 404
    samples = await scrape(base_url)
    assert value(samples, "vibemuse_refusals_total", code="not_authenticated") == 1
    assert value(samples, "vibemuse_refusals_total", code="not_found") == 1


@pytest.mark.gen_test(timeout=30)
async def test_a_page_queued_for_another_server_shows_in_the_federation_gauges(api, ws_url, spec, base_url):
    alice = await api.register("Alice")
    socket = await WsClient.logged_in(ws_url, spec, alice["accessToken"])
    ack = await acked(socket, "page", {"to": ["@bob:elsewhere.invalid"], "text": "Are you there?"})
    assert ack["data"]["remote"] == ["@bob:elsewhere.invalid"]
    samples = await scrape(base_url)
    assert value(samples, "vibemuse_federation_queue_depth", destination="elsewhere.invalid") == 1
    assert value(samples, "vibemuse_federation_oldest_pending_seconds", destination="elsewhere.invalid") >= 0
    socket.close()


def test_two_servers_in_one_process_keep_their_own_figures():
    one, two = ServerMetrics(), ServerMetrics()
    one.frame_received("say")
    one.refused("rate_limited")
    assert b'vibemuse_frames_received_total{type="say"} 1.0' in one.exposition()
    assert b"vibemuse_frames_received_total{" not in two.exposition()
    assert b'vibemuse_refusals_total{code="rate_limited"}' not in two.exposition()


# -- who may read /metrics ---------------------------------------------------------


@pytest.mark.gen_test(timeout=60)
async def test_a_metrics_token_is_asked_of_every_client(config, io_loop):
    token = "m" * 32
    server = await VibeMuseServer.create(dataclasses.replace(config, metrics_token=token), hasher=FAST_HASHER)
    port = server.listen(0, "127.0.0.1")
    base = f"http://127.0.0.1:{port}"
    client = AsyncHTTPClient()
    try:
        for headers, status, code in (({}, 401, b"not_authenticated"),
                                      ({"Authorization": "Bearer " + "x" * 32}, 401, b"invalid_token")):
            response = await client.fetch(HTTPRequest(base + "/metrics", headers=headers), raise_error=False)
            assert response.code == status and code in response.body
        samples = await scrape(base, token)
        assert value(samples, "vibemuse_refusals_total", code="invalid_token") == 1
    finally:
        await server.shutdown()


def test_only_loopback_addresses_read_metrics_without_a_token():
    from vibemuse.handlers.ops import _is_loopback

    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("127.8.9.10")
    assert not any(_is_loopback(address) for address in ("10.0.0.1", "192.0.2.7", "2001:db8::1", "", None, "x"))


# -- /health and /ready --------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_health_and_ready_answer_ok(api):
    status, body = await api.call("GET", "/health", schema="health")
    assert (status, body) == (200, {"status": "ok"})
    status, body = await api.call("GET", "/ready", schema="health")
    assert (status, body) == (200, {"status": "ok", "checks": {"database": "ok"}})


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.gen_test(timeout=60)
async def test_ready_is_503_while_postgresql_is_unreachable_and_200_once_it_is_back(config, database_url, spec):
    from sqlalchemy.engine import make_url

    from tests.support.tcp_proxy import TcpProxy

    url = make_url(database_url)
    proxy = await TcpProxy(url.host or "127.0.0.1", url.port or 5432).restore()
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    server = await VibeMuseServer.create(dataclasses.replace(config, database_url=through), hasher=FAST_HASHER)
    base = f"http://127.0.0.1:{server.listen(0, '127.0.0.1')}"
    client = AsyncHTTPClient()
    try:
        assert (await client.fetch(base + "/ready")).code == 200
        await proxy.cut()
        refused = await client.fetch(base + "/ready", raise_error=False)
        body = json.loads(refused.body)
        spec.check_body("error", body)
        assert refused.code == 503 and body["error"]["code"] == "not_ready"
        assert body["error"]["details"] == {"failing": ["database"]}
        assert (await client.fetch(base + "/health")).code == 200  # alive, only not ready
        await proxy.restore()
        assert (await client.fetch(base + "/ready")).code == 200
    finally:
        await server.shutdown()
        await proxy.cut()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.gen_test(timeout=60)
async def test_ready_is_503_while_the_sqlite_file_is_gone(server, base_url, http_server, api):
    database = Path(server.context.config.resolved_database_url.removeprefix("sqlite:///"))
    moved = database.with_name("moved-away.db")
    storage = server.context.storage
    await asyncio.to_thread(storage.engine.dispose)
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{database}{suffix}").exists():
            os.replace(f"{database}{suffix}", f"{moved}{suffix}")
    status, body = await api.call("GET", "/ready")
    assert status == 503 and body["error"]["code"] == "not_ready"
    await asyncio.to_thread(storage.engine.dispose)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
        if Path(f"{moved}{suffix}").exists():
            os.replace(f"{moved}{suffix}", f"{database}{suffix}")
    status, body = await api.call("GET", "/ready", schema="health")
    assert status == 200
