"""Federation's receiving side in storage: transactions and nonces, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from vibemuse.storage import Storage, create_database_engine, ensure_schema
from vibemuse.storage.federation_inbound import FederationInboundStore


@pytest.fixture
def inbound(database_url):
    engine = create_database_engine(database_url, pool_size=2)
    ensure_schema(engine, auto_migrate=False)
    storage = Storage(engine, threads=2)
    yield FederationInboundStore(storage)
    storage.close()


def run(coroutine):
    return asyncio.run(coroutine)


ANSWER = {"pdus": {"$a": {}, "$b": {"error": {"code": "bad_event", "message": "no"}}}}


def test_transaction_answer_kept_per_origin_and_txn(inbound):
    assert run(inbound.transaction_answer("alpha.test", "t1")) is None
    assert run(inbound.record_transaction("alpha.test", "t1", ANSWER, 5)) == ANSWER
    assert run(inbound.transaction_answer("alpha.test", "t1")) == ANSWER
    assert run(inbound.transaction_answer("gamma.test", "t1")) is None
    assert run(inbound.transaction_answer("alpha.test", "t2")) is None


def test_first_recorded_answer_wins(inbound):
    run(inbound.record_transaction("alpha.test", "t1", ANSWER, 5))
    assert run(inbound.record_transaction("alpha.test", "t1", {"pdus": {}}, 6)) == ANSWER


def test_nonce_claimed_once_per_origin(inbound):
    assert run(inbound.claim_nonce("alpha.test", "n" * 16, 1000, 0)) is True
    assert run(inbound.claim_nonce("alpha.test", "n" * 16, 1000, 0)) is False
    assert run(inbound.claim_nonce("gamma.test", "n" * 16, 1000, 0)) is True


def test_nonces_older_than_the_window_are_pruned(inbound):
    run(inbound.claim_nonce("alpha.test", "old_nonce_0000000", 1000, 0))
    run(inbound.claim_nonce("alpha.test", "new_nonce_0000000", 5000, 0))
    # a claim with the window starting at 2000 prunes the first, keeps the second
    assert run(inbound.claim_nonce("alpha.test", "third_nonce_00000", 6000, 2000)) is True
    assert run(inbound.claim_nonce("alpha.test", "old_nonce_0000000", 1000, 2000)) is True
    assert run(inbound.claim_nonce("alpha.test", "new_nonce_0000000", 5000, 2000)) is False


def test_concurrent_claims_of_one_nonce_one_wins(inbound):
    async def race():
        return await asyncio.gather(*(inbound.claim_nonce("alpha.test", "raced_nonce_00000", 10, 0)
                                      for _ in range(6)))

    assert sum(run(race())) == 1
