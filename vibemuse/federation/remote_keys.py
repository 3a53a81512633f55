"""Fetching another server's key document over HTTP, for :class:`RemoteKeyCache`.

The base URL of a server comes from a resolver ``base_url_of(server_name)``.
Discovery (``federation_peers``, ``.well-known``) is built elsewhere; until it
is wired, :func:`peers_resolver` reads a ``federation_peers`` table from the
config if the config has one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import tornado.httpclient

from vibemuse.config import Config
from vibemuse.protocol.canonical_json import decode_json_strict

BaseUrlOf = Callable[[str], Awaitable[str]]
KEYS_PATH = "/federation/v1/keys"
MAX_KEYS_BYTES = 65536
FETCH_TIMEOUT_SECONDS = 10.0


def peers_resolver(config: Config) -> BaseUrlOf:
    """The base URL of a peer named in ``federation_peers`` (a stand-in for discovery)."""
    async def base_url_of(server_name: str) -> str:
        return getattr(config, "federation_peers", {})[server_name].rstrip("/")
    return base_url_of


def http_key_fetcher(base_url_of: BaseUrlOf) -> Callable[[str], Awaitable[Any]]:
    """``fetch(server_name)``: GET the server's key document, parsed (not yet verified)."""
    async def fetch(server_name: str) -> Any:
        chunks: list[bytes] = []
        size = [0]

        def take(chunk: bytes) -> None:  # keep at most MAX_KEYS_BYTES (the timeout bounds the rest)
            size[0] += len(chunk)
            if size[0] <= MAX_KEYS_BYTES:
                chunks.append(chunk)

        request = tornado.httpclient.HTTPRequest(
            await base_url_of(server_name) + KEYS_PATH, request_timeout=FETCH_TIMEOUT_SECONDS,
            follow_redirects=False, headers={"Accept": "application/json"}, streaming_callback=take)
        await tornado.httpclient.AsyncHTTPClient().fetch(request)
        if size[0] > MAX_KEYS_BYTES:
            raise ValueError(f"the key document of {server_name} is over {MAX_KEYS_BYTES} bytes")
        return decode_json_strict(b"".join(chunks), max_bytes=MAX_KEYS_BYTES)
    return fetch
