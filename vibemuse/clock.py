"""The clock seam: everything that needs the time gets one of these."""

from __future__ import annotations

import time
from typing import Callable

Clock = Callable[[], int]


def system_clock_ms() -> int:
    """Milliseconds since the epoch, UTC."""
    return time.time_ns() // 1_000_000
