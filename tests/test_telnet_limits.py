"""Limits on the telnet port are the server's limits: login throttling and rate limits
shared with HTTP and WebSocket, connections per address, per user and server-wide, and
a client that does not read."""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import pytest

from tests.support.client import PASSWORD, WsClient
from tests.support.security import (  # noqa: F401 (overrides and server_config are fixtures)
    MEMORY_ONLY,
    bucket,
    limits,
    overrides,
    server_config,
)
from tests.support.telnet import TelnetClient


@pytest.fixture
def telnet_port(server, http_server):
    return server.listen_telnet(0, "127.0.0.1")


@pytest.fixture
def clients():
    opened: list[TelnetClient] = []
    yield opened
    for client in opened:
        client.close()


@pytest.fixture
def connect(telnet_port, clients):
    async def open_client(**options) -> TelnetClient:
        client = await TelnetClient.open(telnet_port, **options)
        clients.append(client)
        return client

    return open_client


def set_config(server, **changes):
    server.context.config = dataclasses.replace(server.context.config, **changes)


@pytest.mark.parametrize("overrides", [limits(login_account_address=bucket(2))], ids=["two-guesses"])
@pytest.mark.gen_test(timeout=30)
async def test_wrong_passwords_are_throttled_with_the_http_logins(connect, api, spec, server):
    await api.register("Alice")
    client = await connect()
    for _ in range(2):
        client.send_line("connect Alice wrong password")
        await client.expect("Wrong username or password.")
    client.send_line(f"connect Alice {PASSWORD}")
    await client.expect("Too many login account address requests")
    status, body = await api.call("POST", "/api/auth/login", {"username": "Alice", "password": "wrong again"})
    assert status == 429 and body["error"]["details"]["action"] == "login_account_address"
    assert not server.context.registry.is_online("@alice:test.localhost")


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [limits(register_address=bucket(1))], ids=["one-registration"])
@pytest.mark.gen_test(timeout=30)
async def test_registrations_share_the_address_limit(connect, api):
    client = await connect()
    await client.login("create", "Alice")
    status, body = await api.call("POST", "/api/auth/register", {"username": "Bob", "password": PASSWORD})
    assert status == 429 and body["error"]["code"] == "rate_limited"


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [limits(speech=bucket(2))], ids=["two-says"])
@pytest.mark.gen_test(timeout=30)
async def test_speech_is_rate_limited_per_user(connect):
    client = await connect()
    await client.login("create", "Alice")
    for word in ("one", "two"):
        client.send_line(f'"{word}')
        await client.expect(f'You say, "{word}"')
    client.send_line('"three')
    await client.expect("Too many speech requests")
    assert 'You say, "three"' not in client.text


@MEMORY_ONLY
@pytest.mark.gen_test(timeout=30)
async def test_connections_per_address_count_telnet_and_sockets(connect, server, api, ws_url, spec):
    set_config(server, max_connections_per_address=2)
    first = await connect()
    await first.expect("QUIT")
    session = await api.register("Bob")
    ws = await WsClient.logged_in(ws_url, spec, session["accessToken"])
    third = await connect()
    assert "Too many connections from your address." in await third.closed()
    ws.close()
    for _ in range(100):
        if server.context.registry.count_for_address("127.0.0.1") < 2:
            break
        await asyncio.sleep(0.02)
    fourth = await connect()
    await fourth.expect("QUIT")


@MEMORY_ONLY
@pytest.mark.gen_test(timeout=30)
async def test_a_full_server_says_so(connect, server):
    first = await connect()
    await first.expect("QUIT")
    set_config(server, max_connections=1)
    second = await connect()
    assert "The server is full" in await second.closed()


@MEMORY_ONLY
@pytest.mark.gen_test(timeout=30)
async def test_connections_per_user_count_telnet_and_sockets(connect, api, ws_url, spec, server):
    session = await api.register("Alice")
    sockets = [await WsClient.logged_in(ws_url, spec, session["accessToken"]) for _ in range(3)]
    client = await connect()
    client.send_line(f"connect Alice {PASSWORD}")
    await client.expect("At most 3 connections per user.")
    sockets[0].close()
    for _ in range(100):
        if server.context.registry.count_for("@alice:test.localhost") < 3:
            break
        await asyncio.sleep(0.02)
    await client.login("connect", "Alice")
    for ws in sockets[1:]:
        ws.close()


@MEMORY_ONLY
@pytest.mark.gen_test(timeout=30)
async def test_a_client_that_does_not_read_is_cut(connect, server, world):
    set_config(server, outbound_queue_bytes=16 * 1024)
    client = await connect()
    await client.login("create", "Alice")
    (connection,) = server.telnet.open
    connection.stream.max_write_buffer_size = 16 * 1024  # as a connection opened now would get
    # Small kernel buffers on both sides, so a few lines fill them.
    connection.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    bob = await world.player("Bob")
    client.reader._transport.pause_reading()  # stop reading: the kernel buffers fill up
    for _ in range(100):
        await bob.ws.send_frame("say", {"text": "x" * 3000})
        await bob.ws.receive_type("ack")
        if not server.context.registry.is_online("@alice:test.localhost"):
            break
    assert not server.context.registry.is_online("@alice:test.localhost")
