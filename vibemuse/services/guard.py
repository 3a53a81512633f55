"""``Guard``: the rate limits and the spam rules, as one thing handlers ask.

``limit`` refuses with ``rate_limited`` (and when to retry) before any work
is done; ``speech`` runs a message past the spam rules (``services.spam``).
Both are keyed by user (or by address, for what comes before a login), so a
user's sockets share their allowance.
"""

from __future__ import annotations

import logging

from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.realtime.ratelimit import RateLimiter
from vibemuse.services.spam import SpamGuard, Verdict

log = logging.getLogger(__name__)


def rate_limited(action: str, retry_after_ms: int) -> ProtocolError:
    """The refusal of a request whose bucket is empty: ``rate_limited``, and when to retry."""
    return ProtocolError(
        ErrorCode.RATE_LIMITED,
        f"Too many {action.replace('_', ' ')} requests; try again in {retry_after_ms / 1000:.1f} s.",
        details={"retryAfterMs": retry_after_ms, "action": action},
    )


class Guard:
    def __init__(self, limiter: RateLimiter, spam: SpamGuard):
        self.limiter = limiter
        self.spam = spam

    def limit(self, action: str, key: str) -> None:
        retry_after = self.limiter.take(action, key)
        if retry_after:
            raise rate_limited(action, retry_after)

    def speech(self, user_id: str, text: str, message_id: str | None = None) -> Verdict:
        return self.spam.check(user_id, text, message_id)
