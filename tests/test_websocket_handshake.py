"""The opening handshake of /api/ws (protocol.md 5.1, 18.3): every refusal is the
protocol's error body with ``Cache-Control: no-store``, and the Origin check
compares scheme, host and port."""

from __future__ import annotations

import dataclasses
import json
import ssl

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from tests.conftest import FAST_HASHER
from tests.support.attack import self_signed_certificate
from tests.support.client import WsClient
from tests.support.security import MEMORY_ONLY, overrides, server_config  # noqa: F401 (fixtures)
from vibemuse.app import VibeMuseServer
from vibemuse.protocol.origins import Origin, origin_allowed, parse_origin

UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
           "Sec-WebSocket-Version": "13", "Sec-WebSocket-Protocol": "vibemuse.v1"}


async def refusal(ws_url, spec, **options):
    """(status, headers, error code) of a handshake the server must refuse."""
    with pytest.raises(HTTPClientError) as refused:
        (await WsClient.open(ws_url, spec, **options)).close()
    body = json.loads(refused.value.response.body)
    spec.check_body("error", body)
    return refused.value.code, refused.value.response.headers, body["error"]["code"]


async def plain_get(base_url, spec, headers):
    response = await AsyncHTTPClient().fetch(
        HTTPRequest(base_url + "/api/ws", headers=headers), raise_error=False)
    body = json.loads(response.body)
    spec.check_body("error", body)
    return response.code, response.headers, body["error"]["code"]


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [{"max_connections_per_user": 1}], ids=["user1"])
@pytest.mark.gen_test(timeout=20)
async def test_every_refusal_of_the_handshake_is_never_cached(world, ws_url, spec, base_url):
    alice = await world.player("Alice")
    refusals = [
        await plain_get(base_url, spec, {}),  # not an upgrade: 400
        await plain_get(base_url, spec, {**UPGRADE, "Sec-WebSocket-Version": "8"}),  # old version: 400
        await plain_get(base_url, spec, {k: v for k, v in UPGRADE.items() if k != "Sec-WebSocket-Key"}),
        await refusal(ws_url, spec, token="not-a-token"),  # 401
        await refusal(ws_url, spec, headers={"Origin": "https://evil.example"}),  # 403
        await refusal(ws_url, spec, token=alice.token),  # 429: the user's one socket is open
        await refusal(ws_url, spec, subprotocols=["vibemuse.v99"]),  # 400 unsupported_version
    ]
    assert [(status, code) for status, _, code in refusals] == [
        (400, "invalid_request"), (400, "invalid_request"), (400, "invalid_request"), (401, "invalid_token"),
        (403, "forbidden_origin"), (429, "too_many_connections"), (400, "unsupported_version")]
    for status, headers, code in refusals:
        assert headers.get("Cache-Control") == "no-store", (status, code)
        assert headers.get("Content-Type") == "application/json; charset=utf-8", (status, code)
    assert refusals[1][1].get("Sec-WebSocket-Version") == "13"


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [{"allowed_origins": ("https://client.example",)}], ids=["allowed"])
@pytest.mark.gen_test(timeout=20)
async def test_the_origin_must_match_in_scheme_host_and_port(api, ws_url, spec, base_url):
    token = (await api.register("Alice"))["accessToken"]
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    other_name = "127.0.0.1" if host == "localhost" else "localhost"
    for origin in (f"https://{host}:{port}", f"ws://{host}:{port}", f"http://{host}:{int(port) + 1}",
                   f"http://{host}", f"http://{other_name}:{port}", "http://client.example",
                   "https://client.example:8443", f"http://{host}:{port}/path", "null"):
        status, _, code = await refusal(ws_url, spec, token=token, headers={"Origin": origin})
        assert (status, code) == (403, "forbidden_origin"), origin
    for origin in (f"http://{host}:{port}", f"HTTP://{host.upper()}:{port}/", "https://client.example",
                   "https://client.example:443", "https://CLIENT.example/"):
        socket = await WsClient.open(ws_url, spec, token=token, headers={"Origin": origin})
        assert (await socket.receive())["type"] == "welcome", origin
        socket.close()


def test_origins_fill_in_default_ports_and_refuse_what_is_not_an_origin():
    assert parse_origin("http://Host.Example") == Origin("http", "host.example", 80)
    assert parse_origin("https://host.example") == Origin("https", "host.example", 443)
    assert parse_origin("https://[::1]:8443") == Origin("https", "::1", 8443)
    for text in ("null", "", "host.example", "ftp://host.example", "http://host.example:99999",
                 "http://user@host.example", "http://host.example/a", "http://host.example?q", "http://:80"):
        assert parse_origin(text) is None, text
    own = Origin("http", "muse.example", 80)
    assert origin_allowed("http://muse.example:80", own, ())
    assert not origin_allowed("https://muse.example", own, ())
    assert not origin_allowed("http://muse.example:8080", own, ())
    assert origin_allowed("https://web.example", own, ("https://web.example:443",))
    assert not origin_allowed("null", own, ("null",))


@MEMORY_ONLY
@pytest.mark.gen_test(timeout=30)
async def test_behind_tls_the_own_origin_is_https(config, clock, spec, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    server = await VibeMuseServer.create(
        dataclasses.replace(config, tls_certificate=str(cert), tls_key=str(key)), clock=clock, hasher=FAST_HASHER)
    port = server.listen(0, "127.0.0.1")
    trusting = ssl.create_default_context(cafile=str(cert))

    def connect(origin):
        return websocket_connect(HTTPRequest(f"wss://127.0.0.1:{port}/api/ws", headers={"Origin": origin},
                                             ssl_options=trusting), subprotocols=["vibemuse.v1"])

    try:
        connection = await connect(f"https://127.0.0.1:{port}")
        connection.close()
        for origin in (f"http://127.0.0.1:{port}", "https://127.0.0.1"):
            with pytest.raises(HTTPClientError) as refused:
                await connect(origin)
            assert refused.value.code == 403, origin
            assert json.loads(refused.value.response.body)["error"]["code"] == "forbidden_origin"
    finally:
        await server.shutdown()
