"""Every number a client puts in a URL is ASCII digits within bounds, or 400
``invalid_request`` with a JSON body, and nothing changes: superscripts,
other scripts' digits, signs, spaces, underscores, huge and empty values, on
every query parameter that takes a number and at the WebSocket handshake."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.support.client import WsClient, refused_handshake
from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.numbers import ascii_whole_number, parse_whole_number

# Each as it goes into the URL (percent-encoded), and what it stands for.
NOT_NUMBERS = {
    "²": quote("²"), "٣": quote("٣"), "+1": quote("+1"), " 1": quote(" 1"), "1 ": quote("1 "),
    "1_0": "1_0", "-1": "-1", "1.0": "1.0", "0x1": "0x1", "huge": "9" * 40, "too big": str(2**63),
    "empty": "", "space": "+",
}


@pytest.mark.parametrize("raw", ["²", "٣", "+1", " 1", "1 ", "1_0", "-1", "1.0", "", "9" * 21, "１", "1\n"])
def test_parse_whole_number_refuses_what_is_not_ascii_digits(raw):
    with pytest.raises(ProtocolError) as refused:
        parse_whole_number("limit", raw, 0, 2**62)
    assert refused.value.code is ErrorCode.INVALID_REQUEST and "'limit'" in refused.value.message
    assert ascii_whole_number(raw) is None


@pytest.mark.parametrize("raw, lowest, highest, expected", [
    ("0", 0, 10, 0), ("10", 0, 10, 10), ("007", 1, 10, 7), (str(2**62), 0, 2**62, 2**62),
])
def test_parse_whole_number_takes_ascii_digits_within_bounds(raw, lowest, highest, expected):
    assert parse_whole_number("n", raw, lowest, highest) == expected


@pytest.mark.parametrize("raw, lowest, highest", [("0", 1, 10), ("11", 1, 10), (str(2**62 + 1), 0, 2**62)])
def test_parse_whole_number_refuses_out_of_bounds(raw, lowest, highest):
    with pytest.raises(ProtocolError):
        parse_whole_number("n", raw, lowest, highest)


async def refuse_every_value(world, player, path, names):
    """Each numeric parameter of ``path``, given each bad value: 400 invalid_request, nothing changed."""
    before = world.event_count()
    for name in names:
        for label, encoded in NOT_NUMBERS.items():
            status, body = await world.api.call("GET", f"{path}?{name}={encoded}", token=player.token)
            assert (status, body["error"]["code"]) == (400, "invalid_request"), (path, name, label, body)
            assert f"'{name}'" in body["error"]["message"], (path, name, label)
    assert world.event_count() == before


@pytest.mark.gen_test(timeout=60)
async def test_history_parameters(world):
    wizard = await world.player("Wizard", role="admin")
    room = await world.room("Study", wizard)
    await wizard.ws.send_frame("join_room", {"roomId": room})
    await wizard.ws.receive_type("roster")
    status, _ = await world.api.call("POST", "/api/communication/channels", {"name": "Public"}, token=wizard.token)
    assert status == 201
    history = ("limit", "before", "after", "since", "until")
    await refuse_every_value(world, wizard, "/api/communication/history/" + quote(room, safe=""), history)
    await refuse_every_value(world, wizard, "/api/communication/channels/Public/history", history)
    await refuse_every_value(world, wizard, "/api/communication/pages/wizard", history)


@pytest.mark.gen_test(timeout=60)
async def test_list_parameters(world):
    wizard = await world.player("Wizard", role="admin")
    await refuse_every_value(world, wizard, "/api/rooms", ("limit",))
    await refuse_every_value(world, wizard, "/api/communication/channels", ("limit",))
    await refuse_every_value(world, wizard, "/api/reports", ("limit", "after"))


@pytest.mark.gen_test(timeout=60)
async def test_room_cursor_that_is_not_ascii_digits_is_invalid_cursor(world):
    """The room list's ``after`` is an opaque cursor: one the server did not hand out is invalid_cursor."""
    wizard = await world.player("Wizard", role="admin")
    for label, encoded in NOT_NUMBERS.items():
        status, body = await world.api.call("GET", f"/api/rooms?after={encoded}", token=wizard.token)
        assert (status, body["error"]["code"]) == (400, "invalid_cursor"), (label, body)


@pytest.mark.gen_test(timeout=60)
async def test_handshake_since(world):
    alice = await world.player("Alice", sockets=0)
    for label, encoded in NOT_NUMBERS.items():
        status, body = await refused_handshake(world.ws_url + f"?since={encoded}", world.spec, token=alice.token)
        assert (status, body["error"]["code"]) == (400, "invalid_request"), (label, body)
        assert "'since'" in body["error"]["message"]
    assert len(world.server.context.registry) == 0 and world.server.context.registry.count_for_address("127.0.0.1") == 0


@pytest.mark.gen_test(timeout=60)
async def test_auth_frame_since_goes_through_its_schema(world):
    """In a frame a number is a JSON integer: a string, a float, a negative or too big one is refused."""
    alice = await world.player("Alice", sockets=0)
    for since in ("²", "1", 1.5, -1, True, 2**62 + 1):
        socket = await WsClient.open(world.ws_url, world.spec)
        message_id = await socket.send_frame("auth", {"token": alice.token, "since": since})
        error = await socket.receive_type("error")
        assert error["data"]["code"] in ("invalid_frame", "bad_json") and error["data"]["inReplyTo"] == message_id
        assert not socket.of_type("welcome"), since
        socket.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_content_length_that_is_not_ascii_digits_is_refused_not_a_crash(world):
    """The one number a client sends in a header: HTTP/1.1's parser refuses it (400), never a 500."""
    import asyncio
    from urllib.parse import urlparse

    wizard = await world.player("Wizard", role="admin")
    address = urlparse(world.api.base_url)
    for length in ("²", "٣", "+3", "3_0"):
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        writer.write(f"POST /api/rooms HTTP/1.1\r\nHost: {address.netloc}\r\nAuthorization: Bearer {wizard.token}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{}}".encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        assert status_line.split()[1] == b"400", (length, status_line)
    status, rooms = await world.api.call("GET", "/api/rooms", token=wizard.token)
    assert status == 200 and len(rooms["rooms"]) == 1  # only the default room: nothing was made
