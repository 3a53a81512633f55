"""Pages across servers: alpha.test and beta.test, two real servers on loopback, their
players on real WebSockets. A page to a player of the other server goes through
alpha's outbox to beta's receiver, is judged and delivered (or held, or refused) on
beta, and a signed receipt comes back the same way to the sender as ``page_receipt``.
Every frame is checked against spec/ by the clients.
"""

from __future__ import annotations

import contextlib
import dataclasses

import pytest

from tests.conftest import FAST_HASHER, count_rows
from tests.federation.test_two_servers import ALPHA, BETA, free_port, server_config, until
from tests.support.client import Api, WsClient, acked, refused
from tests.support.federation import Federation
from tests.support.spec import SpecValidator
from tests.support.world import World
from vibemuse.app import VibeMuseServer
from vibemuse.protocol.events import build_event


GAMMA = "gamma.test"


@contextlib.asynccontextmanager
async def federated_worlds(tmp_path, database_url, names=(ALPHA, BETA)):
    """Real servers named ``names``, each with the others as ``federation_peers`` (beta on
    ``database_url``, the others on SQLite), and a World of players on each."""
    federation = Federation(tmp_path, database_url, names)
    try:
        yield [await federation.start(name) for name in names]
    finally:
        await federation.close()


@contextlib.asynccontextmanager
async def alice_and_bob(tmp_path, database_url):
    """The two servers, alice connected to alpha and bob to beta."""
    async with federated_worlds(tmp_path, database_url) as (alpha, beta):
        yield alpha, beta, await alpha.player("alice"), await beta.player("bob")


async def receipt_for(socket: WsClient, page_id: str) -> dict:
    frame = await socket.receive_type("page_receipt", timeout=15)
    assert frame["data"]["event"]["content"]["relates_to"] == page_id
    return frame


@pytest.mark.gen_test(timeout=90)
async def test_a_page_to_a_player_of_another_server_is_delivered_live_and_receipted(tmp_path, database_url):
    async with alice_and_bob(tmp_path, database_url) as (alpha, beta, alice, bob):
        ack = await acked(alice.ws, "page", {"to": ["@bob:beta.test"], "text": "hi from alpha"})
        assert ack["data"]["remote"] == ["@bob:beta.test"] and ack["data"]["offline"] == []
        mine = await alice.ws.receive_type("message")
        assert mine["data"]["event"]["event_id"] == ack["data"]["eventId"]

        got = await bob.ws.receive_type("message", timeout=15)
        event = got["data"]["event"]
        assert event["event_id"] == ack["data"]["eventId"] and event["origin"] == ALPHA
        assert got["fromUser"] == "@alice:alpha.test" and event["content"]["body"] == "hi from alpha"

        receipt = (await receipt_for(alice.ws, event["event_id"]))["data"]["event"]
        assert receipt["content"]["kind"] == "delivered" and receipt["sender"] == "@bob:beta.test"
        assert receipt["origin"] == BETA and "reason" not in receipt["content"]
        assert await until(lambda: count_rows(alpha.server, "federation_outbox") == 0
                           and count_rows(beta.server, "federation_outbox") == 0)


@pytest.mark.gen_test(timeout=90)
async def test_a_command_line_pages_name_at_server_and_bob_answers_back(tmp_path, database_url):
    async with alice_and_bob(tmp_path, database_url) as (alpha, beta, alice, bob):
        ack = await acked(alice.ws, "command", {"line": "page Bob@beta.test=:waves"})
        assert ack["data"]["remote"] == ["@bob:beta.test"]
        assert (await alice.ws.receive_type("message"))["data"]["event"]["event_id"] == ack["data"]["eventId"]
        got = (await bob.ws.receive_type("message", timeout=15))["data"]["event"]
        assert got["content"]["rendered"] == "From afar, alice waves" and got["recipients"] == ["@bob:beta.test"]
        await receipt_for(alice.ws, got["event_id"])

        back = await acked(bob.ws, "command", {"line": "page alice@alpha.test=hello"})
        assert back["data"]["remote"] == ["@alice:alpha.test"]
        reply = (await alice.ws.receive_type("message", timeout=15))["data"]["event"]
        assert reply["event_id"] == back["data"]["eventId"] and reply["sender"] == "@bob:beta.test"
        assert (await receipt_for(bob.ws, reply["event_id"]))["data"]["event"]["content"]["kind"] == "delivered"


@pytest.mark.gen_test(timeout=90)
async def test_an_offline_remote_player_gets_the_page_on_connect_held_then_delivered(tmp_path, database_url):
    async with federated_worlds(tmp_path, database_url) as (alpha, beta):
        alice, bob = await alpha.player("alice"), await beta.offline_player("bob")
        ack = await acked(alice.ws, "page", {"to": ["bob@beta.test"], "text": "are you there?"})
        page_id = ack["data"]["eventId"]
        held = (await receipt_for(alice.ws, page_id))["data"]["event"]["content"]
        assert held == {"kind": "held", "relates_to": page_id, "recipient": "@bob:beta.test"}

        socket = await beta.open_socket(bob)
        waited = (await socket.receive_type("message", timeout=15))["data"]["event"]
        assert waited["event_id"] == page_id and waited["content"]["body"] == "are you there?"
        delivered = (await receipt_for(alice.ws, page_id))["data"]["event"]["content"]
        assert delivered["kind"] == "delivered"


@pytest.mark.gen_test(timeout=90)
async def test_an_unknown_remote_user_and_a_haven_come_back_as_refused_receipts(tmp_path, database_url):
    async with alice_and_bob(tmp_path, database_url) as (alpha, beta, alice, bob):
        ack = await acked(alice.ws, "page", {"to": ["@nobody:beta.test"], "text": "hello?"})
        refused = (await receipt_for(alice.ws, ack["data"]["eventId"]))["data"]["event"]["content"]
        assert refused["kind"] == "refused" and refused["reason"] == "unknown_user"

        await acked(bob.ws, "set_haven", {"haven": True, "message": "Gone fishing."})
        ack = await acked(alice.ws, "page", {"to": ["@bob:beta.test"], "text": "hi"})
        refused = (await receipt_for(alice.ws, ack["data"]["eventId"]))["data"]["event"]["content"]
        assert refused["reason"] == "not_accepting_pages" and refused["message"].endswith("Gone fishing.")
        assert [frame for frame in await bob.ws.quiet(0.1) if frame["type"] == "message"] == []
        stored = await beta.server.context.storage.events_by_id([ack["data"]["eventId"]])
        assert stored == {}  # a refused page is not kept on beta


@pytest.mark.gen_test(timeout=90)
async def test_a_page_sent_again_by_the_origin_is_delivered_once(tmp_path, database_url):
    async with alice_and_bob(tmp_path, database_url) as (alpha, beta, alice, bob):
        ack = await acked(alice.ws, "page", {"to": ["@bob:beta.test"], "text": "once"})
        await bob.ws.receive_type("message", timeout=15)
        await receipt_for(alice.ws, ack["data"]["eventId"])
        page = (await alpha.server.context.storage.events_by_id([ack["data"]["eventId"]]))[ack["data"]["eventId"]]
        page = {key: value for key, value in page.items() if key != "unsigned"}
        assert await beta.server.context.federation.inbox.accept(page) is None  # a repeat: a no-op
        assert [frame for frame in await bob.ws.quiet(0.3) if frame["type"] == "message"] == []


@pytest.mark.parametrize("frame_type, data", [("page", {"to": ["@bob:beta.test"], "text": "hi"}),
                                              ("command", {"line": "page bob@beta.test=hi"})])
@pytest.mark.gen_test(timeout=60)
async def test_with_federation_off_a_remote_recipient_is_unknown_and_nothing_is_queued(tmp_path, frame_type, data):
    config = dataclasses.replace(server_config(tmp_path, ALPHA, f"sqlite:///{tmp_path}/alpha.db", {}), federation=False)
    server = await VibeMuseServer.create(config, hasher=FAST_HASHER)
    port = server.listen(0, "127.0.0.1")
    url = f"http://127.0.0.1:{port}"
    world = World(Api(url, SpecValidator()), url.replace("http://", "ws://") + "/api/ws", SpecValidator(), server)
    try:
        alice = await world.player("alice")
        before = world.event_count()
        assert (await refused(alice.ws, frame_type, data))["code"] == "unknown_user"
        assert world.event_count() == before
        assert count_rows(server, "federation_outbox") == 0
    finally:
        world.close()
        await server.shutdown()


@pytest.mark.gen_test(timeout=90)
async def test_a_page_to_a_local_and_a_remote_player_and_last_paged_with_remote_names(tmp_path, database_url):
    async with federated_worlds(tmp_path, database_url) as (alpha, beta):
        alice, carol = await alpha.player("alice"), await alpha.offline_player("carol")
        bob = await beta.player("bob")
        ack = await acked(alice.ws, "command", {"line": "page carol bob@beta.test=hi both"})
        assert ack["data"]["offline"] == ["@carol:alpha.test"] and ack["data"]["remote"] == ["@bob:beta.test"]
        got = (await bob.ws.receive_type("message", timeout=15))["data"]["event"]
        assert got["recipients"] == ["@carol:alpha.test", "@bob:beta.test"]
        assert got["content"]["rendered"] == "alice pages carol and bob: hi both"
        assert (await receipt_for(alice.ws, got["event_id"]))["data"]["event"]["sender"] == "@bob:beta.test"

        await alice.ws.send_frame("command", {"line": "page"})
        assert (await alice.ws.receive_type("notice"))["data"]["text"] == "You last paged carol and bob@beta.test."
        again = await acked(alice.ws, "command", {"line": "page =again"})
        assert again["data"]["remote"] == ["@bob:beta.test"]
        assert (await bob.ws.receive_type("message", timeout=15))["data"]["event"]["content"]["body"] == "again"


@pytest.mark.gen_test(timeout=90)
async def test_a_block_on_the_recipients_server_is_a_refusal_that_says_no_more(tmp_path, database_url):
    async with alice_and_bob(tmp_path, database_url) as (alpha, beta, alice, bob):
        await acked(bob.ws, "block", {"user": "alice@alpha.test", "blocked": True})  # a remote user, by name
        ack = await acked(alice.ws, "page", {"to": ["@bob:beta.test"], "text": "hi"})
        refused_page = (await receipt_for(alice.ws, ack["data"]["eventId"]))["data"]["event"]["content"]
        assert refused_page["reason"] == "not_accepting_pages"
        assert refused_page["message"] == "bob is not accepting your pages."
        assert [frame for frame in await bob.ws.quiet(0.1) if frame["type"] == "message"] == []
        refusal = await refused(bob.ws, "page", {"to": ["@alice:alpha.test"], "text": "and you?"})
        assert (refusal["code"], refusal["details"]) == ("you_blocked", {"userId": alice.user_id})

        await acked(bob.ws, "block", {"user": "@alice:alpha.test", "blocked": False})  # by user id
        ack = await acked(alice.ws, "page", {"to": ["@bob:beta.test"], "text": "friends again"})
        assert (await bob.ws.receive_type("message", timeout=15))["data"]["event"]["content"]["body"] == "friends again"
        assert (await receipt_for(alice.ws, ack["data"]["eventId"]))["data"]["event"]["content"]["kind"] == "delivered"


@pytest.mark.gen_test(timeout=60)
async def test_with_federation_off_blocking_a_user_of_another_server_is_unknown_user(tmp_path):
    config = dataclasses.replace(server_config(tmp_path, ALPHA, f"sqlite:///{tmp_path}/alpha.db", {}), federation=False)
    server = await VibeMuseServer.create(config, hasher=FAST_HASHER)
    port = free_port()
    server.listen(port, "127.0.0.1")
    url, spec = f"http://127.0.0.1:{port}", SpecValidator()
    world = World(Api(url, spec), f"ws://127.0.0.1:{port}/api/ws", spec, server)
    try:
        alice = await world.player("alice")
        refusal = await refused(alice.ws, "block", {"user": "@bob:beta.test", "blocked": True})
        assert refusal["code"] == "unknown_user"
        assert count_rows(server, "blocks") == 0
    finally:
        world.close()
        await server.shutdown()


@pytest.mark.gen_test(timeout=90)
async def test_page_history_on_both_servers_shows_both_sides(tmp_path, database_url):
    async with alice_and_bob(tmp_path, database_url) as (alpha, beta, alice, bob):
        first = await acked(alice.ws, "page", {"to": ["@bob:beta.test"], "text": "one"})
        await bob.ws.receive_type("message", timeout=15)
        second = await acked(bob.ws, "page", {"to": ["@alice:alpha.test"], "text": "two"})
        await receipt_for(bob.ws, second["data"]["eventId"])
        both = [first["data"]["eventId"], second["data"]["eventId"]]
        for world, player, partner in ((alpha, alice, "%40bob%3Abeta.test"), (beta, bob, "%40alice%3Aalpha.test")):
            status, body = await world.api.call("GET", f"/api/communication/pages/{partner}", token=player.token,
                                                schema="event-page")
            assert status == 200 and [event["event_id"] for event in body["events"]] == both


@pytest.mark.gen_test(timeout=90)
async def test_resuming_replays_a_remote_page_that_came_while_the_socket_was_gone(tmp_path, database_url):
    async with alice_and_bob(tmp_path, database_url) as (alpha, beta, alice, bob):
        ack = await acked(alice.ws, "page", {"to": ["@bob:beta.test"], "text": "before"})
        since = ack["data"]["streamPosition"]
        await receipt_for(alice.ws, ack["data"]["eventId"])
        await alpha.wait_offline(alice)
        missed = await acked(bob.ws, "page", {"to": ["@alice:alpha.test"], "text": "while you were away"})
        held = (await receipt_for(bob.ws, missed["data"]["eventId"]))["data"]["event"]["content"]
        assert held["kind"] == "held"

        socket = await WsClient.open(alpha.ws_url + f"?since={since}", alpha.spec, token=alice.token)
        alice.sockets.append(socket)
        resumed = await socket.receive_type("resumed", timeout=15)
        replayed = [frame["data"]["event"]["event_id"] for frame in socket.received[:socket.received.index(resumed)]
                    if frame["type"] == "message"]
        assert missed["data"]["eventId"] in replayed
        await socket.quiet(0.3)
        copies = [frame for frame in socket.of_type("message")
                  if frame["data"]["event"]["event_id"] == missed["data"]["eventId"]]
        assert len(copies) == 1  # not handed out a second time after the replay
        assert (await receipt_for(bob.ws, missed["data"]["eventId"]))["data"]["event"]["content"]["kind"] == "delivered"


@pytest.mark.gen_test(timeout=90)
async def test_one_page_to_players_of_two_other_servers_reaches_both_and_both_answer(tmp_path, database_url):
    async with federated_worlds(tmp_path, database_url, (ALPHA, BETA, GAMMA)) as (alpha, beta, gamma):
        alice, bob, carol = await alpha.player("alice"), await beta.player("bob"), await gamma.player("carol")
        ack = await acked(alice.ws, "command", {"line": "page bob@beta.test, carol@gamma.test=hi all"})
        assert ack["data"]["remote"] == ["@bob:beta.test", "@carol:gamma.test"]
        for player in (bob, carol):
            got = (await player.ws.receive_type("message", timeout=15))["data"]["event"]
            assert got["event_id"] == ack["data"]["eventId"]
            assert got["content"]["rendered"] == "alice pages bob and carol: hi all"
        senders = {(await receipt_for(alice.ws, ack["data"]["eventId"]))["data"]["event"]["sender"] for _ in range(2)}
        assert senders == {"@bob:beta.test", "@carol:gamma.test"}


@pytest.mark.gen_test(timeout=90)
async def test_a_receipt_about_no_page_of_ours_is_refused_and_not_stored(tmp_path, database_url):
    async with alice_and_bob(tmp_path, database_url) as (alpha, beta, alice, bob):
        ack = await acked(bob.ws, "page", {"to": ["@alice:alpha.test"], "text": "mine"})  # a page of beta's
        await receipt_for(bob.ws, ack["data"]["eventId"])
        stray = build_event(event_type="vm.receipt", sender=bob.user_id, origin=BETA,
                            origin_server_ts=beta.server.context.clock(),
                            content={"kind": "delivered", "relates_to": ack["data"]["eventId"],
                                     "recipient": bob.user_id},
                            recipients=[alice.user_id], signing_key=beta.server.context.keyring.current)
        refusal = await alpha.server.context.federation.inbox.accept(stray)
        assert refusal is not None and refusal.code == "bad_event"
        assert await alpha.server.context.storage.events_by_id([stray["event_id"]]) == {}
        assert [frame for frame in await alice.ws.quiet(0.1) if frame["type"] == "page_receipt"] == []
