"""Moving between rooms, rosters, presence, WHO, typing and @wall, over real sockets."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from tests.support.client import acked, presence_of


@pytest.fixture
def server_config(config):
    return replace(config, idle_after_seconds=1, typing_timeout_seconds=0.6, typing_refresh_seconds=0.3)


async def send(socket, frame_type, data=None):
    message_id = await socket.send_frame(frame_type, data or {})
    return message_id


@pytest.mark.gen_test(timeout=20)
async def test_moving_between_rooms(world, api):
    wizard = await world.player("Wizard", role="builder")
    library = await world.room("Library", wizard)
    square = wizard.ws.welcome["data"]["location"]
    carol = await world.player("Carol")
    await acked(carol.ws, "join_room", {"roomId": library})
    await acked(carol.ws, "say", {"text": "Shh."})
    assert (await carol.ws.receive_type("message"))["data"]["event"]["content"]["body"] == "Shh."  # her own echo
    alice = await world.player("Alice", sockets=2)
    bob = await world.player("Bob")

    ack = await acked(alice.ws, "join_room", {"roomId": library})
    left = await bob.ws.receive_type("user_left")
    assert left["data"]["event"]["content"] == {"membership": "leave", "speaker": "Alice",
                                               "rendered": "Alice has left."}
    assert left["data"]["user"]["id"] == alice.user_id and left["roomId"] == square
    joined = await carol.ws.receive_type("user_joined")
    assert joined["data"]["event"]["content"]["rendered"] == "Alice has arrived."
    assert joined["data"]["event"]["event_id"] == ack["data"]["eventId"]
    for socket in alice.sockets:  # every tab moves, and learns the new room
        roster = await socket.receive_type("roster")
        assert roster["data"]["room"]["name"] == "Library"
        assert {m["userId"] for m in roster["data"]["members"]} == {alice.user_id, carol.user_id}
        assert [e["content"]["body"] for e in roster["data"]["recent"] if e["type"] == "vm.room.message"] == ["Shh."]
    assert not [f for f in alice.ws.received if f["type"] == "user_joined"]  # the mover gets a roster instead

    await acked(alice.sockets[1], "say", {"text": "Hello, library."})
    assert (await carol.ws.receive_type("message"))["data"]["event"]["content"]["body"] == "Hello, library."
    assert [f for f in await bob.ws.quiet(0.3) if f["type"] == "message"] == []
    status, room = await api.call("GET", f"/api/rooms/{library}", token=bob.token)
    assert {user["id"] for user in room["occupants"]} == {alice.user_id, carol.user_id}

    await acked(alice.ws, "leave_room")
    assert (await bob.ws.receive_type("user_joined"))["data"]["user"]["id"] == alice.user_id
    await alice.ws.send_frame("say", {"text": "wrong room", "roomId": library})
    error = await alice.ws.receive_type("error")
    assert error["data"]["code"] == "not_in_room" and error["data"]["message"] == "You are not in that room."


@pytest.mark.gen_test(timeout=20)
async def test_a_retried_join_moves_once(world):
    wizard = await world.player("Wizard", role="builder")
    library = await world.room("Library", wizard)
    alice = await world.player("Alice")
    first = await alice.ws.send_frame("join_room", {"roomId": library}, messageId="move-1")
    ack1 = await alice.ws.receive_type("ack")
    events = world.event_count()
    await alice.ws.send_frame("join_room", {"roomId": library}, messageId="move-1")
    ack2 = await alice.ws.receive_type("ack")
    assert first == "move-1" and ack2["data"]["duplicate"] is True
    assert ack2["data"]["eventId"] == ack1["data"]["eventId"]
    assert world.event_count() == events


@pytest.mark.gen_test(timeout=20)
async def test_the_location_survives_reconnecting(world, server):
    wizard = await world.player("Wizard", role="builder")
    library = await world.room("Library", wizard)
    alice = await world.player("Alice")
    await acked(alice.ws, "join_room", {"roomId": library})
    await world.wait_offline(alice)
    socket = await world.open_socket(alice)
    assert socket.welcome["data"]["location"] == library
    assert socket.roster["data"]["room"]["id"] == library
    assert (await server.context.storage.get_user(alice.user_id)).location_room_id == library


@pytest.mark.gen_test(timeout=20)
async def test_presence_across_tabs_and_rooms(world):
    bob = await world.player("Bob")
    alice = await world.player("Alice", sockets=2)
    online = await presence_of(bob.ws, alice.user_id)
    assert online["data"]["status"] == "online" and online["data"]["username"] == "Alice"
    alice.sockets[0].close()
    await asyncio.sleep(0.3)
    about_alice = [f for f in await bob.ws.quiet(0.2) if f["type"] == "presence" and f["data"]["userId"] == alice.user_id]
    assert about_alice == []  # one tab is still open
    alice.sockets[1].close()
    offline = await presence_of(bob.ws, alice.user_id)
    assert offline["data"]["status"] == "offline"


@pytest.mark.gen_test(timeout=20)
async def test_away_idle_and_back(world, api, clock):
    bob = await world.player("Bob")
    alice = await world.player("Alice")
    await presence_of(bob.ws, alice.user_id)
    await acked(alice.ws, "set_presence", {"status": "away", "message": "Making\u202e  tea.\u0000"})
    away = await presence_of(bob.ws, alice.user_id)
    assert (away["data"]["status"], away["data"]["awayMessage"]) == ("away", "Making tea.")
    status, who = await api.call("GET", "/api/who", token=bob.token, schema="who")
    assert status == 200
    listed = {user["userId"]: user for user in who["users"]}
    assert listed[alice.user_id]["status"] == "away" and listed[bob.user_id]["status"] in ("online", "idle")
    await acked(alice.ws, "set_presence", {"status": "online"})
    assert (await presence_of(bob.ws, alice.user_id))["data"]["status"] == "online"
    # No input for idle_after_seconds (1 s): idle; any frame: online again.
    clock.advance(1.5)
    idle = await presence_of(bob.ws, alice.user_id)
    assert idle["data"]["status"] == "idle" and idle["data"]["idleMs"] >= 1000
    await send(alice.ws, "ping")  # keep-alive pings are not input: still idle
    assert not [f for f in await bob.ws.quiet(0.3) if f["type"] == "presence" and f["data"]["userId"] == alice.user_id]
    await send(alice.ws, "who")
    back = await presence_of(bob.ws, alice.user_id)
    assert back["data"]["status"] == "online"


@pytest.mark.gen_test(timeout=20)
async def test_who_frame(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob", sockets=2)
    message_id = await send(alice.ws, "command", {"line": "WHO"})
    who = await alice.ws.receive_type("who")
    assert who["data"]["inReplyTo"] == message_id
    assert [user["userId"] for user in who["data"]["users"]] == [alice.user_id, bob.user_id]
    assert all(user["onForMs"] >= 0 and user["idleMs"] >= 0 for user in who["data"]["users"])


@pytest.mark.gen_test(timeout=20)
async def test_typing_is_shown_to_others_throttled_and_expires(world, clock):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    for _ in range(5):
        await send(alice.ws, "typing", {"typing": True})
    started = await bob.ws.receive_type("typing")
    assert (started["data"]["userId"], started["data"]["typing"]) == (alice.user_id, True)
    frames = [f for f in await bob.ws.quiet(0.15) if f["type"] == "typing"]
    assert frames == []  # five frames, one announcement
    clock.advance(0.7)  # past typing_timeout_seconds: the next tick ends it
    stopped = await bob.ws.receive_type("typing", timeout=3)
    assert stopped["data"]["typing"] is False
    assert not alice.ws.of_type("typing")  # never echoed to the typist
    await send(alice.ws, "typing", {"typing": True})
    assert (await bob.ws.receive_type("typing"))["data"]["typing"] is True
    await send(alice.ws, "typing", {"typing": False})
    assert (await bob.ws.receive_type("typing"))["data"]["typing"] is False
    assert world.event_count() == 0  # typing is never stored


@pytest.mark.gen_test(timeout=20)
async def test_wall_reaches_everyone_everywhere_and_is_stored(world, api):
    wizard = await world.player("Wizard", role="admin")
    library = await world.room("Library", wizard)
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    await acked(bob.ws, "join_room", {"roomId": library})
    ack = await acked(wizard.ws, "command", {"line": "@wall Reboot in 5 minutes."})
    for player in (alice, bob, wizard):
        message = await player.ws.receive_type("system_message")
        event = message["data"]["event"]
        assert event["content"]["rendered"] == 'Announcement: Wizard shouts, "Reboot in 5 minutes."'
        assert event["event_id"] == ack["data"]["eventId"] and "room_id" not in event
    events = world.event_count()
    headers = {"Idempotency-Key": "wall-7"}
    status, first = await api.call("POST", "/api/announcements", {"text": "Back soon."}, token=wizard.token,
                                   headers=headers, schema="receipt")
    assert status == 201
    status, again = await api.call("POST", "/api/announcements", {"text": "Back soon."}, token=wizard.token,
                                   headers=headers, schema="receipt")
    assert (status, again) == (201, first)
    assert world.event_count() == events + 1
    status, body = await api.call("POST", "/api/announcements", {"text": "me too"}, token=alice.token)
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, body = await api.call("POST", "/api/announcements", {"text": "x"}, token=wizard.token,
                                  headers={"Idempotency-Key": "bad key!"})
    assert (status, body["error"]["code"]) == (400, "invalid_request")
    assert world.event_count() == events + 1


@pytest.mark.gen_test(timeout=20)
async def test_connecting_shows_the_room_and_its_recent_lines(world):
    alice = await world.player("Alice")
    for n in range(3):
        await acked(alice.ws, "say", {"text": f"line {n}"})
    bob = await world.player("Bob")
    roster = bob.ws.roster["data"]
    assert roster["room"]["name"] == "Town Square"
    assert {member["userId"] for member in roster["members"]} == {alice.user_id, bob.user_id}
    bodies = [event["content"]["body"] for event in roster["recent"] if event["type"] == "vm.room.message"]
    assert bodies == ["line 0", "line 1", "line 2"]
    positions = [event["unsigned"]["stream_position"] for event in roster["recent"]]
    assert positions == sorted(positions)
