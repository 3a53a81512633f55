"""415 ``unsupported_media_type`` (protocol.md section 1): every operation of openapi.json
that takes a body refuses one not labelled ``application/json`` — before authentication,
rate limits or parsing — and changes nothing. The operations come from the document, so a
new endpoint with a ``requestBody`` is covered without touching this file.

Requests are written on a raw socket: an HTTP client library adds a Content-Type of its own
to a POST that has none.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import count_rows

V1 = Path(__file__).resolve().parents[1] / "spec" / "v1"
OPENAPI = json.loads((V1 / "openapi.json").read_text())
TAKING_BODIES = [
    (method.upper(), path, operation["requestBody"]["content"]["application/json"])
    for path, item in OPENAPI["paths"].items()
    for method, operation in item.items()
    if isinstance(operation, dict) and "requestBody" in operation
]
REFUSED = [None, "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
           "multipart/form-data; boundary=x", "application/json; charset=latin-1", "application/jsonp",
           "application/json-patch+json", "application/json; profile=x", ""]
ACCEPTED = ["application/json", "Application/JSON; Charset=UTF-8", "application/json;charset=\"utf-8\""]
TABLES = ("users", "access_tokens", "rooms", "channels", "events", "reports")


def example_body(media: dict) -> bytes:
    (example,) = media["examples"].values()
    return (V1 / example["externalValue"]).read_bytes()


async def raw_request(base_url: str, method: str, path: str, body: bytes, headers: dict[str, str]):
    """(status, decoded JSON body) of one request written by hand."""
    url = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {url.netloc}", f"Content-Length: {len(body)}",
             "Connection: close", *(f"{name}: {value}" for name, value in headers.items())]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    response = await reader.read()
    writer.close()
    head, _, payload = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(payload) if payload else None


@pytest.mark.parametrize("method, path, media", TAKING_BODIES, ids=[f"{m} {p}" for m, p, _ in TAKING_BODIES])
@pytest.mark.gen_test(timeout=30)
async def test_bodies_not_labelled_json_are_refused_and_change_nothing(world, server, base_url, method, path,
                                                                        media):
    admin = await world.player("Root", role="admin")
    target = re.sub(r"\{[^}]+\}", "1", path)
    body = example_body(media)
    auth = {"Authorization": f"Bearer {admin.token}"}
    before = {table: count_rows(server, table) for table in TABLES}
    for content_type in REFUSED:
        headers = {**auth, **({} if content_type is None else {"Content-Type": content_type})}
        status, error = await raw_request(base_url, method, target, body, headers)
        assert (status, error["error"]["code"]) == (415, "unsupported_media_type"), content_type
        world.spec.check_body("error", error)
    # before authentication: no token, a wrong one, the same answer
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "text/plain", "Authorization": "Bearer x"}):
        assert (await raw_request(base_url, method, target, body, headers))[0] == 415
    assert {table: count_rows(server, table) for table in TABLES} == before
    for content_type in ACCEPTED:
        status, answer = await raw_request(base_url, method, target, body, {**auth, "Content-Type": content_type})
        assert status != 415, (content_type, answer)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_a_cross_site_form_cannot_log_in_or_register(world, server, base_url):
    """What a plain HTML form of another site can send: the three 'simple' types of the Fetch
    standard. None opens a session or makes an account, even with the right password."""
    await world.api.register("Alice")
    tokens, users = count_rows(server, "access_tokens"), count_rows(server, "users")
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        for path, body in (("/api/auth/login", {"username": "alice", "password": "correct horse battery"}),
                           ("/api/auth/register", {"username": "Mallory", "password": "correct horse battery"})):
            status, error = await raw_request(base_url, "POST", path, json.dumps(body).encode(),
                                              {"Content-Type": content_type})
            assert (status, error["error"]["code"]) == (415, "unsupported_media_type")
    assert (count_rows(server, "access_tokens"), count_rows(server, "users")) == (tokens, users)
