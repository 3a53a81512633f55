"""The security model (protocol.md, "Security model") attacked over real sockets, part 1:
rate limits per user and per action, anti-spam (warning, mute, doubling,
disconnect, staff) and a 1,000-message flood. Part 2 is test_security.py.

Each test turns on, through ``overrides``, exactly the limits it attacks (the
rate limiter runs on the real monotonic clock, so refill rates are tiny where a
test counts; the spam rules run on the test's FakeClock).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import count_rows
from tests.support.attack import acked, answer, fetch, refused
from tests.support.client import PASSWORD, WsClient
from tests.support.security import (  # noqa: F401 (overrides and server_config are fixtures)
    MEMORY_ONLY,
    SLOW,
    bucket,
    http_status,
    limits,
    overrides,
    server_config,
)

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


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [SPAM], ids=["spam"])
@pytest.mark.gen_test(timeout=20)
async def test_refused_attempts_count_and_a_strike_starts_the_count_again(world):
    """Section 18.2: an attempt the server then refuses counts (and its strike is still warned);
    the messages that made a strike do not count towards the next one."""
    alice = await world.player("Alice")
    elsewhere = "!AAAAAAAAAAAAAAAA:test.localhost"
    for n in range(6):  # one more than spam_flood_count, every one refused
        assert (await refused(alice.ws, "say", {"text": f"line {n}", "roomId": elsewhere}))["code"] == "not_in_room"
    assert "slow down" in (await alice.ws.receive_type("notice"))["data"]["text"].lower()
    for n in range(6, 11):  # five more: no strike, the count started again at the warning
        await acked(alice.ws, "say", {"text": f"line {n}"})
    assert (await refused(alice.ws, "say", {"text": "line 11"}))["code"] == "muted"


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
