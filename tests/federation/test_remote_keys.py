"""Fetching a key document over HTTP: bounded in size, no redirects; the stand-in resolver."""

from __future__ import annotations

import json

import pytest
import tornado.web

from vibemuse.config import Config
from vibemuse.federation.remote_keys import MAX_KEYS_BYTES, http_key_fetcher, peers_resolver


class Keys(tornado.web.RequestHandler):
    def get(self, size: str) -> None:
        self.write(json.dumps({"server_name": "alpha.test", "pad": "x" * int(size)}))


class Moved(tornado.web.RequestHandler):
    def get(self) -> None:
        self.redirect("/big/10/federation/v1/keys")


@pytest.fixture
def app():
    return tornado.web.Application([(r"/big/([0-9]+)/federation/v1/keys", Keys),
                                    (r"/moved/federation/v1/keys", Moved)])


def _fetcher(base_url, prefix):
    async def base_url_of(name):
        return base_url + prefix
    return http_key_fetcher(base_url_of)


@pytest.mark.gen_test
async def test_a_small_document_is_read(http_server, base_url):
    document = await _fetcher(base_url, "/big/10")("alpha.test")
    assert document == {"server_name": "alpha.test", "pad": "x" * 10}


@pytest.mark.gen_test
async def test_an_oversized_document_is_refused(http_server, base_url):
    with pytest.raises(Exception, match="over"):
        await _fetcher(base_url, f"/big/{MAX_KEYS_BYTES}")("alpha.test")


@pytest.mark.gen_test
async def test_a_redirect_is_not_followed(http_server, base_url):
    with pytest.raises(Exception):
        await _fetcher(base_url, "/moved")("alpha.test")


@pytest.mark.gen_test
async def test_the_stand_in_resolver_knows_no_server_without_peers():
    with pytest.raises(KeyError):
        await peers_resolver(Config())("alpha.test")
