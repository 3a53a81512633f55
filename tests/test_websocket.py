"""The /api/ws endpoint over real sockets: handshake, auth, frames, limits, lifecycle."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import count_rows
from tests.support.client import WsClient, refused_auth_frame, refused_handshake


async def _user(api, name="Alice"):
    return await api.register(name)


@pytest.mark.gen_test
async def test_header_auth_gets_welcome_first(api, ws_url, spec):
    session = await _user(api)
    client = await WsClient.open(ws_url, spec, token=session["accessToken"])
    assert client.connection.selected_subprotocol == "vibemuse.v1"
    welcome = await client.receive()
    assert welcome["type"] == "welcome"
    assert welcome["data"]["user"] == session["user"]
    assert welcome["data"]["serverName"] == "test.localhost"
    assert welcome["data"]["protocolVersion"] == "v1"
    assert welcome["data"]["location"] == session["location"]
    assert welcome["data"]["limits"]["maxFrameBytes"] == 16 * 1024
    assert welcome["toUser"] == session["user"]["id"]
    client.close()


@pytest.mark.gen_test
async def test_frame_auth_for_browsers(api, ws_url, spec):
    session = await _user(api)
    client = await WsClient.open(ws_url, spec)
    await client.send_frame("auth", {"token": session["accessToken"]})
    welcome = await client.receive()
    assert welcome["type"] == "welcome"
    assert welcome["data"]["user"]["id"] == "@alice:test.localhost"
    client.close()


@pytest.mark.gen_test
async def test_frames_before_auth_are_refused_but_auth_still_possible(api, ws_url, spec):
    session = await _user(api)
    client = await WsClient.open(ws_url, spec)
    message_id = await client.send_frame("ping")
    error = await client.receive()
    assert error["type"] == "error"
    assert error["data"]["code"] == "not_authenticated"
    assert error["data"]["inReplyTo"] == message_id
    await client.send_frame("auth", {"token": session["accessToken"]})
    assert (await client.receive())["type"] == "welcome"
    client.close()


@pytest.mark.gen_test(timeout=15)
async def test_no_auth_frame_closes_with_4001(ws_url, spec):
    client = await WsClient.open(ws_url, spec)
    code, _ = await client.closed(timeout=10)
    assert code == 4001


@pytest.mark.gen_test
async def test_wrong_token_in_frame_errors_and_closes_with_4002(api, ws_url, spec, server):
    code, error = await refused_auth_frame(ws_url, spec, "vmt_not-a-real-token-at-all-xxxxxxxxxxxxxxx")
    assert (code, error["code"]) == (4002, "invalid_token")
    assert len(server.context.registry) == 0


@pytest.mark.gen_test
async def test_wrong_token_in_header_is_refused_before_upgrade(ws_url, spec):
    status, body = await refused_handshake(ws_url, spec, token="vmt_wrong-token-xxxxxxxxxxxxxxxxxxxxxxxxxxxx")
    assert (status, body["error"]["code"]) == (401, "invalid_token")


@pytest.mark.gen_test
async def test_expired_token_is_refused(api, ws_url, spec, clock, server):
    session = await _user(api)
    clock.advance(server.context.config.token_lifetime_seconds + 1)
    status, body = await refused_handshake(ws_url, spec, token=session["accessToken"])
    assert (status, body["error"]["code"]) == (401, "token_expired")
    code, error = await refused_auth_frame(ws_url, spec, session["accessToken"])
    assert (code, error["code"]) == (4002, "token_expired")


@pytest.mark.gen_test
async def test_unknown_subprotocol_is_refused_with_unsupported_version(api, ws_url, spec):
    session = await _user(api)
    status, body = await refused_handshake(ws_url, spec, token=session["accessToken"], subprotocols=["vibemuse.v9"])
    assert (status, body["error"]["code"]) == (400, "unsupported_version")
    assert body["error"]["details"]["supported"] == ["vibemuse.v1"]


@pytest.mark.gen_test
async def test_no_subprotocol_means_v1(api, ws_url, spec):
    session = await _user(api)
    client = await WsClient.open(ws_url, spec, token=session["accessToken"], subprotocols=None)
    welcome = await client.receive()
    assert welcome["data"]["protocolVersion"] == "v1"
    assert client.connection.selected_subprotocol is None
    client.close()


@pytest.mark.parametrize(
    "raw, code",
    [
        ("this is not json", "bad_json"),
        ('{"type": "ping", "messageId": "x", "data": {}, "n": NaN}', "bad_json"),
        ("[1, 2, 3]", "invalid_frame"),
        ('{"messageId": "m1", "data": {}}', "invalid_frame"),
        ('{"type": "teleport", "messageId": "m1", "data": {}}', "unknown_type"),
        ('{"type": "ping", "messageId": "m1"}', "invalid_frame"),
        ('{"type": "ping", "messageId": "", "data": {}}', "invalid_frame"),
        ('{"type": "ping", "messageId": "m1", "data": {}, "extra": 1}', "invalid_frame"),
        ('{"type": "ping", "messageId": "m1", "data": [], "timestamp": "x"}', "invalid_frame"),
        ('{"type": "auth", "messageId": "m1", "data": {"token": 42}}', "invalid_frame"),
        ("[" * 5000 + "]" * 5000, "bad_json"),
    ],
)
@pytest.mark.gen_test
async def test_bad_frames_get_error_frames_and_change_nothing(api, ws_url, spec, server, raw, code):
    session = await _user(api)
    client = await WsClient.logged_in(ws_url, spec, session["accessToken"])
    before = {table: count_rows(server, table) for table in ("users", "rooms", "access_tokens")}
    await client.send(raw)
    error = await client.receive_type("error")
    assert error["type"] == "error"
    assert error["data"]["code"] == code
    # The socket survives a bad frame and still works.
    message_id = await client.send_frame("ping")
    pong = await client.receive_type("pong")
    assert pong["type"] == "pong" and pong["data"]["inReplyTo"] == message_id
    assert {table: count_rows(server, table) for table in before} == before
    client.close()


@pytest.mark.gen_test
async def test_error_names_the_refused_message_id(api, ws_url, spec):
    session = await _user(api)
    client = await WsClient.logged_in(ws_url, spec, session["accessToken"])
    await client.send({"type": "teleport", "messageId": "abc-1", "data": {}})
    error = await client.receive_type("error")
    assert error["data"] == {
        "code": "unknown_type",
        "message": error["data"]["message"],
        "details": error["data"]["details"],
        "inReplyTo": "abc-1",
    }
    assert "ping" in error["data"]["details"]["known"]
    client.close()


@pytest.mark.gen_test
async def test_second_auth_frame_is_refused(api, ws_url, spec):
    session = await _user(api)
    client = await WsClient.logged_in(ws_url, spec, session["accessToken"])
    await client.send_frame("auth", {"token": session["accessToken"]})
    assert (await client.receive_type("error"))["data"]["code"] == "already_authenticated"
    client.close()


@pytest.mark.gen_test
async def test_spoofed_from_user_is_refused(api, ws_url, spec):
    alice = await _user(api, "Alice")
    await _user(api, "Bob")
    client = await WsClient.logged_in(ws_url, spec, alice["accessToken"])
    await client.send_frame("ping", fromUser="@bob:test.localhost")
    assert (await client.receive_type("error"))["data"]["code"] == "forbidden"
    await client.send_frame("ping", fromUser="@alice:test.localhost")
    assert (await client.receive_type("pong"))["type"] == "pong"
    client.close()


@pytest.mark.gen_test
async def test_oversized_frame_closes_with_1009(api, ws_url, spec, server):
    session = await _user(api)
    client = await WsClient.logged_in(ws_url, spec, session["accessToken"])
    await client.send_frame("ping", {"padding": "x" * (server.context.config.max_frame_bytes + 1)})
    code, _ = await client.closed()
    assert code == 1009
    await asyncio.sleep(0.05)
    assert len(server.context.registry) == 0


@pytest.mark.gen_test
async def test_several_sockets_per_user_and_the_limit(api, ws_url, spec, server):
    session = await _user(api)
    limit = server.context.config.max_connections_per_user
    clients = [await WsClient.logged_in(ws_url, spec, session["accessToken"]) for _ in range(limit)]
    registry = server.context.registry
    assert registry.count_for(session["user"]["id"]) == limit
    ids = {client.welcome["data"]["connectionId"] for client in clients}
    assert len(ids) == limit
    status, body = await refused_handshake(ws_url, spec, token=session["accessToken"])
    assert (status, body["error"]["code"]) == (429, "too_many_connections")
    code, error = await refused_auth_frame(ws_url, spec, session["accessToken"])
    assert (code, error["code"]) == (4005, "too_many_connections")
    clients[0].close()
    await clients[0].closed()
    for _ in range(50):
        if registry.count_for(session["user"]["id"]) == limit - 1:
            break
        await asyncio.sleep(0.02)
    assert registry.count_for(session["user"]["id"]) == limit - 1
    for client in clients[1:]:
        client.close()


@pytest.mark.gen_test
async def test_logout_closes_sockets_of_that_token_only(api, ws_url, spec):
    first = await _user(api)
    status, second = await api.call(
        "POST", "/api/auth/login", {"username": "alice", "password": "correct horse battery"}, schema="session"
    )
    assert status == 200
    on_first = await WsClient.logged_in(ws_url, spec, first["accessToken"])
    on_second = await WsClient.logged_in(ws_url, spec, second["accessToken"])
    status, _ = await api.call("POST", "/api/auth/logout", token=first["accessToken"])
    assert status == 204
    code, _ = await on_first.closed()
    assert code == 4003
    await on_second.send_frame("ping")
    assert (await on_second.receive_type("pong"))["type"] == "pong"
    on_second.close()


@pytest.mark.gen_test
async def test_ping_pong(api, ws_url, spec):
    session = await _user(api)
    client = await WsClient.logged_in(ws_url, spec, session["accessToken"])
    message_id = await client.send_frame("ping")
    pong = await client.receive_type("pong")
    assert pong["type"] == "pong"
    assert pong["data"]["inReplyTo"] == message_id
    client.close()


@pytest.mark.gen_test
async def test_graceful_shutdown_closes_sockets_with_1001(api, ws_url, spec, server):
    session = await _user(api)
    clients = [await WsClient.logged_in(ws_url, spec, session["accessToken"]) for _ in range(2)]
    shutdown = asyncio.ensure_future(server.shutdown())
    for client in clients:
        code, reason = await client.closed()
        assert code == 1001
        assert reason == "server shutting down"
    await shutdown
    assert len(server.context.registry) == 0


@pytest.mark.gen_test(timeout=15)
async def test_a_socket_is_closed_when_its_token_expires(api, ws_url, spec, clock, server):
    session = await _user(api)
    client = await WsClient.logged_in(ws_url, spec, session["accessToken"])
    clock.advance(server.context.config.token_lifetime_seconds + 1)  # checked at the next heartbeat
    code, _ = await client.closed(timeout=server.context.config.heartbeat_interval_seconds + 3)
    assert code == 4006


@pytest.mark.gen_test
async def test_plain_http_to_the_socket_endpoint_gets_a_json_error(api, spec):
    status, body = await api.call("GET", "/api/ws")
    assert status == 400 and body["error"]["code"] == "invalid_request"
