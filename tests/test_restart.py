"""Everything that matters survives a restart: memberships, bans, blocks, havens,
offline pages and their receipts, locations and the signing key."""

from __future__ import annotations

import pytest

from tests.conftest import FAST_HASHER
from tests.support.client import Api, WsClient, acked
from tests.support.world import Player
from vibemuse.app import VibeMuseServer


async def start(config, clock):
    server = await VibeMuseServer.create(config, clock=clock, hasher=FAST_HASHER)
    port = server.listen(0, "127.0.0.1")
    return server, f"http://127.0.0.1:{port}"


@pytest.mark.gen_test(timeout=30)
async def test_state_survives_a_restart(config, clock, spec):
    server, base = await start(config, clock)
    api = Api(base, spec)
    ws_url = base.replace("http", "ws") + "/api/ws"
    alice = Player("Alice", await api.register("Alice"))
    bob = Player("Bob", await api.register("Bob"))
    carol = Player("Carol", await api.register("Carol"))
    dave = Player("Dave", await api.register("Dave"))
    key_id = server.context.keyring.current.key_id
    a = await WsClient.logged_in(ws_url, spec, alice.token)
    b = await WsClient.logged_in(ws_url, spec, bob.token)
    c = await WsClient.logged_in(ws_url, spec, carol.token)
    status, _ = await api.call("POST", "/api/communication/channels", {"name": "Public"}, token=alice.token)
    assert status == 201
    await acked(b, "join_channel", {"channelId": "public", "alias": "pub"})
    await acked(c, "join_channel", {"channelId": "public"})
    await acked(a, "channel_moderate", {"channelId": "public", "action": "ban", "user": "carol", "reason": "rude"})
    await acked(b, "block", {"user": "carol", "blocked": True})
    await acked(b, "set_haven", {"haven": True, "message": "Away for the weekend."})
    page = await acked(a, "page", {"to": ["dave"], "text": "See you Monday."})
    assert page["data"]["offline"] == [dave.user_id]
    for socket in (a, b, c):
        socket.close()
    await server.shutdown()

    server, base = await start(config, clock)
    try:
        api = Api(base, spec)
        ws_url = base.replace("http", "ws") + "/api/ws"
        assert server.context.keyring.current.key_id == key_id
        d = await WsClient.logged_in(ws_url, spec, dave.token)  # tokens survive too
        waiting = (await d.receive_type("message"))["data"]["event"]
        assert waiting["content"]["body"] == "See you Monday." and waiting["event_id"] == page["data"]["eventId"]
        a = await WsClient.logged_in(ws_url, spec, alice.token)
        receipt = await a.receive_type("page_receipt")
        assert receipt["data"]["event"]["content"]["relates_to"] == page["data"]["eventId"]
        b = await WsClient.logged_in(ws_url, spec, bob.token)
        c = await WsClient.logged_in(ws_url, spec, carol.token)
        message_id = await c.send_frame("join_channel", {"channelId": "public"})
        assert (await c.receive_type("error"))["data"] == {
            "code": "banned", "message": "You are banned from Public.", "details": {"reason": "rude"},
            "inReplyTo": message_id}
        await c.send_frame("page", {"to": ["bob"], "text": "hello?"})
        assert (await c.receive_type("error"))["data"]["code"] == "not_accepting_pages"  # the block
        await d.send_frame("page", {"to": ["bob"], "text": "hello?"})
        error = (await d.receive_type("error"))["data"]
        assert error["message"] == "Bob is not accepting pages: Away for the weekend."  # the haven
        await acked(a, "channel", {"channelId": "public", "text": "Still here?"})
        assert (await b.receive_type("channel_message"))["data"]["event"]["content"]["body"] == "Still here?"
        for socket in (a, b, c, d):
            socket.close()
    finally:
        await server.shutdown()
