"""Typing indicators: who is typing in which room, with automatic expiry.

Never persisted. A ``typing: true`` starts (or refreshes) a user's indicator
in a room until ``timeout_ms`` later; ``false``, a message from them, leaving
the room or the expiry ends it. ``update`` says whether others must be told:
only on a change, and a refresh is re-announced at most once per
``refresh_ms`` (the throttle), so a client sending ``typing`` on every
keystroke costs the room nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass
class _Typing:
    expires_ms: int
    announced_ms: int


class TypingState:
    def __init__(self, clock: Callable[[], int], timeout_ms: int, refresh_ms: int):
        self._clock = clock
        self._timeout_ms = timeout_ms
        self._refresh_ms = refresh_ms
        self._typing: dict[tuple[str, str], _Typing] = {}

    @property
    def timeout_ms(self) -> int:
        return self._timeout_ms

    def is_typing(self, room_id: str, user_id: str) -> bool:
        entry = self._typing.get((room_id, user_id))
        return entry is not None and entry.expires_ms > self._clock()

    def update(self, room_id: str, user_id: str, typing: bool) -> bool:
        """Record a typing frame; True if the room should be told."""
        key, now = (room_id, user_id), self._clock()
        entry = self._typing.get(key)
        active = entry is not None and entry.expires_ms > now
        if not typing:
            self._typing.pop(key, None)
            return active
        if active and now - entry.announced_ms < self._refresh_ms:
            entry.expires_ms = now + self._timeout_ms
            return False
        self._typing[key] = _Typing(expires_ms=now + self._timeout_ms, announced_ms=now)
        return True

    def stop(self, room_id: str, user_id: str) -> bool:
        """Silently end an indicator (the user spoke or left); True if there was one."""
        return self._typing.pop((room_id, user_id), None) is not None

    def expire(self) -> list[tuple[str, str]]:
        """Drop expired indicators; returns (room, user) pairs whose end must be announced."""
        now = self._clock()
        expired = [key for key, entry in self._typing.items() if entry.expires_ms <= now]
        for key in expired:
            del self._typing[key]
        return expired
