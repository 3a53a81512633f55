"""Staying within a server's limits: the suite refuses itself before the server would.

A server publishes its sizes and counts in ``limits`` (``GET /api/versions``)
but not its rate limits, which are settings; the suite paces every request
to the defaults of protocol.md 18.1 (a server with default settings never
refuses it) and, where a server is stricter, the SDK waits what a
``rate_limited`` refusal's ``retryAfterMs`` says and sends again. It also
keeps each user below the spam rules of 18.2: at most ``FLOOD_MESSAGES``
messages per ten seconds (the rule mutes past 20), and never the same text
twice (``Harness.text`` makes every text unique).
"""

from __future__ import annotations

import asyncio
import collections
import time

# protocol.md 18.1, defaults (burst, per second).
DEFAULT_BUCKETS: dict[str, tuple[float, float]] = {
    "speech": (10, 2), "channel": (10, 2), "page": (10, 1), "typing": (20, 4), "moves": (10, 1),
    "actions": (20, 2), "queries": (30, 5), "http_write": (30, 3), "login_address": (20, 0.5),
    "register_address": (5, 1 / 60), "handshake_address": (30, 5),
}
FRAME_ACTIONS = {
    "say": "speech", "pose": "speech", "ooc": "speech", "emit": "speech", "wall": "speech", "channel": "channel",
    "page": "page", "typing": "typing", "join_room": "moves", "leave_room": "moves", "join_channel": "moves",
    "leave_channel": "moves", "edit_message": "actions", "delete_message": "actions", "report_message": "actions",
    "channel_moderate": "actions", "channel_update": "actions", "set_haven": "actions", "block": "actions",
    "set_presence": "actions", "ping": "queries", "who": "queries", "channel_who": "queries",
    "channel_list": "queries", "get_message": "queries",
}
# 18.2: the frames that count as messages for the spam rules (even when refused).
MESSAGE_FRAMES = frozenset({"say", "pose", "ooc", "emit", "wall", "channel", "page", "edit_message"})
FLOOD_MESSAGES, FLOOD_WINDOW = 18, 10.5


def command_action(line: str) -> str:
    """The bucket a MUSH command line draws from (protocol.md 14.2, 15.2, 16.4), near enough."""
    word = line.strip().split(" ", 1)[0].lower()
    if line.lstrip().startswith("+") or word == "@chat":
        return "channel"
    if word in ("page", "p"):
        return "page"
    if word in ("@channel/join", "addcom", "@channel/leave", "delcom", "home"):
        return "moves"
    if word in ("who", "comlist", "@channel/list", "@channel/who"):
        return "queries"
    return "speech"


class Bucket:
    def __init__(self, burst: float, rate: float):
        self.capacity = max(1.0, burst)
        self.rate = rate
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def delay(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        wait = (1 - self.tokens) / self.rate
        self.tokens -= 1
        return wait


class Pacer:
    """Token buckets per (server, owner, action), the owner a user id or ``address``."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str, str], Bucket] = {}
        self._messages: dict[tuple[str, str], collections.deque[float]] = collections.defaultdict(collections.deque)
        self._lock = asyncio.Lock()

    async def take(self, server: str, owner: str, action: str) -> None:
        key = (server, owner, action)
        if key not in self._buckets:
            self._buckets[key] = Bucket(*DEFAULT_BUCKETS[action])
        async with self._lock:
            wait = self._buckets[key].delay()
        if wait > 0:
            await asyncio.sleep(wait)

    async def message(self, server: str, owner: str) -> None:
        """One more message by this user: wait while the last ten seconds hold too many."""
        sent = self._messages[(server, owner)]
        while True:
            now = time.monotonic()
            while sent and now - sent[0] > FLOOD_WINDOW:
                sent.popleft()
            if len(sent) < FLOOD_MESSAGES:
                sent.append(now)
                return
            await asyncio.sleep(FLOOD_WINDOW - (now - sent[0]) + 0.05)

    async def frame(self, server: str, owner: str, frame_type: str, data: dict) -> None:
        action = command_action(str(data.get("line", ""))) if frame_type == "command" else FRAME_ACTIONS.get(frame_type)
        if action is not None:
            await self.take(server, owner, action)
        if frame_type in MESSAGE_FRAMES or (frame_type == "command" and action in ("speech", "page", "channel")):
            await self.message(server, owner)
