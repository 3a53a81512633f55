"""Token buckets: how often each user (or address) may do each kind of thing.

A bucket holds up to ``burst`` tokens and refills at ``per_second``; every
request takes one. An empty bucket refuses, and says how long until a token
is back (the client's ``retryAfterMs``). Buckets are keyed by (action,
user or address) and shared by all of a user's sockets, so opening more
sockets buys no more messages. Full buckets are forgotten (a full bucket is
the same as no bucket), which keeps memory bounded by the number of users
active in the last ``burst / per_second`` seconds; a hard cap on the number
of buckets protects against a flood of distinct keys. With several
processes, each tells the others of the tokens it took (``on_take``,
``debit``: gathered over a few milliseconds, ``processes.py``), so a user
whose sockets are spread over processes has one allowance, not one each.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Mapping


@dataclass(frozen=True)
class Rate:
    burst: float
    per_second: float


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    def __init__(self, rates: Mapping[str, Rate], *, max_buckets: int = 200_000,
                 monotonic: Callable[[], float] = time.monotonic):
        self._rates = dict(rates)
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._max_buckets = max_buckets
        self._monotonic = monotonic
        # Several processes: told of every token taken here, so that the others take it too (``debit``)
        self.on_take: Callable[[str, str], None] | None = None

    def take(self, action: str, key: str) -> int:
        """Take a token; 0 if allowed, else the milliseconds until one is back."""
        rate = self._rates[action]
        now = self._monotonic()
        bucket = self._buckets.get((action, key))
        if bucket is None:
            if len(self._buckets) >= self._max_buckets:
                self.sweep()
            bucket = self._buckets[(action, key)] = _Bucket(rate.burst, now)
        bucket.tokens = min(rate.burst, bucket.tokens + (now - bucket.stamp) * rate.per_second)
        bucket.stamp = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            if self.on_take is not None:
                self.on_take(action, key)
            return 0
        return max(1, math.ceil((1 - bucket.tokens) / rate.per_second * 1000))

    def debit(self, action: str, key: str, count: int) -> None:
        """``count`` tokens of this bucket were taken on another process of the server. The
        bucket may go below empty (down to minus its burst): the refill pays that back first."""
        rate = self._rates.get(action)
        if rate is None:
            return
        now = self._monotonic()
        bucket = self._buckets.get((action, key))
        if bucket is None:
            bucket = self._buckets[(action, key)] = _Bucket(rate.burst, now)
        tokens = min(rate.burst, bucket.tokens + (now - bucket.stamp) * rate.per_second)
        bucket.tokens, bucket.stamp = max(-rate.burst, tokens - count), now

    def give_back(self, action: str, key: str) -> None:
        """Return a token taken for something that turned out not to count (a right password)."""
        bucket = self._buckets.get((action, key))
        if bucket is not None:
            bucket.tokens = min(self._rates[action].burst, bucket.tokens + 1)

    def forget(self, action: str, key: str) -> None:
        """Fill the bucket again (as if it had never been used)."""
        self._buckets.pop((action, key), None)

    def sweep(self) -> int:
        """Forget full buckets; returns how many are left."""
        now = self._monotonic()
        for key, bucket in list(self._buckets.items()):
            rate = self._rates[key[0]]
            if bucket.tokens + (now - bucket.stamp) * rate.per_second >= rate.burst:
                del self._buckets[key]
        if len(self._buckets) >= self._max_buckets:  # still full of hot keys: drop the oldest half
            for key in sorted(self._buckets, key=lambda k: self._buckets[k].stamp)[: self._max_buckets // 2]:
                del self._buckets[key]
        return len(self._buckets)

    def __len__(self) -> int:
        return len(self._buckets)
