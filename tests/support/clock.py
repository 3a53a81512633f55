"""A clock the tests move by hand (the server takes its clock as an argument)."""

from __future__ import annotations

import time


class FakeClock:
    def __init__(self, start_ms: int | None = None):
        self.now_ms = start_ms if start_ms is not None else time.time_ns() // 1_000_000

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> None:
        self.now_ms += int(seconds * 1000)
