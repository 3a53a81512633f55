"""Presence, typing and subscriptions: the in-memory state of real time, without sockets."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.support.clock import FakeClock
from vibemuse.realtime.bus import ALL, Delivery, InProcessBus, room_topic, user_topic
from vibemuse.realtime.connections import ConnectionRegistry
from vibemuse.realtime.presence import AWAY, IDLE, ONLINE, PresenceTracker
from vibemuse.realtime.subscriptions import Subscriptions
from vibemuse.realtime.typing_state import TypingState
from vibemuse.realtime.wire import encode_text_frame


@dataclass
class FakeSocket:
    connection_id: str
    user_id: str
    token_hash: str = "t"
    address: str = "127.0.0.1"
    expires_ms: int | None = None
    last_seen: float = 0.0
    frames: list[bytes] = field(default_factory=list)

    def send_encoded(self, frame: bytes, position: int | None = None) -> None:
        self.frames.append(frame)


def test_presence_lifecycle():
    clock = FakeClock(1_000_000)
    tracker = PresenceTracker(clock, idle_after_ms=60_000)
    came = tracker.connected("@a:x", "A")
    assert came is not None and came.status == ONLINE
    assert tracker.connected("@a:x", "A") is None  # a second tab changes nothing
    clock.advance(61)
    assert [p.user_id for p in tracker.sweep_idle()] == ["@a:x"]
    assert tracker.get("@a:x").status == IDLE
    assert tracker.sweep_idle() == []  # announced once
    back = tracker.connected("@a:x", "A")  # a new tab of an idle user: back online
    assert back is not None and back.status == ONLINE
    away = tracker.set_away("@a:x", "tea")
    assert (away.status, away.away_message) == (AWAY, "tea")
    clock.advance(120)
    assert tracker.sweep_idle() == []  # away wins over idle
    assert tracker.input("@a:x") is None  # input keeps away
    assert tracker.set_back("@a:x").status == ONLINE
    wire = tracker.get("@a:x").to_wire(clock())
    assert wire["onForMs"] == 181_000 and wire["status"] == "online"
    assert tracker.disconnected("@a:x").user_id == "@a:x"
    assert tracker.get("@a:x") is None


def test_typing_changes_throttle_and_expiry():
    clock = FakeClock(0)
    typing = TypingState(clock, timeout_ms=5000, refresh_ms=2000)
    assert typing.update("!r", "@a:x", True) is True
    clock.advance(1)
    assert typing.update("!r", "@a:x", True) is False  # a refresh inside the throttle
    clock.advance(1.5)
    assert typing.update("!r", "@a:x", True) is True  # re-announced after refresh_ms
    assert typing.update("!r", "@a:x", False) is True
    assert typing.update("!r", "@a:x", False) is False  # not typing: nothing to say
    typing.update("!r", "@b:x", True)
    clock.advance(4.9)
    assert typing.expire() == []
    clock.advance(0.2)
    assert typing.expire() == [("!r", "@b:x")]
    typing.update("!r", "@c:x", True)
    assert typing.stop("!r", "@c:x") is True and not typing.is_typing("!r", "@c:x")


def test_subscriptions_deliver_one_frame_to_the_right_sockets():
    registry = ConnectionRegistry()
    subscriptions = Subscriptions(registry)
    bus = InProcessBus()
    bus.attach(subscriptions.deliver)
    alice1, alice2, bob, carol = (FakeSocket("1", "@a:x"), FakeSocket("2", "@a:x"), FakeSocket("3", "@b:x"),
                                  FakeSocket("4", "@c:x"))
    for socket in (alice1, alice2, bob, carol):
        registry.add(socket)
    subscriptions.place("@a:x", "!hall")
    subscriptions.place("@b:x", "!hall")
    subscriptions.place("@c:x", "!cellar")
    frame = encode_text_frame(b'{"type":"x"}')
    bus.publish(Delivery(room_topic("!hall"), frame, except_user="@b:x"))
    assert alice1.frames == [frame] and alice2.frames == [frame] and bob.frames == [] and carol.frames == []
    assert alice1.frames[0] is alice2.frames[0]  # the same bytes object, encoded once
    assert subscriptions.place("@a:x", "!cellar") == "!hall"
    assert subscriptions.users_in("!hall") == ["@b:x"] and subscriptions.users_in("!cellar") == ["@a:x", "@c:x"]
    assert subscriptions.deliver(Delivery(room_topic("!cellar"), frame)) == 3
    assert subscriptions.deliver(Delivery(user_topic("@b:x"), frame)) == 1
    assert subscriptions.deliver(Delivery(ALL, frame)) == 4
    subscriptions.forget("@c:x")
    assert subscriptions.users_in("!cellar") == ["@a:x"] and subscriptions.location_of("@c:x") is None


def test_text_frames_are_rfc6455():
    assert encode_text_frame(b"hi") == b"\x81\x02hi"
    medium = encode_text_frame(b"x" * 300)
    assert medium[:4] == b"\x81\x7e\x01\x2c" and len(medium) == 304
    large = encode_text_frame(b"x" * 70000)
    assert large[:2] == b"\x81\x7f" and int.from_bytes(large[2:10], "big") == 70000
