"""The security model (protocol.md, "Security model") attacked over real sockets, part 2:
connection limits per address and handshake rate, Origin checks, password
change revoking every token, TLS, sanitizing of every text that enters, and
size limits. Part 1 (rate limits, spam, flood) is test_security_abuse.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import ssl

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketError, websocket_connect

from tests.conftest import FAST_HASHER, count_rows
from tests.support.attack import (
    acked,
    answer,
    dirty_rows,
    dirty_strings,
    hostile,
    refused,
    self_signed_certificate,
)
from tests.support.client import PASSWORD, WsClient, refused_handshake
from tests.support.security import (  # noqa: F401 (overrides and server_config are fixtures)
    MEMORY_ONLY,
    SLOW,
    bucket,
    http_status,
    limits,
    overrides,
    server_config,
)
from vibemuse.app import VibeMuseServer

# -- connections per address, handshake rate --------------------------------------------------


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [{"max_connections_per_address": 2}], ids=["address2"])
@pytest.mark.gen_test(timeout=20)
async def test_sockets_per_address_are_limited_at_the_handshake(world, ws_url, spec):
    alice = await world.player("Alice")
    await world.player("Bob")
    carol = await world.offline_player("Carol")
    status, body = await refused_handshake(ws_url, spec, token=carol.token)
    assert (status, body["error"]["code"]) == (429, "too_many_connections")
    status, body = await refused_handshake(ws_url, spec)  # unauthenticated sockets too
    assert (status, body["error"]["code"]) == (429, "too_many_connections")
    await world.wait_offline(alice)
    await world.open_socket(carol)  # a place is free again


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [{"max_connections_per_address": 2}], ids=["address2"])
@pytest.mark.gen_test(timeout=20)
async def test_concurrent_handshakes_do_not_overshoot_the_address_limit(world, ws_url, spec, server):
    players = [await world.offline_player(name) for name in ("Ann", "Ben", "Cid", "Dee", "Eve")]
    outcomes = await asyncio.gather(*(WsClient.open(ws_url, spec, token=p.token) for p in players),
                                    return_exceptions=True)
    opened = [o for o in outcomes if isinstance(o, WsClient)]
    try:
        assert all(isinstance(o, (WsClient, HTTPClientError)) for o in outcomes), outcomes
        assert all(o.code == 429 for o in outcomes if isinstance(o, HTTPClientError))
        await asyncio.sleep(0.1)
        assert len(server.context.registry) <= 2 and len(opened) <= 2
    finally:
        for socket in opened:
            socket.close()


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [{"max_connections_per_address": 2}], ids=["address2"])
@pytest.mark.gen_test(timeout=20)
async def test_the_address_limit_counts_sockets_from_the_handshake_on(world, ws_url, spec, server):
    """Unauthenticated sockets count too: otherwise opening sockets without a token and sending
    auth frames afterwards would get past the limit."""
    players = [await world.offline_player(name) for name in ("Ann", "Ben")]
    sockets = [await WsClient.open(ws_url, spec) for _ in players]
    try:
        status, body = await refused_handshake(ws_url, spec)
        assert (status, body["error"]["code"]) == (429, "too_many_connections")
        for socket, player in zip(sockets, players):
            await socket.send_frame("auth", {"token": player.token})
            assert (await socket.receive())["type"] == "welcome"
        assert len(server.context.registry) == 2
    finally:
        for socket in sockets:
            socket.close()


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [limits(handshake_address=bucket(3))], ids=["handshake3"])
@pytest.mark.gen_test(timeout=20)
async def test_handshakes_per_address_are_rate_limited(api, ws_url, spec, server):
    session = await api.register("Alice")
    for _ in range(3):
        (await WsClient.open(ws_url, spec)).close()
    status, body = await refused_handshake(ws_url, spec, token=session["accessToken"])
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    assert body["error"]["details"]["action"] == "handshake_address"
    assert body["error"]["details"]["retryAfterMs"] > 0


# -- Origin ------------------------------------------------------------------------------------


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [{"allowed_origins": ("https://client.example",)}], ids=["allowed"])
@pytest.mark.gen_test(timeout=20)
async def test_foreign_origins_are_refused_before_the_upgrade(api, ws_url, spec, base_url):
    session = await api.register("Alice")
    port = base_url.rsplit(":", 1)[1]
    for origin in ("https://evil.example", "null", f"http://127.0.0.1:{port}.evil.example",
                   "https://client.example.evil", f"https://127.0.0.1:{port}", "http://127.0.0.1"):
        status, body = await refused_handshake(ws_url, spec, token=session["accessToken"],
                                               headers={"Origin": origin})
        assert (status, body["error"]["code"]) == (403, "forbidden_origin"), origin
    for origin in ("https://client.example", "https://client.example/"):  # listed in allowed_origins
        socket = await WsClient.open(ws_url, spec, token=session["accessToken"], headers={"Origin": origin})
        assert (await socket.receive())["type"] == "welcome"
        socket.close()
    socket = await WsClient.open(ws_url, spec, token=session["accessToken"])  # no Origin: not a browser
    assert (await socket.receive())["type"] == "welcome"
    socket.close()


@MEMORY_ONLY
@pytest.mark.gen_test(timeout=20)
async def test_a_same_origin_browser_is_accepted(api, ws_url, spec, base_url):
    session = await api.register("Alice")
    socket = await WsClient.open(ws_url, spec, token=session["accessToken"], headers={"Origin": base_url})
    assert (await socket.receive())["type"] == "welcome"
    socket.close()


# -- tokens: a password change revokes them all -------------------------------------------------


@pytest.mark.gen_test(timeout=20)
async def test_a_password_change_revokes_every_token_and_closes_every_socket(api, ws_url, spec):
    first = await api.register("Alice")
    status, second = await api.call("POST", "/api/auth/login", {"username": "alice", "password": PASSWORD})
    assert status == 200
    sockets = [await WsClient.logged_in(ws_url, spec, s["accessToken"]) for s in (first, second, first)]
    new_password = "a much better passphrase"
    status, fresh = await api.call("POST", "/api/auth/password",
                                   {"currentPassword": PASSWORD, "newPassword": new_password},
                                   token=second["accessToken"], schema="session")
    assert status == 200 and fresh["accessToken"] not in (first["accessToken"], second["accessToken"])
    assert fresh["user"] == first["user"]
    for socket in sockets:
        code, _ = await socket.closed()
        assert code == 4003
    for old in (first, second):
        assert await http_status(api, "GET", "/api/users/me", token=old["accessToken"]) == (401, "invalid_token")
        status, body = await refused_handshake(ws_url, spec, token=old["accessToken"])
        assert (status, body["error"]["code"]) == (401, "invalid_token")
    assert (await api.call("GET", "/api/users/me", token=fresh["accessToken"]))[0] == 200
    socket = await WsClient.logged_in(ws_url, spec, fresh["accessToken"])
    socket.close()
    assert await http_status(api, "POST", "/api/auth/login", {"username": "alice", "password": PASSWORD}) \
        == (401, "invalid_credentials")
    assert (await api.call("POST", "/api/auth/login", {"username": "alice", "password": new_password}))[0] == 200


@pytest.mark.gen_test(timeout=20)
async def test_a_refused_password_change_changes_nothing(api, ws_url, spec, server):
    session = await api.register("Alice")
    socket = await WsClient.logged_in(ws_url, spec, session["accessToken"])
    tokens = count_rows(server, "access_tokens")
    for body, status, code in (
        ({"currentPassword": "not my password", "newPassword": "a much better passphrase"}, 401, "invalid_credentials"),
        ({"currentPassword": PASSWORD, "newPassword": "alice12345"}, 400, "weak_password"),
        ({"currentPassword": PASSWORD}, 400, "invalid_request"),
        ({"currentPassword": 42, "newPassword": "a much better passphrase"}, 400, "invalid_request"),
    ):
        assert await http_status(api, "POST", "/api/auth/password", body, token=session["accessToken"]) \
            == (status, code), body
        assert await http_status(api, "POST", "/api/auth/password", body) == (401, "not_authenticated")
    assert count_rows(server, "access_tokens") == tokens
    assert (await api.call("GET", "/api/users/me", token=session["accessToken"]))[0] == 200
    assert (await answer(socket, "ping", {}))["type"] == "pong"  # the socket is still open
    assert (await api.call("POST", "/api/auth/login", {"username": "alice", "password": PASSWORD}))[0] == 200
    socket.close()


# -- TLS ----------------------------------------------------------------------------------------


@MEMORY_ONLY
@pytest.mark.gen_test(timeout=30)
async def test_tls_serves_https_and_wss_only(config, clock, spec, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    server = await VibeMuseServer.create(
        dataclasses.replace(config, tls_certificate=str(cert), tls_key=str(key)), clock=clock, hasher=FAST_HASHER)
    port = server.listen(0, "127.0.0.1")
    trusting = ssl.create_default_context(cafile=str(cert))
    client = AsyncHTTPClient()
    try:
        response = await client.fetch(HTTPRequest(f"https://127.0.0.1:{port}/api/versions", ssl_options=trusting))
        assert response.code == 200
        request = HTTPRequest(f"https://127.0.0.1:{port}/api/auth/register", method="POST",
                              body=b'{"username": "Alice", "password": "correct horse battery"}',
                              headers={"Content-Type": "application/json"}, ssl_options=trusting)
        session = json.loads((await client.fetch(request)).body)
        connection = await websocket_connect(HTTPRequest(
            f"wss://127.0.0.1:{port}/api/ws", headers={"Authorization": f"Bearer {session['accessToken']}"},
            ssl_options=trusting), subprotocols=["vibemuse.v1"])
        welcome = json.loads(await connection.read_message())
        spec.check_server_frame(welcome)
        assert welcome["type"] == "welcome" and welcome["data"]["user"]["username"] == "Alice"
        connection.close()
        try:  # plain HTTP gets no answer
            plain = await client.fetch(f"http://127.0.0.1:{port}/api/versions", raise_error=False)
            assert plain.code == 599, plain
        except (OSError, HTTPClientError):
            pass
        with pytest.raises((OSError, HTTPClientError, WebSocketError)):  # nor does plain ws
            await websocket_connect(f"ws://127.0.0.1:{port}/api/ws")
        with pytest.raises(ssl.SSLError):  # and an untrusted certificate is not silently accepted
            await client.fetch(HTTPRequest(f"https://127.0.0.1:{port}/api/versions",
                                           ssl_options=ssl.create_default_context()))
    finally:
        await server.shutdown()


# -- sanitizing: every text that enters --------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_control_bidi_and_invisible_characters_never_reach_storage_or_anyone(world, server, base_url):
    api = world.api
    answers = []  # every HTTP body the server sent back

    async def call(method, path, body=None, token=None, expect=None):
        status, decoded = await api.call(method, path, body, token=token)
        answers.append(decoded)
        if expect is not None:
            assert status == expect, (path, decoded)
        return decoded

    wizard = await world.player("Wizard", role="builder")
    admin = await world.player("Root", role="admin")
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    carol = await world.player("Carol")
    room = await call("POST", "/api/rooms", {"name": hostile("Hall of Mirrors"),
                                            "description": hostile("Glass\nand light")}, wizard.token, 201)
    assert room["name"] == "H[31mall of Mirrors"  # NUL, ESC, U+202E and U+200B gone; the rest kept
    await call("GET", f"/api/rooms/{room['id']}", token=alice.token, expect=200)
    created = await call("POST", "/api/communication/channels",
                         {"name": "Public", "description": hostile("All welcome"), "title": hostile("Boss"),
                          "alias": "pub"}, alice.token, 201)
    channel_id = created["channel"]["id"]
    for player in (bob, carol):
        await acked(player.ws, "join_channel", {"channelId": channel_id, "title": hostile("Newbie")})
    await acked(alice.ws, "channel_update", {"channelId": channel_id, "topic": hostile("Game night")})
    await acked(alice.ws, "join_room", {"roomId": room["id"]})
    await acked(bob.ws, "join_room", {"roomId": room["id"]})
    said = []
    for frame_type, data in (("say", {"text": hostile("hello there")}), ("pose", {"text": hostile("waves")}),
                             ("ooc", {"text": hostile("brb")}),
                             ("command", {"line": '"' + hostile("quoted")}),
                             ("channel", {"channelId": channel_id, "text": hostile("chatter")}),
                             ("page", {"to": ["bob"], "text": hostile("psst")})):
        said.append(await acked(alice.ws, frame_type, data))
    await acked(wizard.ws, "join_room", {"roomId": room["id"]})
    await acked(wizard.ws, "emit", {"text": hostile("Thunder rolls")})
    await acked(alice.ws, "edit_message", {"eventId": said[0]["data"]["eventId"], "text": hostile("hello again")})
    await acked(alice.ws, "set_presence", {"status": "away", "message": hostile("Making tea")})
    await acked(bob.ws, "set_haven", {"haven": True, "message": hostile("Writing a novel")})
    error = await refused(carol.ws, "page", {"to": ["bob"], "text": "hi"})
    assert error["message"] == "Bob is not accepting pages: W[31mriting a novel"  # ESC gone, the rest kept
    await acked(alice.ws, "channel_moderate", {"channelId": channel_id, "action": "mute", "user": "carol",
                                               "durationSeconds": 60, "reason": hostile("too loud")})
    await acked(alice.ws, "channel_moderate", {"channelId": channel_id, "action": "ban", "user": "carol",
                                               "reason": hostile("rude")})
    channel_message = said[4]["data"]["eventId"]
    report = await call("POST", f"/api/messages/{channel_message}/report", {"reason": hostile("spam")},
                        bob.token, 201)
    await call("GET", "/api/reports?status=all", token=alice.token, expect=200)
    await call("POST", f"/api/reports/{report['id']}/resolve", {"resolution": hostile("Warned")}, admin.token, 200)
    reason = "%00%1B%5B31m%E2%80%AEoff%E2%80%8Btopic"  # NUL, ESC, U+202E, U+200B percent-encoded
    await call("DELETE", f"/api/messages/{said[1]['data']['eventId']}?reason={reason}", token=alice.token, expect=200)
    for frame_type, data in (("page", {"to": [hostile("nobody").replace("\x00", "")], "text": "hi"}),
                             ("command", {"line": hostile("xyzzy") + " now"}),
                             ("join_channel", {"channelId": hostile("nowhere").replace("\x00", "")})):
        await refused(alice.ws, frame_type, data)  # echoed names and references are cleaned too
    assert await http_status(api, "POST", "/api/communication/channels", {"name": "Pub\u200blic"}, alice.token) \
        == (400, "invalid_channel_name")
    assert await http_status(api, "POST", "/api/auth/register", {"username": "Mal\u202elory", "password": PASSWORD}) \
        == (400, "invalid_username")
    for path in (f"/api/communication/channels/{channel_id.replace('#', '%23')}",
                 f"/api/communication/channels/{channel_id.replace('#', '%23')}/history",
                 f"/api/communication/history/{room['id']}", "/api/communication/pages/bob", "/api/who",
                 "/api/reports?status=all", f"/api/messages/{said[0]['data']['eventId']}"):
        await call("GET", path, token=alice.token if "reports" not in path else admin.token, expect=200)
    for player in world.players:
        for socket in player.sockets:
            await socket.quiet(0.1)
    received = [frame for player in world.players for socket in player.sockets for frame in socket.received]
    assert len(received) > 40
    problems = dirty_strings(received, "frames") + dirty_strings(answers, "http")
    problems += dirty_rows(server.context.storage.engine)
    assert not problems, "\n".join(problems[:20])
    # What was said is still there, only cleaned.
    bodies = [f["data"]["event"]["content"].get("body") for f in received if f["type"] == "message"]
    assert "h[31mello there" in bodies


NUL_FRAMES = [
    ("join_channel", {"channelId": "pub\x00lic"}),
    ("channel_who", {"channelId": "pub\x00lic"}),
    ("page", {"to": ["bo\x00b"], "text": "hi"}),
    ("block", {"user": "bo\x00b", "blocked": True}),
    ("get_message", {"eventId": "$abc\x00def"}),
    ("channel_moderate", {"channelId": "public", "action": "kick", "user": "bo\x00b"}),
    ("join_room", {"roomId": "!aaaaaaaaaaaaaaa\x00:test.localhost"}),
]
NUL_PATHS = ["/api/messages/%24abc%00def", "/api/communication/pages/bo%00b",
             "/api/communication/channels/pub%00lic", "/api/communication/channels/pub%00lic/history",
             "/api/rooms/%21aaaaaaaaaaaaaaa%00%3Atest.localhost", "/api/communication/history/bo%00b"]


@pytest.mark.gen_test(timeout=20)
async def test_a_nul_in_a_reference_is_refused_not_a_crash(world):
    alice = await world.player("Alice")
    await world.player("Bob")
    status, _ = await world.api.call("POST", "/api/communication/channels", {"name": "Public"}, token=alice.token)
    assert status == 201
    outcomes = {}
    for frame_type, data in NUL_FRAMES:
        try:
            reply = await answer(alice.ws, frame_type, data)
            outcomes[frame_type] = reply["data"].get("code") if reply else None
        except AssertionError:
            outcomes[frame_type] = "dropped"
            alice.sockets[0] = await WsClient.logged_in(world.ws_url, world.spec, alice.token)
    for path in NUL_PATHS:
        status, body = await world.api.call("GET", path, token=alice.token)
        outcomes[path] = status
    assert "dropped" not in outcomes.values() and 500 not in outcomes.values(), outcomes


@pytest.mark.gen_test(timeout=20)
async def test_a_lone_surrogate_in_a_channel_reference_is_refused_not_a_crash(world):
    alice = await world.player("Alice")
    status, _ = await world.api.call("POST", "/api/communication/channels", {"name": "Public"}, token=alice.token)
    assert status == 201
    for frame_type, data in (("join_channel", {"channelId": "pub\ud800"}), ("channel_who", {"channelId": "pub\ud800"}),
                             ("channel", {"channelId": "pub\ud800", "text": "hi"})):
        await alice.ws.send(json.dumps({"type": frame_type, "messageId": "s1", "data": data}))  # ASCII: \ud800
        error = await alice.ws.receive_type("error")
        assert error["data"]["code"] in ("bad_json", "unknown_channel", "invalid_frame"), error
    assert (await answer(alice.ws, "ping", {}))["type"] == "pong"


# -- sizes ----------------------------------------------------------------------------------------


@MEMORY_ONLY
@pytest.mark.gen_test(timeout=20)
async def test_nesting_beyond_the_parser_is_bad_json_and_the_socket_survives(api, ws_url, spec, server):
    session = await api.register("Alice")
    socket = await WsClient.logged_in(ws_url, spec, session["accessToken"])
    before = count_rows(server, "events")
    for raw in ("[" * 5000 + "]" * 5000, '{"a":' * 2000 + "1" + "}" * 2000,
                '{"type":"say","messageId":"deep","data":{"text":' + "[" * 4000 + "]" * 4000 + "}}"):
        assert len(raw) < server.context.config.max_frame_bytes
        await socket.send(raw)
        error = await socket.receive_type("error")
        assert error["data"]["code"] == "bad_json"
        assert (await answer(socket, "ping", {}))["type"] == "pong"
    assert count_rows(server, "events") == before
    socket.close()


@MEMORY_ONLY
@pytest.mark.gen_test(timeout=30)
async def test_nesting_just_under_the_parser_limit_is_refused_cleanly(api, ws_url, spec):
    session = await api.register("Alice")
    socket = await WsClient.logged_in(ws_url, spec, session["accessToken"])
    for depth in range(900, 1000, 2):
        nested = "[" * depth + "]" * depth
        await socket.send('{"type":"say","messageId":"d%d","data":{"text":%s}}' % (depth, nested))
        error = await socket.receive_type("error")
        assert error["data"]["code"] in ("bad_json", "invalid_frame"), depth
    socket.close()


@MEMORY_ONLY
@pytest.mark.gen_test(timeout=20)
async def test_deep_http_bodies_are_refused_not_crashed(api, server):
    await api.register("Alice")
    for depth in range(900, 1000, 4):
        raw = ('{"username":' + "[" * depth + "]" * depth + ',"password":"x"}').encode()
        status, body = await api.call("POST", "/api/auth/login", raw=raw)
        assert status == 400 and body["error"]["code"] in ("bad_json", "invalid_request"), depth


@pytest.mark.gen_test(timeout=20)
async def test_http_bodies_over_the_limit_store_nothing(world, server):
    alice = await world.player("Alice")
    limit = server.context.config.max_http_body_bytes
    before = count_rows(server, "channels")
    padding = "x" * limit
    status, body = await world.api.call("POST", "/api/communication/channels",
                                        {"name": "Public", "description": padding}, token=alice.token)
    assert (status, body["error"]["code"]) == (413, "payload_too_large")
    raw = b'{"name": "Public"}' + b" " * (limit - 18)  # exactly at the limit: accepted
    assert len(raw) == limit
    status, _ = await world.api.call("POST", "/api/communication/channels", raw=raw, token=alice.token)
    assert status == 201
    assert count_rows(server, "channels") == before + 1


@pytest.mark.gen_test(timeout=20)
async def test_page_recipients_are_capped(world):
    alice = await world.player("Alice")
    for name in ("Bob", "Carol"):
        await world.player(name)
    before = world.event_count()
    maximum = world.server.context.config.max_page_recipients
    error = await refused(alice.ws, "page", {"to": [f"user{n}" for n in range(maximum + 1)], "text": "hi"})
    assert error["code"] == "too_many_recipients" and error["details"] == {"maxRecipients": maximum}
    error = await refused(alice.ws, "page", {"to": ["bob"] * 101, "text": "hi"})  # past the schema's maxItems
    assert error["code"] == "invalid_frame"
    assert world.event_count() == before
    names = (["bob", "BOB", "carol", "@bob:test.localhost"] * maximum)[:maximum]
    ack = await acked(alice.ws, "page", {"to": names, "text": "hi"})
    assert ack["data"]["eventId"]  # as many entries as allowed, merged into two recipients
    error = await refused(alice.ws, "page", {"to": names + ["carol"], "text": "hi"})
    assert error["code"] == "too_many_recipients"  # entries count as written, duplicates too (15.1)
