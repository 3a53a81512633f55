"""A session never goes live half-started (protocol.md 5.3, close code 1011).

The fault is real: the database refuses to hand out the pages that waited for
the user (a trigger aborts the delete), in the middle of the session start.
"""

from __future__ import annotations

import pytest

from tests.support.client import WsClient

REFUSE_CLAIMS = {
    "sqlite": ["CREATE TRIGGER refuse_claims BEFORE DELETE ON pending_deliveries "
               "BEGIN SELECT RAISE(ABORT, 'the disk is on fire'); END"],
    "postgresql": [
        "CREATE FUNCTION refuse_claims() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'the disk is on fire'; END; "
        "$$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_claims BEFORE DELETE ON pending_deliveries FOR EACH ROW EXECUTE FUNCTION refuse_claims()",
    ],
}
ALLOW_CLAIMS = {
    "sqlite": ["DROP TRIGGER refuse_claims"],
    "postgresql": ["DROP TRIGGER refuse_claims ON pending_deliveries", "DROP FUNCTION refuse_claims()"],
}


def execute(server, statements):
    engine = server.context.storage.engine
    with engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)


@pytest.mark.gen_test(timeout=30)
async def test_a_failed_session_start_closes_with_1011_and_loses_nothing(world, ws_url, spec, server):
    alice = await world.player("Alice")
    bob = await world.offline_player("Bob")
    await alice.ws.send_frame("page", {"to": ["Bob"], "text": "are you there?"})
    await alice.ws.receive_type("ack")
    engine = server.context.storage.engine.dialect.name
    execute(server, REFUSE_CLAIMS[engine])

    socket = await WsClient.open(ws_url, spec, token=bob.token)
    code, reason = await socket.closed()
    assert code == 1011, (code, reason)
    types = [frame["type"] for frame in socket.received]
    assert types[0] == "welcome" and "message" not in types  # not live, and the page not handed out
    assert not server.context.registry.is_online(bob.user_id)

    execute(server, ALLOW_CLAIMS[engine])
    socket = await WsClient.logged_in(ws_url, spec, bob.token)  # reconnecting: the page still waited
    page = await socket.receive_type("message")
    assert page["data"]["event"]["content"]["body"] == "are you there?"
    socket.close()
