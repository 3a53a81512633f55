"""The web client's files over HTTP: `/` and `/client/...`, with their headers.

The page must load only this origin's scripts (the CSP forbids inline ones,
and the page has none), every file is revalidated (no-cache + ETag), and
everything that is not a file stays the API's JSON 404.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from tornado.httpclient import HTTPClientError

from vibemuse.handlers.webclient import WEB_ROOT


async def get(http_client, base_url, path, **options):
    try:
        return await http_client.fetch(base_url + path, **options)
    except HTTPClientError as error:
        return error.response


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        if self.tags and self.tags[-1][0] == "script":
            self.script_text += data.strip()


@pytest.mark.gen_test
async def test_the_page_is_served_at_the_root_with_a_strict_policy(http_client, base_url, server):
    response = await get(http_client, base_url, "/")
    assert response.code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    tags = Tags()
    tags.feed(response.body.decode())
    scripts = [attrs for tag, attrs in tags.tags if tag == "script"]
    assert scripts == [{"type": "module", "src": "/client/main.js"}] and tags.script_text == ""
    assert not any(tag == "style" or "style" in attrs or any(name.startswith("on") for name in attrs)
                   for tag, attrs in tags.tags)


@pytest.mark.gen_test
async def test_files_are_revalidated_with_their_etag(http_client, base_url, server):
    first = await get(http_client, base_url, "/client/app.js")
    assert first.code == 200 and first.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert first.body == (WEB_ROOT / "app.js").read_bytes()
    again = await get(http_client, base_url, "/client/app.js", headers={"If-None-Match": first.headers["Etag"]})
    assert again.code == 304
    css = await get(http_client, base_url, "/client/app.css")
    assert css.headers["Content-Type"] == "text/css; charset=utf-8"


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ["/client/nope.js", "/client/../app.py", "/client/%2e%2e/app.py", "/index.html",
                                  "/api/nope", "/client/"])
async def test_anything_else_is_the_json_not_found(http_client, base_url, server, path):
    response = await get(http_client, base_url, path)
    assert response.code == 404
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert b'"code":"not_found"' in response.body


@pytest.mark.gen_test
async def test_the_page_takes_only_get(http_client, base_url, server):
    response = await get(http_client, base_url, "/", method="POST", body=b"{}")
    assert response.code == 405 and b'"code":"method_not_allowed"' in response.body


def test_player_text_never_becomes_markup_in_the_client():
    """The client's code builds the page with textContent only: no HTML parsing of any string."""
    for module in WEB_ROOT.glob("*.js"):
        code = re.sub(r"(?m)^\s*//.*$", "", module.read_text())  # the code, without its comment lines
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                     "setTimeout(\"", "DOMParser", "createContextualFragment"):
            assert sink not in code, (module.name, sink)
    assert re.search(r"\.textContent\s*=", (WEB_ROOT / "render.js").read_text())
