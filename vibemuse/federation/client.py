"""Signed requests this server makes of another and waits for: joining a channel homed there,
fetching a channel's events (spec/v1/federation.md section 10).

Transactions go through the outbox (``sender.py``); these requests are the
ones a player or a catch-up waits on. Each is signed like every server
request (``FederationSeams.authorize``), sent through the ``HttpTransport``
(verified TLS, timeouts, a bounded answer), and answered as (status, JSON
body). Anything that is not an answer — no known address, no connection, a
timeout, a body that is not JSON — is :class:`Unreachable`.
"""

from __future__ import annotations

import inspect
import json
from typing import Any
from urllib.parse import urlsplit

from vibemuse.federation.sender import FederationSeams
from vibemuse.federation.transport import HttpTransport, TransportError
from vibemuse.protocol.canonical_json import encode_canonical_json

MAX_ANSWER_BYTES = 4 * 1024 * 1024  # a join's state and history, or a page of events


class Unreachable(Exception):
    """The other server gave no usable answer."""


class FederationClient:
    def __init__(self, transport: HttpTransport, seams: FederationSeams):
        self._transport = transport
        self._seams = seams

    async def request(self, destination: str, method: str, path: str, content: Any = None) -> tuple[int, Any]:
        """(status, decoded body) of a signed request; ``path`` may carry a query string."""
        base_url = self._seams.base_url_of(destination)
        if inspect.isawaitable(base_url):
            base_url = await base_url
        if not base_url:
            raise Unreachable(f"no known address for {destination}")
        uri = urlsplit(base_url).path.rstrip("/") + path
        headers = {"Accept": "application/json"}
        if self._seams.authorize is not None:
            headers["Authorization"] = self._seams.authorize(method, uri, destination, content)
        body = None
        if content is not None:
            headers["Content-Type"] = "application/json"
            body = encode_canonical_json(content)
        try:
            answer = await self._transport.request(method, base_url.rstrip("/") + path, headers=headers, body=body,
                                                   max_body_bytes=MAX_ANSWER_BYTES)
        except TransportError as error:
            raise Unreachable(str(error)) from None
        try:
            return answer.status, json.loads(answer.body)
        except ValueError:
            raise Unreachable(f"{destination} answered HTTP {answer.status} without JSON") from None
