"""A timer for the periodic chores of real time (expiring typing indicators,
marking users idle, the heartbeat); a chore may be a plain function or a
coroutine function."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

log = logging.getLogger(__name__)


class Ticker:
    def __init__(self, interval: float, chores: list[Callable[[], Any]]):
        self._interval = interval
        self._chores = chores
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for chore in self._chores:
                try:
                    result = chore()
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:  # one failing chore must not stop the others
                    log.exception("periodic chore %r failed", chore)
