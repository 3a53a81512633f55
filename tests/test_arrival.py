"""What a socket's arrival sends: the frame order after ``welcome`` (spec 5.3)
and presence in crowded rooms (spec 14.8), over real sockets."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support.client import WsClient, acked, presence_of


@pytest.fixture
def server_config(config):
    return replace(config, presence_room_limit=3)


async def frames_until(socket, last_type, *, about=None):
    """Every frame from the socket's first up to the first ``last_type`` frame (about ``about``)."""
    frames = []
    while True:
        frame = await socket.receive()
        assert frame is not None, "socket closed"
        frames.append(frame)
        if frame["type"] == last_type and (about is None or frame["data"].get("userId") == about):
            return frames


def presences_about(frames, user_id):
    return [f["data"]["status"] for f in frames if f["type"] == "presence" and f["data"]["userId"] == user_id]


@pytest.mark.gen_test(timeout=20)
async def test_a_fresh_socket_gets_welcome_roster_waiting_pages_then_its_own_presence(world):
    bob = await world.player("Bob")
    alice = await world.offline_player("Alice")
    await acked(bob.ws, "page", {"to": ["alice"], "text": "while you were out"})

    socket = await WsClient.open(world.ws_url, world.spec, token=alice.token)
    alice.sockets.append(socket)
    frames = await frames_until(socket, "presence", about=alice.user_id)
    assert [f["type"] for f in frames] == ["welcome", "roster", "message", "presence"]
    assert frames[2]["data"]["event"]["content"]["body"] == "while you were out"
    assert frames[3]["data"]["status"] == "online"
    assert alice.user_id in {m["userId"] for m in frames[1]["data"]["members"]}  # the roster already lists her
    assert frames[0]["data"]["limits"]["presenceRoomLimit"] == 3
    assert presences_about([await presence_of(bob.ws, alice.user_id)], alice.user_id) == ["online"]


@pytest.mark.gen_test(timeout=20)
async def test_a_resuming_socket_gets_welcome_roster_replay_resumed_then_its_own_presence(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    said = await acked(bob.ws, "say", {"text": "seen"})
    await alice.ws.receive_type("message")
    since = said["data"]["streamPosition"]
    await world.wait_offline(alice)
    missed = (await acked(bob.ws, "say", {"text": "missed"}))["data"]["streamPosition"]

    socket = await WsClient.open(world.ws_url + f"?since={since}", world.spec, token=alice.token)
    alice.sockets.append(socket)
    frames = await frames_until(socket, "presence", about=alice.user_id)
    assert [f["type"] for f in frames] == ["welcome", "roster", "message", "resumed", "presence"]
    assert frames[2]["data"]["event"]["unsigned"]["stream_position"] == missed
    assert frames[3]["data"] == {"since": since, "upto": missed, "count": 1}


@pytest.mark.gen_test(timeout=30)
async def test_a_crowded_room_hears_no_presence_but_the_roster_and_who_tell(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    carol = await world.player("Carol")  # three online: at the limit, still announced
    assert (await presence_of(alice.ws, carol.user_id))["data"]["status"] == "online"

    dave = await world.player("Dave")  # the fourth: over the limit
    assert (await presence_of(dave.ws, dave.user_id))["data"]["status"] == "online"  # his own sockets hear it
    assert dave.ws.roster["data"]["memberCount"] == 4
    assert {m["userId"] for m in dave.ws.roster["data"]["members"]} >= {alice.user_id, bob.user_id, carol.user_id}
    await acked(dave.ws, "set_presence", {"status": "away", "message": "brb"})
    assert (await presence_of(dave.ws, dave.user_id))["data"]["status"] == "away"
    await alice.ws.send_frame("who", {})
    who = await alice.ws.receive_type("who")
    assert {u["userId"]: u["status"] for u in who["data"]["users"]}[dave.user_id] == "away"
    square = alice.ws.welcome["data"]["location"]
    await acked(alice.ws, "join_room", {"roomId": square})  # a fresh roster tells Alice who came
    roster = (await alice.ws.receive_type("roster"))["data"]
    assert roster["memberCount"] == 4 and dave.user_id in {m["userId"] for m in roster["members"]}
    await world.wait_offline(dave)  # offline while the room still counts him: not announced either
    await alice.ws.quiet(0.3)
    for socket in (alice.ws, bob.ws, carol.ws):  # nothing about Dave, from his arrival to his leaving
        assert presences_about(socket.received, dave.user_id) == []

    await acked(carol.ws, "set_presence", {"status": "away"})  # three again: announced to the room
    while (await presence_of(bob.ws, carol.user_id))["data"]["status"] != "away":
        pass
    assert presences_about(bob.ws.received, carol.user_id) == ["online", "away"]


@pytest.mark.gen_test(timeout=20)
async def test_what_a_starting_socket_sends_is_answered_after_its_own_event(world):
    """A frame sent before the session has started is handled at once, but its answer waits
    with the held live frames: the sender's own ``message`` comes before its ``ack`` (14.7)."""
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    since = (await acked(bob.ws, "say", {"text": "seen"}))["data"]["streamPosition"]
    await world.wait_offline(alice)
    for n in range(30):  # a replay to make the start take a while
        await acked(bob.ws, "say", {"text": f"missed {n}"})

    socket = await WsClient.open(world.ws_url + f"?since={since}", world.spec, token=alice.token)
    alice.sockets.append(socket)
    message_id = await socket.send_frame("say", {"text": "here already"})
    frames = []
    while not frames or frames[-1]["type"] != "ack":
        frame = await socket.receive()
        assert frame is not None, "socket closed"
        frames.append(frame)
    types = [f["type"] for f in frames]
    assert types[:2] == ["welcome", "roster"] and "resumed" in types
    own = [i for i, f in enumerate(frames) if f["type"] == "message"
           and f["data"]["event"]["content"]["body"] == "here already"]
    assert own and own[0] < types.index("ack") and frames[-1]["data"]["inReplyTo"] == message_id
