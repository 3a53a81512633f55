"""Who blocks whom, kept in memory for the hot paths (page checks, channel fan-out).

Loaded from storage at start; changed together with storage by the page
service. Lookups are set operations, no database round trip per message.
"""

from __future__ import annotations

from typing import Iterable


class BlockList:
    def __init__(self, pairs: Iterable[tuple[str, str]] = ()):
        self._blockers_of: dict[str, set[str]] = {}
        for blocker, blocked in pairs:
            self.add(blocker, blocked)

    def add(self, blocker: str, blocked: str) -> None:
        self._blockers_of.setdefault(blocked, set()).add(blocker)

    def remove(self, blocker: str, blocked: str) -> None:
        blockers = self._blockers_of.get(blocked)
        if blockers is not None:
            blockers.discard(blocker)
            if not blockers:
                del self._blockers_of[blocked]

    def blocks(self, blocker: str, blocked: str) -> bool:
        return blocker in self._blockers_of.get(blocked, ())

    def blockers_of(self, blocked: str) -> frozenset[str]:
        return frozenset(self._blockers_of.get(blocked, ()))
