"""Channels shared across servers (spec/v1/federation.md section 10): a channel homed on alpha
with members on alpha, beta and gamma, three real servers on loopback, players on real
WebSockets; beta on the test's database (SQLite and PostgreSQL), the others on SQLite."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest

from tests.conftest import count_rows
from tests.federation.test_receive_transactions import send, transaction
from tests.support.client import acked, refused
from tests.support.federation import Federation, running
from tests.support.peer import until
from tests.test_channels import create
from vibemuse.clock import system_clock_ms
from vibemuse.protocol import content as compose
from vibemuse.protocol.channel_chain import chain_of, make_stamp
from vibemuse.protocol.events import build_event

ALPHA, BETA, GAMMA = "alpha.test", "beta.test", "gamma.test"


def history_path(channel_id: str) -> str:
    return f"/api/communication/channels/{quote(channel_id, safe='')}/history"


def three_servers(tmp_path, database_url):
    return running(tmp_path, database_url, (ALPHA, BETA, GAMMA))


async def bodies(socket, count: int) -> list[str]:
    """The next ``count`` channel messages' texts on ``socket``."""
    return [(await socket.receive_type("channel_message", timeout=15))["data"]["event"]["content"]["body"]
            for _ in range(count)]


async def order_on(world, channel_id: str) -> list[str]:
    """The channel's events held by a server, in the home's order, checked link by link."""
    stamped = await world.server.context.storage.stamped_after(channel_id, 0, 1000)
    head = None
    for item in stamped:
        if head is not None:
            assert item.stamp["prev"] == head
        head = chain_of(item.stamp)
    return [item.event["event_id"] for item in stamped]


@pytest.mark.gen_test(timeout=120)
async def test_members_on_three_servers_talk_on_one_channel_in_one_order(tmp_path, database_url):
    async with three_servers(tmp_path, database_url) as federation:
        alpha, beta, gamma = (federation.worlds[name] for name in (ALPHA, BETA, GAMMA))
        ann = await alpha.player("ann")
        bob, carol = await beta.player("bob"), await gamma.player("carol")
        channel_id = await create(alpha, ann)
        assert channel_id == "#public:alpha.test"
        joined = await acked(bob.ws, "join_channel", {"channelId": channel_id})
        assert joined["data"]["eventId"].startswith("$")
        notice = await bob.ws.receive_type("channel_notice", timeout=15)
        assert notice["data"]["event"]["content"]["rendered"] == "<Public> bob has joined this channel."
        await acked(carol.ws, "command", {"line": "addcom pub=public@alpha.test"})

        for round_number in range(3):  # everyone at once, on three servers
            await asyncio.gather(*(acked(player.ws, "channel", {"channelId": channel_id,
                                                                 "text": f"{player.name} {round_number}"})
                                   for player in (ann, bob, carol)))
        heard = {player.name: await bodies(player.ws, 9) for player in (ann, bob, carol)}
        assert heard["ann"] == heard["bob"] == heard["carol"]  # one order for everyone
        assert sorted(heard["ann"]) == sorted(f"{name} {n}" for name in ("ann", "bob", "carol") for n in range(3))

        home_order = await order_on(alpha, channel_id)
        await until(lambda: _same(order_on(beta, channel_id), home_order), "beta holds the home's order")
        await until(lambda: _same(order_on(gamma, channel_id), home_order), "gamma holds the home's order")

        status, history = await beta.api.call("GET", history_path(channel_id), token=bob.token,
                                              schema="event-page")
        assert status == 200 and [e["content"].get("body") for e in history["events"]
                                  if e["type"] == "vm.channel.message"][-1] == heard["ann"][-1]


async def _same(held, expected):
    return (await held) == expected


@pytest.mark.gen_test(timeout=120)
async def test_a_remote_member_leaves_and_the_home_refuses_what_it_must(tmp_path, database_url):
    async with three_servers(tmp_path, database_url) as federation:
        alpha, beta = federation.worlds[ALPHA], federation.worlds[BETA]
        ann, bob = await alpha.player("ann"), await beta.player("bob")
        channel_id = await create(alpha, ann)
        unknown = await refused(bob.ws, "join_channel", {"channelId": "#nowhere:alpha.test"})
        assert unknown["code"] == "unknown_channel"
        await acked(bob.ws, "join_channel", {"channelId": channel_id})
        await acked(ann.ws, "channel_moderate", {"channelId": channel_id, "action": "mute", "user": "@bob:beta.test"})
        await until(lambda: _muted_on(beta, channel_id, "@bob:beta.test"), "beta's copy knows of the mute")
        muted = await refused(bob.ws, "channel", {"channelId": channel_id, "text": "let me speak"})
        assert muted["code"] == "muted"
        await acked(ann.ws, "channel_moderate", {"channelId": channel_id, "action": "unmute",
                                                  "user": "@bob:beta.test"})
        await until(lambda: _muted_on(beta, channel_id, "@bob:beta.test", muted=False), "and of the unmute")
        await acked(bob.ws, "channel", {"channelId": channel_id, "text": "thanks"})
        assert await bodies(ann.ws, 1) == ["thanks"]
        await acked(bob.ws, "leave_channel", {"channelId": channel_id})
        await until(lambda: _member_of(alpha, channel_id, "@bob:beta.test", present=False), "gone on the home")
        assert (await refused(bob.ws, "channel", {"channelId": channel_id, "text": "still here?"}))["code"] in (
            "not_a_member", "unknown_channel")


async def _muted_on(world, channel_id, user_id, muted=True):
    member = await world.server.context.storage.get_membership(channel_id, user_id)
    return member is not None and (member.muted_until is not None) == muted


async def _member_of(world, channel_id, user_id, present=True):
    return (await world.server.context.storage.get_membership(channel_id, user_id) is not None) == present


@pytest.mark.gen_test(timeout=120)
async def test_a_server_that_was_down_gets_what_it_missed_once_and_in_order(tmp_path, database_url):
    async with three_servers(tmp_path, database_url) as federation:
        alpha = federation.worlds[ALPHA]
        ann = await alpha.player("ann")
        bob = await federation.worlds[BETA].player("bob")
        channel_id = await create(alpha, ann)
        await acked(bob.ws, "join_channel", {"channelId": channel_id})
        await federation.stop(BETA)
        for number in range(12):
            await acked(ann.ws, "channel", {"channelId": channel_id, "text": f"while away {number}"})
        beta = await federation.start(BETA)
        home_order = await order_on(alpha, channel_id)
        await until(lambda: _same(order_on(beta, channel_id), home_order), "beta caught up")
        stored = await beta.server.context.storage.stamped_after(channel_id, 0, 1000)
        texts = [item.event["content"].get("body") for item in stored if item.event["type"] == "vm.channel.message"]
        assert texts == [f"while away {number}" for number in range(12)]  # once each, in order


@pytest.mark.gen_test(timeout=120)
async def test_while_the_home_is_down_the_copy_still_reads_and_the_message_waits(tmp_path, database_url):
    async with three_servers(tmp_path, database_url) as federation:
        alpha, beta = federation.worlds[ALPHA], federation.worlds[BETA]
        ann, bob = await alpha.player("ann"), await beta.player("bob")
        channel_id = await create(alpha, ann)
        await acked(bob.ws, "join_channel", {"channelId": channel_id})
        await acked(ann.ws, "channel", {"channelId": channel_id, "text": "before"})
        assert await bodies(bob.ws, 1) == ["before"]
        await federation.stop(ALPHA)
        status, history = await beta.api.call("GET", history_path(channel_id), token=bob.token,
                                              schema="event-page")
        assert status == 200 and "before" in [e["content"].get("body") for e in history["events"]]
        queued = await acked(bob.ws, "channel", {"channelId": channel_id, "text": "while the home is away"})
        assert queued["data"]["eventId"].startswith("$")  # durable: queued for the home
        alpha = await federation.start(ALPHA)
        got = await bodies(bob.ws, 1)
        assert got == ["while the home is away"]  # relayed back once the home took it
        stored = await alpha.server.context.storage.stamped_after(channel_id, 0, 1000)
        assert [item.event["content"].get("body") for item in stored][-2:] == ["before", "while the home is away"]


@pytest.mark.gen_test(timeout=120)
async def test_the_home_kicks_a_remote_member_and_a_private_channel_takes_the_invited(tmp_path, database_url):
    async with three_servers(tmp_path, database_url) as federation:
        alpha, gamma = federation.worlds[ALPHA], federation.worlds[GAMMA]
        ann, carol = await alpha.player("ann"), await gamma.player("carol")
        channel_id = await create(alpha, ann, name="Den", visibility="private")
        hidden = await refused(carol.ws, "join_channel", {"channelId": "den@alpha.test"})
        assert hidden["code"] == "unknown_channel"  # private, and carol is not invited
        await acked(ann.ws, "channel_moderate", {"channelId": channel_id, "action": "invite",
                                                  "user": "carol@gamma.test"})
        await acked(carol.ws, "join_channel", {"channelId": "den@alpha.test", "alias": "den"})
        await acked(ann.ws, "channel_moderate", {"channelId": channel_id, "action": "kick", "user": "@carol:gamma.test",
                                                  "reason": "testing"})
        kicked = None
        while kicked is None:
            event = (await carol.ws.receive_type("channel_notice", timeout=15))["data"]["event"]
            if event["content"]["membership"] == "kick":
                kicked = event
        assert kicked["content"]["target"] == "@carol:gamma.test" and kicked["sender"] == "@ann:alpha.test"
        await until(lambda: _member_of(gamma, channel_id, "@carol:gamma.test", present=False), "gone on gamma")
        await acked(ann.ws, "channel", {"channelId": channel_id, "text": "after the kick"})
        assert [frame for frame in await carol.ws.quiet(0.5) if frame["type"] == "channel_message"] == []
        refusal = await refused(carol.ws, "channel", {"channelId": channel_id, "text": "hey"})
        assert refusal["code"] == "unknown_channel"  # a private channel she is no longer on
        refusal = await refused(carol.ws, "channel_update", {"channelId": channel_id, "topic": "mine now"})
        assert refusal["code"] in ("forbidden", "unknown_channel")


@pytest.mark.gen_test(timeout=120)
async def test_a_tampered_relay_one_out_of_chain_and_one_not_from_the_home_are_refused(tmp_path, database_url):
    async with three_servers(tmp_path, database_url) as federation:
        alpha, beta, gamma = (federation.worlds[name] for name in (ALPHA, BETA, GAMMA))
        ann, bob = await alpha.player("ann"), await beta.player("bob")
        channel_id = await create(alpha, ann)
        await acked(bob.ws, "join_channel", {"channelId": channel_id})
        await acked(ann.ws, "channel", {"channelId": channel_id, "text": "a real one"})
        assert await bodies(bob.ws, 1) == ["a real one"]
        home = alpha.server.context
        held = await beta.server.context.storage.channel_head(channel_id)
        before = count_rows(beta.server, "events")

        def message(text: str, key=None) -> dict:
            return build_event(event_type="vm.channel.message", sender=ann.user_id, origin=ALPHA,
                               origin_server_ts=system_clock_ms(), channel_id=channel_id,
                               content=compose.channel_message("Public", "ann", text, 4000),
                               signing_key=key or home.keyring.current)

        def relay(event: dict, seq: int, prev: str, key=None, home_name: str = ALPHA) -> dict:
            stamp = make_stamp(channel_id, seq, event["event_id"], prev, home_name, key or home.keyring.current)
            return {**event, "unsigned": {"channel_stamp": stamp}}

        next_seq, head = held[0] + 1, held[1]
        tampered = relay(message("stamped as is"), next_seq, head)
        tampered["unsigned"]["channel_stamp"]["seq"] = next_seq + 5  # the stamp changed after the home signed it
        forged = relay(message("a stamp not by the home"), next_seq, head, key=gamma.server.context.keyring.current)
        gap = relay(message("three ahead"), next_seq + 3, "x" * 43)
        cases = [("invalid_stamp", ALPHA, alpha, tampered), ("invalid_stamp", ALPHA, alpha, forged),
                 ("out_of_order", ALPHA, alpha, gap)]
        for code, origin, world, pdu in cases:
            status, answer, _ = await send(federation.urls[BETA], f"t.{pdu['event_id'][1:9]}",
                                           transaction(system_clock_ms, [pdu], origin), origin=origin,
                                           key=world.server.context.keyring.current, clock=system_clock_ms,
                                           spec=federation.spec)
            assert (status, answer["pdus"][pdu["event_id"]].get("error", {}).get("code")) == (200, code)
        # gamma relaying alpha's channel: only the home relays it
        from_gamma = relay(message("relayed by gamma"), next_seq, head)
        status, answer, _ = await send(federation.urls[BETA], "g.1", transaction(system_clock_ms, [from_gamma], GAMMA),
                                       origin=GAMMA, key=gamma.server.context.keyring.current,
                                       clock=system_clock_ms, spec=federation.spec)
        assert answer["pdus"][from_gamma["event_id"]]["error"]["code"] == "origin_mismatch"
        await until(lambda: _head_is(beta, channel_id, held), "nothing moved the copy's head")
        assert count_rows(beta.server, "events") == before  # nothing stored
        assert [frame for frame in await bob.ws.quiet(0.3) if frame["type"] == "channel_message"] == []
        await acked(ann.ws, "channel", {"channelId": channel_id, "text": "and the chain goes on"})
        assert await bodies(bob.ws, 1) == ["and the chain goes on"]


async def _head_is(world, channel_id, expected):
    return await world.server.context.storage.channel_head(channel_id) == expected


@pytest.mark.gen_test(timeout=120)
async def test_a_moderator_on_another_server_moderates_through_the_home(tmp_path, database_url):
    async with three_servers(tmp_path, database_url) as federation:
        alpha, beta, gamma = (federation.worlds[name] for name in (ALPHA, BETA, GAMMA))
        ann, bob, carol = await alpha.player("ann"), await beta.player("bob"), await gamma.player("carol")
        channel_id = await create(alpha, ann)
        for player in (bob, carol):
            await acked(player.ws, "join_channel", {"channelId": channel_id})
        early = await refused(bob.ws, "channel_moderate", {"channelId": channel_id, "action": "mute",
                                                            "user": "carol@gamma.test"})
        assert early["code"] == "forbidden"  # not a moderator yet (judged by beta's copy, and so by the home)
        await acked(ann.ws, "channel_moderate", {"channelId": channel_id, "action": "promote", "user": "bob@beta.test"})
        await until(lambda: _role_on(beta, channel_id, "@bob:beta.test", "moderator"), "beta's copy knows bob moderates")

        muted = await acked(bob.ws, "channel_moderate", {"channelId": channel_id, "action": "mute",
                                                          "user": "carol@gamma.test"})
        assert muted["data"]["eventId"].startswith("$")
        await until(lambda: _muted_on(gamma, channel_id, "@carol:gamma.test"), "gamma's copy has the mute")
        assert (await refused(carol.ws, "channel", {"channelId": channel_id, "text": "hm"}))["code"] == "muted"
        await acked(bob.ws, "channel_update", {"channelId": channel_id, "topic": "moderated from beta"})
        await until(lambda: _topic_on(gamma, channel_id, "moderated from beta"), "the topic reached gamma")
        assert await _topic_on(alpha, channel_id, "moderated from beta")
        against_owner = await refused(bob.ws, "channel_moderate", {"channelId": channel_id, "action": "kick",
                                                                    "user": "ann@alpha.test"})
        assert against_owner["code"] == "forbidden"
        await acked(bob.ws, "channel_moderate", {"channelId": channel_id, "action": "kick", "user": "@carol:gamma.test"})
        await until(lambda: _member_of(alpha, channel_id, "@carol:gamma.test", present=False), "kicked on the home")
        await until(lambda: _member_of(gamma, channel_id, "@carol:gamma.test", present=False), "and on gamma")


async def _role_on(world, channel_id, user_id, role):
    member = await world.server.context.storage.get_membership(channel_id, user_id)
    return member is not None and member.role == role


async def _topic_on(world, channel_id, topic):
    channel = await world.server.context.storage.get_channel(channel_id)
    return channel is not None and channel.topic == topic


@pytest.mark.gen_test(timeout=120)
async def test_a_message_that_waited_too_long_for_the_home_comes_back_refused(tmp_path, database_url):
    federation = Federation(tmp_path, database_url, (ALPHA, BETA),
                            settings={BETA: {"federation_channel_queue_seconds": 3}})
    try:
        alpha, beta = await federation.start(ALPHA), await federation.start(BETA)
        ann, bob = await alpha.player("ann"), await beta.player("bob")
        channel_id = await create(alpha, ann)
        await acked(bob.ws, "join_channel", {"channelId": channel_id})
        await federation.stop(ALPHA)
        message_id = await bob.ws.send_frame("channel", {"channelId": channel_id, "text": "into the void"})
        ack = await bob.ws.receive_type("ack", timeout=15)  # after 2 s without the home: queued
        assert ack["data"]["inReplyTo"] == message_id and "streamPosition" not in ack["data"]
        error = await bob.ws.receive_type("error", timeout=30)  # at beta's first attempt past 3 s
        assert (error["data"]["code"], error["data"]["inReplyTo"]) == ("home_unreachable", message_id)
        assert count_rows(beta.server, "federation_outbox") == 0  # dropped, not sent later
        alpha = await federation.start(ALPHA)
        stored = await alpha.server.context.storage.stamped_after(channel_id, 0, 100)
        assert "into the void" not in [item.event["content"].get("body") for item in stored]
    finally:
        await federation.close()


async def _notice(socket, membership: str) -> dict:
    """The next channel notice of ``membership`` on ``socket`` (others skipped)."""
    while True:
        event = (await socket.receive_type("channel_notice", timeout=15))["data"]["event"]
        if event["content"]["membership"] == membership:
            return event


async def _servers_on(world, channel_id) -> set[str]:
    members = await world.server.context.storage.channel_members(channel_id)
    return {member.user_id.split(":", 1)[1] for member in members}


@pytest.mark.gen_test(timeout=120)
async def test_a_ban_of_a_whole_server_drops_its_members_and_refuses_its_joins(tmp_path, database_url):
    async with three_servers(tmp_path, database_url) as federation:
        alpha, beta, gamma = (federation.worlds[name] for name in (ALPHA, BETA, GAMMA))
        ann, bob, carol = await alpha.player("ann"), await beta.player("bob"), await gamma.player("carol")
        dave = await gamma.player("dave")
        channel_id = await create(alpha, ann)
        for player in (bob, carol, dave):
            await acked(player.ws, "join_channel", {"channelId": channel_id})
        await acked(ann.ws, "channel_moderate", {"channelId": channel_id, "action": "promote", "user": "bob@beta.test"})
        await until(lambda: _role_on(beta, channel_id, "@bob:beta.test", "moderator"), "bob moderates on beta")
        for frame, code in (({"server": ALPHA, "action": "ban"}, "invalid_request"),  # the home itself
                            ({"server": BETA, "action": "ban"}, "invalid_request"),  # the moderator's own
                            ({"server": "delta.test", "action": "kick"}, "not_a_member")):  # no player there
            assert (await refused(bob.ws, "channel_moderate", {"channelId": channel_id, **frame}))["code"] == code
        assert (await refused(carol.ws, "channel_moderate", {"channelId": channel_id, "server": BETA,
                                                             "action": "ban"}))["code"] == "forbidden"

        # bob, a moderator of beta, bans all of gamma through the home
        await acked(bob.ws, "channel_moderate", {"channelId": channel_id, "server": GAMMA, "action": "ban",
                                                  "reason": "raids"})
        banned = await _notice(carol.ws, "ban")  # gamma's players hear it, then are tuned out
        assert banned["content"]["target_server"] == GAMMA and "target" not in banned["content"]
        assert banned["content"]["rendered"] == "<Public> gamma.test and its players have been banned by bob (raids)."
        await until(lambda: _same(_servers_on(alpha, channel_id), {ALPHA, BETA}), "gamma's members gone at home")
        await until(lambda: _same(_servers_on(gamma, channel_id), {ALPHA, BETA}), "and on gamma's copy")
        assert (await alpha.server.context.storage.get_server_ban(channel_id, GAMMA)).reason == "raids"
        await acked(ann.ws, "channel", {"channelId": channel_id, "text": "gamma hears no more"})
        assert await bodies(bob.ws, 1) == ["gamma hears no more"]
        assert [f for f in await dave.ws.quiet(0.5) if f["type"] == "channel_message"] == []
        again = await refused(carol.ws, "join_channel", {"channelId": channel_id})
        assert again["code"] == "banned" and again["details"]["reason"] == "raids"
        erin = await gamma.player("erin")  # every player of gamma, also one who was never on it
        assert (await refused(erin.ws, "join_channel", {"channelId": channel_id}))["code"] == "banned"

        await acked(ann.ws, "channel_moderate", {"channelId": channel_id, "server": GAMMA, "action": "unban"})
        assert await alpha.server.context.storage.get_server_ban(channel_id, GAMMA) is None
        await acked(carol.ws, "join_channel", {"channelId": channel_id})
        await acked(carol.ws, "channel", {"channelId": channel_id, "text": "back"})
        assert await bodies(ann.ws, 2) == ["gamma hears no more", "back"]


@pytest.mark.gen_test(timeout=120)
async def test_the_home_drops_a_server_and_a_server_leaves_a_channel_on_its_own(tmp_path, database_url):
    async with three_servers(tmp_path, database_url) as federation:
        alpha, beta, gamma = (federation.worlds[name] for name in (ALPHA, BETA, GAMMA))
        ann, bob, carol = await alpha.player("ann"), await beta.player("bob"), await gamma.player("carol")
        boss = await beta.player("boss", role="admin")  # beta's admin, on no channel
        channel_id = await create(alpha, ann)
        for player in (bob, carol):
            await acked(player.ws, "join_channel", {"channelId": channel_id})

        # the home's owner drops gamma (no ban): its players are out, and may come back
        await acked(ann.ws, "channel_moderate", {"channelId": channel_id, "server": GAMMA, "action": "kick"})
        dropped = await _notice(carol.ws, "kick")
        assert dropped["content"]["rendered"] == "<Public> gamma.test and its players have been removed by ann."
        await until(lambda: _same(_servers_on(gamma, channel_id), {ALPHA, BETA}), "gamma's copy drops its players")
        await acked(carol.ws, "join_channel", {"channelId": channel_id})

        # beta's admin takes beta off the channel: all of beta's players leave
        path = f"/api/admin/channels/{quote(channel_id, safe='')}/leave"
        status, body = await beta.api.call("POST", path, token=bob.token)
        assert (status, body["error"]["code"]) == (403, "forbidden")
        status, body = await beta.api.call("POST", path, token=boss.token, schema="server-leave")
        assert status == 200 and body["eventId"].startswith("$")
        left = await _notice(bob.ws, "leave")
        assert left["content"]["target_server"] == BETA and left["sender"] == boss.user_id
        await until(lambda: _same(_servers_on(alpha, channel_id), {ALPHA, GAMMA}), "beta's players gone at home")
        await until(lambda: _same(_servers_on(beta, channel_id), {ALPHA, GAMMA}), "and on beta's copy")
        status, body = await beta.api.call("POST", path, token=boss.token)
        assert (status, body["error"]["code"]) == (403, "not_a_member")  # nobody of beta left on it
        await acked(ann.ws, "channel", {"channelId": channel_id, "text": "without beta"})
        assert await bodies(carol.ws, 1) == ["without beta"]
        assert [f for f in await bob.ws.quiet(0.5) if f["type"] == "channel_message"] == []
        status, body = await beta.api.call("POST", "/api/admin/channels/%23nowhere%3Abeta.test/leave",
                                           token=boss.token)
        assert (status, body["error"]["code"]) == (404, "unknown_channel")  # beta's own channels are not left so


@pytest.mark.gen_test(timeout=120)
async def test_a_player_lists_the_public_channels_of_another_server(tmp_path, database_url):
    async with three_servers(tmp_path, database_url) as federation:
        alpha, beta = federation.worlds[ALPHA], federation.worlds[BETA]
        ann, bob = await alpha.player("ann"), await beta.player("bob")
        for name in ("Public", "Games", "Lore"):
            await create(alpha, ann, name=name)
        await create(alpha, ann, name="Den", visibility="private")
        await create(beta, bob, name="Beta-only")
        await acked(bob.ws, "join_channel", {"channelId": "public@alpha.test"})  # beta now holds a copy of Public

        status, page = await beta.api.call("GET", "/api/communication/channels?server=alpha.test&limit=2",
                                           token=bob.token, schema="channel-list")
        assert status == 200 and [c["id"] for c in page["channels"]] == ["#games:alpha.test", "#lore:alpha.test"]
        status, rest = await beta.api.call("GET", f"/api/communication/channels?server=alpha.test&after={page['next']}",
                                           token=bob.token, schema="channel-list")
        assert [c["name"] for c in rest["channels"]] == ["Public"] and rest["next"] is None  # not Den: private
        status, found = await beta.api.call("GET", "/api/communication/channels?server=alpha.test&q=lor",
                                            token=bob.token, schema="channel-list")
        assert [c["name"] for c in found["channels"]] == ["Lore"]
        status, own = await beta.api.call("GET", "/api/communication/channels?server=beta.test", token=bob.token)
        assert {c["id"] for c in own["channels"]} >= {"#beta-only:beta.test"}
        status, body = await beta.api.call("GET", "/api/communication/channels?server=no%20such", token=bob.token)
        assert (status, body["error"]["code"]) == (400, "invalid_request")
        status, body = await beta.api.call("GET", "/api/communication/channels?server=delta.test", token=bob.token)
        assert (status, body["error"]["code"]) == (503, "home_unreachable")  # nobody answers for delta

        # the federation request itself: signed, or refused
        status, body = await alpha.api.call("GET", "/federation/v1/channels")
        assert status == 401


@pytest.mark.gen_test(timeout=120)
async def test_a_player_talks_on_without_waiting_for_each_answer_of_the_home(tmp_path, database_url):
    federation = Federation(tmp_path, database_url, (ALPHA, BETA))
    try:
        alpha, beta = await federation.start(ALPHA), await federation.start(BETA)
        ann, bob = await alpha.player("ann"), await beta.player("bob")
        channel_id = await create(alpha, ann)
        await acked(bob.ws, "join_channel", {"channelId": channel_id})
        await federation.stop(ALPHA)  # every answer of the home now takes the 2 s wait
        sent = [await bob.ws.send_frame("channel", {"channelId": channel_id, "text": f"line {n}"}) for n in range(3)]
        ping = await bob.ws.send_frame("ping", {})
        # the three were handled (queued for the home) while the first one's answer still waited
        await until(lambda: count_rows(beta.server, "federation_outbox") == 3, "all three queued")
        early = bob.ws._pending + await bob.ws.quiet(0.1)
        assert [f for f in early if f["type"] in ("ack", "pong")] == []  # no answer yet: the first still waits
        answers = []
        while len(answers) < 4:
            frame = await bob.ws.receive(timeout=15)
            if frame["type"] in ("ack", "pong"):
                answers.append((frame["type"], frame["data"]["inReplyTo"]))
        assert answers == [("ack", sent[0]), ("ack", sent[1]), ("ack", sent[2]), ("pong", ping)]  # in order
        alpha = await federation.start(ALPHA)  # back: the three reach the channel, in order
        await until(lambda: _bodies_on(alpha, channel_id, ["line 0", "line 1", "line 2"]), "in the home's order")
    finally:
        await federation.close()


async def _bodies_on(world, channel_id, expected):
    stored = await world.server.context.storage.stamped_after(channel_id, 0, 100)
    return [item.event["content"].get("body") for item in stored if item.event["type"] == "vm.channel.message"] == expected
