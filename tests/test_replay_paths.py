"""A replay picked in memory from the shared tail of events (services/tails.py) is the
one the per-user queries give (storage/sync_txns.py): moves, channel changes, pages,
announcements — and the tail is brought up to date with what was stored after it was read."""

from __future__ import annotations

import pytest

from tests.support.client import acked


async def both_ways(server, user_id, location, since, channels_now):
    sync = server.context.sync
    user = await server.context.storage.get_user(user_id)
    shared = await sync.replay(user, location, since, channels_now)
    tails_get = sync.tails.get

    async def no_tail(since):
        return None

    sync.tails.get = no_tail
    try:
        alone = await sync.replay(user, location, since, channels_now)
    finally:
        sync.tails.get = tails_get
    return shared, alone


def positions(replay):
    return [event["unsigned"]["stream_position"] for event in replay.events]


@pytest.mark.gen_test(timeout=40)
async def test_the_shared_tail_and_the_per_user_queries_pick_the_same_replay(world, server):
    wizard = await world.player("Wizard", role="admin")
    library = await world.room("Library", wizard)
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    carol = await world.player("Carol")
    await world.api.call("POST", "/api/communication/channels", {"name": "Public"}, token=bob.token)
    await acked(alice.ws, "join_channel", {"channelId": "public"})
    since = (await acked(bob.ws, "say", {"text": "before"}))["data"]["streamPosition"]
    sync = server.context.sync
    # read now, and kept (the test clock stands still): what follows comes from the event writer
    assert await sync.tails.get(since) is not None

    await acked(bob.ws, "say", {"text": "square"})
    await acked(carol.ws, "page", {"to": ["alice"], "text": "to alice"})
    await acked(bob.ws, "page", {"to": ["carol"], "text": "not for alice"})
    await acked(bob.ws, "channel", {"channelId": "public", "text": "on the channel"})
    await acked(alice.ws, "join_room", {"roomId": library})
    await acked(bob.ws, "say", {"text": "square, alice gone"})
    await acked(alice.ws, "leave_channel", {"channelId": "public"})
    await acked(bob.ws, "channel", {"channelId": "public", "text": "alice left the channel"})
    await acked(wizard.ws, "wall", {"text": "to everyone"})

    shared, alone = await both_ways(server, alice.user_id, library, since, set())
    assert shared.gap is None and alone.gap is None
    assert positions(shared) == positions(alone) and shared.upto == alone.upto
    bodies = [event["content"].get("body") for event in shared.events]
    assert [b for b in bodies if b] == ["square", "to alice", "on the channel", "to everyone"]
    assert [e["content"]["membership"] for e in shared.events if e["type"] == "vm.room.member"] == ["leave", "join"]
    assert positions(shared) == sorted(set(positions(shared)))

    for_bob = await both_ways(server, bob.user_id, bob.ws.welcome["data"]["location"], since, {"!none"})
    assert positions(for_bob[0]) == positions(for_bob[1]) and "not for alice" in [
        e["content"].get("body") for e in for_bob[0].events]


@pytest.mark.gen_test(timeout=40)
async def test_too_many_positions_behind_reads_per_user(world, server):
    alice = await world.player("Alice")
    since = (await acked(alice.ws, "say", {"text": "first"}))["data"]["streamPosition"]
    server.context.sync.tails.stored([{"type": "vm.system"}], [since + server.context.config.resume_max_events + 1])
    assert await server.context.sync.tails.get(since) is None


@pytest.mark.gen_test(timeout=40)
async def test_a_deletion_is_not_undone_by_a_tail_read_before_it(world, server):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    since = (await acked(bob.ws, "say", {"text": "before"}))["data"]["streamPosition"]
    said = await acked(bob.ws, "say", {"text": "regretted"})
    first, _ = await both_ways(server, alice.user_id, alice.ws.welcome["data"]["location"], since, set())
    assert [e["content"].get("body") for e in first.events] == ["regretted"]

    await acked(bob.ws, "delete_message", {"eventId": said["data"]["eventId"]})
    shared, alone = await both_ways(server, alice.user_id, alice.ws.welcome["data"]["location"], since, set())
    assert positions(shared) == positions(alone)
    assert [e["content"] for e in shared.events] == [e["content"] for e in alone.events]
    assert "regretted" not in str(shared.events)
