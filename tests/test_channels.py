"""Channels over real sockets and HTTP: create/join/leave, speaking anywhere,
moderation, privacy, blocks, history, and the permission matrix."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.client import acked, refused


async def create(world, player, name="Public", **body):
    status, created = await world.api.call("POST", "/api/communication/channels", {"name": name, **body},
                                           token=player.token, schema="channel-joined")
    assert status == 201 and created["created"] is True, created
    return created["channel"]["id"]


async def three_on_a_channel(world):
    """Alice owns #public; Bob and Carol are on it."""
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    carol = await world.player("Carol")
    channel_id = await create(world, alice)
    for player in (bob, carol):
        await acked(player.ws, "join_channel", {"channelId": channel_id})
    return alice, bob, carol, channel_id


async def notice(socket):
    return (await socket.receive_type("channel_notice"))["data"]["event"]


async def chatter(socket):
    return (await socket.receive_type("channel_message"))["data"]["event"]


@pytest.mark.gen_test(timeout=20)
async def test_members_hear_the_channel_wherever_they_stand(world):
    wizard = await world.player("Wizard", role="builder")
    library = await world.room("Library", wizard)
    alice = await world.player("Alice", sockets=2)
    bob = await world.player("Bob")
    channel_id = await create(world, alice)
    assert channel_id == "#public:test.localhost"
    assert (await notice(alice.ws))["content"]["rendered"] == "<Public> Channel created by Alice."
    assert (await notice(alice.ws))["content"]["rendered"] == "<Public> Alice has joined this channel."
    await acked(bob.ws, "join_room", {"roomId": library})
    await acked(bob.ws, "join_channel", {"channelId": "public", "alias": "pub"})
    joined = await notice(alice.ws)
    assert joined["content"]["rendered"] == "<Public> Bob has joined this channel."
    await acked(bob.ws, "command", {"line": "+pub Hello from the library!"})
    for socket in alice.sockets:
        event = await chatter(socket)
        assert event["content"]["rendered"] == '<Public> Bob says, "Hello from the library!"'
        assert event["channel_id"] == channel_id
    assert (await chatter(bob.ws))["content"]["body"] == "Hello from the library!"  # his own echo
    await acked(alice.ws, "command", {"line": "@chat public=:waves"})
    assert (await chatter(bob.ws))["content"]["rendered"] == "<Public> Alice waves"
    await acked(alice.ws, "command", {"line": "+pub ;'s hat"})  # a unique prefix of the name works too
    assert (await chatter(bob.ws))["content"]["rendered"] == "<Public> Alice's hat"
    await acked(bob.ws, "leave_channel", {"alias": "pub"})
    assert (await notice(alice.ws))["content"]["rendered"] == "<Public> Bob has left this channel."
    await acked(alice.ws, "channel", {"channelId": channel_id, "text": "gone?"})
    assert not [f for f in await bob.ws.quiet(0.3) if f["type"] == "channel_message"]  # leaving stops at once


@pytest.mark.gen_test(timeout=20)
async def test_titles_lists_and_who(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    await create(world, alice, "Newbie", description="Questions welcome")
    await acked(bob.ws, "command", {"line": "addcom nb=Newbie"})
    await acked(bob.ws, "join_channel", {"channelId": "Newbie", "title": "Curious"})
    await acked(bob.ws, "command", {"line": "+nb What is a MUSH?"})
    assert (await chatter(alice.ws))["content"]["rendered"] == '<Newbie> Curious Bob says, "What is a MUSH?"'
    message_id = await bob.ws.send_frame("command", {"line": "comlist"})
    listing = await bob.ws.receive_type("channel_list")
    assert listing["data"] == {"inReplyTo": message_id, "channels": [
        {"channelId": "#newbie:test.localhost", "name": "Newbie", "role": "member", "alias": "nb", "title": "Curious"}]}
    await bob.ws.send_frame("command", {"line": "@channel/who Newbie"})
    who = await bob.ws.receive_type("channel_who")
    assert {m["userId"]: m["role"] for m in who["data"]["members"]} == {alice.user_id: "owner", bob.user_id: "member"}
    status, found = await world.api.call("GET", "/api/communication/channels?q=question", token=bob.token,
                                         schema="channel-list")
    assert [c["name"] for c in found["channels"]] == ["Newbie"]
    status, detail = await world.api.call("GET", "/api/communication/channels/%23newbie%3Atest.localhost",
                                          token=bob.token, schema="channel-detail")
    assert status == 200 and detail["membership"]["alias"] == "nb" and len(detail["members"]) == 2


@pytest.mark.gen_test(timeout=20)
async def test_moderation_mute_kick_ban_and_the_audit_trail(world):
    alice, bob, carol, channel_id = await three_on_a_channel(world)
    # a member cannot moderate
    error = await refused(bob.ws, "channel_moderate", {"channelId": channel_id, "action": "kick", "user": "carol"})
    assert error["code"] == "forbidden"
    await acked(alice.ws, "channel_moderate", {"channelId": channel_id, "action": "promote", "user": "bob"})
    await acked(bob.ws, "channel_moderate", {"channelId": channel_id, "action": "mute", "user": "carol",
                                             "durationSeconds": 600, "reason": "spam"})
    before = world.event_count()
    error = await refused(carol.ws, "channel", {"channelId": channel_id, "text": "let me talk"})
    assert error["code"] == "muted" and "untilMs" in error["details"]
    assert world.event_count() == before
    await acked(bob.ws, "channel_moderate", {"channelId": channel_id, "action": "unmute", "user": "carol"})
    await acked(carol.ws, "channel", {"channelId": channel_id, "text": "thanks"})
    # moderators cannot act against the owner, nor promote
    error = await refused(bob.ws, "channel_moderate", {"channelId": channel_id, "action": "kick", "user": "alice"})
    assert error["code"] == "forbidden"
    error = await refused(bob.ws, "channel_moderate", {"channelId": channel_id, "action": "promote", "user": "carol"})
    assert error["code"] == "forbidden"
    await acked(bob.ws, "channel_moderate", {"channelId": channel_id, "action": "ban", "user": "carol",
                                             "reason": "repeat spam"})
    banned = await notice(carol.ws)  # the target hears it too
    while banned["content"]["membership"] != "ban":
        banned = await notice(carol.ws)
    assert banned["content"]["rendered"] == "<Public> Carol has been banned by Bob (repeat spam)."
    error = await refused(carol.ws, "join_channel", {"channelId": channel_id})
    assert error["code"] == "banned" and error["details"] == {"reason": "repeat spam"}
    error = await refused(carol.ws, "channel", {"channelId": channel_id, "text": "hello?"})
    assert error["code"] == "not_a_member"
    await acked(alice.ws, "channel_moderate", {"channelId": channel_id, "action": "unban", "user": "carol"})
    await acked(carol.ws, "join_channel", {"channelId": channel_id})
    status, history = await world.api.call("GET", f"/api/communication/channels/{channel_id.replace('#', '%23')}/history",
                                           token=alice.token, schema="event-page")
    trail = [(e["content"].get("membership"), e["content"].get("target_name")) for e in history["events"]
             if e["type"] == "vm.channel.member"]
    assert ("promote", "Bob") in trail and ("mute", "Carol") in trail and ("ban", "Carol") in trail
    assert ("unban", "Carol") in trail and trail[-1] == ("join", "Carol")


@pytest.mark.gen_test(timeout=20)
async def test_private_channels_need_an_invitation_and_stay_hidden(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    channel_id = await create(world, alice, "Staff", visibility="private")
    error = await refused(bob.ws, "join_channel", {"channelId": "Staff"})
    assert error["code"] == "unknown_channel"  # not even told it exists
    status, listing = await world.api.call("GET", "/api/communication/channels", token=bob.token)
    assert "Staff" not in [c["name"] for c in listing["channels"]]
    await acked(alice.ws, "channel_moderate", {"channelId": channel_id, "action": "invite", "user": "bob"})
    await acked(bob.ws, "join_channel", {"channelId": "Staff"})
    await acked(bob.ws, "channel", {"channelId": "staff", "text": "thanks for the invite"})
    assert (await chatter(alice.ws))["content"]["body"] == "thanks for the invite"


@pytest.mark.gen_test(timeout=20)
async def test_a_blocker_stops_hearing_the_blocked_on_channels(world):
    alice, bob, carol, channel_id = await three_on_a_channel(world)
    await acked(alice.ws, "block", {"user": "bob", "blocked": True})
    await acked(bob.ws, "channel", {"channelId": channel_id, "text": "can anyone hear me"})
    assert (await chatter(carol.ws))["content"]["body"] == "can anyone hear me"
    assert not [f for f in await alice.ws.quiet(0.3) if f["type"] == "channel_message"]


@pytest.mark.gen_test(timeout=20)
async def test_topic_and_settings_are_audited(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    channel_id = await create(world, alice)
    await acked(bob.ws, "join_channel", {"channelId": channel_id})
    error = await refused(bob.ws, "channel_update", {"channelId": channel_id, "topic": "mine now"})
    assert error["code"] == "forbidden"
    await acked(alice.ws, "channel_update", {"channelId": channel_id, "topic": "Game night at 8"})
    event = await notice(bob.ws)
    while event["type"] != "vm.channel.settings":
        event = await notice(bob.ws)
    assert event["content"]["rendered"] == "<Public> Alice set the topic: Game night at 8."
    status, detail = await world.api.call("GET", "/api/communication/channels/public", token=bob.token)
    assert detail["channel"]["topic"] == "Game night at 8"


@pytest.mark.parametrize(
    "frame_type, data, code",
    [
        ("channel", {"channelId": "public", "text": "hi"}, "not_a_member"),
        ("channel", {"channelId": "nowhere", "text": "hi"}, "unknown_channel"),
        ("channel", {"alias": "zzz", "text": "hi"}, "unknown_channel"),
        ("channel", {"text": "hi"}, "invalid_frame"),
        ("leave_channel", {"channelId": "public"}, "not_a_member"),
        ("channel_moderate", {"channelId": "public", "action": "kick", "user": "alice"}, "forbidden"),
        ("channel_update", {"channelId": "public", "topic": "x"}, "forbidden"),
        ("join_channel", {"channelId": "public", "alias": "no spaces"}, "invalid_frame"),
    ],
)
@pytest.mark.gen_test(timeout=20)
async def test_strangers_are_refused_and_nothing_changes(world, frame_type, data, code):
    alice = await world.player("Alice")
    stranger = await world.player("Mallory")
    await create(world, alice)
    before = world.event_count()
    assert (await refused(stranger.ws, frame_type, data))["code"] == code
    assert world.event_count() == before
    status, body = await world.api.call("GET", "/api/communication/channels/public/history", token=stranger.token)
    assert (status, body["error"]["code"]) == (403, "not_a_member")


@pytest.mark.parametrize("body, code", [({"name": "a"}, "invalid_channel_name"), ({"name": "no spaces"},
                                        "invalid_channel_name"), ({"name": "Ok", "visibility": "secret"},
                                        "invalid_request"), ({}, "invalid_request")])
@pytest.mark.gen_test
async def test_bad_channel_creation(world, body, code):
    alice = await world.player("Alice")
    before = world.event_count()
    status, got = await world.api.call("POST", "/api/communication/channels", body, token=alice.token)
    assert status == 400 and got["error"]["code"] == code
    assert world.event_count() == before


@pytest.mark.gen_test(timeout=20)
async def test_posting_to_an_existing_name_joins_it_and_delete_leaves(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    await create(world, alice)
    status, joined = await world.api.call("POST", "/api/communication/channels", {"name": "PUBLIC"},
                                          token=bob.token, schema="channel-joined")
    assert status == 200 and joined["created"] is False and joined["channel"]["owner"] == alice.user_id
    status, _ = await world.api.call("DELETE", "/api/communication/channels/public", token=bob.token,
                                     schema="channel-left")
    assert status == 200
    status, body = await world.api.call("DELETE", "/api/communication/channels/public", token=bob.token)
    assert (status, body["error"]["code"]) == (403, "not_a_member")


@pytest.mark.gen_test(timeout=20)
async def test_memberships_survive_reconnecting(world, server):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    channel_id = await create(world, alice)
    await acked(bob.ws, "join_channel", {"channelId": channel_id})
    await world.wait_offline(bob)
    socket = await world.open_socket(bob)
    await asyncio.sleep(0.1)
    await acked(alice.ws, "channel", {"channelId": channel_id, "text": "welcome back"})
    assert (await chatter(socket))["content"]["body"] == "welcome back"


async def standing(world, viewer, channel_id):
    """Each member's (role, muted), as the channel detail shows them."""
    path = f"/api/communication/channels/{channel_id.replace('#', '%23')}"
    status, detail = await world.api.call("GET", path, token=viewer.token, schema="channel-detail")
    assert status == 200, detail
    return {member["userId"]: (member["role"], member["muted"]) for member in detail["members"]}


async def moderate(actor, channel_id, action, user, **extra):
    return await acked(actor.ws, "channel_moderate", {"channelId": channel_id, "action": action, "user": user,
                                                      **extra})


async def rejoin(player, channel_id):
    await acked(player.ws, "leave_channel", {"channelId": channel_id})
    await acked(player.ws, "join_channel", {"channelId": channel_id})


@pytest.mark.gen_test(timeout=30)
async def test_what_leaving_and_rejoining_keeps(world):
    """16.2/16.5: the owner comes back as owner, a moderator as a member, a muted member
    still muted (with the same end) — after a leave, a kick, or a ban and an unban."""
    alice, bob, carol, channel_id = await three_on_a_channel(world)
    await moderate(alice, channel_id, "promote", "bob")
    await moderate(alice, channel_id, "mute", "carol", durationSeconds=600)
    until = (await refused(carol.ws, "channel", {"channelId": channel_id, "text": "hi"}))["details"]["untilMs"]
    for player in (alice, bob, carol):
        await rejoin(player, channel_id)
    assert await standing(world, alice, channel_id) == {
        alice.user_id: ("owner", False), bob.user_id: ("member", False), carol.user_id: ("member", True)}
    before = world.event_count()
    error = await refused(carol.ws, "channel", {"channelId": channel_id, "text": "free!"})
    assert (error["code"], error["details"]) == ("muted", {"untilMs": until})
    error = await refused(bob.ws, "channel_moderate", {"channelId": channel_id, "action": "unmute", "user": "carol"})
    assert error["code"] == "forbidden"  # no longer a moderator
    assert world.event_count() == before
    await moderate(alice, channel_id, "promote", "bob")  # the owner's rights came back with the role
    await moderate(bob, channel_id, "kick", "carol")
    await acked(carol.ws, "join_channel", {"channelId": channel_id})
    await moderate(bob, channel_id, "ban", "carol")
    await moderate(bob, channel_id, "unban", "carol")
    await acked(carol.ws, "join_channel", {"channelId": channel_id})
    assert (await standing(world, alice, channel_id))[carol.user_id] == ("member", True)
    assert (await refused(carol.ws, "channel", {"channelId": channel_id, "text": "now?"}))["code"] == "muted"
    await moderate(bob, channel_id, "unmute", "carol")  # only an unmute (or the end) lifts it
    await rejoin(carol, channel_id)
    assert (await standing(world, alice, channel_id))[carol.user_id] == ("member", False)
    await acked(carol.ws, "command", {"line": "+PUB thanks"})  # aliases match in any case
    await moderate(alice, channel_id, "kick", "bob")  # a kicked moderator comes back a member too
    await acked(bob.ws, "join_channel", {"channelId": channel_id})
    assert (await standing(world, alice, channel_id))[bob.user_id] == ("member", False)


@pytest.mark.gen_test(timeout=20)
async def test_a_mute_without_end_and_a_banned_owner_come_back(world):
    alice, bob, _, channel_id = await three_on_a_channel(world)
    admin = await world.player("Root", role="admin")
    await moderate(alice, channel_id, "mute", "bob")
    await rejoin(bob, channel_id)
    error = await refused(bob.ws, "channel", {"channelId": channel_id, "text": "free!"})
    assert error["code"] == "muted" and "details" not in error
    await moderate(admin, channel_id, "ban", "alice")
    assert (await refused(alice.ws, "join_channel", {"channelId": channel_id}))["code"] == "banned"
    await moderate(admin, channel_id, "unban", "alice")
    await acked(alice.ws, "join_channel", {"channelId": channel_id})
    assert (await standing(world, alice, channel_id))[alice.user_id] == ("owner", False)
    await moderate(alice, channel_id, "unmute", "bob")
    await acked(bob.ws, "channel", {"channelId": channel_id, "text": "back"})


@pytest.mark.gen_test(timeout=20)
async def test_joining_over_http_without_a_socket_is_not_being_online(world):
    alice = await world.player("Alice")
    await create(world, alice)
    bob = await world.offline_player("Bob")
    status, _ = await world.api.call("POST", "/api/communication/channels", {"name": "Public"}, token=bob.token)
    assert status == 200
    status, detail = await world.api.call("GET", "/api/communication/channels/public", token=alice.token)
    assert {m["userId"]: m["online"] for m in detail["members"]} == {alice.user_id: True, bob.user_id: False}
    socket = await world.open_socket(bob)
    await asyncio.sleep(0.1)
    await acked(alice.ws, "channel", {"channelId": "public", "text": "hi bob"})
    assert (await socket.receive_type("channel_message"))["data"]["event"]["content"]["body"] == "hi bob"
