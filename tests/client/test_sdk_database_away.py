"""The SDK while the server's database is away (protocol.md 20.1): a frame refused
``unavailable`` is sent again, with its messageId, until the database is back."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from sqlalchemy.engine import make_url

from tests.client.conftest import FAST_BACKOFF, InProcessServer
from tests.client.helpers import events_until, frame_where
from tests.support.tcp_proxy import TcpProxy


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.gen_test(timeout=90)
async def test_a_say_refused_unavailable_is_sent_again_and_done_once_when_the_database_is_back(config,
                                                                                              database_url):
    url = make_url(database_url)
    proxy = await TcpProxy(url.host or "127.0.0.1", url.port or 5432).restore()
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    served = InProcessServer(dataclasses.replace(config, database_url=through))
    await served.start()
    try:
        alice, bob = await served.player("Alice"), await served.player("Bob")
        for client in (alice, bob):  # both sessions started (their rosters read) before the cut
            await frame_where(client, lambda frame: frame.type == "roster")
        await proxy.cut()
        saying = asyncio.ensure_future(alice.say("said while the database was away"))
        await asyncio.sleep(FAST_BACKOFF.maximum * 2)  # refused unavailable at least once meanwhile
        assert not saying.done()
        await proxy.restore()
        ack = await asyncio.wait_for(saying, 30)
        assert ack.duplicate is False and ack.stream_position >= 1
        heard = await events_until(bob, lambda event: event.event_id == ack.event_id)
        assert [e.body for e in heard].count("said while the database was away") == 1
    finally:
        await served.close_clients()
        await served.stop()
        if proxy._server is not None:
            await proxy.cut()
