"""The published keys of servers, fetched once and cached (events.md section 8).

A ``KeyStore`` answers "which public key is ``ed25519:2_Spec`` of
``muse.example.org``" by fetching ``GET <base URL>/federation/v1/keys``
through the seam ``fetch(server_name) -> document``, checking the document's
own signature, and caching it until its ``valid_until_ts`` (at most 7 days).
A key id it does not know makes it fetch again, at most once per 30 seconds
per server; a key of ``old_verify_keys`` verifies only events made before it
was retired. The clock is an argument, so tests can move it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from vibemuse_client.errors import SignatureError
from vibemuse_client.signing import Verification, signing_key_ids, verify_event, verify_key_document

MAX_CACHE_MS = 7 * 24 * 3600 * 1000
REFETCH_AFTER_MS = 30_000

FetchKeys = Callable[[str], Awaitable[Mapping[str, Any]]]


@dataclass
class _Cached:
    keys: dict[str, tuple[bytes, int | None]]
    expires_ms: int
    fetched_ms: int
    fetches: int = field(default=1)


class KeyStore:
    def __init__(self, fetch: FetchKeys, clock_ms: Callable[[], int] | None = None):
        self._fetch = fetch
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._cache: dict[str, _Cached] = {}
        self._inflight: dict[str, asyncio.Future[_Cached]] = {}

    @property
    def fetches(self) -> dict[str, int]:
        """How many key documents were fetched per server (the cache at work)."""
        return {name: cached.fetches for name, cached in self._cache.items()}

    async def keys_of(self, server_name: str, wanted: list[str] | None = None) -> dict[str, tuple[bytes, int | None]]:
        """``key_id -> (public key, expired_ts or None)`` of a server, from the cache when it can."""
        now = self._clock_ms()
        cached = self._cache.get(server_name)
        missing = cached is not None and wanted and not any(key_id in cached.keys for key_id in wanted)
        stale = cached is None or cached.expires_ms <= now
        if stale or (missing and now - cached.fetched_ms >= REFETCH_AFTER_MS):
            cached = await self._refresh(server_name)
        return cached.keys

    async def _refresh(self, server_name: str) -> _Cached:
        if server_name in self._inflight:  # concurrent look-ups share one request
            return await asyncio.shield(self._inflight[server_name])
        future: asyncio.Future[_Cached] = asyncio.get_running_loop().create_future()
        self._inflight[server_name] = future
        try:
            document = await self._fetch(server_name)
            now = self._clock_ms()
            keys = verify_key_document(document, server_name, now)
            previous = self._cache.get(server_name)
            cached = _Cached(keys, min(int(document["valid_until_ts"]), now + MAX_CACHE_MS), now,
                             (previous.fetches + 1) if previous else 1)
            self._cache[server_name] = cached
            future.set_result(cached)
            return cached
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._inflight[server_name]

    async def verify_event(self, event: Mapping[str, Any], *, require_intact: bool = False) -> Verification:
        """Verify an event with its origin's published keys (events.md section 9).

        Raises ``SignatureError``; with ``require_intact`` also when the content is not the one
        signed (``invalid_event_hash``), which otherwise only sets ``content_intact=False``.
        """
        origin = event.get("origin")
        if not isinstance(origin, str):
            raise SignatureError("bad_event", "the event has no origin")
        key_ids = signing_key_ids(event)
        published = await self.keys_of(origin, key_ids)
        made = event.get("origin_server_ts")
        usable = {key_id: key for key_id, (key, expired) in published.items()
                  if expired is None or (isinstance(made, int) and made < expired)}
        verification = verify_event(event, usable)
        if require_intact and not verification.content_intact:
            raise SignatureError("invalid_event_hash", "the content does not match hashes.sha256",
                                 {"eventId": verification.event_id})
        return verification
