"""Cheap unique ids for connections and server frames.

A random per-process prefix and a counter: unique across processes and
restarts without a random draw per id (fan-out makes many frames).
"""

from __future__ import annotations

import itertools
import os


class IdSource:
    def __init__(self, prefix: str = ""):
        self._prefix = prefix + os.urandom(5).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}.{next(self._counter)}"
