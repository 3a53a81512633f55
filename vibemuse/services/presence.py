"""Who is here and what they are doing: presence, rosters, WHO and typing.

This service turns socket comings and goings, input, away messages and typing
frames into state (``realtime.presence``, ``realtime.typing_state``,
``realtime.subscriptions``) and into frames for the people who share a room
with the user. Nothing here is persisted.

Connect storms. Announcing every arrival to everyone in the room makes
filling a room of N cost N²/2 frames (a server restart reconnects everyone
at once). So, as large Discord guilds and Slack workspaces do, a room with
more online users than ``room_limit`` gets no presence frames about others:
a change there goes to the user's own sockets only, and the roster and WHO
tell who is there. Small rooms keep the MUSH feel of "Alice has connected".

Several processes (``bus_url``). Each process tracks its own sockets; every
change of one of its users' presence or room is told to the others
(``share``: a ``Sighting``, or None when their last socket here closed), who
keep it in their ``Directory``. Rosters, WHO, room counts and
``online_anywhere`` (pages: delivered now or held) then cover every process.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from vibemuse.clock import Clock
from vibemuse.protocol.frames import encode_frame
from vibemuse.protocol.markup import sanitize_text
from vibemuse.realtime.broadcast import Broadcaster
from vibemuse.realtime.connections import ConnectionRegistry
from vibemuse.realtime.directory import Directory, Sighting
from vibemuse.realtime.presence import OFFLINE, Presence, PresenceTracker
from vibemuse.realtime.subscriptions import Subscriptions
from vibemuse.realtime.typing_state import TypingState
from vibemuse.storage import UserRecord


WHO_MAX = 500  # users one WHO lists (its total counts them all)
CROWD_SNAPSHOT_MS = 1000  # how long a crowded room's member list is shared by rosters


@dataclass(frozen=True)
class RosterMembers:
    """A roster's members: presence objects, or (a crowded room) their JSON array."""

    count: int
    listed: list[dict[str, Any]] | None = None
    encoded: str | None = None

    @property
    def presences(self) -> list[dict[str, Any]]:
        return self.listed if self.listed is not None else json.loads(self.encoded or "[]")


@dataclass(frozen=True)
class OnlineUser:
    """A user with open sessions anywhere on the server, for the admins' session list."""

    user_id: str
    presence: Presence  # the most recently active of their processes'
    location: str | None
    sockets: list[dict[str, str]]  # connectionId, transport, address (several processes: and process)


@dataclass(frozen=True)
class _Crowd:
    taken_ms: int
    encoded: list[str]  # the most recently active, each presence object as JSON
    ids: frozenset[str]  # everyone in the room then
    count: int


def _snapshot(now: int, top: list[Presence], found: list[Presence]) -> _Crowd:
    return _Crowd(now, [encode_frame(p.to_wire(now)) for p in top], frozenset(p.user_id for p in found), len(found))


class PresenceService:
    def __init__(
        self,
        *,
        registry: ConnectionRegistry,
        subscriptions: Subscriptions,
        tracker: PresenceTracker,
        typing: TypingState,
        broadcaster: Broadcaster,
        clock: Clock,
        room_limit: int = 100,
    ):
        self.registry = registry
        self.subscriptions = subscriptions
        self.tracker = tracker
        self.typing = typing
        self._broadcaster = broadcaster
        self._clock = clock
        self.room_limit = room_limit
        self._crowds: dict[str, _Crowd] = {}  # crowded rooms' member snapshots
        self._arrivals: dict[str, Presence] = {}  # arrivals not announced yet (sockets starting)
        self.directory: Directory | None = None  # who is online on the other processes (several processes)
        self.share: Callable[[str, Sighting | None], None] | None = None  # tell them of a user of ours
        self.share_move: Callable[[str, str, int | None], None] | None = None  # and of a move of one
        self.instance: str | None = None  # this process's name among several (the admins' session list)

    # -- sockets ------------------------------------------------------------

    def location_of(self, user: UserRecord) -> str:
        """Where the character stands: the live location of an online user, else the stored one."""
        return self.subscriptions.location_of(user.user_id) or user.location_room_id

    def socket_opened(self, user: UserRecord) -> str:
        """A socket of ``user`` was registered (and welcomed); returns the room it stands in.

        The user shows online at once (rosters and WHO list them), but the
        ``presence`` frame waits for ``went_live``: it is the socket's first
        live frame, after its roster, replay and waiting pages (spec 5.3)."""
        room_id = self.location_of(user)
        self.subscriptions.place(user.user_id, room_id)
        arrival = self.tracker.connected(user.user_id, user.username)
        if arrival is not None:
            self._arrivals[user.user_id] = arrival
        self._share(user.user_id)
        return room_id

    def place(self, user_id: str, room_id: str, position: int | None = None) -> None:
        """The user moved (by the event at ``position``): their sockets hear the new room — here at
        once, on the other processes at that place in the stream."""
        self.subscriptions.place(user_id, room_id)
        if self.share_move is not None:
            self.share_move(user_id, room_id, position)
        self._share(user_id)

    def went_live(self, user_id: str) -> None:
        """A socket of the user has started its session: announce the arrival it brought, if
        no later change of the user's status was announced meanwhile."""
        if self._arrivals.pop(user_id, None) is not None:
            self._announce(self.tracker.get(user_id))

    def socket_closed(self, user_id: str) -> None:
        if self.registry.count_for(user_id) > 0:
            self._share(user_id)  # one socket fewer here (the others count them against the cap)
            return
        self._arrivals.pop(user_id, None)
        room_id = self.subscriptions.location_of(user_id)
        last = self.tracker.disconnected(user_id)
        if room_id is not None and self.typing.stop(room_id, user_id):
            self._send_typing(room_id, user_id, False)
        if last is not None:
            self._announce(Presence(last.user_id, last.username, last.connected_since_ms,
                                    last.last_input_ms, OFFLINE))
        self.subscriptions.forget(user_id)
        self._share(user_id)

    # -- input, away, idle ---------------------------------------------------

    def input(self, user_id: str) -> None:
        changed = self.tracker.input(user_id)
        if changed is not None:
            self._announce(changed)

    def set_status(self, user_id: str, status: str, message: str | None) -> None:
        if status == "away":
            cleaned = " ".join(sanitize_text(message).split()) if message else ""
            changed = self.tracker.set_away(user_id, cleaned or None)
        else:
            changed = self.tracker.set_back(user_id)
        if changed is not None:
            self._announce(changed)

    def sweep_idle(self) -> None:
        for presence in self.tracker.sweep_idle():
            self._announce(presence)

    def _announce(self, presence: Presence | None) -> None:
        if presence is None:
            return
        self._arrivals.pop(presence.user_id, None)  # this newer status says it
        if presence.status != OFFLINE:
            self._share(presence.user_id)
        room_id = self.subscriptions.location_of(presence.user_id)
        frame = self._broadcaster.frame("presence", presence.to_wire(self._clock()), from_user=presence.user_id)
        if room_id is None:
            return
        if self.count_in(room_id) > self.room_limit:
            self._broadcaster.to_user(presence.user_id, frame)  # a crowded room: roster and WHO tell
        else:
            self._broadcaster.to_room(room_id, frame)

    # -- rosters and WHO -----------------------------------------------------

    def members(self, room_id: str, user_id: str, limit: int) -> RosterMembers:
        """Who is in the room, the most recently active first, at most ``limit`` of them; and
        how many there are. In a crowded room the list is a snapshot shared by the rosters of
        up to a second (spec 14.8), with ``user_id`` always in it, and comes encoded."""
        now = self._clock()
        if self.count_in(room_id) <= self.room_limit:
            top, found = self._rank(room_id, limit)
            return RosterMembers(len(found), listed=[p.to_wire(now) for p in top])
        crowd = self._crowds.get(room_id)
        if crowd is None or now - crowd.taken_ms > CROWD_SNAPSHOT_MS:
            crowd = self._crowds[room_id] = _snapshot(now, *self._rank(room_id, limit))
        own = self.tracker.get(user_id)
        if user_id in crowd.ids or own is None:
            return RosterMembers(crowd.count, encoded="[" + ",".join(crowd.encoded[:limit]) + "]")
        listed = [encode_frame(own.to_wire(now)), *crowd.encoded[:limit - 1]]
        return RosterMembers(crowd.count + 1, encoded="[" + ",".join(listed) + "]")

    def _rank(self, room_id: str, limit: int) -> tuple[list[Presence], list[Presence]]:
        """The ``limit`` most recently active in the room, and everyone there."""
        found = [p for p in map(self.tracker.get, self.subscriptions.users_in(room_id)) if p is not None]
        if self.directory is not None:  # and those who stand there through other processes
            found += self._elsewhere(self.directory.users_in(room_id))
        return heapq.nsmallest(limit, found, key=lambda p: (-p.last_input_ms, p.user_id)), found

    def who(self, limit: int = WHO_MAX) -> tuple[list[dict[str, Any]], int]:
        """Connected users, longest-connected first (as MUSH WHO lists them), at most ``limit``;
        and how many there are in all."""
        now = self._clock()
        present = list(self.tracker)
        if self.directory is not None:
            present += self._elsewhere(self.directory.user_ids())
        everyone = sorted(present, key=lambda p: (p.connected_since_ms, p.user_id))
        return [p.to_wire(now) for p in everyone[:limit]], len(everyone)

    # -- the whole server (several processes) ----------------------------------------------------

    def count_in(self, room_id: str) -> int:
        """How many online users stand in the room, on every process."""
        here = self.subscriptions.count_in(room_id)
        if self.directory is None:
            return here
        return here + len([u for u in self.directory.users_in(room_id) if self.tracker.get(u) is None])

    def online_anywhere(self, user_id: str) -> bool:
        """Whether the user has a socket on this process or another."""
        return self.registry.is_online(user_id) or (self.directory is not None and self.directory.is_online(user_id))

    def sockets_anywhere(self, user_id: str) -> int:
        """The user's sockets on every process of the server (the per-user cap counts them all)."""
        here = self.registry.count_for(user_id)
        return here + self.directory.sockets_of(user_id) if self.directory is not None else here

    def online_user_ids(self) -> set[str]:
        ids = set(self.registry.online_user_ids())
        return ids | self.directory.user_ids() if self.directory is not None else ids

    def _elsewhere(self, user_ids: Iterable[str]) -> list[Presence]:
        """The presences of users online on other processes only (those here count once, from here)."""
        assert self.directory is not None
        found = []
        for user_id in user_ids:
            if self.tracker.get(user_id) is None:
                sighting = self.directory.sighting(user_id)
                if sighting is not None:
                    found.append(sighting.presence)
        return found

    def _share(self, user_id: str) -> None:
        if self.share is None:
            return
        presence = self.tracker.get(user_id)
        self.share(user_id, None if presence is None else self._sighting(presence))

    def _sighting(self, presence: Presence) -> Sighting:
        connections = tuple((c.connection_id, getattr(c, "transport", "websocket"), c.address)
                            for c in self.registry.connections_of(presence.user_id))
        return Sighting(presence, self.subscriptions.location_of(presence.user_id),
                        self.registry.count_for(presence.user_id), connections)

    def sighting_of_all(self) -> list[Sighting]:
        """Every user of this process, as the others should know them (an answer to a hello)."""
        return [self._sighting(p) for p in self.tracker]

    def inputs_since(self, since_ms: int) -> dict[str, int]:
        """The last input of this process's users who did something at or after ``since_ms``."""
        return {p.user_id: p.last_input_ms for p in self.tracker if p.last_input_ms >= since_ms}

    def everyone_online(self) -> list[OnlineUser]:
        """Every user with an open session on any process, each once: their sockets everywhere,
        the presence of their most recent input, where they stand."""
        found: dict[str, OnlineUser] = {}
        for presence in self.tracker:
            sighting = self._sighting(presence)
            found[presence.user_id] = OnlineUser(presence.user_id, presence, sighting.room_id,
                                                 _sockets(sighting, self.instance))
        for instance, sighting in self.directory.everywhere() if self.directory is not None else ():
            user_id, held = sighting.presence.user_id, found.get(sighting.presence.user_id)
            if held is None:
                found[user_id] = OnlineUser(user_id, sighting.presence, sighting.room_id, _sockets(sighting, instance))
                continue
            newer = sighting.presence.last_input_ms > held.presence.last_input_ms
            found[user_id] = OnlineUser(user_id, sighting.presence if newer else held.presence,
                                        held.location or sighting.room_id, held.sockets + _sockets(sighting, instance))
        return [found[user_id] for user_id in sorted(found)]

    # -- typing --------------------------------------------------------------

    def set_typing(self, user_id: str, room_id: str, typing: bool) -> None:
        if self.typing.update(room_id, user_id, typing):
            self._send_typing(room_id, user_id, typing)

    def stopped_typing(self, user_id: str, room_id: str) -> None:
        """The user spoke or left: their indicator ends without a frame (clients infer it)."""
        self.typing.stop(room_id, user_id)

    def expire_typing(self) -> None:
        for room_id, user_id in self.typing.expire():
            self._send_typing(room_id, user_id, False)

    def _send_typing(self, room_id: str, user_id: str, typing: bool) -> None:
        data = {"roomId": room_id, "userId": user_id, "typing": typing, "timeoutMs": self.typing.timeout_ms}
        frame = self._broadcaster.frame("typing", data, from_user=user_id, room_id=room_id)
        self._broadcaster.to_room(room_id, frame, except_user=user_id)


def _sockets(sighting: Sighting, instance: str | None) -> list[dict[str, str]]:
    process = {"process": instance} if instance is not None else {}
    return [{"connectionId": connection_id, "transport": transport, "address": address, **process}
            for connection_id, transport, address in sighting.connections]
