"""Discovery: the base URL at which another server is reached.

Theory of operation
-------------------
``await discovery.base_url_of("beta.example")`` answers, in this order:

1. the ``federation_peers`` setting, when it names the server (no network);
2. a cached answer, while it is fresh: a found base URL for
   ``federation_discovery_cache_seconds``, a failure for the shorter
   ``negative_cache_ms`` (so a dead or hostile name costs one request per
   minute, not one per event), each failure raised again as a new
   :class:`DiscoveryError` with the first one's reason;
3. ``GET https://<server_name>/.well-known/vibemuse/server`` through the
   injected transport (TLS verified, no redirects, timeouts, at most
   ``MAX_WELL_KNOWN_BYTES``), whose 200 answer must be
   ``{"base_url": <absolute http(s) URL>}`` (``protocol.discovery``).

Concurrent look-ups of one name share one request (the first caller's; a
caller cancelled while waiting does not cancel it). The cache holds at most
``max_entries`` names and drops the least recently used beyond that. Names
that are not server names (``ids.SERVER_NAME_PATTERN``) fail at once, before
any URL is built from them. Time comes from the injected clock (ms).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Awaitable, Callable, Mapping, Protocol

from vibemuse.federation.transport import HttpAnswer, TransportError
from vibemuse.protocol.discovery import MAX_WELL_KNOWN_BYTES, InvalidWellKnown, parse_well_known, well_known_url
from vibemuse.protocol.ids import is_valid_server_name

__all__ = ["DEFAULT_NEGATIVE_CACHE_MS", "Discovery", "DiscoveryError"]

log = logging.getLogger(__name__)

DEFAULT_NEGATIVE_CACHE_MS = 60_000
DEFAULT_MAX_ENTRIES = 10_000


class Transport(Protocol):
    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                body: bytes | None = None, max_body_bytes: int | None = None) -> Awaitable[HttpAnswer]: ...


class DiscoveryError(Exception):
    """The base URL of ``server_name`` is not known: ``reason`` says why."""

    def __init__(self, server_name: str, reason: str) -> None:
        super().__init__(f"cannot discover {server_name!r}: {reason}")
        self.server_name = server_name
        self.reason = reason


@dataclass(frozen=True)
class _Answer:
    """One look-up's outcome: a base URL or the reason there is none, fresh until ``expires_ms``."""

    base_url: str | None
    failure: str | None
    expires_ms: int

    def unwrap(self, server_name: str) -> str:
        if self.base_url is None:
            raise DiscoveryError(server_name, self.failure or "unknown")
        return self.base_url


class Discovery:
    def __init__(
        self,
        transport: Transport,
        *,
        peers: Mapping[str, str],
        clock: Callable[[], int],
        cache_ms: int,
        negative_cache_ms: int = DEFAULT_NEGATIVE_CACHE_MS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self._transport = transport
        self._peers = dict(peers)
        self._clock = clock
        self._cache_ms = cache_ms
        self._negative_cache_ms = min(negative_cache_ms, cache_ms)
        self._max_entries = max_entries
        self._answers: OrderedDict[str, _Answer] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[_Answer]] = {}

    async def base_url_of(self, server_name: str) -> str:
        """The base URL of ``server_name`` (no trailing ``/``), or :class:`DiscoveryError`."""
        configured = self._peers.get(server_name)
        if configured is not None:
            return configured
        if not is_valid_server_name(server_name):
            raise DiscoveryError(str(server_name), "not a server name")
        answer = self._fresh(server_name)
        if answer is None:
            future = self._inflight.get(server_name)
            if future is None:
                future = asyncio.ensure_future(self._look_up(server_name))
                self._inflight[server_name] = future
                future.add_done_callback(lambda done: self._inflight.pop(server_name, None))
            answer = await asyncio.shield(future)
        return answer.unwrap(server_name)

    def _fresh(self, server_name: str) -> _Answer | None:
        answer = self._answers.get(server_name)
        if answer is None or answer.expires_ms <= self._clock():
            return None
        self._answers.move_to_end(server_name)
        return answer

    async def _look_up(self, server_name: str) -> _Answer:
        try:
            answer = await self._transport.request(
                "GET", well_known_url(server_name), headers={"Accept": "application/json"},
                max_body_bytes=MAX_WELL_KNOWN_BYTES)
            if answer.status != 200:
                return self._remember(server_name, None, f"well-known answered HTTP {answer.status}")
            return self._remember(server_name, parse_well_known(answer.body), None)
        except (TransportError, InvalidWellKnown) as error:
            return self._remember(server_name, None, str(error))

    def _remember(self, server_name: str, base_url: str | None, failure: str | None) -> _Answer:
        lifetime = self._cache_ms if base_url is not None else self._negative_cache_ms
        if failure is not None:  # at most once per negative_cache_ms per name
            log.warning("cannot discover %s (asking again in %d s): %s", server_name, lifetime // 1000, failure)
        answer = _Answer(base_url, failure, self._clock() + lifetime)
        self._answers[server_name] = answer
        self._answers.move_to_end(server_name)
        while len(self._answers) > self._max_entries:
            self._answers.popitem(last=False)
        return answer
