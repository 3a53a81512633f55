"""Anti-spam: flood and duplicate detection with escalating measures.

Theory of operation. Every message a user sends (in a room, on a channel, by
page, announcements included) is noted with its time and a normalized form
of its text. Two patterns are strikes: a *flood* (more than ``flood_count``
messages within ``flood_window``) and a *repeat* (the same text, ignoring
case, spacing and markup, ``repeat_count`` times within ``repeat_window``).
Strikes escalate: the first is a warning; the next ones mute the user for
``mute_base`` × 2^(earlier mutes) — a repeat offender's mute grows — and a
user who keeps trying to speak while muted is disconnected. A mute refuses
every message with ``muted`` and the time left; moderators and admins can
lift it. Every measure is logged and listed for admins. The state lives in
memory (a restart forgives).
"""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from vibemuse.protocol.errors import ErrorCode, ProtocolError

log = logging.getLogger(__name__)
_MARKUP = re.compile(r"%[xXcC](<[^>]*>|.)|%[rtbRTB%]")
_NON_WORD = re.compile(r"\W+")


@dataclass(frozen=True)
class SpamRules:
    flood_count: int = 20
    flood_window_ms: int = 10_000
    repeat_count: int = 4
    repeat_window_ms: int = 60_000
    mute_base_ms: int = 60_000
    disconnect_after_muted_attempts: int = 20


@dataclass
class Offender:
    user_id: str
    strikes: int = 0
    mutes: int = 0
    muted_until_ms: int = 0
    attempts_while_muted: int = 0
    recent: deque = field(default_factory=deque)  # (time, folded text)
    message_ids: deque = field(default_factory=lambda: deque(maxlen=64))  # recent requests, to spot retries
    last_reason: str = ""


@dataclass(frozen=True)
class Verdict:
    """What to do with a message: pass it, warn about it, or cut the connection."""

    warning: str | None = None
    disconnect: bool = False


class SpamGuard:
    def __init__(self, rules: SpamRules, clock: Callable[[], int], *, max_tracked: int = 100_000):
        self.rules = rules
        self._clock = clock
        self._users: dict[str, Offender] = {}
        self._max_tracked = max_tracked
        # Several processes: a mute (or its lift) here holds on the others (``apply_mute``)
        self.on_mute: Callable[[str, int], None] | None = None

    def check(self, user_id: str, text: str, message_id: str | None = None) -> Verdict:
        """Note one message; raise ``muted`` if the user may not speak now. A retry of a
        request seen lately (same ``message_id``) is not counted again."""
        now = self._clock()
        offender = self._offender(user_id)
        if message_id is not None:
            if message_id in offender.message_ids and offender.muted_until_ms <= now:
                return Verdict()
            offender.message_ids.append(message_id)
        if offender.muted_until_ms > now:
            offender.attempts_while_muted += 1
            if offender.attempts_while_muted >= self.rules.disconnect_after_muted_attempts:
                log.warning("spam: disconnecting %s (kept speaking while muted)", user_id)
                offender.attempts_while_muted = 0
                return Verdict(disconnect=True)
            raise self._muted(offender, now)
        reason = self._strike_reason(offender, now, _fold(text))
        if reason is None:
            return Verdict()
        return self._strike(offender, now, reason)

    def _offender(self, user_id: str) -> Offender:
        offender = self._users.get(user_id)
        if offender is None:
            if len(self._users) >= self._max_tracked:
                self.sweep()
            offender = self._users[user_id] = Offender(user_id)
        return offender

    def _strike_reason(self, offender: Offender, now: int, folded: str) -> str | None:
        rules, recent = self.rules, offender.recent
        recent.append((now, folded))
        horizon = now - max(rules.flood_window_ms, rules.repeat_window_ms)
        while recent and recent[0][0] < horizon:
            recent.popleft()
        flood = sum(1 for stamp, _ in recent if stamp > now - rules.flood_window_ms)
        if flood > rules.flood_count:
            return "flood"
        repeats = sum(1 for stamp, text in recent if text == folded and stamp > now - rules.repeat_window_ms)
        if folded and repeats >= rules.repeat_count:
            return "repeat"
        return None

    def _strike(self, offender: Offender, now: int, reason: str) -> Verdict:
        offender.strikes += 1
        offender.last_reason = reason
        offender.recent.clear()
        if offender.strikes == 1:
            log.info("spam: warning %s (%s)", offender.user_id, reason)
            what = "too many messages too fast" if reason == "flood" else "the same message again and again"
            return Verdict(warning=f"Slow down: {what}. Next time you will be muted.")
        duration = self.rules.mute_base_ms * 2 ** offender.mutes
        offender.mutes += 1
        offender.muted_until_ms = now + duration
        if self.on_mute is not None:
            self.on_mute(offender.user_id, offender.muted_until_ms)
        log.warning("spam: muting %s for %d s (%s, mute #%d)", offender.user_id, duration // 1000, reason,
                    offender.mutes)
        raise self._muted(offender, now)

    @staticmethod
    def _muted(offender: Offender, now: int) -> ProtocolError:
        remaining = offender.muted_until_ms - now
        return ProtocolError(
            ErrorCode.MUTED,
            f"You are muted for spam for {max(1, remaining // 1000)} more seconds.",
            details={"untilMs": offender.muted_until_ms, "remainingMs": remaining, "scope": "server"},
        )

    def lift(self, user_id: str) -> bool:
        """A moderator or admin lifts a mute; True if there was one."""
        offender = self._users.get(user_id)
        if offender is None or offender.muted_until_ms <= self._clock():
            return False
        offender.muted_until_ms = 0
        offender.attempts_while_muted = 0
        if self.on_mute is not None:
            self.on_mute(user_id, 0)
        log.info("spam: mute of %s lifted", user_id)
        return True

    def apply_mute(self, user_id: str, until_ms: int) -> None:
        """A mute (``until_ms``; 0: lifted) decided on another process of the server."""
        offender = self._offender(user_id)
        offender.muted_until_ms = until_ms
        if until_ms == 0:
            offender.attempts_while_muted = 0

    def offenders(self) -> list[Offender]:
        return sorted((o for o in self._users.values() if o.strikes), key=lambda o: (-o.strikes, o.user_id))

    def sweep(self) -> None:
        """Forget users with no strikes and nothing recent."""
        horizon = self._clock() - max(self.rules.flood_window_ms, self.rules.repeat_window_ms)
        for user_id, offender in list(self._users.items()):
            if not offender.strikes and (not offender.recent or offender.recent[-1][0] < horizon):
                del self._users[user_id]

    def __len__(self) -> int:
        return len(self._users)


def _fold(text: str) -> str:
    """The text as the repeat rule compares it: markup removed first, then case and
    everything but letters and digits folded away."""
    return _NON_WORD.sub(" ", _MARKUP.sub("", text).casefold()).strip()
