"""The HTTP JSON API (protocol.md sections 4 and 9), on Tornado's async HTTP client.

``HttpApi.request`` is the one seam every call goes through: it sends JSON
with the bearer token, raises ``VibeMuseError`` with the spec's code for an
error body, and, with ``validate=True``, checks each body against the schema
``openapi.json`` names for that path and status.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping
from urllib.parse import quote, urlencode, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from vibemuse_client.errors import SchemaViolation, VibeMuseError
from vibemuse_client.frames import Session, Versions
from vibemuse_client.spec import Spec

KEYS_PATH = "/federation/v1/keys"
WELL_KNOWN_PATH = "/.well-known/vibemuse/server"


def path_segment(value: str) -> str:
    """Percent-encode an id for a path (``#public:x`` is ``%23public%3Ax``, protocol.md 9)."""
    return quote(value, safe="")


def query_string(params: Mapping[str, Any]) -> str:
    """Drop ``None``s; lists are repeated parameters (``kind=say&kind=pose``)."""
    pairs = []
    for key, value in params.items():
        for item in (value if isinstance(value, (list, tuple)) else [value]):
            if item is not None:
                pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return ("?" + urlencode(pairs)) if pairs else ""


class HttpApi:
    def __init__(self, base_url: str, spec: Spec, *, token: str | None = None, validate: bool = False,
                 timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.spec = spec
        self.token = token
        self.validate = validate
        self.timeout = timeout
        # Called with (method, path, status) after every answer, before it is checked: for a tool that
        # records what it called (the conformance suite's coverage).
        self.observer: Callable[[str, str, int], None] | None = None
        self._client = AsyncHTTPClient()

    async def request(self, method: str, path: str, body: Any = None, *, query: Mapping[str, Any] | None = None,
                      idempotency_key: str | None = None, authenticated: bool = True,
                      base_url: str | None = None) -> Any:
        """One call; returns the decoded body (None for 204). Refusals raise ``VibeMuseError``."""
        headers = {"Accept": "application/json"}
        if authenticated and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body).encode("utf-8")
        elif method in ("POST", "PUT", "PATCH"):
            payload = b""
        url = (base_url or self.base_url) + path + query_string(query or {})
        response = await self._client.fetch(HTTPRequest(url, method=method, headers=headers, body=payload,
                                                        request_timeout=self.timeout, follow_redirects=False),
                                            raise_error=False)
        if response.code == 599:  # no HTTP answer at all: the connection failed
            raise response.error if response.error else ConnectionError(url)
        if self.observer is not None:
            self.observer(method, urlsplit(path).path, response.code)
        decoded = self._decode(response.body, response.code, url)
        if self.validate:
            self._check(method, path, response.code, decoded)
        if response.code >= 400:
            error = decoded.get("error") if isinstance(decoded, dict) else None
            if not isinstance(error, dict):
                raise VibeMuseError("internal_error", f"HTTP {response.code} without an error body", status=response.code)
            raise VibeMuseError.from_error_object(error, status=response.code)
        return decoded

    @staticmethod
    def _decode(raw: bytes, status: int, url: str) -> Any:
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise SchemaViolation("bad_json", f"HTTP {status} from {url} is not JSON", {"status": status}) from None

    def _check(self, method: str, path: str, status: int, body: Any) -> None:
        schema = self.spec.response_schema(method, urlsplit(path).path, status)
        if schema is None and status >= 400:
            schema = "http/error.json"
        if schema is not None:
            self.spec.check(schema, body)

    # -- the calls every client needs ---------------------------------------------

    async def versions(self) -> Versions:
        return Versions.from_json(await self.request("GET", "/api/versions", authenticated=False))

    async def register(self, username: str, password: str) -> Session:
        return await self._session("/api/auth/register", username, password)

    async def login(self, username: str, password: str) -> Session:
        return await self._session("/api/auth/login", username, password)

    async def _session(self, path: str, username: str, password: str) -> Session:
        session = Session.from_json(await self.request("POST", path, {"username": username, "password": password},
                                                       authenticated=False))
        self.token = session.access_token
        return session

    async def logout(self) -> None:
        await self.request("POST", "/api/auth/logout")

    async def me(self) -> dict[str, Any]:
        return await self.request("GET", "/api/users/me")

    async def server_keys(self, base_url: str | None = None) -> dict[str, Any]:
        return await self.request("GET", KEYS_PATH, authenticated=False, base_url=base_url)

    async def discover(self, server_name: str) -> str:
        """Another server's base URL from its well-known document (federation-discovery.md 2)."""
        document = await self.request("GET", WELL_KNOWN_PATH, authenticated=False,
                                      base_url=f"https://{server_name}")
        return str(document["base_url"]).rstrip("/")
