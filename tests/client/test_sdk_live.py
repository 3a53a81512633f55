"""The SDK against a real server: accounts, both ways to authenticate, send and ack,
receiving, refusals as exceptions with the spec's codes, histories, signatures."""

from __future__ import annotations

import copy

import pytest

from tests.client.helpers import events_until, frame_where
from tests.support.client import PASSWORD
from vibemuse_client import Client, SessionEnded, SignatureError, VibeMuseError


@pytest.mark.gen_test(timeout=30)
async def test_register_login_connect_both_ways_send_and_receive(served):
    alice = await served.player("Alice", validate=True)
    bob = await served.player("Bob", validate=True, auth="frame")
    versions = await alice.http.versions()
    assert versions.has("resume") and versions.has("frame_auth") and not versions.has("no_such_flag")
    assert alice.welcome.user.username == "Alice" and bob.welcome.user.id == "@bob:test.localhost"
    assert alice.welcome.limits == versions.limits
    ack = await alice.say("Hello, Bob!")
    assert ack.duplicate is False and ack.event_id.startswith("$") and ack.stream_position >= 1
    heard = (await events_until(bob, lambda event: event.event_id == ack.event_id))[-1]
    assert (heard.sender, heard.body, heard.stream_position) == ("@alice:test.localhost", "Hello, Bob!",
                                                                ack.stream_position)
    assert heard.line_for(bob.user_id) == 'Alice says, "Hello, Bob!"'
    assert (await bob.who()).data["total"] == 2
    again = await Client.login(served.base_url, "ALICE", PASSWORD)  # names are case-insensitive
    assert again.session.user.username == "Alice" and again.token != alice.token
    assert alice.violations == [] and bob.violations == []  # every frame matched spec/


@pytest.mark.gen_test(timeout=30)
async def test_refusals_are_exceptions_with_the_spec_codes_and_change_nothing(served):
    alice = await served.player("Alice")
    with pytest.raises(VibeMuseError) as wrong_password:
        await Client.login(served.base_url, "Alice", "not the password")
    assert (wrong_password.value.code, wrong_password.value.status) == ("invalid_credentials", 401)
    with pytest.raises(VibeMuseError) as taken:
        await Client.register(served.base_url, "alice", PASSWORD)
    assert (taken.value.code, taken.value.status) == ("username_taken", 409)
    with pytest.raises(VibeMuseError) as bad_token:
        await Client(served.base_url, "vmt_not-a-token").connect()  # refused at the handshake
    assert (bad_token.value.code, bad_token.value.status) == ("invalid_token", 401)
    with pytest.raises(SessionEnded) as bad_auth_frame:
        await Client(served.base_url, "vmt_not-a-token", auth="frame").connect()
    assert bad_auth_frame.value.close_code == 4002 and bad_auth_frame.value.error.code == "invalid_token"

    elsewhere = "!AAAAAAAAAAAAAAAA:test.localhost"
    with pytest.raises(VibeMuseError) as not_there:
        await alice.say("hi", room_id=elsewhere)
    assert not_there.value.code == "not_in_room" and not_there.value.status == 403
    assert not_there.value.details == {"location": alice.welcome.location}
    assert not_there.value.in_reply_to
    with pytest.raises(VibeMuseError) as nobody:
        await alice.page(["nobody"], "hello?")
    assert nobody.value.code == "unknown_user" and nobody.value.details == {"name": "nobody"}
    with pytest.raises(VibeMuseError) as huh:
        await alice.command("dance wildly")
    assert huh.value.code == "unknown_command"
    with pytest.raises(VibeMuseError) as history:
        await alice.history.room(elsewhere).collect()
    assert (history.value.code, history.value.status) == ("room_not_found", 404)
    assert await alice.history.room(alice.welcome.location, kind="say").collect() == []  # nothing was said
    assert (await alice.say("Still here.")).duplicate is False  # the session goes on


@pytest.mark.gen_test(timeout=30)
async def test_history_iterators_page_through_more_than_one_page(served):
    alice = await served.player("Alice", validate=True)
    bob = await served.player("Bob")
    lines = [f"line {n}" for n in range(7)]
    for line in lines:
        await alice.say(line)
    room = alice.welcome.location
    reader = alice.history.room(room, kind="say", limit=3)
    pages = [page async for page in reader.pages()]
    assert [len(page.events) for page in pages] == [3, 3, 1] and pages[-1].next is None
    assert [event.body for event in await alice.history.room(room, kind="say", limit=3).collect()] == lines[::-1]
    forward = await alice.history.room(room, kind=["say", "pose"], limit=2, after=0).collect()
    assert [event.body for event in forward] == lines  # oldest first from position 0
    positions = [event.stream_position for event in forward]
    assert positions == sorted(positions)
    for n in range(4):
        await alice.page(["bob"], f"page {n}")
    conversation = await bob.history.pages("alice", limit=3, after=0).collect()
    assert [event.body for event in conversation] == [f"page {n}" for n in range(4)]
    found = await alice.history.room(room, q="line 5").collect()
    assert [event.body for event in found] == ["line 5"]
    assert alice.violations == []  # every answer matched its schema in openapi.json


@pytest.mark.gen_test(timeout=30)
async def test_signatures_of_real_events_verify_and_a_tampered_one_does_not(served):
    alice = await served.player("Alice")
    bob = await served.player("Bob", verify=True)
    acks = [await alice.say(f"signed {n}") for n in range(3)]
    acks.append(await alice.page(["bob"], "a signed page"))
    events = await events_until(bob, lambda event: event.event_id == acks[-1].event_id)
    assert [event.event_id for event in events if event.sender == alice.user_id] == \
        [ack.event_id for ack in acks]
    assert bob.violations == []  # verify=True: each was checked before it was handed out
    assert bob.keys.fetches == {"test.localhost": 1}  # one key document for all of them
    history = await alice.history.room(alice.welcome.location, kind="say").collect()
    for event in history:
        verification = await alice.verify_event(event, require_intact=True)
        assert verification.key_id.startswith("ed25519:") and verification.content_intact
    tampered = copy.deepcopy(dict(history[0].raw))
    tampered["content"] = {**tampered["content"], "body": "I never said that"}
    assert (await alice.verify_event(tampered)).content_intact is False
    with pytest.raises(SignatureError) as altered:
        await alice.verify_event(tampered, require_intact=True)
    assert altered.value.code == "invalid_event_hash"
    tampered["sender"] = bob.user_id
    with pytest.raises(SignatureError) as forged:
        await alice.verify_event(tampered)
    assert forged.value.code == "invalid_event_signature"


@pytest.mark.gen_test(timeout=30)
async def test_a_ban_ends_the_session_without_reconnecting_even_with_the_password(served):
    root, alice = await served.player("Root"), await served.player("Alice")
    await served.set_role(root, "admin")
    await root.http.request("POST", f"/api/admin/users/{alice.session.user.id}/ban", {"reason": "Spam."})
    with pytest.raises(SessionEnded) as ended:
        await frame_where(alice, lambda frame: False)
    assert (ended.value.close_code, ended.value.code) == (4011, "banned")  # protocol.md 5.6, 7
    assert alice.reconnects == 0  # it had the password, and would have been refused account_banned
    await alice.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_logout_ends_the_session_without_reconnecting(served):
    alice = await served.player("Alice")
    await alice.http.logout()  # every socket of that token is closed with 4003
    with pytest.raises(SessionEnded) as ended:
        await frame_where(alice, lambda frame: False)
    assert (ended.value.close_code, ended.value.code) == (4003, "logged_out")
    with pytest.raises(SessionEnded):
        await alice.say("anyone?")
    assert alice.reconnects == 0
    await alice.close()


@pytest.mark.gen_test(timeout=30)
async def test_validate_reports_a_frame_its_schema_does_not_allow(served, tmp_path):
    """Held to a spec whose ack has no eventId, the server's acks are violations: the request
    raises SchemaViolation, and frames() raises it in the frame's place."""
    import json
    import shutil

    from tests.client.test_sdk_spec import ROOT
    from vibemuse_client import SchemaViolation

    shutil.copytree(ROOT / "spec", tmp_path / "spec")
    ack_schema = tmp_path / "spec" / "v1" / "schemas" / "frames" / "server" / "ack.json"
    document = json.loads(ack_schema.read_text())
    del document["properties"]["data"]["properties"]["eventId"]
    del document["properties"]["data"]["dependentRequired"]
    ack_schema.write_text(json.dumps(document))
    alice = await served.player("Alice", validate=True, spec_dir=str(tmp_path / "spec"))
    with pytest.raises(SchemaViolation) as refused:
        await alice.say("hello")
    assert refused.value.details["schema"] == "frames/server/ack.json"
    assert refused.value.details["path"] == "/data"
    with pytest.raises(SchemaViolation):
        await frame_where(alice, lambda frame: frame.type == "ack")
    assert len(alice.violations) == 1
    assert (await alice.who()).type == "who"  # the session goes on
