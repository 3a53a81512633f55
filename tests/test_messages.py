"""Message management over HTTP and WebSocket: get, edit, delete, report, and who may."""

from __future__ import annotations

import pytest

from tests.support.client import acked as ack_frame
from tests.support.client import refused
from vibemuse.protocol.events import verify_event


async def acked(socket, frame_type, data):
    return (await ack_frame(socket, frame_type, data))["data"]


def path(event_id: str) -> str:
    return "/api/messages/" + event_id


@pytest.mark.gen_test(timeout=20)
async def test_edit_reaches_everyone_and_history_shows_the_latest_text(world, server):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    said = await acked(alice.ws, "say", {"text": "Helo, world"})
    await bob.ws.receive_type("message")
    edit = await acked(alice.ws, "edit_message", {"eventId": said["eventId"], "text": "Hello, world"})
    edited = await bob.ws.receive_type("message_edited")
    event = edited["data"]["event"]
    assert event["type"] == "vm.edit" and event["event_id"] == edit["eventId"]
    assert event["content"]["relates_to"] == said["eventId"]
    assert event["content"]["new_content"]["rendered"] == 'Alice says, "Hello, world"'
    assert event["content"]["new_content"]["rendered_self"] == 'You say, "Hello, world"'
    keys = {server.context.server_name: server.context.keyring.verify_keys()}
    assert not verify_event(event, keys).redacted_only  # signed like every event
    status, got = await world.api.call("GET", path(said["eventId"]), token=bob.token, schema="message")
    assert status == 200 and got["deleted"] is False
    assert got["latestEdit"]["content"]["new_content"]["body"] == "Hello, world"
    assert got["event"]["unsigned"]["replaced_by"] == edit["eventId"]
    # the HTTP edit, with an idempotency key: once
    headers = {"Idempotency-Key": "fix-2"}
    status, first = await world.api.call("PUT", path(said["eventId"]), {"text": "Hello, worlds"}, token=alice.token,
                                         headers=headers, schema="receipt")
    status, again = await world.api.call("PUT", path(said["eventId"]), {"text": "Hello, worlds"}, token=alice.token,
                                         headers=headers, schema="receipt")
    assert status == 200 and first == again


@pytest.mark.gen_test(timeout=20)
async def test_edit_refusals(world, clock, server):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    said = await acked(alice.ws, "say", {"text": "mine"})
    before = world.event_count()
    assert (await refused(bob.ws, "edit_message", {"eventId": said["eventId"], "text": "yours"}))["code"] == "forbidden"
    assert (await refused(alice.ws, "edit_message", {"eventId": said["eventId"], "text": "  "}))["code"] == "empty_text"
    assert (await refused(alice.ws, "edit_message", {"eventId": "$" + "A" * 43, "text": "x"}))["code"] == \
        "unknown_message"
    clock.advance(server.context.config.edit_window_seconds + 1)
    error = await refused(alice.ws, "edit_message", {"eventId": said["eventId"], "text": "too late"})
    assert error["code"] == "edit_window_passed"
    assert world.event_count() == before


@pytest.mark.gen_test(timeout=20)
async def test_delete_removes_the_content_everywhere_and_the_signature_still_verifies(world, server):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    said = await acked(alice.ws, "say", {"text": "my secret password is hunter2"})
    await bob.ws.receive_type("message")
    await acked(alice.ws, "edit_message", {"eventId": said["eventId"], "text": "my secret password is hunter3"})
    gone = await acked(alice.ws, "delete_message", {"eventId": said["eventId"], "reason": "oops"})
    deleted = await bob.ws.receive_type("message_deleted")
    assert deleted["data"]["event"]["content"] == {"redacts": said["eventId"], "reason": "oops"}
    assert deleted["data"]["event"]["event_id"] == gone["eventId"]
    status, got = await world.api.call("GET", path(said["eventId"]), token=bob.token, schema="message")
    assert got["deleted"] is True and got["event"]["content"] == {"kind": "say"} and "latestEdit" not in got
    keys = {server.context.server_name: server.context.keyring.verify_keys()}
    verified = verify_event(got["event"], keys)  # still verifies: only the redacted form is left
    assert verified.redacted_only and verified.event_id == said["eventId"]
    with server.context.storage.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT event_json, body FROM events").all()
    assert not any("hunter" in (row.event_json + (row.body or "")) for row in rows)  # gone from storage
    assert (await refused(alice.ws, "edit_message", {"eventId": said["eventId"], "text": "x"}))["code"] == \
        "message_deleted"
    assert (await refused(alice.ws, "delete_message", {"eventId": said["eventId"]}))["code"] == "message_deleted"


@pytest.mark.gen_test(timeout=20)
async def test_who_may_delete(world):
    wizard = await world.player("Wizard", role="builder")
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    admin = await world.player("Root", role="admin")
    library = await world.room("Library", wizard)
    for player in (alice, bob):
        await acked(player.ws, "join_room", {"roomId": library})
    said = await acked(alice.ws, "say", {"text": "spam spam"})
    assert (await refused(bob.ws, "delete_message", {"eventId": said["eventId"]}))["code"] == "forbidden"
    await acked(wizard.ws, "join_room", {"roomId": library})
    await acked(wizard.ws, "delete_message", {"eventId": said["eventId"]})  # the room's creator
    status, _ = await world.api.call("POST", "/api/communication/channels", {"name": "Public"}, token=bob.token)
    await acked(alice.ws, "join_channel", {"channelId": "public"})
    line = await acked(alice.ws, "channel", {"channelId": "public", "text": "rude"})
    status, body = await world.api.call("DELETE", path(line["eventId"]), token=bob.token, schema="receipt")
    assert status == 200  # the channel's owner
    page = await acked(alice.ws, "page", {"to": ["bob"], "text": "psst"})
    status, body = await world.api.call("DELETE", path(page["eventId"]), token=admin.token, schema="receipt")
    assert status == 200  # an admin


@pytest.mark.gen_test(timeout=20)
async def test_strangers_cannot_see_other_peoples_messages(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    mallory = await world.player("Mallory")
    page = await acked(alice.ws, "page", {"to": ["bob"], "text": "between us"})
    status, _ = await world.api.call("GET", path(page["eventId"]), token=bob.token)
    assert status == 200
    for method, body in (("GET", None), ("PUT", {"text": "x"}), ("DELETE", None)):
        status, got = await world.api.call(method, path(page["eventId"]), body, token=mallory.token)
        assert (status, got["error"]["code"]) == (404, "unknown_message")
    status, got = await world.api.call("POST", path(page["eventId"]) + "/report", {"reason": "nosy"},
                                       token=mallory.token)
    assert (status, got["error"]["code"]) == (404, "unknown_message")
    message_id = await mallory.ws.send_frame("get_message", {"eventId": page["eventId"]})
    error = await mallory.ws.receive_type("error")
    assert (error["data"]["code"], error["data"]["inReplyTo"]) == ("unknown_message", message_id)
    message_id = await bob.ws.send_frame("get_message", {"eventId": page["eventId"]})
    detail = await bob.ws.receive_type("message_detail")
    assert detail["data"]["event"]["content"]["body"] == "between us" and detail["data"]["inReplyTo"] == message_id


@pytest.mark.gen_test(timeout=20)
async def test_reports_are_stored_once_and_resolved_by_moderators(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    carol = await world.player("Carol")
    admin = await world.player("Root", role="admin")
    status, _ = await world.api.call("POST", "/api/communication/channels", {"name": "Public"}, token=alice.token)
    for player in (bob, carol):
        await acked(player.ws, "join_channel", {"channelId": "public"})
    line = await acked(bob.ws, "channel", {"channelId": "public", "text": "something nasty"})
    ack = await acked(carol.ws, "report_message", {"eventId": line["eventId"], "reason": "insulting"})
    assert ack["reportId"] >= 1
    error = await refused(carol.ws, "report_message", {"eventId": line["eventId"], "reason": "again"})
    assert error["code"] == "already_reported"
    said = await acked(bob.ws, "say", {"text": "room spam"})
    status, created = await world.api.call("POST", path(said["eventId"]) + "/report", {"reason": "spam"},
                                           token=carol.token, schema="report-created")
    assert status == 201
    # the channel's owner sees only the reports about her channel; an admin sees both
    status, mine = await world.api.call("GET", "/api/reports", token=alice.token, schema="report-list")
    assert [r["eventId"] for r in mine["reports"]] == [line["eventId"]]
    status, every = await world.api.call("GET", "/api/reports", token=admin.token, schema="report-list")
    assert {r["eventId"] for r in every["reports"]} == {line["eventId"], said["eventId"]}
    status, body = await world.api.call("GET", "/api/reports", token=carol.token)
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, body = await world.api.call("POST", f"/api/reports/{created['id']}/resolve", {"resolution": "x"},
                                        token=alice.token)
    assert (status, body["error"]["code"]) == (404, "unknown_report")  # not her channel's
    report_id = mine["reports"][0]["id"]
    status, done = await world.api.call("POST", f"/api/reports/{report_id}/resolve",
                                        {"resolution": "Warned Bob."}, token=alice.token, schema="report")
    assert status == 200 and done["status"] == "resolved" and done["resolvedBy"] == alice.user_id
    status, still_open = await world.api.call("GET", "/api/reports", token=admin.token)
    assert [r["eventId"] for r in still_open["reports"]] == [said["eventId"]]


@pytest.mark.gen_test(timeout=20)
async def test_history_shows_the_latest_text_marked_edited(world):
    alice = await world.player("Alice")
    said = await acked(alice.ws, "say", {"text": "teh cat"})
    edit = await acked(alice.ws, "edit_message", {"eventId": said["eventId"], "text": "the cat"})
    room = alice.ws.welcome["data"]["location"]
    status, page = await world.api.call("GET", f"/api/communication/history/{room}", token=alice.token,
                                        schema="event-page")
    assert status == 200
    original = next(e for e in page["events"] if e["event_id"] == said["eventId"])
    assert original["unsigned"]["replaced_by"] == edit["eventId"]
    assert original["unsigned"]["edited"]["content"]["body"] == "the cat"
    assert any(e["event_id"] == edit["eventId"] for e in page["events"])
    # Search (section 19.3) finds the message by its latest text, once, and no longer by the old.
    for q, found in (("the", [said["eventId"]]), ("teh", []), ("cat", [said["eventId"]])):
        status, searched = await world.api.call("GET", f"/api/communication/history/{room}?q={q}",
                                                token=alice.token, schema="event-page")
        assert status == 200 and [e["event_id"] for e in searched["events"]] == found, q
