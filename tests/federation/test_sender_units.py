"""The sender's pure parts: transaction ids, backoff steps, answers and Retry-After."""

from __future__ import annotations

import random

import pytest

from vibemuse.federation.sender import RetryLater, backoff_ms, make_transaction, refusals_in, retry_after_ms
from vibemuse.storage.outbox_txns import QueuedEvent


def queued(*numbers: int) -> list[QueuedEvent]:
    return [QueuedEvent(n, {"event_id": f"$e{n}", "type": "vm.page"}, 1000 + n) for n in numbers]


def test_the_txn_id_names_the_batch_and_only_it():
    one = make_transaction("alpha.test", queued(3, 5, 9), 1)
    assert one.txn_id == make_transaction("alpha.test", queued(3, 5, 9), 2).txn_id  # a retry: the same id
    assert one.txn_id.startswith("3-9.")
    assert one.txn_id != make_transaction("alpha.test", queued(3, 5, 7, 9), 1).txn_id
    assert all(c.isalnum() or c in "._~-" for c in one.txn_id) and len(one.txn_id) <= 64
    assert one.body == {"origin": "alpha.test", "origin_server_ts": 1, "edus": [],
                        "pdus": [q.event for q in queued(3, 5, 9)]}


def test_backoff_steps_double_from_two_seconds_and_stop_at_the_cap():
    top = random.Random(1)
    top.uniform = lambda a, b: b  # type: ignore[method-assign]  # the top of each jitter range
    assert [backoff_ms(n, 60_000, top) for n in range(1, 8)] == [2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]
    assert backoff_ms(10_000, 300_000, top) == 300_000  # no overflow after a very long outage
    rng = random.Random(3)
    assert all(1_000 <= backoff_ms(1, 300_000, rng) <= 2_000 for _ in range(200))


@pytest.mark.parametrize("answer", [None, [], {"pdus": []}, {"nothing": {}}])
def test_an_unreadable_answer_is_a_failure(answer):
    with pytest.raises(RetryLater):
        refusals_in(make_transaction("a.test", queued(1), 0), answer)


def test_refusals_are_read_per_event():
    answer = {"pdus": {"$e1": {}, "$e2": {"error": {"code": "bad_event", "message": "no"}}, "$other": {"error": {}}}}
    assert refusals_in(make_transaction("a.test", queued(1, 2), 0), answer) == (("$e2", "bad_event"),)


@pytest.mark.parametrize("header, expected", [("7", 7_000), (" 0 ", 0), (None, None),
                                              ("Wed, 21 Oct 2026 07:28:00 GMT", None), ("-3", None)])
def test_retry_after_in_seconds(header, expected):
    assert retry_after_ms(header) == expected
