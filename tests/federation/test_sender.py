"""The outbox sender against a real peer on loopback (``tests/support/peer.py``), on SQLite and PostgreSQL.

Time moves by the clock seam: a test advances the fake clock past the next
attempt and wakes the queue; nothing here sleeps for the backoff.
"""

from __future__ import annotations

import random

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.support.clock import FakeClock
from tests.support.peer import Peer, until
from tests.support.request_signer import ALPHA, BETA, KEY, authorizer, verifies
from vibemuse.federation.sender import MAX_BODY_BYTES, FederationSeams, FederationSender, SenderSettings
from vibemuse.federation.server_keys import KeyRing
from vibemuse.services.events import EventWriter
from vibemuse.storage import Storage
from vibemuse.storage.outbox import OutboxStore
from vibemuse.storage.outbox_txns import op_enqueue


class Alpha:
    """The sending side: storage, an EventWriter that queues, the sender; the peer plays beta."""

    def __init__(self, storage: Storage, peer: Peer, *, retry_max_ms: int = 300_000, timeout: float = 10.0,
                 peers: dict[str, str] | None = None):
        self.storage, self.peer, self.clock = storage, peer, FakeClock()
        self.outbox = OutboxStore(storage)
        peers = {BETA: peer.base_url} if peers is None else peers
        self.sender = FederationSender(
            self.outbox, settings=SenderSettings(ALPHA, retry_max_ms=retry_max_ms, request_timeout_seconds=timeout),
            seams=FederationSeams(base_url_of=peers.get, authorize=authorizer(KEY, ALPHA, self.clock)),
            http=AsyncHTTPClient(force_instance=True), clock=self.clock, rng=random.Random(7))
        self.writer = EventWriter(storage, broadcaster=None, keyring=lambda: KeyRing(KEY, {}),  # type: ignore[arg-type]
                                  server_name=ALPHA, clock=self.clock, on_enqueued=self.sender.wake)
        self.sent: list[str] = []  # event ids, in the order they were queued

    async def page(self, count: int = 1, per_transaction: int = 1, padding: int = 0) -> None:
        """Store ``count`` pages to @bob:beta.test, each queued for beta in the same transaction
        (each ``padding`` characters longer than a short line)."""
        for start in range(0, count, per_transaction):
            events = [self.writer.make("vm.page", "@alice:alpha.test",
                                       {"kind": "page", "body": f"hi {n}" + "x" * padding},
                                       recipients=["@bob:beta.test"])
                      for n in range(start, min(count, start + per_transaction))]
            await self.writer.store(events, None, ops=[op_enqueue(e, [BETA], self.clock()) for e in events])
            self.sent += [e["event_id"] for e in events]

    @property
    def queue(self):
        return self.sender.queues[BETA]

    async def drained(self) -> bool:
        return not await self.outbox.pending(BETA, 1)

    async def retry_when_due(self) -> None:
        """Move the clock to the next attempt and wake the queue (what its timer would do)."""
        self.clock.now_ms = max(self.clock.now_ms, self.queue.next_attempt_ts)
        self.queue.wake()


@pytest.fixture
def peer(io_loop):
    peer = Peer().start()
    yield peer
    io_loop.run_sync(peer.stop)


@pytest.fixture
def alpha(io_loop, storage, peer):
    alpha = Alpha(storage, peer)
    yield alpha
    io_loop.run_sync(alpha.sender.stop)


@pytest.mark.gen_test(timeout=30)
async def test_everything_queued_arrives_in_order_in_signed_batches_of_at_most_50(alpha, peer):
    await alpha.page(120, per_transaction=10)
    await alpha.sender.start()
    await until(alpha.drained, "outbox empty")
    assert peer.event_ids == alpha.sent
    assert [len(r.body["pdus"]) for r in peer.received] == [50, 50, 20]
    for received in peer.received:
        assert received.uri == f"/federation/v1/send/{received.txn_id}"
        assert received.body["origin"] == ALPHA and received.body["edus"] == []
        assert verifies(received.authorization, KEY, method="PUT", uri=received.uri, content=received.body)
    assert len({r.txn_id for r in peer.received}) == 3
    (stats,) = await alpha.outbox.queue_stats()
    assert (stats.depth, stats.state.delivered, stats.state.refused, stats.state.failures) == (0, 120, 0, 0)


@pytest.mark.gen_test(timeout=30)
async def test_a_page_stored_while_running_wakes_its_queue(alpha, peer):
    await alpha.sender.start()
    assert BETA not in alpha.sender.queues  # nothing queued yet: no queue
    await alpha.page(1)
    await until(lambda: len(peer.event_ids) == 1, "delivered")
    assert peer.event_ids == alpha.sent


@pytest.mark.gen_test(timeout=30)
async def test_one_transaction_in_flight_what_comes_meanwhile_goes_next(alpha, peer):
    peer.answer = lambda n: "hang" if n == 0 else "ok"
    await alpha.page(3)
    await alpha.sender.start()
    await until(lambda: peer.in_flight == 1, "first transaction arrived")
    for _ in range(5):
        await alpha.page(1)  # each wakes the queue while the first transaction hangs
    peer.release.set()
    await until(alpha.drained, "outbox empty")
    assert peer.max_in_flight == 1
    assert [len(r.body["pdus"]) for r in peer.received] == [3, 5]
    assert peer.event_ids == alpha.sent


@pytest.mark.gen_test(timeout=30)
async def test_a_failed_batch_is_sent_again_unchanged_with_the_same_txn_id(alpha, peer):
    peer.answer = lambda n: "error" if n == 0 else "ok"
    await alpha.page(2)
    await alpha.sender.start()
    await until(lambda: alpha.queue.failures == 1, "first attempt failed")
    await alpha.page(1)  # queued after the failure: not part of the retried batch
    await alpha.retry_when_due()
    await until(alpha.drained, "outbox empty")
    first, retry, later = peer.received
    assert (first.status, retry.status, later.status) == (500, 200, 200)
    assert retry.txn_id == first.txn_id and retry.body == first.body
    assert [p["event_id"] for p in retry.body["pdus"]] == alpha.sent[:2]
    assert later.txn_id != first.txn_id and [p["event_id"] for p in later.body["pdus"]] == alpha.sent[2:]


@pytest.mark.gen_test(timeout=30)
async def test_a_hung_request_times_out_and_is_retried(storage, peer):
    alpha = Alpha(storage, peer, timeout=0.3)
    peer.answer = lambda n: "hang" if n == 0 else "ok"
    try:
        await alpha.page(2)
        await alpha.sender.start()
        await until(lambda: alpha.sender.queues[BETA].failures == 1, "timed out")
        await alpha.retry_when_due()
        await until(alpha.drained, "outbox empty")
        assert [r.txn_id for r in peer.received] == [peer.received[0].txn_id] * 2
        assert peer.received[1].status == 200
    finally:
        await alpha.sender.stop()


@pytest.mark.gen_test(timeout=30)
async def test_backoff_starts_within_seconds_grows_with_jitter_and_is_capped(storage, peer):
    alpha = Alpha(storage, peer, retry_max_ms=20_000)
    peer.answer = lambda n: "error"
    delays = []
    try:
        await alpha.page(1)
        await alpha.sender.start()
        for failures in range(1, 9):
            await until(lambda: alpha.sender.queues[BETA].failures == failures, f"failure {failures}")
            delays.append(alpha.queue.next_attempt_ts - alpha.clock())
            await alpha.retry_when_due()
        await until(lambda: len(peer.received) == 9, "ninth attempt")
        state = await alpha.outbox.state(BETA)
    finally:
        await alpha.sender.stop()
    assert 1_000 <= delays[0] <= 2_000
    assert delays[:4] == sorted(delays[:4]) and delays[3] >= 4 * delays[0]  # doubling: 1-2, 2-4, 4-8, 8-16 s
    assert all(delay <= 20_000 for delay in delays) and all(delay >= 10_000 for delay in delays[4:])
    assert len(set(delays[4:])) > 1  # jittered, even at the cap
    assert state.failures >= 8 and state.next_attempt_ts > 0


@pytest.mark.gen_test(timeout=30)
async def test_429_waits_as_long_as_retry_after_says(alpha, peer):
    peer.answer = lambda n: ("busy", 7) if n == 0 else "ok"
    await alpha.page(1)
    await alpha.sender.start()
    await until(lambda: alpha.queue.failures == 1, "refused as busy")
    assert alpha.queue.next_attempt_ts - alpha.clock() == 7_000
    await alpha.retry_when_due()
    await until(alpha.drained, "outbox empty")
    assert [r.status for r in peer.received] == [429, 200]


@pytest.mark.gen_test(timeout=30)
async def test_contact_from_the_destination_drops_the_backoff_and_sends_at_once(alpha, peer):
    peer.answer = lambda n: "error" if n == 0 else "ok"
    await alpha.page(2)
    await alpha.sender.start()
    await until(lambda: alpha.queue.failures == 1, "first attempt failed")
    assert alpha.queue.next_attempt_ts > alpha.clock()
    await alpha.sender.contacted(BETA)  # the clock does not move: only the contact lets it retry
    await until(alpha.drained, "outbox empty")
    assert peer.event_ids == alpha.sent
    state = await alpha.outbox.state(BETA)
    assert (state.failures, state.last_contact_ts, state.last_success_ts) == (0, alpha.clock(), alpha.clock())


@pytest.mark.gen_test(timeout=60)
async def test_after_an_outage_all_500_queued_events_arrive_in_order_once(alpha, peer):
    down = True
    peer.answer = lambda n: "error" if down else "ok"
    await alpha.sender.start()
    for _ in range(10):
        await alpha.page(50, per_transaction=25)
        await alpha.retry_when_due()  # the queue keeps trying (and failing) while beta is down
    await until(lambda: alpha.queue.failures >= 3, "failing while down")
    down = False

    async def retried_and_drained():  # a failure landing after one wake-up sets a new retry time
        await alpha.retry_when_due()
        return await alpha.drained()

    await until(retried_and_drained, "outbox empty")
    assert len(alpha.sent) == 500
    assert peer.event_ids == alpha.sent  # all, in order, none twice
    assert all(len(r.body["pdus"]) <= 50 for r in peer.received)


@pytest.mark.gen_test(timeout=30)
async def test_a_refused_event_is_final_counted_and_never_sent_again(alpha, peer):
    await alpha.page(3)
    peer.refuse = {alpha.sent[1]: "invalid_event_signature"}
    await alpha.sender.start()
    await until(alpha.drained, "outbox empty")
    await alpha.page(1)
    await until(lambda: len(peer.received) == 2 and peer.received[1].status == 200, "next page delivered")
    await until(alpha.drained, "its answer recorded")
    assert [p["event_id"] for p in peer.received[1].body["pdus"]] == alpha.sent[3:]
    (stats,) = await alpha.outbox.queue_stats()
    assert (stats.depth, stats.state.delivered, stats.state.refused) == (0, 3, 1)
    assert stats.state.last_refusal == f"{alpha.sent[1]} invalid_event_signature"


@pytest.mark.gen_test(timeout=30)
async def test_an_unknown_destination_is_a_failure_that_backs_off(storage, peer):
    alpha = Alpha(storage, peer, peers={})
    try:
        await alpha.page(1)
        await alpha.sender.start()
        await until(lambda: alpha.queue.failures == 1, "failed")
        assert peer.received == [] and not await alpha.drained()
    finally:
        await alpha.sender.stop()


@pytest.mark.gen_test(timeout=30)
async def test_a_transaction_body_stays_within_the_default_limit_of_receivers(alpha, peer):
    await alpha.page(20, padding=30_000)  # 20 pages of ~30 KB: 600 KB, more than one body may carry
    await alpha.sender.start()
    await until(alpha.drained, "outbox empty")
    assert peer.event_ids == alpha.sent
    assert all(r.size <= MAX_BODY_BYTES for r in peer.received) and len(peer.received) >= 3
    assert all(r.status == 200 for r in peer.received) and alpha.queue.failures == 0


@pytest.mark.gen_test(timeout=30)
async def test_413_halves_the_batch_until_it_fits_and_nothing_is_lost_or_reordered(alpha, peer):
    peer.max_body_bytes = 50_000  # a receiver with a smaller max_http_body_bytes than the default
    await alpha.page(10, padding=10_000)
    await alpha.sender.start()
    await until(alpha.drained, "outbox empty")
    assert peer.event_ids == alpha.sent
    statuses = [r.status for r in peer.received]
    assert statuses[:2] == [413, 413] and set(statuses[2:]) == {200}  # ~100 KB, ~50 KB, then it fits
    assert all(r.size <= 50_000 for r in peer.received if r.status == 200)
    (stats,) = await alpha.outbox.queue_stats()
    assert (stats.state.delivered, stats.state.refused, stats.state.failures) == (10, 0, 0)


@pytest.mark.gen_test(timeout=30)
async def test_an_event_too_large_for_the_destination_is_refused_for_good_and_the_rest_goes_on(alpha, peer):
    peer.max_body_bytes = 20_000
    await alpha.page(1)
    await alpha.page(1, padding=30_000)  # no transaction of this one fits beta
    await alpha.page(1)
    await alpha.sender.start()
    await until(alpha.drained, "outbox empty")
    assert peer.event_ids == [alpha.sent[0], alpha.sent[2]]
    (stats,) = await alpha.outbox.queue_stats()
    assert (stats.depth, stats.state.delivered, stats.state.refused) == (0, 2, 1)
    assert stats.state.last_refusal == f"{alpha.sent[1]} payload_too_large"
