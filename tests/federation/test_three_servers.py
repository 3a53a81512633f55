"""One page to players of two other servers while one of them is down.

alpha.test, beta.test and gamma.test are real servers on loopback (gamma on
the test's ``database_url``, the others on SQLite). Alice (alpha) pages Bob
(beta) and Carol (gamma) at once while gamma is stopped: Bob gets it live and
his receipt comes back; the copy for gamma waits in alpha's outbox. gamma is
started again on the same database and port; its hello makes alpha send at
once; Carol, offline until then, gets the page exactly once when she connects,
and Alice gets her held and delivered receipts.
"""

from __future__ import annotations

import pytest

from tests.conftest import count_rows
from tests.federation.test_remote_pages import GAMMA, receipt_for
from tests.federation.test_two_servers import ALPHA, BETA, until
from tests.support.client import acked
from tests.support.federation import running


def three_servers(tmp_path, database_url):
    return running(tmp_path, database_url, (ALPHA, BETA, GAMMA), main=GAMMA)


@pytest.mark.gen_test(timeout=90)
async def test_a_page_to_two_servers_one_down_reaches_both_once_with_every_receipt(tmp_path, database_url):
    async with three_servers(tmp_path, database_url) as federation:
        alpha, beta, gamma = (federation.worlds[name] for name in (ALPHA, BETA, GAMMA))
        alice, bob, carol = await alpha.player("alice"), await beta.player("bob"), await gamma.offline_player("carol")
        await federation.stop(GAMMA)

        ack = await acked(alice.ws, "command", {"line": "page bob@beta.test, carol@gamma.test=while gamma sleeps"})
        page_id = ack["data"]["eventId"]
        assert ack["data"]["remote"] == [bob.user_id, carol.user_id]
        assert (await bob.ws.receive_type("message", timeout=15))["data"]["event"]["event_id"] == page_id
        receipt = (await receipt_for(alice.ws, page_id))["data"]["event"]
        assert (receipt["sender"], receipt["content"]["kind"]) == (bob.user_id, "delivered")
        assert await until(lambda: alpha.server.sender.queues[GAMMA].failures >= 1)  # gamma is unreachable
        assert await until(lambda: count_rows(alpha.server, "federation_outbox") == 1)  # gamma's copy waits

        gamma = await federation.start(GAMMA)  # the same database, folder and port
        assert await until(lambda: count_rows(alpha.server, "federation_outbox") == 0)
        held = (await receipt_for(alice.ws, page_id))["data"]["event"]
        assert (held["sender"], held["content"]["kind"]) == (carol.user_id, "held")

        socket = await gamma.open_socket(carol)
        waited = (await socket.receive_type("message", timeout=15))["data"]["event"]
        assert waited["event_id"] == page_id and waited["content"]["body"] == "while gamma sleeps"
        delivered = (await receipt_for(alice.ws, page_id))["data"]["event"]
        assert (delivered["sender"], delivered["content"]["kind"]) == (carol.user_id, "delivered")

        # Nothing twice: the next page Carol gets, and the next receipt Alice gets, are about a later page.
        later = await acked(alice.ws, "page", {"to": [carol.user_id], "text": "and after"})
        got = (await socket.receive_type("message", timeout=15))["data"]["event"]
        assert got["event_id"] == later["data"]["eventId"]
        await receipt_for(alice.ws, later["data"]["eventId"])  # no other receipt about the first page before it
        assert [frame for frame in await bob.ws.quiet(0.1) if frame["type"] == "message"] == []
