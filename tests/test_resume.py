"""Reconnecting without loss: a client that says where it stopped gets every event it
may see since then, exactly once and in order, then live frames with no gap."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from tests.conftest import FAST_HASHER
from tests.support.client import Api, WsClient
from tests.support.client import acked as ack_frame
from vibemuse.app import VibeMuseServer

EVENT_FRAMES = {"message", "user_joined", "user_left", "channel_message", "channel_notice", "system_message",
                "page_receipt"}


@pytest.fixture
def server_config(config):
    return replace(config, resume_max_events=200)


def positions(frames):
    return [f["data"]["event"]["unsigned"]["stream_position"] for f in frames if f["type"] in EVENT_FRAMES]


def last_position(socket):
    seen = positions(socket.received)
    roster = socket.roster.get("data", {}).get("recent", []) if socket.roster else []
    return max(seen + [e["unsigned"]["stream_position"] for e in roster] + [0])


async def acked(socket, frame_type, data):
    """The stream position of the event the request made."""
    return (await ack_frame(socket, frame_type, data))["data"].get("streamPosition")


async def resume(world, player, since):
    url = world.ws_url + f"?since={since}"
    socket = await WsClient.open(url, world.spec, token=player.token)
    player.sockets.append(socket)
    frames = []
    while True:
        frame = await socket.receive()
        frames.append(frame)
        if frame["type"] in ("resumed", "resume_gap"):
            return socket, frames


@pytest.mark.gen_test(timeout=30)
async def test_a_dropped_client_gets_everything_it_missed_exactly_once_in_order(world):
    wizard = await world.player("Wizard", role="admin")
    library = await world.room("Library", wizard)
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    carol = await world.player("Carol")
    status, _ = await world.api.call("POST", "/api/communication/channels", {"name": "Public"}, token=bob.token)
    await acked(alice.ws, "join_channel", {"channelId": "public"})
    await acked(carol.ws, "join_channel", {"channelId": "public"})
    await acked(bob.ws, "say", {"text": "before the drop"})
    await alice.ws.receive_type("message")
    await asyncio.sleep(0.1)
    since = last_position(alice.ws)
    await world.wait_offline(alice)

    expected = []  # (position, body or kind) of what Alice may see while away
    expected.append(await acked(bob.ws, "say", {"text": "one"}))
    expected.append(await acked(carol.ws, "channel", {"channelId": "public", "text": "two"}))
    expected.append(await acked(bob.ws, "page", {"to": ["alice"], "text": "three"}))
    await acked(bob.ws, "page", {"to": ["carol"], "text": "not for alice"})
    await acked(carol.ws, "join_room", {"roomId": library})
    await acked(carol.ws, "say", {"text": "in the library, where alice is not"})
    expected.append(await acked(wizard.ws, "wall", {"text": "four"}))
    expected.append(await acked(bob.ws, "say", {"text": "five"}))

    socket, frames = await resume(world, alice, since)
    replayed = [f for f in frames if f["type"] in EVENT_FRAMES]
    got = positions(replayed)
    assert got == sorted(got) and len(set(got)) == len(got)  # in order, once each
    bodies = [f["data"]["event"]["content"].get("body") for f in replayed]
    assert ["one", "two", "three", "four", "five"] == [b for b in bodies if b in ("one", "two", "three", "four",
                                                                                    "five")]
    assert "not for alice" not in bodies and "in the library, where alice is not" not in bodies
    assert set(expected) <= set(got)
    assert frames[-1]["data"]["count"] == len(replayed) and frames[-1]["data"]["since"] == since
    # then live, with nothing repeated at the seam
    await acked(bob.ws, "say", {"text": "six"})
    live = await socket.receive_type("message")
    assert live["data"]["event"]["content"]["body"] == "six"
    assert live["data"]["event"]["unsigned"]["stream_position"] > max(got)
    again = [f for f in await socket.quiet(0.3) if f["type"] in EVENT_FRAMES]
    assert not set(positions(again)) & set(got)
    # the waiting page was handed over by the replay, not a second time
    assert [f for f in socket.received if f["type"] == "message"
            and f["data"]["event"]["content"].get("body") == "three"].__len__() == 1


@pytest.mark.gen_test(timeout=30)
async def test_moves_while_away_follow_the_character(world):
    wizard = await world.player("Wizard", role="builder")
    library = await world.room("Library", wizard)
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    await acked(bob.ws, "say", {"text": "start"})
    await alice.ws.receive_type("message")
    since = last_position(alice.ws)
    await acked(alice.ws, "join_room", {"roomId": library})  # Alice's other tab moved her, then both dropped
    await world.wait_offline(alice)
    await acked(bob.ws, "say", {"text": "square, after alice left"})
    await acked(wizard.ws, "join_room", {"roomId": library})
    await acked(wizard.ws, "say", {"text": "library, with alice"})
    socket, frames = await resume(world, alice, since)
    bodies = [f["data"]["event"]["content"].get("body") for f in frames if f["type"] == "message"]
    assert bodies == ["library, with alice"]
    kinds = [f["type"] for f in frames if f["type"] in EVENT_FRAMES]
    assert kinds[:2] == ["user_left", "user_joined"]  # her own move comes back too


@pytest.mark.gen_test(timeout=30)
async def test_too_much_missed_is_a_gap_not_a_flood(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    since = last_position(alice.ws)
    await world.wait_offline(alice)
    for n in range(201):
        await acked(bob.ws, "say", {"text": f"line {n}"})
    socket, frames = await resume(world, alice, since)
    assert frames[-1]["type"] == "resume_gap"
    assert frames[-1]["data"]["reason"] == "too_many" and frames[-1]["data"]["since"] == since
    assert not [f for f in frames if f["type"] == "message"]


@pytest.mark.gen_test(timeout=30)
async def test_resume_by_auth_frame_and_bad_since(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    since = last_position(alice.ws)
    await world.wait_offline(alice)
    await acked(bob.ws, "say", {"text": "missed"})
    socket = await WsClient.open(world.ws_url, world.spec)
    alice.sockets.append(socket)
    await socket.send_frame("auth", {"token": alice.token, "since": since})
    resumed = await socket.receive_type("resumed")
    assert resumed["data"]["count"] == 1
    assert [f["data"]["event"]["content"]["body"] for f in socket.received if f["type"] == "message"] == ["missed"]
    from tests.support.client import refused_handshake

    status, body = await refused_handshake(world.ws_url + "?since=abc", world.spec, token=alice.token)
    assert (status, body["error"]["code"]) == (400, "invalid_request")


@pytest.mark.gen_test(timeout=30)
async def test_since_below_the_accounts_creation_replays_nothing_from_before_it(world):
    """A brand-new account resuming from 0 gets only what happened since it was made (section 5.7)."""
    wizard = await world.player("Wizard", role="admin")
    bob = await world.player("Bob")
    await acked(bob.ws, "say", {"text": "before Carol"})
    await acked(wizard.ws, "wall", {"text": "old news"})
    carol = await world.offline_player("Carol")  # stands in the default room from now on
    await acked(bob.ws, "say", {"text": "after Carol"})
    await acked(wizard.ws, "wall", {"text": "fresh news"})
    for since in (0, 1):
        socket, frames = await resume(world, carol, since)
        replayed = [f["data"]["event"]["content"]["body"] for f in frames if f["type"] in EVENT_FRAMES]
        assert replayed == ["after Carol", "fresh news"]
        assert frames[-1]["type"] == "resumed"
        assert frames[-1]["data"]["since"] == since and frames[-1]["data"]["count"] == 2
        await world.wait_offline(carol)


@pytest.mark.gen_test(timeout=40)
async def test_resume_across_a_server_restart(config, clock, spec):
    async def start():
        server = await VibeMuseServer.create(config, clock=clock, hasher=FAST_HASHER)
        port = server.listen(0, "127.0.0.1")
        return server, f"http://127.0.0.1:{port}"

    server, base = await start()
    api = Api(base, spec)
    alice, bob = await api.register("Alice"), await api.register("Bob")
    ws = base.replace("http", "ws") + "/api/ws"
    a = await WsClient.logged_in(ws, spec, alice["accessToken"])
    b = await WsClient.logged_in(ws, spec, bob["accessToken"])
    await acked(b, "say", {"text": "before"})
    since = positions([await a.receive_type("message")])[0]
    a.close()
    await asyncio.sleep(0.2)
    sent = [await acked(b, "say", {"text": f"while away {n}"}) for n in range(3)]
    b.close()
    await server.shutdown()  # everything acknowledged is durable

    server, base = await start()
    try:
        a = await WsClient.open(base.replace("http", "ws") + f"/api/ws?since={since}", spec,
                                token=alice["accessToken"])
        await a.receive_type("resumed")
        replayed = [f for f in a.received if f["type"] == "message"]
        assert positions(replayed) == sent
        assert [f["data"]["event"]["content"]["body"] for f in replayed] == [f"while away {n}" for n in range(3)]
        a.close()
    finally:
        await server.shutdown()
