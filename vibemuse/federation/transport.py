"""The one seam through which this server makes HTTP requests to other servers.

:class:`HttpTransport` wraps Tornado's ``SimpleAsyncHTTPClient``: TLS
certificates are verified (against the system CAs, or a CA bundle an
operator or a test names), redirects are not followed, every request has a
connect and a total timeout, and an answer body past ``max_body_bytes`` is
refused while it streams in, so a hostile peer cannot make us buffer more.
Every failure (DNS, refused connection, TLS, timeout, oversize) is one
:class:`TransportError`; an answer with any status is an :class:`HttpAnswer`.
``app.py`` builds one per server and passes it to what needs the network
(discovery now; key fetches and the outbox sender after the merge); tests
pass the same class pointed at servers on loopback.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Mapping

import tornado.netutil
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

__all__ = ["HttpAnswer", "HttpTransport", "TransportError"]


class TransportError(Exception):
    """The request got no usable answer: unreachable, TLS refused, timed out, or too large."""


class _Body:
    """Collects an answer's body up to ``limit`` bytes; past it, drops the rest and says so.

    (Raising from Tornado's streaming callback would be logged as an uncaught
    error; the client's own ``max_body_size``, the transport's largest limit,
    cuts the connection of an answer that goes on past that.)
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.received = 0
        self.chunks: list[bytes] = []

    @property
    def overflow(self) -> bool:
        return self.received > self.limit

    def collect(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if not self.overflow:
            self.chunks.append(chunk)


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]
    body: bytes


class HttpTransport:
    def __init__(
        self,
        *,
        ca_bundle: str | None = None,
        connect_timeout: float = 5.0,
        request_timeout: float = 15.0,
        max_body_bytes: int = 1024 * 1024,
        resolver: tornado.netutil.Resolver | None = None,
        user_agent: str = "VibeMUSE",
    ) -> None:
        self._tls = ssl.create_default_context(cafile=ca_bundle)
        self._tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self._connect_timeout = connect_timeout
        self._request_timeout = request_timeout
        self._max_body_bytes = max_body_bytes
        self._resolver = resolver
        self._user_agent = user_agent
        self._client: SimpleAsyncHTTPClient | None = None

    def _http(self) -> SimpleAsyncHTTPClient:
        if self._client is None:  # made on first use, on the running loop
            self._client = SimpleAsyncHTTPClient(
                force_instance=True, resolver=self._resolver, max_clients=100, max_body_size=self._max_body_bytes)
        return self._client

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None, body: bytes | None = None,
        max_body_bytes: int | None = None,
    ) -> HttpAnswer:
        """Send one request; the answer whatever its status, or :class:`TransportError`."""
        limit = min(self._max_body_bytes, self._max_body_bytes if max_body_bytes is None else max_body_bytes)
        answer = _Body(limit)
        request = HTTPRequest(
            url, method=method, headers=dict(headers or {}), body=body, follow_redirects=False,
            connect_timeout=self._connect_timeout, request_timeout=self._request_timeout,
            ssl_options=self._tls if url.startswith("https:") else None, streaming_callback=answer.collect,
            user_agent=self._user_agent, decompress_response=False,
        )
        try:
            response = await self._http().fetch(request, raise_error=False)
        except Exception as error:  # the seam's contract: every failure is a TransportError
            raise TransportError(f"{method} {url}: {error}") from error
        if answer.overflow:
            raise TransportError(f"{method} {url}: answer larger than {limit} bytes")
        if response.code == 599 or (response.error is not None and not isinstance(response.error, HTTPClientError)):
            raise TransportError(f"{method} {url}: {response.error}")
        return HttpAnswer(response.code, dict(response.headers.get_all()), b"".join(answer.chunks))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
