"""spec/v1/quickstart.md, walked through against a live server: a browser-style
client that authenticates by frame with no ``since``, speaks before its welcome,
drops, resumes with the highest position it saw, and retries its last request
with the same messageId."""

from __future__ import annotations

import pytest

from tests.support.client import WsClient

EVENT_FRAMES = {"message", "user_joined", "user_left", "channel_message", "channel_notice", "system_message",
                "page_receipt", "message_edited", "message_deleted"}


def highest_position(frames: list[dict]) -> int:
    events = [f["data"]["event"] for f in frames if f["type"] in EVENT_FRAMES]
    events += [e for f in frames if f["type"] == "roster" for e in f["data"]["recent"]]
    return max(event["unsigned"]["stream_position"] for event in events)


@pytest.mark.gen_test(timeout=30)
async def test_the_quickstart_walkthrough(world):
    bob = await world.player("Bob")
    alice = await world.offline_player("Alice")
    await bob.ws.send_frame("say", {"text": "from before Alice"})
    await bob.ws.receive_type("ack")

    # Steps 2-4: auth frame, no since on the first connection, a say before the welcome.
    socket = await WsClient.open(world.ws_url, world.spec)
    await socket.send_frame("auth", {"token": alice.token})
    said = await socket.send_frame("say", {"text": "Hello!"}, messageId="k4Jx9.7")
    first = await socket.receive()
    assert first["type"] == "welcome"
    ack = await socket.receive_type("ack")
    assert ack["data"]["inReplyTo"] == said and ack["data"]["duplicate"] is False
    assert not socket.of_type("resumed") and not socket.of_type("resume_gap")  # no since: no replay
    own = await socket.receive_type("message")  # one's own line comes as a message too
    assert own["data"]["event"]["event_id"] == ack["data"]["eventId"]
    seen = highest_position(socket.received)
    socket.close()
    await world.wait_offline(alice)

    # Step 6: Bob speaks while Alice is away; she comes back with the highest position she saw.
    await bob.ws.send_frame("say", {"text": "while you were out"})
    await bob.ws.receive_type("ack")
    back = await WsClient.open(world.ws_url + f"?since={seen}", world.spec, token=alice.token)
    resumed = await back.receive_type("resumed")
    replayed = [f["data"]["event"]["content"]["body"] for f in back.received if f["type"] == "message"]
    assert replayed == ["while you were out"] and resumed["data"]["count"] == 1

    # Step 4: the retry of the same request, same messageId, on the new socket: done once.
    before = world.event_count()
    heard_before = [f["data"]["event"]["content"]["body"] for f in await bob.ws.quiet(0.1) if f["type"] == "message"]
    assert heard_before.count("Hello!") == 1  # Bob heard Alice once
    await back.send_frame("say", {"text": "Hello!"}, messageId="k4Jx9.7")
    retry = await back.receive_type("ack")
    assert retry["data"]["duplicate"] is True and retry["data"]["eventId"] == ack["data"]["eventId"]
    assert world.event_count() == before
    heard = [f["data"]["event"]["content"]["body"] for f in await bob.ws.quiet(0.2) if f["type"] == "message"]
    assert heard == []  # nothing said twice
    back.close()
