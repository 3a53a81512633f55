"""Presence: online, idle, away or offline, per user across all their sockets.

A user is online from their first socket until their last one closes. Any
frame from any of their sockets is input; after ``idle_after_ms`` without
input they are idle. Away is set by the user (with an optional message) and
wins over idle until they come back. The tracker only keeps state and says
when the status a user shows to others has changed; the caller sends the
``presence`` frames.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterator

ONLINE, IDLE, AWAY, OFFLINE = "online", "idle", "away", "offline"


@dataclass(frozen=True)
class Presence:
    user_id: str
    username: str
    connected_since_ms: int
    last_input_ms: int
    status: str = ONLINE
    away_message: str | None = None

    def to_wire(self, now_ms: int) -> dict:
        wire = {
            "userId": self.user_id,
            "username": self.username,
            "status": self.status,
            "onForMs": max(0, now_ms - self.connected_since_ms),
            "idleMs": max(0, now_ms - self.last_input_ms),
        }
        if self.away_message:
            wire["awayMessage"] = self.away_message
        return wire


class PresenceTracker:
    def __init__(self, clock: Callable[[], int], idle_after_ms: int):
        self._clock = clock
        self._idle_after_ms = idle_after_ms
        self._users: dict[str, Presence] = {}

    def get(self, user_id: str) -> Presence | None:
        return self._users.get(user_id)

    def __iter__(self) -> Iterator[Presence]:
        return iter(list(self._users.values()))

    def connected(self, user_id: str, username: str) -> Presence | None:
        """A socket of the user opened; returns the presence to announce, if it changed
        (the user came online, or was idle and is back)."""
        if user_id in self._users:
            return self.input(user_id)
        now = self._clock()
        self._users[user_id] = Presence(user_id, username, now, now)
        return self._users[user_id]

    def disconnected(self, user_id: str) -> Presence | None:
        """The user's last socket closed; returns their final presence."""
        return self._users.pop(user_id, None)

    def input(self, user_id: str) -> Presence | None:
        """The user did something; returns the new presence if their status changed."""
        current = self._users.get(user_id)
        if current is None:
            return None
        status = AWAY if current.status == AWAY else ONLINE
        updated = replace(current, last_input_ms=self._clock(), status=status)
        self._users[user_id] = updated
        return updated if status != current.status else None

    def set_away(self, user_id: str, message: str | None) -> Presence | None:
        """Away with a message, or back (``message`` None and not away → online)."""
        current = self._users.get(user_id)
        if current is None:
            return None
        updated = replace(current, status=AWAY, away_message=message, last_input_ms=self._clock())
        self._users[user_id] = updated
        return updated

    def set_back(self, user_id: str) -> Presence | None:
        current = self._users.get(user_id)
        if current is None:
            return None
        updated = replace(current, status=ONLINE, away_message=None, last_input_ms=self._clock())
        self._users[user_id] = updated
        return updated if current.status != ONLINE else None

    def sweep_idle(self) -> list[Presence]:
        """Mark users idle whose last input is older than the idle time; returns them."""
        deadline = self._clock() - self._idle_after_ms
        changed = []
        for presence in list(self._users.values()):
            if presence.status == ONLINE and presence.last_input_ms <= deadline:
                updated = replace(presence, status=IDLE)
                self._users[presence.user_id] = updated
                changed.append(updated)
        return changed
