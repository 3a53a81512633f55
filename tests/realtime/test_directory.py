"""``Directory``: what the other processes of a server said of their users (pure, no bus)."""

from __future__ import annotations

from vibemuse.realtime.directory import Directory, Sighting
from vibemuse.realtime.presence import Presence


def sighting(user: str, input_ms: int, *connections: tuple[str, str, str]) -> Sighting:
    return Sighting(Presence(f"@{user}:x.test", user, 1_000, input_ms), "!room:x.test", len(connections),
                    tuple(connections))


def test_a_sighting_crosses_the_wire_with_its_sockets():
    seen = sighting("ann", 5_000, ("c1.1", "websocket", "127.0.0.1"), ("c1.2", "telnet", "10.0.0.2"))
    assert Sighting.from_wire(seen.to_wire()) == seen
    older = {key: value for key, value in seen.to_wire().items() if key != "conns"}  # from a process before them
    assert Sighting.from_wire(older).connections == ()


def test_inputs_make_idle_times_newer_never_older():
    directory = Directory(15_000)
    directory.seen("p1", sighting("ann", 5_000, ("c1.1", "websocket", "127.0.0.1")), 6_000)
    directory.inputs("p1", {"@ann:x.test": 9_000, "@nobody:x.test": 9_000}, 9_500)
    assert directory.sighting("@ann:x.test").presence.last_input_ms == 9_000
    directory.inputs("p1", {"@ann:x.test": 7_000}, 9_600)  # late news changes nothing
    assert directory.sighting("@ann:x.test").presence.last_input_ms == 9_000
    assert not directory.is_online("@nobody:x.test")  # an input is no sighting
    assert directory.users_in("!room:x.test") == {"@ann:x.test"}


def test_everywhere_lists_each_process_sighting_of_each_user():
    directory = Directory(15_000)
    directory.seen("p1", sighting("ann", 5_000, ("c1.1", "websocket", "127.0.0.1")), 6_000)
    directory.seen("p2", sighting("ann", 7_000, ("c2.1", "websocket", "127.0.0.1")), 6_000)
    directory.seen("p2", sighting("bob", 2_000, ("c2.2", "telnet", "127.0.0.1")), 6_000)
    listed = sorted((process, s.presence.user_id, s.connections[0][0]) for process, s in directory.everywhere())
    assert listed == [("p1", "@ann:x.test", "c1.1"), ("p2", "@ann:x.test", "c2.1"), ("p2", "@bob:x.test", "c2.2")]
    directory.expire(6_000 + 15_001)
    assert list(directory.everywhere()) == []
