"""Presence in crowded rooms (spec 14.8): no presence frames to the room past the
limit, and rosters share a member snapshot for up to a second, the user always in it."""

from __future__ import annotations

import json

from tests.realtime.test_realtime_state import FakeSocket
from tests.support.clock import FakeClock
from vibemuse.realtime.broadcast import Broadcaster
from vibemuse.realtime.bus import InProcessBus
from vibemuse.realtime.connections import ConnectionRegistry
from vibemuse.realtime.ids import IdSource
from vibemuse.realtime.presence import PresenceTracker
from vibemuse.realtime.subscriptions import Subscriptions
from vibemuse.realtime.typing_state import TypingState
from vibemuse.services.presence import PresenceService
from vibemuse.storage import UserRecord

ROOM = "!Hall:test.localhost"


class Hall:
    def __init__(self, limit: int):
        self.clock = FakeClock(1_000_000)
        self.registry = ConnectionRegistry()
        subscriptions = Subscriptions(self.registry)
        bus = InProcessBus()
        bus.attach(subscriptions.deliver)
        self.presence = PresenceService(
            registry=self.registry, subscriptions=subscriptions,
            tracker=PresenceTracker(self.clock, idle_after_ms=60_000),
            typing=TypingState(self.clock, timeout_ms=6000, refresh_ms=3000),
            broadcaster=Broadcaster(bus, server_name="test.localhost", clock=self.clock, frame_ids=IdSource("f")),
            clock=self.clock, room_limit=limit)
        self.sockets: dict[str, FakeSocket] = {}

    def arrive(self, name: str) -> FakeSocket:
        user_id = f"@{name.lower()}:test.localhost"
        socket = self.sockets[name] = FakeSocket(f"c-{name}", user_id)
        self.registry.add(socket)
        self.presence.socket_opened(UserRecord(user_id, name, "player", "", 0, ROOM))
        self.presence.went_live(user_id)
        return socket

    def heard(self, name: str) -> list[tuple[str, str]]:
        """(whose presence, status) of the presence frames a socket got."""
        frames = [json.loads(_payload(frame)) for frame in self.sockets[name].frames]
        return [(f["data"]["username"], f["data"]["status"]) for f in frames if f["type"] == "presence"]


def _payload(frame: bytes) -> bytes:
    """The text of an unmasked server frame (RFC 6455 5.2)."""
    length = frame[1] & 0x7F
    return frame[{126: 4, 127: 10}.get(length, 2):]


def test_past_the_limit_only_the_users_own_sockets_hear_their_presence():
    hall = Hall(limit=2)
    hall.arrive("Ann")
    hall.arrive("Ben")  # two: at the limit, announced
    hall.arrive("Cat")  # three: past it
    assert hall.heard("Ann") == [("Ann", "online"), ("Ben", "online")]
    assert hall.heard("Cat") == [("Cat", "online")]
    hall.presence.set_status("@cat:test.localhost", "away", "brb")
    hall.registry.discard(hall.sockets["Cat"])
    hall.presence.socket_closed("@cat:test.localhost")  # offline, counted while still there: not announced
    assert hall.heard("Ben") == [("Ben", "online")]
    assert hall.heard("Cat") == [("Cat", "online"), ("Cat", "away")]  # its last socket is gone before "offline"
    hall.presence.set_status("@ben:test.localhost", "away", None)  # two again: announced to the room
    assert hall.heard("Ann")[-1] == ("Ben", "away")


def test_a_crowded_rosters_members_are_a_shared_snapshot_with_the_user_in_it():
    hall = Hall(limit=2)
    for name in ("Ann", "Ben", "Cat"):
        hall.arrive(name)
    members = hall.presence.members(ROOM, "@ann:test.localhost", 2)
    assert members.count == 3 and len(members.presences) == 2 and members.listed is None  # shared, encoded
    hall.clock.advance(0.5)
    hall.arrive("Dan")
    members = hall.presence.members(ROOM, "@dan:test.localhost", 2)
    assert members.count == 4 and [m["username"] for m in members.presences] == ["Dan", "Ann"]  # added, first
    assert hall.presence.members(ROOM, "@ann:test.localhost", 10).count == 3  # others see the snapshot
    hall.clock.advance(0.6)
    members = hall.presence.members(ROOM, "@ann:test.localhost", 10)
    assert members.count == 4 and {m["username"] for m in members.presences} == {"Ann", "Ben", "Cat", "Dan"}


def test_a_small_rooms_roster_is_always_fresh_most_recently_active_first():
    hall = Hall(limit=10)
    hall.arrive("Ann")
    hall.clock.advance(1)
    hall.arrive("Ben")
    hall.clock.advance(1)
    hall.presence.input("@ann:test.localhost")
    members = hall.presence.members(ROOM, "@ben:test.localhost", 10)
    assert [m["username"] for m in members.listed] == ["Ann", "Ben"] and members.count == 2
