"""A cache of other servers' published verify keys (pure asyncio).

Theory of operation
-------------------
To verify an event from ``example.org`` we need the public key named by its
signature's key id. :class:`RemoteKeyCache` fetches the server's key
document (``GET /federation/v1/keys``) through an injected coroutine
``fetch(server_name) -> dict``, verifies it with
:func:`~vibemuse.protocol.events.parse_server_keys_response` (self-signed,
validity clamped to at most 7 days) and keeps it until its
``valid_until_ts``. Lookups check ``verify_keys`` then ``old_verify_keys``.

Fetching is bounded, because each event we receive names a server and a key
id of the sender's choosing:

* concurrent lookups for one server share one in-flight fetch;
* at most one fetch per server starts per ``min_refetch_interval_ms``. A
  lookup that needs a fetch inside that window fails at once:
  ``UnknownKey`` if the cached document lacks the key id, else
  :class:`KeyFetchError` (carrying the previous failure, if any).

A fetched document replaces the previous one for that server. Time comes
from the injected ``clock()`` (milliseconds), so tests need no sleeping.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vibemuse.protocol.events import (
    MAX_KEY_VALIDITY_MS,
    ServerKeys,
    parse_server_keys_response,
)
from vibemuse.protocol.signing import UnknownKey, parse_key_id

__all__ = ["DEFAULT_MIN_REFETCH_INTERVAL_MS", "KeyFetchError", "RemoteKeyCache"]

DEFAULT_MIN_REFETCH_INTERVAL_MS = 30_000

Fetch = Callable[[str], Awaitable[Any]]
Clock = Callable[[], int]


class KeyFetchError(Exception):
    """A server's keys could not be fetched or were refused (see __cause__)."""


class RemoteKeyCache:
    """Remote servers' verify keys, fetched on demand and cached."""

    def __init__(
        self,
        fetch: Fetch,
        clock: Clock,
        *,
        min_refetch_interval_ms: int = DEFAULT_MIN_REFETCH_INTERVAL_MS,
        max_validity_ms: int = MAX_KEY_VALIDITY_MS,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._min_interval = min_refetch_interval_ms
        self._max_validity = min(max_validity_ms, MAX_KEY_VALIDITY_MS)
        self._entries: dict[str, ServerKeys] = {}
        self._last_attempt: dict[str, int] = {}
        self._last_error: dict[str, BaseException] = {}
        self._inflight: dict[str, asyncio.Future[ServerKeys]] = {}

    def cached(self, server_name: str) -> ServerKeys | None:
        """The cached, still valid document for ``server_name``, if any."""
        entry = self._entries.get(server_name)
        if entry is not None and entry.valid_until_ts > self._clock():
            return entry
        return None

    async def get_server_keys(self, server_name: str) -> ServerKeys:
        """The server's valid key document, fetching it if needed."""
        entry = self.cached(server_name)
        if entry is not None:
            return entry
        return await self._fetch_shared(server_name)

    async def get_verify_key(self, server_name: str, key_id: str) -> Ed25519PublicKey:
        """The public key ``key_id`` of ``server_name`` (current or old).

        Raises ``KeyFormatError`` for a malformed key id, ``UnknownKey`` if
        the server does not publish it, :class:`KeyFetchError` if its keys
        cannot be had.
        """
        parse_key_id(key_id)
        entry = self.cached(server_name)
        if entry is not None:
            key = entry.lookup(key_id)
            if key is not None:
                return key
            if server_name not in self._inflight and not self._may_fetch(server_name):
                raise UnknownKey(server_name, [key_id])
        entry = await self._fetch_shared(server_name)
        key = entry.lookup(key_id)
        if key is None:
            raise UnknownKey(server_name, [key_id])
        return key

    def _may_fetch(self, server_name: str) -> bool:
        last = self._last_attempt.get(server_name)
        return last is None or self._clock() - last >= self._min_interval

    async def _fetch_shared(self, server_name: str) -> ServerKeys:
        """Join the in-flight fetch for the server, or start one if allowed."""
        future = self._inflight.get(server_name)
        if future is None:
            if not self._may_fetch(server_name):
                raise self._throttled(server_name)
            self._last_attempt[server_name] = self._clock()
            future = asyncio.ensure_future(self._fetch_and_store(server_name))
            self._inflight[server_name] = future
            future.add_done_callback(lambda done: self._finished(server_name, done))
        # shield: one caller being cancelled must not cancel everyone's fetch.
        return await asyncio.shield(future)

    def _finished(self, server_name: str, future: asyncio.Future[ServerKeys]) -> None:
        if self._inflight.get(server_name) is future:
            del self._inflight[server_name]
        if not future.cancelled():
            future.exception()  # mark retrieved even if every waiter went away

    def _throttled(self, server_name: str) -> KeyFetchError:
        wait = self._last_attempt[server_name] + self._min_interval - self._clock()
        error = KeyFetchError(
            f"keys of {server_name} unavailable; next fetch allowed in {wait} ms"
        )
        error.__cause__ = self._last_error.get(server_name)
        return error

    async def _fetch_and_store(self, server_name: str) -> ServerKeys:
        try:
            document = await self._fetch(server_name)
            keys = parse_server_keys_response(document, server_name, self._clock())
        except Exception as exc:
            self._last_error[server_name] = exc
            raise KeyFetchError(f"fetching keys of {server_name} failed: {exc}") from exc
        limit = self._clock() + self._max_validity
        if keys.valid_until_ts > limit:
            keys = dataclasses.replace(keys, valid_until_ts=limit)
        self._entries[server_name] = keys
        self._last_error.pop(server_name, None)
        return keys
