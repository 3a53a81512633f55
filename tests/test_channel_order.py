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
from vibemuse.protocol import content as compose
from vibemuse.protocol.channel_chain import GENESIS, chain_of, verify_stamp
from vibemuse.protocol.events import build_event
from vibemuse.storage import Storage, create_database_engine, ensure_schema
from vibemuse.storage import channel_txns as ops
from vibemuse.storage.chain_txns import op_keep_replica, op_keep_stamps, op_sequence
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


@pytest.mark.gen_test(timeout=30)
async def test_events_stored_together_take_consecutive_places_and_a_copy_keeps_them_in_one_write(
        world, server, other_database_url):
    alice = await world.player("Alice")
    channel_id = await create(world, alice)
    context, now = server.context, server.context.clock()
    events = [build_event(event_type="vm.channel.message", sender=alice.user_id, origin="test.localhost",
                          origin_server_ts=now + number, signing_key=context.keyring.current, channel_id=channel_id,
                          content=compose.channel_message("Public", "Alice", f"batch {number}", 4000))
              for number in range(60)]
    await context.storage.append_events(events, transaction=None, now_ms=now, ops=[
        op_sequence(channel_id, "test.localhost", context.keyring.current, events, now)])
    stamped = await order_of(server, channel_id)
    assert [s.stamp["seq"] for s in stamped] == list(range(1, 63))  # create, join, then the 60 in their order
    assert [s.event["event_id"] for s in stamped[2:]] == [event["event_id"] for event in events]
    for before, after in zip(stamped, stamped[1:]):
        assert after.stamp["prev"] == chain_of(before.stamp)
    head = await context.storage.channel_head(channel_id)
    assert head == (62, chain_of(stamped[-1].stamp))

    engine = create_database_engine(other_database_url)
    copy = Storage(engine, threads=1)  # another server's copy of the channel
    try:
        ensure_schema(engine, auto_migrate=False)
        held = await context.storage.get_channel(channel_id)
        await copy.append_events([], transaction=None, now_ms=now, ops=[op_keep_replica(held, [], "beta.test")])
        await copy.append_events([s.event for s in stamped], transaction=None, now_ms=now,
                                 ops=[op_keep_stamps(channel_id, [s.stamp for s in stamped])])
        kept = await copy.stamped_after(channel_id, 0, 1000)
        assert [(s.event, s.stamp) for s in kept] == [(s.event, s.stamp) for s in stamped]
        assert await copy.channel_head(channel_id) == head
    finally:
        copy.close()
        engine.dispose()
