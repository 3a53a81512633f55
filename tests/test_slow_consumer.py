"""A client that stops reading is cut off at its bounded queue; the room goes on."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import replace

import pytest

from tests.support.rawws import RawWebSocket

QUEUE_BYTES = 16 * 1024


@pytest.fixture
def database_url(tmp_path):
    return f"sqlite:///{tmp_path}/vibemuse.db"  # the engine does not matter here


@pytest.fixture
def queue_bytes():
    return QUEUE_BYTES


@pytest.fixture
def server_config(config, queue_bytes):
    return replace(config, outbound_queue_bytes=queue_bytes)


async def sleeper_online(world, http_port, server):
    """A raw socket with a small receive window that will stop reading, once its user is online."""
    session = await world.api.register("Sleeper")
    sleeper = await asyncio.to_thread(
        RawWebSocket, "127.0.0.1", http_port,
        headers={"Authorization": f"Bearer {session['accessToken']}"}, receive_buffer=4096,
    )
    for _ in range(100):
        if server.context.registry.is_online(session["user"]["id"]):
            break
        await asyncio.sleep(0.02)
    return sleeper, session["user"]["id"]


@pytest.mark.gen_test(timeout=60)
async def test_a_stalled_reader_is_closed_with_4008_and_others_keep_up(world, http_port, server):
    talker = await world.player("Talker")
    listener = await world.player("Listener")
    sleeper, sleeper_id = await sleeper_online(world, http_port, server)
    registry = server.context.registry
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


@pytest.mark.parametrize("queue_bytes", [256 * 1024])
@pytest.mark.gen_test(timeout=60)
async def test_a_reader_that_stops_then_reads_gets_its_4008_after_whole_frames(world, http_port, server, queue_bytes):
    """What waited for the stalled reader is dropped at the overflow: the close frame comes
    right after what the kernel already held, not behind the whole queue (which a slow reader
    would not get through before the server gave up waiting, seeing 1006 instead)."""
    talker = await world.player("Talker")
    sleeper, sleeper_id = await sleeper_online(world, http_port, server)
    registry = server.context.registry
    # small kernel buffers on the server's side too: what the kernel holds is small next to the queue
    [handler] = registry.connections_of(sleeper_id)
    handler.ws_connection.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sent = 0
    while registry.is_online(sleeper_id) and sent < 3000:
        await talker.ws.send_frame("say", {"text": f"{sent:05d} " + "x" * 1000})
        await talker.ws.receive_type("ack")
        sent += 1
    assert not registry.is_online(sleeper_id), f"still connected after {sent} messages"
    assert sent * 1000 * 3 > queue_bytes  # it really had to overflow (a frame carries its text ~3 times)
    frames, code = await asyncio.to_thread(sleeper.read_until_close)
    sleeper.close()
    assert code == 4008
    texts = [json.loads(payload) for opcode, payload in frames if opcode == 0x1]  # whole frames, every one
    bodies = [t["data"]["event"]["content"]["body"] for t in texts if t["type"] == "message"]
    numbers = [int(body.split()[0]) for body in bodies]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # in order, none missing before the cut
    assert sum(len(payload) for _, payload in frames) < queue_bytes // 2  # the queue itself was dropped
