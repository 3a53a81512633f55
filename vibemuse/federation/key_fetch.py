"""Fetching another server's key document: discovery, then ``GET <base URL>/federation/v1/keys``.

:class:`KeyDocumentFetcher` is the ``fetch(server_name)`` coroutine that
:class:`~vibemuse.federation.key_cache.RemoteKeyCache` takes: it finds the
server's base URL with ``base_url_of`` (discovery's, :class:`~vibemuse.federation.discovery.Discovery`),
asks through the one HTTP seam (:class:`~vibemuse.federation.transport.HttpTransport`)
and returns the decoded JSON object; the cache checks its signatures and
validity. Every failure is an exception the cache turns into ``KeyFetchError``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from vibemuse.federation.discovery import Transport

__all__ = ["KEYS_PATH", "MAX_KEY_DOCUMENT_BYTES", "BaseUrlOf", "KeyDocumentError", "KeyDocumentFetcher"]

BaseUrlOf = Callable[[str], Awaitable[str]]  # a server name to its base URL (discovery)

KEYS_PATH = "/federation/v1/keys"
MAX_KEY_DOCUMENT_BYTES = 64 * 1024


class KeyDocumentError(Exception):
    """The key document could not be had: a non-200 answer or a body that is not a JSON object."""


class KeyDocumentFetcher:
    def __init__(self, base_url_of: BaseUrlOf, transport: Transport) -> None:
        self._base_url_of = base_url_of
        self._transport = transport

    async def __call__(self, server_name: str) -> dict[str, Any]:
        base_url = (await self._base_url_of(server_name)).rstrip("/")
        answer = await self._transport.request("GET", base_url + KEYS_PATH, headers={"Accept": "application/json"},
                                               max_body_bytes=MAX_KEY_DOCUMENT_BYTES)
        if answer.status != 200:
            raise KeyDocumentError(f"{base_url}{KEYS_PATH} answered HTTP {answer.status}")
        try:
            document = json.loads(answer.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise KeyDocumentError(f"{base_url}{KEYS_PATH}: not UTF-8 JSON") from None
        if not isinstance(document, dict):
            raise KeyDocumentError(f"{base_url}{KEYS_PATH}: not a JSON object")
        return document
