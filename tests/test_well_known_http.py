"""Our own ``GET /.well-known/vibemuse/server``, and discovery of a live VibeMUSE server over TLS."""

from __future__ import annotations

import dataclasses
import json

import pytest
import tornado.netutil
from tornado.httpclient import HTTPRequest

from tests.conftest import FAST_HASHER
from tests.support.attack import self_signed_certificate
from vibemuse.app import VibeMuseServer
from vibemuse.federation.discovery import Discovery
from vibemuse.federation.key_cache import KeyFetchError, RemoteKeyCache
from vibemuse.federation.key_fetch import KeyDocumentFetcher
from vibemuse.federation.transport import HttpTransport
from vibemuse.protocol.discovery import InvalidBaseUrl, normalize_base_url

PATH = "/.well-known/vibemuse/server"


@pytest.fixture
def server_config(config, request):
    return dataclasses.replace(config, **getattr(request, "param", {"public_base_url": "https://muse.test:8448"}))


@pytest.mark.gen_test
async def test_well_known_announces_the_public_base_url(api, spec):
    response = await api.http.fetch(api.base_url + PATH, headers={"Origin": "https://elsewhere.example"})
    assert response.code == 200
    body = json.loads(response.body)
    assert body == {"base_url": "https://muse.test:8448"}
    assert spec.errors("federation/well-known.json", body) == []
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    refused = await api.http.fetch(HTTPRequest(api.base_url + PATH, method="POST", body=b"{}"), raise_error=False)
    assert refused.code == 405 and refused.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("server_config", [{"federation": False}], indirect=True)
@pytest.mark.gen_test
async def test_well_known_is_not_found_while_federation_is_off(api, server):
    assert server.context.config.federation is False
    status, body = await api.call("GET", PATH)
    assert status == 404 and body["error"]["code"] == "not_found"
    response = await api.http.fetch(api.base_url + PATH, raise_error=False)
    assert response.headers["Cache-Control"] == "no-store"
    status, _ = await api.call("GET", "/federation/v1/keys", schema="server-keys")
    assert status == 200  # the keys stay: clients verify event signatures with them


@pytest.mark.gen_test(timeout=30)
async def test_a_server_discovers_a_live_server_over_tls(config, clock, tmp_path):
    """beta serves TLS on a port it picks (port 0) and announces it; the discovery app.py wires (here
    beta's own, with a transport that trusts the test certificate) finds it, and its peers win."""
    cert, key = self_signed_certificate(tmp_path, "beta.test")
    mapping: dict = {}
    transport = HttpTransport(ca_bundle=str(cert), resolver=tornado.netutil.OverrideResolver(
        tornado.netutil.DefaultLoopResolver(), mapping))
    beta = await VibeMuseServer.create(
        dataclasses.replace(config, server_name="beta.test", host="beta.test", tls_certificate=str(cert),
                            tls_key=str(key), federation_peers={"gamma.test": "http://127.0.0.1:4203"}),
        clock=clock, hasher=FAST_HASHER, transport=transport)
    port = beta.listen(0, "127.0.0.1")
    mapping[("beta.test", 443)] = ("127.0.0.1", port)
    try:
        assert await beta.context.discovery.base_url_of("beta.test") == f"https://beta.test:{port}"
        assert await beta.context.discovery.base_url_of("gamma.test") == "http://127.0.0.1:4203"
    finally:
        await beta.shutdown()


BASE_URLS = ["https://a.test", "http://a.test:8448/", "HTTPS://[::1]/muse", "https://10.0.0.1/a%20b/c",
             "https://a.test/?q", "https://a.test#f", "ftp://a.test", "https://u@a.test", "https://a_b.test",
             "https://a.test/a b", "a.test", "https://", "https://a.test/é"]


@pytest.mark.parametrize("url", BASE_URLS)
def test_the_schema_takes_the_base_urls_the_code_takes(spec, url):
    """The schema's pattern and ``normalize_base_url`` agree (the code also checks port ranges)."""
    try:
        normalize_base_url(url)
        accepted = True
    except InvalidBaseUrl:
        accepted = False
    assert (spec.errors("federation/well-known.json", {"base_url": url}) == []) == accepted


@pytest.mark.gen_test(timeout=30)
async def test_the_key_cache_fetches_a_live_servers_keys_through_discovery(api, server, clock, base_url):
    """alpha (a Discovery with beta in federation_peers) verifies beta's current key over real HTTP."""
    transport = HttpTransport()
    discovery = Discovery(transport, peers={"test.localhost": base_url}, clock=clock, cache_ms=3_600_000)
    keys = RemoteKeyCache(KeyDocumentFetcher(discovery.base_url_of, transport), clock)
    current = server.context.keyring.current
    try:
        assert await keys.get_verify_key("test.localhost", current.key_id) == current.verify_key
        unknown = RemoteKeyCache(KeyDocumentFetcher(Discovery(
            transport, peers={"test.localhost": base_url + "/nowhere"}, clock=clock, cache_ms=1000).base_url_of,
            transport), clock)
        with pytest.raises(KeyFetchError, match="HTTP 404"):
            await unknown.get_verify_key("test.localhost", current.key_id)
    finally:
        transport.close()
