"""The outbox inside a whole server: resumed after a restart, and shown to admins (spec 18.8)."""

from __future__ import annotations

import dataclasses

import pytest

from tests.conftest import FAST_HASHER
from tests.support.clock import FakeClock
from tests.support.peer import Peer, until
from tests.support.request_signer import ALPHA, BETA, KEY, authorizer, verifies
from vibemuse.app import VibeMuseServer
from vibemuse.federation.sender import FederationSeams
from vibemuse.storage.outbox_txns import op_enqueue


def page(number: int) -> dict:
    return {"event_id": f"$restart{number:036d}", "type": "vm.page", "sender": "@alice:test.localhost",
            "origin_server_ts": 1000 + number, "content": {"kind": "page", "body": f"hi {number}"},
            "recipients": ["@bob:beta.test"]}


async def queue_pages(server: VibeMuseServer, numbers: range) -> list[str]:
    """Store pages with their outbox rows, as a page service does, and wake the sender."""
    now = server.context.clock()
    for number in numbers:
        event = page(number)
        await server.context.storage.append_events([event], transaction=None, now_ms=now,
                                                   ops=[op_enqueue(event, [BETA], now)])
    server.sender.wake([BETA])
    return [page(number)["event_id"] for number in numbers]


@pytest.mark.gen_test(timeout=30)
async def test_a_restarted_server_sends_what_it_had_queued(config, io_loop):
    config = dataclasses.replace(config, federation_private_addresses=True)  # the peer is found on loopback
    clock = FakeClock()
    first = await VibeMuseServer.create(config, clock=clock, hasher=FAST_HASHER, federation=FederationSeams())
    first.start_background_tasks()
    queued = await queue_pages(first, range(3))
    await until(lambda: first.sender.queues[BETA].failures == 1, "beta unknown to the first run")
    await first.shutdown()

    peer = Peer().start()
    seams = FederationSeams(base_url_of={BETA: peer.base_url}.get, authorize=authorizer(KEY, ALPHA, clock))
    second = await VibeMuseServer.create(config, clock=clock, hasher=FAST_HASHER, federation=seams)
    try:
        second.start_background_tasks()
        await until(lambda: peer.event_ids == queued, "delivered after the restart")
        queue = second.sender.queues[BETA]
        await until(lambda: queue.transaction is None and queue.finishing.done(), "answer recorded")
        state = await second.context.outbox.state(BETA)
        assert (state.failures, state.delivered, state.last_success_ts) == (0, 3, clock())
        assert verifies(peer.received[0].authorization, KEY, method="PUT", uri=peer.received[0].uri,
                        content=peer.received[0].body)
    finally:
        await second.shutdown()
        await peer.stop()


def _failures_stored(server, count: int):
    async def stored() -> bool:
        return (await server.sender.outbox.state(BETA)).failures == count
    return stored


@pytest.mark.gen_test(timeout=30)
async def test_admins_see_each_destinations_queue_others_are_refused(world, server, clock):
    admin = await world.player("Root", role="admin")
    builder = await world.player("Wizard", role="builder")
    player = await world.player("Alice")
    await queue_pages(server, range(2))
    await until(lambda: server.sender.queues[BETA].failures == 1, "no address for beta: a failure")
    await until(_failures_stored(server, 1), "and the failure is stored (what the endpoint reads)")
    clock.advance(0.5)  # less than the first backoff (1-2 s): no second attempt, however slow the machine
    status, listing = await world.api.call("GET", "/api/admin/federation", token=admin.token,
                                           schema="federation-queues")
    assert status == 200
    (beta,) = listing["destinations"]
    assert beta["destination"] == BETA
    assert (beta["depth"], beta["oldestPendingAgeMs"], beta["consecutiveFailures"]) == (2, 500, 1)
    assert beta["nextAttemptTs"] == server.sender.queues[BETA].next_attempt_ts
    assert (beta["lastSuccessTs"], beta["lastDeliveryLagMs"], beta["delivered"], beta["refused"]) == (None, None, 0, 0)
    for who in (builder, player):
        status, refusal = await world.api.call("GET", "/api/admin/federation", token=who.token)
        assert (status, refusal["error"]["code"]) == (403, "forbidden")
    status, refusal = await world.api.call("GET", "/api/admin/federation")
    assert (status, refusal["error"]["code"]) == (401, "not_authenticated")
