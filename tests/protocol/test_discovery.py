"""The pure part of discovery: base URLs and the well-known document."""

from __future__ import annotations

import json

import pytest

from vibemuse.protocol.discovery import (
    MAX_WELL_KNOWN_BYTES, InvalidBaseUrl, InvalidWellKnown, normalize_base_url, parse_well_known,
    server_name_host, well_known_body, well_known_url,
)


@pytest.mark.parametrize("given, normal", [
    ("https://beta.example", "https://beta.example"),
    ("https://beta.example/", "https://beta.example"),
    ("HTTPS://Beta.Example:8448/", "https://Beta.Example:8448"),
    ("http://127.0.0.1:4201", "http://127.0.0.1:4201"),
    ("https://[::1]:8448/muse/", "https://[::1]:8448/muse"),
    ("https://proxy.example/vibe%20muse/v1//", "https://proxy.example/vibe%20muse/v1"),
])
def test_base_urls_are_normalized(given, normal):
    assert normalize_base_url(given) == normal
    assert normalize_base_url(normal) == normal


@pytest.mark.parametrize("bad", [
    None, 5, "", "beta.example", "//beta.example", "/path", "ftp://beta.example", "https://",
    "https://beta.example?x", "https://beta.example/#f", "https://u:p@beta.example", "https://bad_host",
    "https://beta.example:0", "https://beta.example:65536", "https://beta.example/a b",
    "https://beta.example/\u00e9", "https://beta.example/a\nb", "https://" + "a" * 2048 + ".example",
])
def test_what_is_not_a_base_url(bad):
    with pytest.raises(InvalidBaseUrl):
        normalize_base_url(bad)


def test_the_well_known_round_trip():
    assert well_known_url("beta.example:8448") == "https://beta.example:8448/.well-known/vibemuse/server"
    body = json.dumps(well_known_body("https://beta.example")).encode()
    assert parse_well_known(body) == "https://beta.example"
    assert parse_well_known(b'{"base_url": "https://b.example/", "extra": [1]}') == "https://b.example"
    with pytest.raises(ValueError):
        well_known_url("beta.example/evil")


@pytest.mark.parametrize("body", [
    b"", b"null", b"[]", b"{}", b'{"base_url": 1}', b'{"base_url": "x"}', b'{"base_url": Infinity}',
    b'\xfe\xff', json.dumps({"base_url": "https://b.example", "p": "x" * MAX_WELL_KNOWN_BYTES}).encode(),
])
def test_bad_well_known_bodies(body):
    with pytest.raises(InvalidWellKnown):
        parse_well_known(body)


@pytest.mark.parametrize("name, host", [
    ("muse.example.org", "muse.example.org"), ("muse.example.org:8448", "muse.example.org"),
    ("[::1]", "[::1]"), ("[::1]:8448", "[::1]"), ("10.0.0.1:80", "10.0.0.1"),
])
def test_server_name_host(name, host):
    assert server_name_host(name) == host
