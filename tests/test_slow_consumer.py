"""A client that stops reading is cut off at its bounded queue; the room goes on."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from tests.support.rawws import RawWebSocket

QUEUE_BYTES = 16 * 1024


@pytest.fixture
def database_url(tmp_path):
    return f"sqlite:///{tmp_path}/vibemuse.db"  # the engine does not matter here


@pytest.fixture
def server_config(config):
    return replace(config, outbound_queue_bytes=QUEUE_BYTES)


@pytest.mark.gen_test(timeout=60)
async def test_a_stalled_reader_is_closed_with_4008_and_others_keep_up(world, http_port, server):
    talker = await world.player("Talker")
    listener = await world.player("Listener")
    sleeper_session = await world.api.register("Sleeper")
    sleeper = await asyncio.to_thread(
        RawWebSocket, "127.0.0.1", http_port,
        headers={"Authorization": f"Bearer {sleeper_session['accessToken']}"}, receive_buffer=4096,
    )
    registry = server.context.registry
    sleeper_id = sleeper_session["user"]["id"]
    for _ in range(100):
        if registry.is_online(sleeper_id):
            break
        await asyncio.sleep(0.02)
    text = "x" * 1000
    sent = 0
    while registry.is_online(sleeper_id) and sent < 3000:
        await talker.ws.send_frame("say", {"text": text})
        ack = await talker.ws.receive_type("ack") if talker.ws.connection.close_code is None else None
        assert ack, (talker.ws.connection.close_code, talker.ws.connection.close_reason, sent)
        sent += 1
        got = await listener.ws.receive_type("message")  # the listener keeps up throughout
        assert got["data"]["event"]["content"]["body"] == text
    assert not registry.is_online(sleeper_id), f"still connected after {sent} messages"
    assert sent * len(text) * 3 > QUEUE_BYTES  # it really had to overflow
    frames, code = await asyncio.to_thread(sleeper.read_until_close)
    sleeper.close()
    assert code == 4008
    texts = [json.loads(payload) for opcode, payload in frames if opcode == 0x1]
    assert texts[0]["type"] == "welcome"
    assert len([t for t in texts if t["type"] == "message"]) < sent  # it was cut off, not served everything
