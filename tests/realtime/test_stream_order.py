"""``StreamOrder``: appends and their frames, learnt out of order from several processes,
handed on in stream order; a missing append is a gap, filled from the database."""

from __future__ import annotations

from vibemuse.realtime.bus import Delivery
from vibemuse.realtime.stream import Append, StreamOrder


def append(after: int, *positions: int) -> Append:
    return Append(after, positions, tuple({"event_id": f"$e{p}", "type": "vm.room.message"} for p in positions))


def frame(position: int | None, topic: str = "room:r") -> Delivery:
    return Delivery(topic, f"frame {position}".encode(), position=position)


class Seen:
    def __init__(self) -> None:
        self.frames: list[int | None] = []
        self.appended: list[int] = []

    def order(self, released: int = 0) -> StreamOrder:
        def taken(events, positions):
            assert [e["event_id"] for e in events] == [f"$e{p}" for p in positions]
            self.appended.extend(positions)
        return StreamOrder(released, deliver=lambda d: self.frames.append(d.position), on_appended=[taken])


def test_in_order_everything_passes_at_once():
    seen = Seen()
    order = seen.order(released=4)
    order.appended(append(4, 5, 6))
    order.deliver(frame(5))
    order.deliver(frame(6))
    order.deliver(frame(None))  # no event: typing, presence
    assert seen.frames == [5, 6, None] and seen.appended == [5, 6] and order.released == 6


def test_an_append_that_overtook_its_predecessor_waits_with_its_frames():
    seen = Seen()
    order = seen.order(released=9)
    order.appended(append(10, 11), now_ms=100)  # 11 (process B) arrives before 10 (process A)
    order.deliver(frame(11))
    order.deliver(frame(None))
    assert seen.frames == [None] and seen.appended == [] and order.released == 9
    assert order.stalled_since == 100 and order.gap == (9, 10) and order.held == 1
    order.appended(append(9, 10), now_ms=105)
    assert seen.appended == [10, 11] and order.released == 11 and order.stalled_since is None
    assert seen.frames == [None, 11]  # 11's frame went as soon as 11 was known
    order.deliver(frame(10))  # A's own frame, after its append: at once
    assert seen.frames == [None, 11, 10]


def test_frames_held_for_several_appends_leave_in_stream_order():
    seen = Seen()
    order = seen.order(released=0)
    for after, position in ((3, 4), (2, 3), (1, 2)):
        order.appended(append(after, position))
        order.deliver(frame(position))
    assert seen.frames == [] and order.held == 3
    order.appended(append(0, 1))
    order.deliver(frame(1))
    assert seen.appended == [1, 2, 3, 4] and seen.frames == [2, 3, 4, 1]


def test_a_known_append_again_changes_nothing():
    seen = Seen()
    order = seen.order(released=0)
    order.appended(append(0, 1, 2))
    order.appended(append(0, 1, 2))  # our own, back through the bus
    order.appended(append(2))  # an append that stored nothing
    assert seen.appended == [1, 2] and order.released == 2 and order.gap is None


def test_a_lost_append_is_a_gap_until_the_database_fills_it():
    seen = Seen()
    order = seen.order(released=20)
    order.appended(append(22, 23), now_ms=1000)  # 21, 22 were lost (their process died after committing)
    order.deliver(frame(23))
    assert order.gap == (20, 22) and order.stalled_since == 1000 and seen.frames == []
    order.fill([append(20, 21), append(21, 22)], now_ms=1500)
    assert seen.appended == [21, 22, 23] and seen.frames == [23] and order.gap is None
    order.appended(append(20, 21))  # the lost one, late after all: already known
    assert seen.appended == [21, 22, 23]
    order.deliver(frame(21))  # and its frame, late: after 23's, so it is not delivered (its sockets resume)
    order.deliver(frame(24))
    assert seen.frames == [23] and order.dropped == 1 and order.held == 1


def test_only_the_newest_filled_positions_are_remembered(monkeypatch):
    monkeypatch.setattr("vibemuse.realtime.stream.FILLED_KEPT", 2)
    seen = Seen()
    order = seen.order(released=0)
    order.fill([append(0, 1), append(1, 2, 3)])
    for position in (1, 2, 3):
        order.deliver(frame(position))
    assert seen.frames == [1] and order.dropped == 2  # 1 was forgotten: an ordinary late frame


def test_a_stall_restarts_when_part_of_it_is_filled():
    seen = Seen()
    order = seen.order(released=0)
    order.appended(append(1, 2), now_ms=10)
    order.appended(append(3, 4), now_ms=20)
    order.appended(append(0, 1), now_ms=30)
    assert order.released == 2 and order.gap == (2, 3) and order.stalled_since == 30
