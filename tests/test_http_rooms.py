"""Rooms over HTTP: who may build, listing with cursors, and who is there now."""

from __future__ import annotations

import pytest

from tests.conftest import count_rows
from tests.support.client import WsClient


async def _builder(api, server, name="Wizard", role="builder"):
    session = await api.register(name)
    await server.context.storage.set_role(session["user"]["id"], role)
    return session


@pytest.mark.gen_test
async def test_the_default_room_exists_from_the_first_start(api, server):
    session = await api.register("Alice")
    status, body = await api.call("GET", "/api/rooms", token=session["accessToken"], schema="room-list")
    assert status == 200
    assert [room["name"] for room in body["rooms"]] == ["Town Square"]
    assert body["rooms"][0]["id"] == session["location"] and body["next"] is None


@pytest.mark.parametrize("role", ["builder", "admin"])
@pytest.mark.gen_test
async def test_builders_and_admins_make_rooms(api, server, role):
    session = await _builder(api, server, role=role)
    status, room = await api.call(
        "POST", "/api/rooms", {"name": "The Library", "description": "Dusty\nshelves."},
        token=session["accessToken"], schema="room",
    )
    assert status == 201
    assert room["name"] == "The Library" and room["description"] == "Dusty\nshelves."
    assert room["createdBy"] == session["user"]["id"]
    assert room["id"].startswith("!") and room["id"].endswith(":test.localhost")
    status, fetched = await api.call("GET", f"/api/rooms/{room['id']}", token=session["accessToken"])
    assert status == 200 and fetched["name"] == "The Library"


@pytest.mark.gen_test
async def test_players_cannot_make_rooms(api, server):
    session = await api.register("Alice")
    rooms = count_rows(server, "rooms")
    status, body = await api.call("POST", "/api/rooms", {"name": "Mine"}, token=session["accessToken"])
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert count_rows(server, "rooms") == rooms


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"name": "town square"}, 409, "room_name_taken"),
        ({"name": "   "}, 400, "invalid_room_name"),
        ({"name": "\u0007\u001b"}, 400, "invalid_room_name"),
        ({"name": ""}, 400, "invalid_request"),
        ({"name": "x" * 101}, 400, "invalid_request"),
        ({"description": "no name"}, 400, "invalid_request"),
    ],
)
@pytest.mark.gen_test
async def test_bad_rooms_change_nothing(api, server, body, status, code):
    session = await _builder(api, server)
    rooms = count_rows(server, "rooms")
    got_status, got = await api.call("POST", "/api/rooms", body, token=session["accessToken"])
    assert (got_status, got["error"]["code"]) == (status, code)
    assert count_rows(server, "rooms") == rooms


@pytest.mark.gen_test
async def test_room_names_are_cleaned_of_control_characters(api, server):
    session = await _builder(api, server)
    status, room = await api.call("POST", "/api/rooms", {"name": "Bar\u001b[31m Room\u200b"}, token=session["accessToken"])
    assert status == 201 and room["name"] == "Bar[31m Room"


@pytest.mark.gen_test
async def test_listing_pages_with_a_cursor(api, server):
    session = await _builder(api, server)
    for n in range(5):
        status, _ = await api.call("POST", "/api/rooms", {"name": f"Room {n}"}, token=session["accessToken"])
        assert status == 201
    seen, cursor = [], None
    while True:
        path = "/api/rooms?limit=2" + (f"&after={cursor}" if cursor else "")
        status, body = await api.call("GET", path, token=session["accessToken"], schema="room-list")
        assert status == 200 and len(body["rooms"]) <= 2
        seen += [room["name"] for room in body["rooms"]]
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == ["Town Square"] + [f"Room {n}" for n in range(5)]


@pytest.mark.parametrize("query, code", [("?after=abc", "invalid_cursor"), ("?limit=0", "invalid_request"),
                                         ("?limit=501", "invalid_request"), ("?limit=x", "invalid_request")])
@pytest.mark.gen_test
async def test_bad_list_queries(api, query, code):
    session = await api.register("Alice")
    status, body = await api.call("GET", "/api/rooms" + query, token=session["accessToken"])
    assert status == 400 and body["error"]["code"] == code


@pytest.mark.parametrize(
    "room_id, status, code",
    [
        ("not-a-room", 400, "invalid_room_id"),
        ("!short:test.localhost", 400, "invalid_room_id"),
        ("!AAAAAAAAAAAAAAAA", 400, "invalid_room_id"),
        ("!AAAAAAAAAAAAAAAA:test.localhost", 404, "room_not_found"),
    ],
)
@pytest.mark.gen_test
async def test_malformed_and_unknown_room_ids(api, room_id, status, code):
    session = await api.register("Alice")
    got_status, body = await api.call("GET", f"/api/rooms/{room_id}", token=session["accessToken"])
    assert (got_status, body["error"]["code"]) == (status, code)


@pytest.mark.gen_test
async def test_rooms_need_a_token(api):
    status, body = await api.call("GET", "/api/rooms")
    assert status == 401 and body["error"]["code"] == "not_authenticated"


@pytest.mark.gen_test
async def test_occupants_are_the_connected_characters_in_the_room(api, server, ws_url, spec):
    alice = await api.register("Alice")
    bob = await api.register("Bob")
    room_path = f"/api/rooms/{alice['location']}"
    status, room = await api.call("GET", room_path, token=alice["accessToken"], schema="room-detail")
    assert status == 200 and room["occupants"] == []
    socket = await WsClient.logged_in(ws_url, spec, bob["accessToken"])
    status, room = await api.call("GET", room_path, token=alice["accessToken"], schema="room-detail")
    assert [user["id"] for user in room["occupants"]] == [bob["user"]["id"]]
    socket.close()
