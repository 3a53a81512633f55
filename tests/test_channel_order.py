"""The order of a channel at its home (storage/chain_txns.py): every event of a channel gets the
next sequence number and a stamp signed by the home, each naming its predecessor, in the
event's own database transaction; events for other servers taking part are queued with their
stamps. Real sockets, SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from tests.conftest import count_rows
from tests.support.client import acked
from tests.test_channels import create, three_on_a_channel
from vibemuse.protocol.channel_chain import GENESIS, chain_of, verify_stamp
from vibemuse.storage import channel_txns as ops
from vibemuse.storage.channel_txns import MemberRecord


def home_keys(server):
    keyring = server.context.keyring
    return {keyring.current.key_id: keyring.current.verify_key}


async def order_of(server, channel_id):
    return await server.context.storage.stamped_after(channel_id, 0, 1000)


@pytest.mark.gen_test(timeout=30)
async def test_every_event_of_a_channel_has_its_place_in_one_chain(world, server):
    alice, bob, carol, channel_id = await three_on_a_channel(world)
    await acked(bob.ws, "channel", {"channelId": channel_id, "text": "one"})
    await acked(carol.ws, "channel", {"channelId": channel_id, "text": "two"})
    await acked(alice.ws, "channel_update", {"channelId": channel_id, "topic": "order"})
    await acked(carol.ws, "leave_channel", {"channelId": channel_id})
    stamped = await order_of(server, channel_id)
    kinds = [(s.event["type"], s.event["content"].get("membership") or s.event["content"].get("body"))
             for s in stamped]
    assert kinds == [("vm.channel.create", None), ("vm.channel.member", "join"), ("vm.channel.member", "join"),
                     ("vm.channel.member", "join"), ("vm.channel.message", "one"), ("vm.channel.message", "two"),
                     ("vm.channel.settings", None), ("vm.channel.member", "leave")]
    head = GENESIS
    for seq, item in enumerate(stamped, start=1):
        assert item.stamp["seq"] == seq and item.stamp["prev"] == head
        head = verify_stamp(item.stamp, item.event, home_keys(server))
    assert await server.context.storage.channel_head(channel_id) == (len(stamped), head)
    stored = await server.context.storage.events_by_id([s.event["event_id"] for s in stamped])
    positions = [stored[s.event["event_id"]]["unsigned"]["stream_position"] for s in stamped]
    assert positions == sorted(positions)  # the channel's order is the order of the stream here
    assert count_rows(server, "federation_outbox") == 0  # nobody elsewhere takes part


@pytest.mark.gen_test(timeout=30)
async def test_a_retry_takes_no_second_place_and_each_channel_has_its_own_order(world, server):
    alice = await world.player("Alice")
    public, other = await create(world, alice), await create(world, alice, name="Other")
    frame = {"channelId": public, "text": "once"}
    await alice.ws.send_frame("channel", frame, messageId="m-1")
    first = await alice.ws.receive_type("ack")
    await alice.ws.send_frame("channel", frame, messageId="m-1")  # the same messageId again
    assert (await alice.ws.receive_type("ack"))["data"]["eventId"] == first["data"]["eventId"]
    assert [s.stamp["seq"] for s in await order_of(server, public)] == [1, 2, 3]  # create, join, "once"
    assert [s.stamp["seq"] for s in await order_of(server, other)] == [1, 2]


@pytest.mark.gen_test(timeout=30)
async def test_events_are_queued_with_their_stamps_for_the_servers_of_remote_members(world, server):
    alice = await world.player("Alice")
    channel_id = await create(world, alice)
    now = server.context.clock()
    for user_id in ("@bob:beta.test", "@carol:gamma.test", "@dave:beta.test"):  # as a remote join makes them
        await server.context.storage.append_events([], transaction=None, now_ms=now, ops=[
            ops.op_add_member(MemberRecord(channel_id, user_id, "member", None, None, None, now))])
    await acked(alice.ws, "channel", {"channelId": channel_id, "text": "to everyone"})
    with server.context.storage.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT destination, event_json FROM federation_outbox ORDER BY outbox_id").fetchall()
    assert sorted(row[0] for row in rows) == ["beta.test", "gamma.test"]  # once per server, not per member
    relayed = json.loads(rows[0][1])
    stamp = relayed.pop("unsigned")["channel_stamp"]
    assert relayed["content"]["body"] == "to everyone"
    assert verify_stamp(stamp, relayed, home_keys(server)) == chain_of(stamp)
    assert stamp["seq"] == 3 and stamp["home"] == "test.localhost"
