"""``Tails``: what followed a position, read once and brought up to date by the event writer."""

from __future__ import annotations

import pytest

from vibemuse.services.tails import Tails
from vibemuse.storage.sync_txns import Tail


class EventLog:
    """Stored events by position, and how often a tail was read."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.reads = 0

    def store(self, tails: Tails, kind: str = "vm.room.message") -> int:
        position = len(self.events) + 1
        event = {"type": kind, "sender": "@bob:test.localhost", "room_id": "!r:test.localhost"}
        self.events.append(dict(event, unsigned={"stream_position": position}))
        tails.stored([event], [position])
        return position

    async def tail(self, since: int, limit: int) -> Tail:
        self.reads += 1
        after = self.events[since:since + limit]
        return Tail(since, len(self.events), 1 if self.events else 0, after, len(after) < limit)


def positions(tail):
    return [event["unsigned"]["stream_position"] for event in tail.events]


def tails_of(log, **options):
    return Tails(log, max_events=10, clock=lambda: 0, **options)  # type: ignore[arg-type]


@pytest.mark.gen_test
async def test_a_tail_is_read_once_and_brought_up_to_date_with_what_was_stored_since():
    log = EventLog()
    tails = tails_of(log)
    for _ in range(3):
        log.store(tails)
    assert positions(await tails.get(1)) == [2, 3]
    log.store(tails)
    log.store(tails)
    tail = await tails.get(1)
    assert positions(tail) == [2, 3, 4, 5] and tail.latest == 5 and tail.complete
    assert log.reads == 1


@pytest.mark.gen_test
async def test_when_the_fresh_events_no_longer_reach_back_the_tail_is_read_again():
    log = EventLog()
    tails = tails_of(log, fresh_events=2)
    log.store(tails)
    assert positions(await tails.get(0)) == [1]
    for _ in range(3):
        log.store(tails)  # 2, 3, 4: only 3 and 4 are kept
    assert positions(await tails.get(0)) == [1, 2, 3, 4]
    assert log.reads == 2


@pytest.mark.gen_test
async def test_too_far_behind_or_too_many_is_none_and_a_redaction_reads_anew():
    log = EventLog()
    tails = tails_of(log)
    for _ in range(12):
        log.store(tails)
    assert await tails.get(0) is None and log.reads == 0  # 12 positions behind, at most 10 events: not read
    assert positions(await tails.get(5)) == [6, 7, 8, 9, 10, 11, 12]
    log.store(tails, "vm.redaction")
    assert positions(await tails.get(5)) == [6, 7, 8, 9, 10, 11, 12, 13]
    assert log.reads == 2
