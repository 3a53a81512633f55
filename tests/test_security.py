"""The security model (protocol.md, "Security model") attacked over real sockets.

Rate limits per user and per action, anti-spam (warning, mute, doubling,
disconnect, staff), a 1,000-message flood, connection limits per address and
handshake rate, Origin checks, password change revoking every token, TLS,
sanitizing of every text that enters, and size limits.

conftest's ``config`` sets every limit out of the way; each test here turns
on, through ``overrides``, exactly the limits it attacks (the rate limiter
runs on the real monotonic clock, so refill rates are tiny where a test
counts; the spam rules run on the test's FakeClock).
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
    acked, answer, dirty_rows, dirty_strings, fetch, hostile, refused, self_signed_certificate)
from tests.support.client import PASSWORD, WsClient, refused_handshake
from vibemuse.app import VibeMuseServer

SLOW = 0.001  # tokens per second: no refill during a test
# What lives only in memory (the spam state, origin and handshake checks, TLS, the JSON parser) is the same
# on both engines: those tests run on SQLite alone to keep the suite quick.
MEMORY_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def overrides():
    """Settings of the server under test; tests parametrize this (``rate_limits`` is merged)."""
    return {}


@pytest.fixture
def server_config(config, overrides):
    settings = dict(overrides)
    rates = {**config.rate_limits, **settings.pop("rate_limits", {})}
    return dataclasses.replace(config, rate_limits=rates, **settings)


def limits(**rates):
    return {"rate_limits": rates}


def bucket(burst, per_second=SLOW):
    return (float(burst), float(per_second))


async def http_status(api, method, path, body=None, token=None):
    status, decoded = await api.call(method, path, body, token=token)
    return status, (decoded or {}).get("error", {}).get("code")


# -- rate limits per user and action ----------------------------------------------------------


async def _setup_action(world, action):
    """Alice (two sockets) and Bob, ready to do ``action``; returns a function making the n-th frame."""
    alice = await world.player("Alice", sockets=2)
    bob = await world.player("Bob")
    if action == "channel":
        for player in (alice, bob):
            status, _ = await world.api.call("POST", "/api/communication/channels", {"name": "Public"},
                                             token=player.token)
            assert status in (200, 201)
        return alice, bob, lambda n: ("channel", {"channelId": "public", "text": f"chatter {n}"})
    if action == "page":
        return alice, bob, lambda n: ("page", {"to": ["bob"], "text": f"page {n}"})
    if action == "typing":
        return alice, bob, lambda n: ("typing", {"typing": n % 2 == 0})
    if action == "moves":
        wizard = await world.player("Wizard", role="builder")
        library = await world.room("Library", wizard)
        return alice, bob, lambda n: ("join_room", {"roomId": library}) if n % 2 == 0 else ("leave_room", {})
    return alice, bob, lambda n: ("say", {"text": f"hello {n}"})


@pytest.mark.parametrize("action", ["speech", "page", "channel", "typing", "moves"])
@pytest.mark.parametrize("overrides", [limits(speech=bucket(4), page=bucket(4), channel=bucket(4),
                                              typing=bucket(4), moves=bucket(4))], ids=["burst4"])
@pytest.mark.gen_test(timeout=20)
async def test_each_action_has_its_own_bucket_shared_by_all_sockets_of_the_user(world, action):
    alice, bob, make = await _setup_action(world, action)
    first, second = alice.sockets
    for n in range(4):  # the burst, spread over both sockets
        frame_type, data = make(n)
        reply = await answer(first if n % 2 else second, frame_type, data)
        assert reply is None or reply["type"] != "error", reply
    before = world.event_count()
    for socket in (first, second):  # the bucket is the user's: neither socket has any left
        frame_type, data = make(4)
        error = await answer(socket, frame_type, data)
        assert error is not None and error["type"] == "error", error
        assert error["data"]["code"] == "rate_limited"
        assert error["data"]["details"]["action"] == action
        assert error["data"]["details"]["retryAfterMs"] > 0
    assert world.event_count() == before  # a refused frame stores nothing
    frame_type, data = make(0)
    if action == "page":
        data = {"to": ["alice"], "text": "unaffected"}
    reply = await answer(bob.ws, frame_type, data)  # another user has a bucket of their own
    assert reply is None or reply["type"] != "error", reply
    # Other kinds of request have their own buckets.
    assert (await answer(first, "who", {}))["type"] == "who"


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [limits(speech=bucket(2, 20.0))], ids=["refill"])
@pytest.mark.gen_test
async def test_a_limit_is_a_rate_retry_after_says_when(world):
    alice = await world.player("Alice")
    await acked(alice.ws, "say", {"text": "one"})
    await acked(alice.ws, "say", {"text": "two"})
    error = await refused(alice.ws, "say", {"text": "three"})
    assert error["code"] == "rate_limited" and 0 < error["details"]["retryAfterMs"] <= 50
    await asyncio.sleep(error["details"]["retryAfterMs"] / 1000 + 0.02)
    await acked(alice.ws, "say", {"text": "three, later"})


@pytest.mark.parametrize("overrides", [limits(http_write=bucket(3))], ids=["http3"])
@pytest.mark.gen_test
async def test_http_writes_are_limited_with_429_and_retry_after(world, server, base_url):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    for n in range(3):
        status, _ = await world.api.call("POST", "/api/communication/channels", {"name": f"chan{n}"},
                                         token=alice.token)
        assert status == 201
    channels = count_rows(server, "channels")
    status, headers, body = await fetch(base_url, "POST", "/api/communication/channels", {"name": "chan9"},
                                        token=alice.token)
    world.spec.check_body("error", body)
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert body["error"]["details"]["action"] == "http_write" and body["error"]["details"]["retryAfterMs"] > 0
    assert int(headers["Retry-After"]) >= 1
    assert int(headers["Retry-After"]) == -(-body["error"]["details"]["retryAfterMs"] // 1000)
    assert count_rows(server, "channels") == channels
    # Reads are not writes; another user is unaffected.
    assert (await world.api.call("GET", "/api/users/me", token=alice.token))[0] == 200
    assert (await world.api.call("POST", "/api/communication/channels", {"name": "chan9"}, token=bob.token))[0] == 201


@pytest.mark.parametrize("overrides", [limits(login_account=bucket(3))], ids=["account3"])
@pytest.mark.gen_test
async def test_login_attempts_per_account(api, server):
    await api.register("Alice")
    await api.register("Bob")
    for _ in range(3):
        assert await http_status(api, "POST", "/api/auth/login", {"username": "alice", "password": "guess!guess"}) \
            == (401, "invalid_credentials")
    tokens = count_rows(server, "access_tokens")
    for name in ("Alice", "ALICE"):  # even the right password, in any case of the name, waits now
        status, body = await api.call("POST", "/api/auth/login", {"username": name, "password": PASSWORD})
        assert status == 429 and body["error"]["code"] == "rate_limited"
        assert body["error"]["details"]["action"] == "login_account"
    assert count_rows(server, "access_tokens") == tokens  # no token was issued
    status, _ = await api.call("POST", "/api/auth/login", {"username": "bob", "password": PASSWORD})
    assert status == 200  # another account, same address


@pytest.mark.parametrize("overrides", [limits(login_address=bucket(4))], ids=["address4"])
@pytest.mark.gen_test
async def test_login_attempts_per_address(api):
    await api.register("Alice")
    for n in range(4):
        assert (await http_status(api, "POST", "/api/auth/login",
                                  {"username": f"nobody{n}", "password": "guess!guess"}))[0] == 401
    status, body = await api.call("POST", "/api/auth/login", {"username": "alice", "password": PASSWORD})
    assert status == 429 and body["error"]["details"]["action"] == "login_address"


@pytest.mark.parametrize("overrides", [limits(register_address=bucket(2))], ids=["register2"])
@pytest.mark.gen_test
async def test_registrations_per_address(api, server):
    await api.register("Alice")
    await api.register("Bob")
    users = count_rows(server, "users")
    status, body = await api.call("POST", "/api/auth/register", {"username": "Carol", "password": PASSWORD})
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert body["error"]["details"]["action"] == "register_address"
    assert count_rows(server, "users") == users


# -- anti-spam ------------------------------------------------------------------------------

SPAM = {"spam_flood_count": 5, "spam_repeat_count": 3, "spam_mute_seconds": 60, "spam_disconnect_after": 1000}


async def _flood_until_strike(socket, start=0, count=6):
    """Distinct messages; the last one is the strike (more than spam_flood_count)."""
    for n in range(start, start + count - 1):
        await acked(socket, "say", {"text": f"line {n}"})
    return await answer(socket, "say", {"text": f"line {start + count - 1}"}), start + count


@pytest.mark.parametrize("overrides", [SPAM], ids=["spam"])
@pytest.mark.gen_test(timeout=20)
async def test_a_flood_is_warned_then_muted_on_the_whole_server(world, clock, server):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    strike, n = await _flood_until_strike(alice.ws)
    assert strike["type"] == "ack"  # the first strike still goes through...
    warning = await alice.ws.receive_type("notice")  # ...with a warning
    assert warning["data"]["inReplyTo"] and "slow down" in warning["data"]["text"].lower()
    for m in range(6):
        assert (await bob.ws.receive_type("message"))["data"]["event"]["content"]["body"] == f"line {m}"
    before = world.event_count()
    mute, n = await _flood_until_strike(alice.ws, n)
    assert mute["type"] == "error" and mute["data"]["code"] == "muted"
    details = mute["data"]["details"]
    assert details["scope"] == "server" and details["remainingMs"] == 60_000
    assert details["untilMs"] == clock() + 60_000
    assert world.event_count() == before + 5  # the strike itself was not stored
    # Muted everywhere: rooms, pages, channels, announcements.
    status, _ = await world.api.call("POST", "/api/communication/channels", {"name": "Public"}, token=alice.token)
    assert status == 201
    stored = world.event_count()
    for frame_type, data in (("pose", {"text": "waves"}), ("page", {"to": ["bob"], "text": "psst"}),
                             ("channel", {"channelId": "public", "text": "hi"}),
                             ("command", {"line": "ooc still here?"})):
        error = await refused(alice.ws, frame_type, data)
        assert (error["code"], error["details"]["scope"]) == ("muted", "server"), frame_type
    assert world.event_count() == stored
    await acked(bob.ws, "say", {"text": "I can talk"})  # only the offender is muted
    clock.advance(61)
    await acked(alice.ws, "say", {"text": "sorry"})  # the mute ends by itself


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [SPAM], ids=["spam"])
@pytest.mark.gen_test(timeout=20)
async def test_repeating_the_same_text_is_a_strike(world):
    alice = await world.player("Alice")
    for text in ("Buy gold!", "buy   GOLD", "%chBuy gold%cn"):  # case, spacing and markup do not count
        reply = await answer(alice.ws, "say", {"text": text})
        assert reply["type"] == "ack"
    assert "same message" in (await alice.ws.receive_type("notice"))["data"]["text"]
    await acked(alice.ws, "say", {"text": "something else"})
    for text in ("buy gold", "BUY GOLD"):
        await acked(alice.ws, "say", {"text": text})
    error = await refused(alice.ws, "page", {"to": ["alice"], "text": "Buy gold."})  # pages count too
    assert error["code"] == "muted" and error["details"]["scope"] == "server"


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [SPAM], ids=["spam"])
@pytest.mark.gen_test(timeout=20)
async def test_a_repeat_offenders_mute_doubles(world, clock):
    alice = await world.player("Alice")
    strike, n = await _flood_until_strike(alice.ws)  # warning
    assert strike["type"] == "ack"
    for expected_ms in (60_000, 120_000, 240_000):
        mute, n = await _flood_until_strike(alice.ws, n)
        assert mute["data"]["code"] == "muted" and mute["data"]["details"]["remainingMs"] == expected_ms
        clock.advance(expected_ms / 1000 + 1)


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [{**SPAM, "spam_disconnect_after": 3}], ids=["disconnect3"])
@pytest.mark.gen_test(timeout=20)
async def test_speaking_on_while_muted_closes_the_socket_with_4009(world, server):
    alice = await world.player("Alice", sockets=2)
    await _flood_until_strike(alice.ws)
    mute, _ = await _flood_until_strike(alice.ws, 6)
    assert mute["data"]["code"] == "muted"
    before = world.event_count()
    for _ in range(2):
        assert (await refused(alice.ws, "say", {"text": "let me speak"}))["code"] == "muted"
    await alice.ws.send_frame("say", {"text": "let me speak"})
    code, _ = await alice.ws.closed()
    assert code == 4009
    assert world.event_count() == before
    # Only that socket; the other one is still muted, not gone.
    assert (await refused(alice.sockets[1], "say", {"text": "hello?"}))["code"] == "muted"


@pytest.mark.parametrize("overrides", [SPAM], ids=["spam"])
@pytest.mark.gen_test(timeout=20)
async def test_staff_list_offenders_and_lift_mutes_players_may_not(world, server):
    alice = await world.player("Alice")
    mallory = await world.player("Mallory")
    builder = await world.player("Wizard", role="builder")
    admin = await world.player("Root", role="admin")
    await _flood_until_strike(alice.ws)
    mute, _ = await _flood_until_strike(alice.ws, 6)
    assert mute["data"]["code"] == "muted"
    status, listing = await world.api.call("GET", "/api/admin/spam", token=builder.token, schema="spam-offenders")
    assert status == 200
    assert listing["offenders"] == [{"userId": alice.user_id, "strikes": 2, "mutes": 1, "lastReason": "flood",
                                     "mutedForMs": 60_000}]
    for method, path in (("GET", "/api/admin/spam"), ("POST", f"/api/admin/spam/{alice.user_id}/unmute")):
        assert await http_status(world.api, method, path, token=mallory.token) == (403, "forbidden")
        assert await http_status(world.api, method, path, token=alice.token) == (403, "forbidden")
        assert await http_status(world.api, method, path) == (401, "not_authenticated")
    assert (await refused(alice.ws, "say", {"text": "still muted"}))["code"] == "muted"
    status, lifted = await world.api.call("POST", f"/api/admin/spam/{alice.user_id}/unmute", token=admin.token,
                                          schema="spam-unmute")
    assert (status, lifted) == (200, {"userId": alice.user_id, "lifted": True})
    await acked(alice.ws, "say", {"text": "thank you"})
    status, again = await world.api.call("POST", f"/api/admin/spam/{alice.user_id}/unmute", token=builder.token)
    assert (status, again["lifted"]) == (200, False)


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [SPAM], ids=["spam"])
@pytest.mark.gen_test(timeout=20)
async def test_a_spam_mute_also_stops_edits(world):
    alice = await world.player("Alice")
    first = await acked(alice.ws, "say", {"text": "innocent"})
    warned, n = await _flood_until_strike(alice.ws, 1, count=5)  # with "innocent": one more than the flood count
    assert warned["type"] == "ack"
    mute, _ = await _flood_until_strike(alice.ws, n)
    assert mute["data"]["code"] == "muted"
    error = await refused(alice.ws, "edit_message", {"eventId": first["data"]["eventId"], "text": "BUY GOLD NOW"})
    assert error["code"] == "muted"


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [SPAM], ids=["spam"])
@pytest.mark.gen_test(timeout=20)
async def test_retries_of_one_message_are_not_a_repeat(world):
    alice = await world.player("Alice")
    for attempt in range(4):
        ack = await acked(alice.ws, "say", {"text": "hello"}, messageId="retry-1")
        assert ack["data"]["duplicate"] is (attempt > 0)
    assert not [f for f in await alice.ws.quiet(0.2) if f["type"] == "notice"]
    await acked(alice.ws, "say", {"text": "hello"})  # one real repeat: no strike yet


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [SPAM], ids=["spam"])
@pytest.mark.gen_test(timeout=20)
async def test_markup_does_not_hide_a_repeat(world):
    alice = await world.player("Alice")
    for text in ("Buy gold", "Buy %chgold%cn", "Buy%cr gold"):
        await acked(alice.ws, "say", {"text": text})
    notices = [f for f in await alice.ws.quiet(0.2) if f["type"] == "notice"]
    assert notices and "same message" in notices[0]["data"]["text"]


# -- a flood of 1,000 messages ----------------------------------------------------------------

FLOOD = {**limits(speech=bucket(30)), "spam_flood_count": 10, "spam_repeat_count": 1_000_000}


@pytest.mark.parametrize("overrides", [FLOOD], ids=["flood"])
@pytest.mark.gen_test(timeout=60)
async def test_a_flood_of_1000_messages_is_muted_then_cut_off_and_others_still_talk(world, server, api, ws_url):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    carol = await world.player("Carol")
    before = world.event_count()
    ids = [f"flood-{n}" for n in range(1000)]
    writes = []
    for n, message_id in enumerate(ids):  # full speed, no waiting for answers
        writes.append(alice.ws.connection.write_message(
            f'{{"type":"say","messageId":"{message_id}","data":{{"text":"flood {n}"}}}}'))
        if n == 500:
            carol_said = await acked(carol.ws, "say", {"text": "Carol gets through"})
    await asyncio.gather(*writes)
    answers = {}
    notices = 0
    while True:  # until the server cuts the flooder off
        frame = await alice.ws.receive(timeout=20)
        if frame is None:
            break
        reply_to = frame["data"].get("inReplyTo") if isinstance(frame["data"], dict) else None
        if frame["type"] == "notice":
            notices += 1
        elif frame["type"] in ("ack", "error") and reply_to in ids:
            answers[reply_to] = frame
    assert alice.ws.connection.close_code == 4009
    answered = [i for i in ids if i in answers]
    kinds = [answers[i]["type"] if answers[i]["type"] == "ack" else answers[i]["data"]["code"] for i in answered]
    # Flood rule: the 11th message is a warning (stored), the 22nd a mute; every attempt while
    # muted counts, and the 20th of them (spam_disconnect_after) closes the socket with 4009.
    assert kinds == ["ack"] * 21 + ["muted"] * 20
    assert answered == ids[:41]
    assert notices == 1
    assert world.event_count() == before + 21 + 1  # Alice's 21, and Carol's line
    heard = []
    while "Carol gets through" not in heard or len([h for h in heard if h.startswith("flood")]) < 21:
        frame = await bob.ws.receive_type("message", timeout=10)
        heard.append(frame["data"]["event"]["content"]["body"])
    assert [h for h in heard if h.startswith("flood")] == [f"flood {n}" for n in range(21)]
    assert carol_said["data"]["eventId"]
    # The server is up, and its guard's memory stays small.
    assert len(server.context.guard.limiter) <= 10
    assert len(server.context.guard.spam) <= 3
    fresh = await WsClient.logged_in(ws_url, world.spec, bob.token)
    assert fresh.welcome["type"] == "welcome"
    fresh.close()
    assert (await api.call("GET", "/api/versions"))[0] == 200


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
    ack = await acked(alice.ws, "page", {"to": ["bob", "BOB", "carol", "@bob:test.localhost"] * 5, "text": "hi"})
    assert ack["data"]["eventId"]  # duplicates count once
