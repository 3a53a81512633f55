"""Fetching a key document over HTTP (``KeyDocumentFetcher``): bounded in size, no redirects,
only a 200 JSON object."""

from __future__ import annotations

import json

import pytest
import tornado.web

from vibemuse.federation.key_fetch import MAX_KEY_DOCUMENT_BYTES, KeyDocumentFetcher
from vibemuse.federation.transport import HttpTransport


class Keys(tornado.web.RequestHandler):
    def get(self, size: str) -> None:
        self.write(json.dumps({"server_name": "alpha.test", "pad": "x" * int(size)}))


class Moved(tornado.web.RequestHandler):
    def get(self) -> None:
        self.redirect("/big/10/federation/v1/keys")


class NotAnObject(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write(b"[1, 2]")


@pytest.fixture
def app():
    return tornado.web.Application([(r"/big/([0-9]+)/federation/v1/keys", Keys),
                                    (r"/moved/federation/v1/keys", Moved),
                                    (r"/list/federation/v1/keys", NotAnObject)])


@pytest.fixture
def fetcher_at(http_server, base_url):
    transport = HttpTransport()

    def fetcher(prefix):
        async def base_url_of(name):
            return base_url + prefix + "/"  # a trailing slash is not doubled
        return KeyDocumentFetcher(base_url_of, transport)

    yield fetcher
    transport.close()


@pytest.mark.gen_test
async def test_a_small_document_is_read(fetcher_at):
    document = await fetcher_at("/big/10")("alpha.test")
    assert document == {"server_name": "alpha.test", "pad": "x" * 10}


@pytest.mark.gen_test
async def test_an_oversized_document_is_refused(fetcher_at):
    with pytest.raises(Exception):
        await fetcher_at(f"/big/{MAX_KEY_DOCUMENT_BYTES}")("alpha.test")
    assert (await fetcher_at(f"/big/{MAX_KEY_DOCUMENT_BYTES - 100}")("alpha.test"))["server_name"] == "alpha.test"


@pytest.mark.gen_test
async def test_a_redirect_is_not_followed_and_only_an_object_is_a_document(fetcher_at):
    with pytest.raises(Exception, match="HTTP 30"):
        await fetcher_at("/moved")("alpha.test")
    with pytest.raises(Exception, match="not a JSON object"):
        await fetcher_at("/list")("alpha.test")
