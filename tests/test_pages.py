"""Pages over real sockets: formats, several recipients, offline delivery with receipts,
haven, blocks, history, and every refusal."""

from __future__ import annotations

import asyncio

import pytest


async def page(socket, data, frame_type="page"):
    message_id = await socket.send_frame(frame_type, data)
    ack = await socket.receive_type("ack")
    assert ack["data"]["inReplyTo"] == message_id
    return ack


async def heard(socket):
    return (await socket.receive_type("message"))["data"]["event"]


@pytest.mark.parametrize(
    "line, to_bob, to_alice",
    [
        ("page bob=hi", "Alice pages: hi", "You paged Bob with 'hi'."),
        ("p Bob=:waves", "From afar, Alice waves", "Long distance to Bob: Alice waves"),
        ("page bob=;'s hat tips.", "From afar, Alice's hat tips.", "Long distance to Bob: Alice's hat tips."),
    ],
)
@pytest.mark.gen_test
async def test_page_formats(world, line, to_bob, to_alice):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    await page(alice.ws, {"line": line}, "command")
    event = await heard(bob.ws)
    assert (event["content"]["rendered"], event["content"]["rendered_self"]) == (to_bob, to_alice)
    assert event["recipients"] == [bob.user_id] and event["type"] == "vm.page"
    assert await heard(alice.ws) == event  # the sender's tabs see it too


@pytest.mark.gen_test
async def test_several_recipients_and_paging_the_last_ones_again(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    carol = await world.player("Carol")
    await page(alice.ws, {"line": "page bob carol=Meeting at noon."}, "command")
    for player in (bob, carol):
        assert (await heard(player.ws))["content"]["rendered"] == "Alice pages Bob and Carol: Meeting at noon."
    await page(alice.ws, {"line": "page =Bring snacks."}, "command")
    assert (await heard(carol.ws))["content"]["body"] == "Bring snacks."
    assert (await heard(bob.ws))["content"]["body"] == "Bring snacks."
    await page(alice.ws, {"line": "page And drinks."}, "command")
    assert (await heard(bob.ws))["content"]["body"] == "And drinks."
    message_id = await alice.ws.send_frame("command", {"line": "page"})
    notice = await alice.ws.receive_type("notice")
    assert notice["data"] == {"inReplyTo": message_id, "text": "You last paged Bob and Carol."}


@pytest.mark.gen_test(timeout=20)
async def test_offline_pages_wait_and_come_back_with_receipts(world, server):
    alice = await world.player("Alice")
    bob = await world.offline_player("Bob")
    bob_id = bob.user_id
    ack1 = await page(alice.ws, {"to": ["bob"], "text": "first"})
    ack2 = await page(alice.ws, {"to": ["bob"], "text": "second", "style": "pose"})
    assert ack1["data"]["offline"] == [bob_id] and ack2["data"]["offline"] == [bob_id]
    socket = await world.open_socket(bob)
    first, second = await heard(socket), await heard(socket)
    assert [first["content"]["body"], second["content"]["body"]] == ["first", "second"]
    assert first["unsigned"]["stream_position"] < second["unsigned"]["stream_position"]
    receipts = [await alice.ws.receive_type("page_receipt") for _ in range(2)]
    assert [r["data"]["event"]["content"]["relates_to"] for r in receipts] == [
        ack1["data"]["eventId"], ack2["data"]["eventId"]]
    assert all(r["data"]["event"]["sender"] == bob_id for r in receipts)
    # Exactly once: another socket of Bob gets nothing of it again.
    second_socket = await world.open_socket(bob)
    assert not [f for f in await second_socket.quiet(0.3) if f["type"] == "message"]
    assert await server.context.storage.claim_pending(bob_id, 10) == []


@pytest.mark.gen_test(timeout=20)
async def test_a_receipt_waits_for_an_offline_sender(world, server):
    alice = await world.player("Alice")
    bob = await world.offline_player("Bob")
    await page(alice.ws, {"to": ["Bob"], "text": "ping me"})
    await world.wait_offline(alice)
    await world.open_socket(bob)
    assert (await heard(bob.ws))["content"]["body"] == "ping me"
    await asyncio.sleep(0.2)
    socket = await world.open_socket(alice)
    receipt = await socket.receive_type("page_receipt")
    assert receipt["data"]["event"]["content"]["recipient"] == bob.user_id


@pytest.mark.gen_test
async def test_haven_shows_its_message(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    await page(bob.ws, {"haven": True, "message": "Writing a novel."}, "set_haven")
    before = world.event_count()
    await alice.ws.send_frame("page", {"to": ["bob"], "text": "hi"})
    error = await alice.ws.receive_type("error")
    assert error["data"]["code"] == "not_accepting_pages"
    assert error["data"]["message"] == "Bob is not accepting pages: Writing a novel."
    assert world.event_count() == before
    await page(bob.ws, {"haven": False}, "set_haven")
    await page(alice.ws, {"to": ["bob"], "text": "hi"})


@pytest.mark.gen_test
async def test_blocks_work_both_ways_and_say_nothing_more(world, server):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    await page(alice.ws, {"user": "Bob", "blocked": True}, "block")
    before = world.event_count()
    await bob.ws.send_frame("page", {"to": ["alice"], "text": "why?"})
    error = (await bob.ws.receive_type("error"))["data"]
    assert (error["code"], error["message"]) == ("not_accepting_pages", "Alice is not accepting your pages.")
    await alice.ws.send_frame("page", {"to": ["bob"], "text": "hah"})
    assert (await alice.ws.receive_type("error"))["data"]["code"] == "you_blocked"
    assert world.event_count() == before
    assert not [f for f in await bob.ws.quiet(0.2) if f["type"] == "message"]
    # Blocks survive a restart of the in-memory list: they are stored.
    assert (alice.user_id, bob.user_id) in await server.context.storage.all_blocks()
    await page(alice.ws, {"user": "Bob", "blocked": False}, "block")
    await page(bob.ws, {"to": ["alice"], "text": "friends again"})


@pytest.mark.parametrize(
    "data, code",
    [
        ({"to": ["nobody"], "text": "hi"}, "unknown_user"),
        ({"to": ["@nobody:test.localhost"], "text": "hi"}, "unknown_user"),  # remote ids: tests/federation
        ({"to": ["bob"], "text": "  "}, "empty_text"),
        ({"to": ["bob"], "text": "x" * 4001}, "text_too_long"),
        ({"to": [f"user{n}" for n in range(11)], "text": "hi"}, "too_many_recipients"),
        ({"text": "to whom?"}, "invalid_request"),
        ({"to": [], "text": "hi"}, "invalid_frame"),
        ({"to": ["bob"], "text": "hi", "style": "shout"}, "invalid_frame"),
    ],
)
@pytest.mark.gen_test
async def test_bad_pages_change_nothing(world, data, code):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    before = world.event_count()
    await alice.ws.send_frame("page", data)
    assert (await alice.ws.receive_type("error"))["data"]["code"] == code
    assert world.event_count() == before
    assert not [f for f in await bob.ws.quiet(0.2) if f["type"] == "message"]


def spellings_of_bob(count):
    """``count`` entries that all name Bob: bob, Bob, BOB, @bob:<server>, bob, ..."""
    names = ["bob", "Bob", "BOB", "@bob:test.localhost"]
    return [names[n % len(names)] for n in range(count)]


@pytest.mark.parametrize("as_line", [False, True], ids=["frame", "command"])
@pytest.mark.gen_test
async def test_recipients_are_counted_as_written_at_the_edge(world, server, as_line):
    """``maxPageRecipients`` entries go through (one recipient, one page); one more entry is
    refused even though every entry names the same user (15.1)."""
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    most = server.context.config.max_page_recipients

    def send(count):
        names = spellings_of_bob(count)
        if as_line:
            return alice.ws.send_frame("command", {"line": f"page {' '.join(names)}=hi"})
        return alice.ws.send_frame("page", {"to": names, "text": "hi"})

    await send(most)
    await alice.ws.receive_type("ack")
    event = await heard(bob.ws)
    assert event["recipients"] == [bob.user_id]
    before = world.event_count()
    await send(most + 1)
    error = (await alice.ws.receive_type("error"))["data"]
    assert (error["code"], error["details"]) == ("too_many_recipients", {"maxRecipients": most})
    assert world.event_count() == before
    assert not [f for f in await bob.ws.quiet(0.2) if f["type"] == "message"]


@pytest.mark.gen_test
async def test_a_retried_page_is_stored_and_sent_once(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    await alice.ws.send_frame("page", {"to": ["bob"], "text": "once"}, messageId="pg-1")
    first = await alice.ws.receive_type("ack")
    await alice.ws.send_frame("page", {"to": ["bob"], "text": "once"}, messageId="pg-1")
    again = await alice.ws.receive_type("ack")
    assert again["data"]["duplicate"] is True and again["data"]["eventId"] == first["data"]["eventId"]
    await heard(bob.ws)
    assert not [f for f in await bob.ws.quiet(0.3) if f["type"] == "message"]


@pytest.mark.gen_test
async def test_page_history_is_for_the_two_sides_only(world, api):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    carol = await world.player("Carol")
    for n in range(5):
        await page(alice.ws, {"to": ["bob"], "text": f"a{n}"})
        await page(bob.ws, {"to": ["alice"], "text": f"b{n}"})
    await page(alice.ws, {"to": ["carol"], "text": "not for bob"})
    status, body = await api.call("GET", "/api/communication/pages/bob?limit=4", token=alice.token,
                                  schema="event-page")
    assert status == 200 and [e["content"]["body"] for e in body["events"]] == ["a3", "b3", "a4", "b4"]
    status, older = await api.call("GET", f"/api/communication/pages/bob?limit=4&before={body['next']}",
                                   token=alice.token, schema="event-page")
    assert [e["content"]["body"] for e in older["events"]] == ["a1", "b1", "a2", "b2"]
    status, theirs = await api.call("GET", "/api/communication/pages/alice", token=bob.token)
    assert len(theirs["events"]) == 10
    status, none = await api.call("GET", "/api/communication/pages/bob", token=carol.token)
    assert none["events"] == []  # Carol sees no page between Alice and Bob
    status, body = await api.call("GET", "/api/communication/pages/nobody", token=alice.token)
    assert (status, body["error"]["code"]) == (404, "unknown_user")
    status, body = await api.call("GET", "/api/communication/pages/bob")
    assert status == 401
