"""Heartbeat: silent peers are dropped with 4004, live ones are kept."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from tests.support.client import WsClient
from tests.support.rawws import RawWebSocket


@pytest.fixture
def server_config(config):
    return replace(config, heartbeat_interval_seconds=0.2, heartbeat_timeout_seconds=0.7)


@pytest.mark.gen_test(timeout=20)
async def test_a_peer_that_never_answers_pings_is_closed_with_4004(api, http_port, server, spec):
    session = await api.register("Alice")
    raw = await asyncio.to_thread(
        RawWebSocket, "127.0.0.1", http_port, headers={"Authorization": f"Bearer {session['accessToken']}"}
    )
    frames, code = await asyncio.to_thread(raw.read_until_close)
    raw.close()
    texts = [json.loads(payload) for opcode, payload in frames if opcode == 0x1]
    pings = [payload for opcode, payload in frames if opcode == 0x9]
    assert texts[0]["type"] == "welcome"
    spec.check_server_frame(texts[0])
    assert len(pings) >= 1
    assert code == 4004
    for _ in range(50):
        if len(server.context.registry) == 0:
            break
        await asyncio.sleep(0.02)
    assert len(server.context.registry) == 0


@pytest.mark.gen_test(timeout=20)
async def test_a_live_peer_outlasts_many_timeouts(api, ws_url, spec, server):
    session = await api.register("Alice")
    client = await WsClient.logged_in(ws_url, spec, session["accessToken"])
    await asyncio.sleep(2.5)  # more than three heartbeat timeouts
    message_id = await client.send_frame("ping")
    pong = await client.receive_type("pong")
    assert pong["data"]["inReplyTo"] == message_id
    assert server.context.registry.count_for(session["user"]["id"]) == 1
    client.close()
