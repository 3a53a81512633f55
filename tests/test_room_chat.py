"""Room communication over real sockets: say, pose, OOC, emit, commands, acks."""

from __future__ import annotations

import pytest

from vibemuse.protocol.events import verify_event


async def say(socket, text, frame_type="say", message_id=None, **data):
    message_id = await socket.send_frame(frame_type, {"text": text, **data}, messageId=message_id)
    ack = await socket.receive_type("ack")
    assert ack["data"]["inReplyTo"] == message_id
    return ack


@pytest.mark.gen_test
async def test_say_reaches_the_room_signed_and_acked(world, server):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    ack = await say(alice.ws, "Hello, %xrworld%xn!")
    heard = await bob.ws.receive_type("message")
    event = heard["data"]["event"]
    assert event["content"]["rendered"] == 'Alice says, "Hello, world!"'
    assert event["content"]["rendered_self"] == 'You say, "Hello, world!"'
    assert event["content"]["body"] == "Hello, world!"
    assert {"text": "world", "style": {"fg": "red"}} in event["content"]["spans"]
    assert "".join(span["text"] for span in event["content"]["rendered_spans"]) == event["content"]["rendered"]
    assert event["sender"] == alice.user_id and event["room_id"] == alice.ws.welcome["data"]["location"]
    assert heard["fromUser"] == alice.user_id and heard["roomId"] == event["room_id"]
    assert ack["data"]["eventId"] == event["event_id"]
    assert ack["data"]["streamPosition"] == event["unsigned"]["stream_position"]
    assert ack["data"]["duplicate"] is False
    own = alice.ws.of_type("message")[-1]["data"]["event"]
    assert own == event
    keys = {server.context.server_name: server.context.keyring.verify_keys()}
    assert not verify_event(event, keys).redacted_only


@pytest.mark.parametrize(
    "frame_type, data, rendered, rendered_self",
    [
        ("pose", {"text": "waves."}, "Alice waves.", "Alice waves."),
        ("pose", {"text": "'s hat falls.", "semipose": True}, "Alice's hat falls.", "Alice's hat falls."),
        ("ooc", {"text": "brb"}, '<OOC> Alice says, "brb"', '<OOC> You say, "brb"'),
        ("ooc", {"text": "laughs", "style": "pose"}, "<OOC> Alice laughs", "<OOC> Alice laughs"),
        ("command", {"line": '"hi there'}, 'Alice says, "hi there"', 'You say, "hi there"'),
        ("command", {"line": "say hi%rthere"}, 'Alice says, "hi\nthere"', 'You say, "hi\nthere"'),
        ("command", {"line": ":waves"}, "Alice waves", "Alice waves"),
        ("command", {"line": ";'s hat"}, "Alice's hat", "Alice's hat"),
        ("command", {"line": "ooc hi"}, '<OOC> Alice says, "hi"', '<OOC> You say, "hi"'),
        ("command", {"line": "ooc :waves"}, "<OOC> Alice waves", "<OOC> Alice waves"),
        ("command", {"line": "ooc ;'s"}, "<OOC> Alice's", "<OOC> Alice's"),
    ],
)
@pytest.mark.gen_test
async def test_mush_formats(world, frame_type, data, rendered, rendered_self):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    message_id = await alice.ws.send_frame(frame_type, data)
    assert (await alice.ws.receive_type("ack"))["data"]["inReplyTo"] == message_id
    content = (await bob.ws.receive_type("message"))["data"]["event"]["content"]
    assert (content["rendered"], content["rendered_self"]) == (rendered, rendered_self)
    assert "spans" not in content and "rendered_spans" not in content  # unstyled: no repetition


@pytest.mark.gen_test
async def test_emit_is_for_builders(world):
    alice = await world.player("Alice")
    wizard = await world.player("Wizard", role="builder")
    before = world.event_count()
    await alice.ws.send_frame("emit", {"text": "The sky darkens."})
    assert (await alice.ws.receive_type("error"))["data"]["code"] == "forbidden"
    assert world.event_count() == before
    await wizard.ws.send_frame("command", {"line": "@emit The sky darkens."})
    content = (await alice.ws.receive_type("message"))["data"]["event"]["content"]
    assert content["rendered"] == "The sky darkens." and content["kind"] == "emit"


@pytest.mark.parametrize(
    "frame_type, data, code",
    [
        ("say", {"text": "   "}, "empty_text"),
        ("say", {"text": "\u0000\u001b\u200b"}, "empty_text"),
        ("say", {"text": "x" * 4001}, "text_too_long"),
        ("say", {"text": "hi", "roomId": "!AAAAAAAAAAAAAAAA:test.localhost"}, "not_in_room"),
        ("say", {"text": "hi", "roomId": "garbage"}, "invalid_frame"),
        ("say", {}, "invalid_frame"),
        ("command", {"line": "dance wildly"}, "unknown_command"),
        ("command", {"line": "sayhi"}, "unknown_command"),
        ("leave_room", {}, "already_home"),
        ("join_room", {"roomId": "!AAAAAAAAAAAAAAAA:test.localhost"}, "room_not_found"),
        ("wall", {"text": "hear me"}, "forbidden"),
    ],
)
@pytest.mark.gen_test
async def test_refusals_change_nothing_and_reach_no_one(world, frame_type, data, code):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    before = world.event_count()
    message_id = await alice.ws.send_frame(frame_type, data)
    error = await alice.ws.receive_type("error")
    assert error["data"]["code"] == code and error["data"]["inReplyTo"] == message_id
    assert world.event_count() == before
    assert [f for f in await bob.ws.quiet(0.2) if f["type"] not in ("presence",)] == []


@pytest.mark.gen_test
async def test_too_long_says_how_long(world):
    alice = await world.player("Alice")
    await alice.ws.send_frame("say", {"text": "é" * 4001})
    error = await alice.ws.receive_type("error")
    assert error["data"]["details"] == {"maxLength": 4000, "length": 4001}


@pytest.mark.gen_test
async def test_a_retried_message_id_is_acked_again_and_stored_once(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    before = world.event_count()
    first = await say(alice.ws, "only once", message_id="retry-1")
    second = await say(alice.ws, "only once", message_id="retry-1")
    assert second["data"]["duplicate"] is True
    assert (second["data"]["eventId"], second["data"]["streamPosition"]) == (
        first["data"]["eventId"], first["data"]["streamPosition"])
    assert world.event_count() == before + 1
    await bob.ws.receive_type("message")
    assert [f for f in await bob.ws.quiet(0.3) if f["type"] == "message"] == []
    # The same messageId from another user is another request.
    other = await say(bob.ws, "mine", message_id="retry-1")
    assert other["data"]["duplicate"] is False


@pytest.mark.gen_test
async def test_every_tab_of_a_user_hears_the_room(world):
    alice = await world.player("Alice", sockets=2)
    bob = await world.player("Bob")
    await say(bob.ws, "hello both tabs")
    for socket in alice.sockets:
        event = (await socket.receive_type("message"))["data"]["event"]
        assert event["content"]["body"] == "hello both tabs"


@pytest.mark.gen_test
async def test_positions_are_one_total_order(world):
    alice = await world.player("Alice")
    positions = [(await say(alice.ws, f"line {n}"))["data"]["streamPosition"] for n in range(5)]
    assert positions == sorted(positions) and len(set(positions)) == 5


@pytest.mark.gen_test
async def test_text_too_big_once_encoded_is_refused_cleanly(world):
    alice = await world.player("Alice")
    before = world.event_count()
    # 4000 characters (within maxTextLength) of four-byte emoji with a colour code:
    # over the 64 KiB event limit once body, spans and rendered lines are encoded.
    await alice.ws.send_frame("say", {"text": "%xr" + "\U0001F600" * 3990})
    error = await alice.ws.receive_type("error")
    assert error["data"]["code"] == "text_too_long" and error["data"]["details"] == {"maxBytes": 65536}
    assert world.event_count() == before
    await say(alice.ws, "still here")


@pytest.mark.gen_test
async def test_the_same_message_id_on_another_kind_of_request_is_another_request(world):
    wizard = await world.player("Wizard", role="builder")
    library = await world.room("Library", wizard)
    alice = await world.player("Alice")
    said = await say(alice.ws, "hi", message_id="m-42")
    await alice.ws.send_frame("join_room", {"roomId": library}, messageId="m-42")
    moved = await alice.ws.receive_type("ack")
    assert moved["data"]["duplicate"] is False and moved["data"]["eventId"] != said["data"]["eventId"]
    assert (await alice.ws.receive_type("roster"))["data"]["room"]["id"] == library


@pytest.mark.gen_test
async def test_a_retry_after_moving_still_gets_its_ack(world):
    wizard = await world.player("Wizard", role="builder")
    library = await world.room("Library", wizard)
    alice = await world.player("Alice")
    square = alice.ws.welcome["data"]["location"]
    first = await say(alice.ws, "bye", message_id="s-1", roomId=square)
    await alice.ws.send_frame("join_room", {"roomId": library})
    await alice.ws.receive_type("ack")
    retry = await say(alice.ws, "bye", message_id="s-1", roomId=square)
    assert retry["data"]["duplicate"] is True and retry["data"]["eventId"] == first["data"]["eventId"]


@pytest.mark.gen_test
async def test_command_lines_are_sanitized_before_parsing(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    await alice.ws.send_frame("command", {"line": "\ufeff\u200bsay hi"})
    await alice.ws.receive_type("ack")
    assert (await bob.ws.receive_type("message"))["data"]["event"]["content"]["rendered"] == 'Alice says, "hi"'
