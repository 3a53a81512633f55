"""The federation outbox in storage, on SQLite and PostgreSQL: queued with the event or not at all."""

from __future__ import annotations

import asyncio

import pytest

from vibemuse.storage import Conflict, Storage
from vibemuse.storage.outbox import OutboxStore
from vibemuse.storage.outbox_txns import Delivery, op_enqueue

BETA, GAMMA = "beta.test", "gamma.test"


def page(number: int) -> dict:
    return {"event_id": f"$page{number:039d}", "type": "vm.page", "sender": "@alice:alpha.test",
            "origin_server_ts": 1000 + number, "content": {"kind": "page", "body": f"hi {number}"},
            "recipients": ["@bob:beta.test"]}


@pytest.fixture
def outbox(storage):
    return OutboxStore(storage)


def run(coroutine):
    return asyncio.run(coroutine)


def count(storage: Storage, table: str) -> int:
    with storage.engine.connect() as connection:
        return connection.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one()


async def store(storage: Storage, event: dict, destinations: list[str], now_ms: int = 5000) -> None:
    await storage.append_events([event], transaction=None, now_ms=now_ms,
                                ops=[op_enqueue(event, destinations, now_ms)])


def test_an_event_is_queued_per_destination_in_order(storage, outbox):
    async def scenario():
        for number in range(1, 6):
            await store(storage, page(number), [BETA, GAMMA] if number % 2 else [BETA], now_ms=5000 + number)
        beta = await outbox.pending(BETA, 3)
        gamma = await outbox.pending(GAMMA, 50)
        return beta, gamma, await outbox.destinations_with_pending()

    beta, gamma, names = run(scenario())
    assert [q.event["event_id"] for q in beta] == [page(n)["event_id"] for n in (1, 2, 3)]
    assert beta[0].event == page(1) and beta[0].enqueued_ts == 5001
    assert [q.event["event_id"] for q in gamma] == [page(n)["event_id"] for n in (1, 3, 5)]
    assert names == [BETA, GAMMA]


def test_a_failed_event_transaction_queues_nothing(storage, outbox):
    run(store(storage, page(1), [BETA]))
    with pytest.raises(Conflict):  # the same event id again: the event insert fails
        run(store(storage, dict(page(1)), [GAMMA]))
    assert run(outbox.pending(GAMMA, 50)) == []
    assert count(storage, "federation_outbox") == 1


def test_a_failed_enqueue_stores_no_event(storage, outbox):
    event = page(2)

    def broken(connection):  # an op after the enqueue that fails: the whole transaction goes
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        run(storage.append_events([event], transaction=None, now_ms=1,
                                  ops=[op_enqueue(event, [BETA], 1), broken]))
    assert count(storage, "federation_outbox") == 0
    assert count(storage, "events") == 0


def test_the_enqueue_names_whom_to_wake():
    assert op_enqueue(page(1), [GAMMA, BETA, GAMMA], 0).destinations == (BETA, GAMMA)


def test_delivery_removes_rows_and_records_figures(storage, outbox):
    async def scenario():
        for number in range(1, 4):
            await store(storage, page(number), [BETA], now_ms=1000 * number)
        queued = await outbox.pending(BETA, 2)
        await outbox.record_failure(BETA, 3, 99_000)
        await outbox.mark_delivered(BETA, Delivery(
            outbox_ids=tuple(q.outbox_id for q in queued), accepted=1,
            refusals=((queued[1].event["event_id"], "bad_event"),), oldest_enqueued_ts=1000, now_ms=10_000))
        return await outbox.pending(BETA, 50), await outbox.queue_stats()

    left, stats = run(scenario())
    assert [q.event["event_id"] for q in left] == [page(3)["event_id"]]
    (beta,) = stats
    assert (beta.depth, beta.oldest_enqueued_ts) == (1, 3000)
    state = beta.state
    assert (state.failures, state.next_attempt_ts, state.last_success_ts) == (0, 0, 10_000)
    assert (state.last_delivery_lag_ms, state.delivered, state.refused) == (9_000, 1, 1)
    assert state.last_refusal == f"{page(2)['event_id']} bad_event"


def test_failures_and_contact(storage, outbox):
    async def scenario():
        await outbox.record_failure(GAMMA, 1, 3_000)
        await outbox.record_failure(GAMMA, 2, 7_000)
        failing = await outbox.state(GAMMA)
        await outbox.record_contact(GAMMA, 8_000)
        return failing, await outbox.state(GAMMA), await outbox.queue_stats()

    failing, contacted, stats = run(scenario())
    assert (failing.failures, failing.next_attempt_ts, failing.last_contact_ts) == (2, 7_000, None)
    assert (contacted.failures, contacted.next_attempt_ts, contacted.last_contact_ts) == (0, 0, 8_000)
    assert [(s.state.destination, s.depth, s.oldest_enqueued_ts) for s in stats] == [(GAMMA, 0, None)]


def test_an_unknown_destination_has_a_blank_state(outbox):
    state = run(outbox.state("nowhere.test"))
    assert (state.destination, state.failures, state.last_success_ts) == ("nowhere.test", 0, None)
