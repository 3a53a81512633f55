"""Sections, checks and their outcomes: the skeleton every conformance check hangs on.

Theory of operation. A *section* is one async function registered with
``@section``; its title names the part of spec/ it tests ("protocol.md 5.1
handshake"), and its requirements say when it can run: feature flags of
``GET /api/versions`` (a flag the server does not offer skips it as "not
offered by the server"), admin or builder credentials, a second or third
server. Inside, each *check* is an ``async with run.check("what") as c:``
block: it passes when the block ends, fails with the spec section, what was
expected and what was seen when ``c.expect(...)`` (or anything else) raises,
and a critical check that fails ends its section (the checks after it need
what it made). ``Skip`` raised in a check or a section skips it, saying why.

After each section the harness adds one more check, "every frame and body
conforms": the schema and signature violations the SDK noticed on the
section's sockets and requests (``validate=True``, ``verify=True``).
"""

from __future__ import annotations

import asyncio
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from vibemuse_client import VibeMuseError

PASS, FAIL, SKIP = "pass", "fail", "skip"


class CheckFailed(Exception):
    """A check saw something the spec does not allow."""

    def __init__(self, expected: str, seen: Any):
        super().__init__(f"expected {expected}; saw {seen}")
        self.expected = expected
        self.seen = seen


class Skip(Exception):
    """What a check or section needs is not there; the reason says what."""


class SectionAborted(Exception):
    """A critical check failed: the rest of the section cannot run."""


def describe(value: Any, limit: int = 400) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass
class Outcome:
    name: str
    status: str
    expected: str = ""
    seen: str = ""
    reason: str = ""
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "status": self.status, "seconds": round(self.seconds, 3)}
        if self.status == FAIL:
            data.update(expected=self.expected, seen=self.seen)
        if self.reason:
            data["reason"] = self.reason
        return data


@dataclass
class SectionResult:
    key: str
    title: str
    status: str = PASS
    reason: str = ""
    checks: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[Outcome]:
        return [check for check in self.checks if check.status == FAIL]

    def settle(self) -> None:
        if self.status != SKIP:
            self.status = FAIL if self.failures else PASS

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key, "title": self.title, "status": self.status,
                                "seconds": round(self.seconds, 3), "checks": [c.as_json() for c in self.checks]}
        if self.reason:
            data["reason"] = self.reason
        return data


class Check:
    """One ``async with run.check(name)`` block: records its outcome when the block ends."""

    def __init__(self, run: "SectionRun", name: str, critical: bool, timeout: float):
        self.run, self.name, self.critical, self.timeout = run, name, critical, timeout
        self._started = 0.0
        self._deadline: asyncio.Handle | None = None

    async def __aenter__(self) -> "Check":
        self._started = time.monotonic()
        return self

    async def __aexit__(self, kind: Any, error: BaseException | None, trace: Any) -> bool:
        seconds = time.monotonic() - self._started
        if error is None:
            self.run.record(Outcome(self.name, PASS, seconds=seconds))
            return False
        if isinstance(error, SectionAborted):
            return False
        if isinstance(error, Skip):
            self.run.record(Outcome(self.name, SKIP, reason=str(error), seconds=seconds))
            return True
        if isinstance(error, CheckFailed):
            outcome = Outcome(self.name, FAIL, error.expected, describe(error.seen), seconds=seconds)
        elif isinstance(error, VibeMuseError):
            outcome = Outcome(self.name, FAIL, "no refusal, and frames and bodies as spec/ describes them",
                              describe(f"{type(error).__name__} {error.code}: {error.message} {error.details or ''}"),
                              seconds=seconds)
        elif isinstance(error, (asyncio.TimeoutError, TimeoutError)):
            outcome = Outcome(self.name, FAIL, "an answer in time", describe(str(error) or "nothing came"),
                              seconds=seconds)
        elif isinstance(error, Exception):
            where = traceback.extract_tb(error.__traceback__)[-1]
            outcome = Outcome(self.name, FAIL, "the check to run to its end",
                              describe(f"{type(error).__name__}: {error} (at {where.filename}:{where.lineno})"),
                              seconds=seconds)
        else:
            return False  # KeyboardInterrupt, CancelledError: not ours to swallow
        self.run.record(outcome)
        if self.critical:
            raise SectionAborted(self.name) from error
        return True

    @staticmethod
    def expect(condition: Any, expected: str, seen: Any = None) -> None:
        if not condition:
            raise CheckFailed(expected, seen)

    @staticmethod
    def equal(seen: Any, expected: Any, what: str) -> None:
        if seen != expected:
            raise CheckFailed(f"{what} = {expected!r}", seen)


@dataclass
class SectionRun:
    """What a section function gets: the harness, and ``check`` to open checks."""

    harness: Any
    result: SectionResult

    def check(self, name: str, *, critical: bool = False, timeout: float = 20.0) -> Check:
        return Check(self, name, critical, timeout)

    def record(self, outcome: Outcome) -> None:
        self.result.checks.append(outcome)


SectionFunction = Callable[[SectionRun], Awaitable[None]]


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    function: SectionFunction
    features: tuple[str, ...] = ()
    admin: bool = False
    builder: bool = False
    servers: int = 1
    order: int = 0


SECTIONS: list[Section] = []


def section(key: str, title: str, *, features: tuple[str, ...] = (), admin: bool = False, builder: bool = False,
            servers: int = 1) -> Callable[[SectionFunction], SectionFunction]:
    """Register a section. ``builder``: builder or admin credentials (an admin is a builder too)."""

    def register(function: SectionFunction) -> SectionFunction:
        if any(existing.key == key for existing in SECTIONS):
            raise ValueError(f"two sections named {key}")
        SECTIONS.append(Section(key, title, function, tuple(features), admin, builder, servers, len(SECTIONS)))
        return function

    return register
