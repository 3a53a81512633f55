"""Reconnecting: after the server restarts, and after a connection lost between the
server's event and its ack. Nothing is lost, nothing is doubled, and a retried
request gets its first ack."""

from __future__ import annotations

import pytest

from tests.client.helpers import events_until, says
from tests.support.cutting_proxy import CuttingProxy


@pytest.mark.gen_test(timeout=60)
async def test_after_a_server_restart_the_client_resumes_with_nothing_lost_or_doubled(served):
    alice = await served.player("Alice", validate=True)
    bob = await served.player("Bob", auth="frame")  # resumes with since in its auth frame
    before = [await alice.say(f"before {n}") for n in range(3)]
    await events_until(alice, lambda event: event.event_id == before[-1].event_id)
    await served.restart()  # every socket closed with 1001; the same database and port again
    # Sent while Bob is (or is about to be) disconnected: the requests wait and go out on the new socket.
    acks = [await bob.say(f"missed {n}") for n in range(5)]
    assert bob.reconnects == 1 and all(not ack.duplicate for ack in acks)
    heard = await events_until(alice, lambda event: event.event_id == acks[-1].event_id, timeout=30)
    assert says(heard) == [f"missed {n}" for n in range(5)]  # in order, once each
    assert [event.event_id for event in heard if event.type == "vm.room.message"] == \
        [ack.event_id for ack in acks]
    assert alice.reconnects == 1 and alice.position >= acks[-1].stream_position
    marker = await bob.say("after")  # and live frames carry on after the seam
    live = await events_until(alice, lambda event: event.event_id == marker.event_id)
    assert says(live) == ["after"]
    assert alice.resumed.since == before[-1].stream_position  # resumed from the last position seen
    assert alice.violations == []


@pytest.mark.gen_test(timeout=60)
async def test_a_send_whose_ack_was_lost_is_retried_with_its_id_and_gets_the_first_ack(served):
    proxy = await CuttingProxy(served.port).start()
    bob = await served.player("Bob")
    alice = await served.player("Alice", base_url=proxy.base_url)
    # The server stores the event and sends the message, then the ack: the connection dies in between.
    proxy.cut_before(lambda frame: frame["type"] == "ack")
    ack = await alice.say("Only once, please.")
    assert proxy.cuts == 1 and alice.reconnects == 1
    assert ack.duplicate is True  # the first ack again: the retry did nothing new
    heard = await events_until(bob, lambda event: event.event_id == ack.event_id)
    assert (heard[-1].body, heard[-1].stream_position) == ("Only once, please.", ack.stream_position)
    marker = await alice.say("And this once too.")
    assert marker.duplicate is False
    mine = await events_until(alice, lambda event: event.event_id == marker.event_id)
    assert says(mine) == ["Only once, please.", "And this once too."]
    history = await bob.history.room(bob.welcome.location, kind="say").collect()
    assert sorted(says(history)) == ["And this once too.", "Only once, please."]  # stored once
    await alice.close()  # before the proxy stops: no reconnecting to it
    await proxy.stop()


@pytest.mark.gen_test(timeout=60)
async def test_an_event_frame_seen_twice_is_handed_out_once(served):
    """A resume from an older position replays events the client already has: they are dropped."""
    alice = await served.player("Alice")
    bob = await served.player("Bob")
    acks = [await bob.say(f"line {n}") for n in range(3)]
    await events_until(alice, lambda event: event.event_id == acks[-1].event_id)
    alice.position = acks[0].stream_position - 1  # as if the client had not seen them: all replayed
    await served.restart()
    marker = await bob.say("new")
    heard = await events_until(alice, lambda event: event.event_id == marker.event_id, timeout=30)
    assert says(heard) == ["new"] and alice.duplicates_dropped == 3
    assert alice.resumed is not None and alice.resumed.count >= 3  # they were replayed, and dropped


@pytest.mark.gen_test(timeout=60)
async def test_a_refused_token_at_reconnection_is_replaced_by_logging_in_again(served):
    alice = await served.player("Alice")
    first_token = alice.token
    alice.http.token = "vmt_revoked-or-expired"  # what the server will refuse at the next handshake
    await served.restart()
    ack = await alice.say("back with a new token")
    assert ack.duplicate is False and alice.reconnects == 1
    assert alice.token not in (first_token, "vmt_revoked-or-expired")
