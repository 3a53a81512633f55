"""``Directory``: who is online on the other processes of this server, and where they stand.

Theory of operation. Each process knows its own sockets (``ConnectionRegistry``,
``Subscriptions``, ``PresenceTracker``). With several processes
(``bus_url``), each also tells the others, through the bus, every change of
one of its users' presence and room (a ``Sighting``), says it is alive every
few seconds, and answers a newcomer's hello with all it has. The directory
keeps what the others said, per process, so that rosters, WHO, "is this
player online" (pages: delivered now, or held) and room counts cover the
whole server. A user with sockets on two processes is seen by both; the
most recently active sighting stands for them.

Idle times. A sighting is told on every change of a user's status, room or
sockets, not on every frame; besides, each process tells the others every
``INPUT_EVERY_SECONDS`` the last input of its users who did something since
(``inputs``). So an idle time read here is at most that period (plus the
bus's lag) longer than the one the user's own process knows.

A process that stops saying it is alive (``kill -9``, a broken network) is
forgotten after ``timeout_ms``: its users go offline for the others
(``expire`` returns them, so that their rooms can be told).

Pure: no I/O; the caller gives the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator

from vibemuse.realtime.presence import Presence


@dataclass(frozen=True)
class Sighting:
    """A user online on one process: their presence there and the room they stand in."""

    presence: Presence
    room_id: str | None
    sockets: int = 1  # how many sockets (and telnet sessions) the user has on that process
    # each of them: (connection id, transport, client address), for the admins' session list
    connections: tuple[tuple[str, str, str], ...] = ()

    def to_wire(self) -> dict[str, Any]:
        p = self.presence
        return {"userId": p.user_id, "username": p.username, "since": p.connected_since_ms,
                "input": p.last_input_ms, "status": p.status, "away": p.away_message, "room": self.room_id,
                "sockets": self.sockets, "conns": [list(c) for c in self.connections]}

    @staticmethod
    def from_wire(data: dict[str, Any]) -> "Sighting":
        presence = Presence(str(data["userId"]), str(data["username"]), int(data["since"]), int(data["input"]),
                            str(data["status"]), data.get("away"))
        connections = tuple((str(c[0]), str(c[1]), str(c[2])) for c in data.get("conns", ()))
        return Sighting(presence, data.get("room"), int(data.get("sockets", 1)), connections)


@dataclass
class _Peer:
    heard_ms: int
    users: dict[str, Sighting] = field(default_factory=dict)
    rooms: dict[str, set[str]] = field(default_factory=dict)  # room -> users there

    def put(self, sighting: Sighting) -> None:
        self.drop(sighting.presence.user_id)
        self.users[sighting.presence.user_id] = sighting
        if sighting.room_id is not None:
            self.rooms.setdefault(sighting.room_id, set()).add(sighting.presence.user_id)

    def drop(self, user_id: str) -> Sighting | None:
        old = self.users.pop(user_id, None)
        if old is not None and old.room_id is not None:
            there = self.rooms.get(old.room_id)
            if there is not None:
                there.discard(user_id)
                if not there:
                    del self.rooms[old.room_id]
        return old


class Directory:
    def __init__(self, timeout_ms: int):
        self.timeout_ms = timeout_ms
        self._peers: dict[str, _Peer] = {}

    # -- what the others say -------------------------------------------------------------------

    def heard(self, instance: str, now_ms: int) -> bool:
        """``instance`` is alive; True if it is new to us (it must be told what we hold)."""
        peer = self._peers.get(instance)
        if peer is None:
            self._peers[instance] = _Peer(now_ms)
            return True
        peer.heard_ms = now_ms
        return False

    def seen(self, instance: str, sighting: Sighting, now_ms: int) -> None:
        self.heard(instance, now_ms)
        self._peers[instance].put(sighting)

    def inputs(self, instance: str, last_input: dict[str, int], now_ms: int) -> None:
        """The last input of the users of ``instance`` who did something lately."""
        self.heard(instance, now_ms)
        users = self._peers[instance].users
        for user_id, input_ms in last_input.items():
            sighting = users.get(user_id)
            if sighting is not None and input_ms > sighting.presence.last_input_ms:
                users[user_id] = replace(sighting, presence=replace(sighting.presence, last_input_ms=input_ms))

    def gone(self, instance: str, user_id: str, now_ms: int) -> None:
        """The user's last socket on ``instance`` closed."""
        self.heard(instance, now_ms)
        self._peers[instance].drop(user_id)

    def left(self, instance: str) -> list[Sighting]:
        """``instance`` stopped (a clean shutdown): its users, now gone from it."""
        peer = self._peers.pop(instance, None)
        return list(peer.users.values()) if peer else []

    def expire(self, now_ms: int) -> list[Sighting]:
        """Forget the processes not heard from within ``timeout_ms``; the users they held."""
        silent = [name for name, peer in self._peers.items() if now_ms - peer.heard_ms > self.timeout_ms]
        dropped: list[Sighting] = []
        for name in silent:
            dropped.extend(self.left(name))
        return dropped

    # -- questions -------------------------------------------------------------------------------------

    def is_online(self, user_id: str) -> bool:
        return any(user_id in peer.users for peer in self._peers.values())

    def sighting(self, user_id: str) -> Sighting | None:
        """The most recently active sighting of the user on another process."""
        found = [peer.users[user_id] for peer in self._peers.values() if user_id in peer.users]
        return max(found, key=lambda s: s.presence.last_input_ms) if found else None

    def sockets_of(self, user_id: str) -> int:
        """The user's sockets on the other processes, together."""
        return sum(peer.users[user_id].sockets for peer in self._peers.values() if user_id in peer.users)

    def users_in(self, room_id: str) -> set[str]:
        users: set[str] = set()
        for peer in self._peers.values():
            users |= peer.rooms.get(room_id, set())
        return users

    def sightings(self) -> Iterator[Sighting]:
        """Every user online elsewhere, once (their most recently active sighting)."""
        best: dict[str, Sighting] = {}
        for peer in self._peers.values():
            for user_id, sighting in peer.users.items():
                held = best.get(user_id)
                if held is None or sighting.presence.last_input_ms > held.presence.last_input_ms:
                    best[user_id] = sighting
        return iter(best.values())

    def everywhere(self) -> Iterator[tuple[str, Sighting]]:
        """(process, sighting) of every user on every other process (a user on two: twice)."""
        for instance, peer in self._peers.items():
            for sighting in peer.users.values():
                yield instance, sighting

    def user_ids(self) -> set[str]:
        return {user_id for peer in self._peers.values() for user_id in peer.users}

    def load(self, instance: str, sightings: Iterable[Sighting], now_ms: int) -> None:
        """What ``instance`` holds, all at once (its answer to our hello)."""
        self.heard(instance, now_ms)
        for sighting in sightings:
            self._peers[instance].put(sighting)
