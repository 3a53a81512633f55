"""The permission matrix: every read and every act on something, against every kind of stranger.

One world (per engine): Alice stands in the Hall (built by Wizard), owns the
public channel Public and the private channel Secret, says a line in the
Hall, posts on Public and pages Bob; Bob (a member of Public) reports her
channel message. The strangers:

- ``other``: another user, standing in the Hall with Alice, on no channel;
- ``nonmember``: in Town Square, on no channel;
- ``banned``: banned from Public;
- ``muted``: a member of Public, muted there;
- ``loggedout``: a token revoked by logout;
- ``expired``: a token past its lifetime (the FakeClock moves, at the end).

``MATRIX`` has one row per (action, stranger) and the answer protocol.md
gives: ``(status, code)`` over HTTP, the ``error`` code (or the answering
frame's type) over the socket. A few rows are allowed on purpose (the room's
history for those in the room, a public channel's detail for anyone, the
channel's history and messages for a muted member): they mark the edge of
the rule. Every row runs against the same world; all mismatches are listed
together, and the whole matrix must store nothing.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import pytest

from tests.support.attack import acked, answer
from tests.support.client import refused_auth_frame, refused_handshake

STRANGERS = ("other", "nonmember", "banned", "muted", "loggedout", "expired")
OK = (200, None)


def q(value: str) -> str:
    return value.replace("#", "%23")


# -- actions ---------------------------------------------------------------------------------------
# Each takes the world (a dict) and the stranger's player; returns the outcome to compare.

Action = Callable[[dict, Any], Awaitable[Any]]


def http(method: str, path: Callable[[dict], str], body: dict | None = None,
         check: Callable[[dict, Any], bool] | None = None) -> Action:
    async def run(w: dict, who: Any) -> Any:
        status, decoded = await w["api"].call(method, path(w), body, token=who.token)
        if status >= 400:
            return status, decoded["error"]["code"]
        if check is not None and not check(w, decoded):
            return status, "LEAKED"
        return status, None
    return run


def frame(frame_type: str, data: Callable[[dict], dict]) -> Action:
    async def run(w: dict, who: Any) -> Any:
        reply = await answer(who.ws, frame_type, data(w))
        return reply["data"]["code"] if reply["type"] == "error" else reply["type"]
    return run


def no_alice_bob_page(w: dict, body: dict) -> bool:
    return w["page_msg"] not in [event["event_id"] for event in body["events"]]


HTTP_ACTIONS: dict[str, Action] = {
    "GET room": http("GET", lambda w: f"/api/rooms/{w['hall']}"),
    "GET room history": http("GET", lambda w: f"/api/communication/history/{w['hall']}"),
    "GET channel": http("GET", lambda w: f"/api/communication/channels/{q(w['public'])}"),
    "GET private channel": http("GET", lambda w: f"/api/communication/channels/{q(w['secret'])}"),
    "GET channel history": http("GET", lambda w: f"/api/communication/channels/{q(w['public'])}/history"),
    "GET private channel history": http("GET", lambda w: f"/api/communication/channels/{q(w['secret'])}/history"),
    "GET page history with alice": http("GET", lambda w: "/api/communication/pages/alice", check=no_alice_bob_page),
    "GET room message": http("GET", lambda w: f"/api/messages/{w['room_msg']}"),
    "GET channel message": http("GET", lambda w: f"/api/messages/{w['chan_msg']}"),
    "GET page": http("GET", lambda w: f"/api/messages/{w['page_msg']}"),
    "PUT channel message": http("PUT", lambda w: f"/api/messages/{w['chan_msg']}", {"text": "defaced"}),
    "DELETE channel message": http("DELETE", lambda w: f"/api/messages/{w['chan_msg']}"),
    "DELETE room message": http("DELETE", lambda w: f"/api/messages/{w['room_msg']}"),
    "DELETE page": http("DELETE", lambda w: f"/api/messages/{w['page_msg']}"),
    "POST report of page": http("POST", lambda w: f"/api/messages/{w['page_msg']}/report", {"reason": "nosy"}),
    "GET reports": http("GET", lambda w: "/api/reports?status=all"),
    "POST resolve report": http("POST", lambda w: f"/api/reports/{w['report']}/resolve", {"resolution": "meh"}),
    "GET admin spam": http("GET", lambda w: "/api/admin/spam"),
    "POST admin unmute": http("POST", lambda w: f"/api/admin/spam/{w['alice']}/unmute"),
    "GET admin federation": http("GET", lambda w: "/api/admin/federation"),
    "DELETE channel membership": http("DELETE", lambda w: f"/api/communication/channels/{q(w['secret'])}"),
}

FRAME_ACTIONS: dict[str, Action] = {
    "channel (speak)": frame("channel", lambda w: {"channelId": w["public"], "text": "let me in"}),
    "join_channel public": frame("join_channel", lambda w: {"channelId": w["public"]}),
    "join_channel private": frame("join_channel", lambda w: {"channelId": w["secret"]}),
    "channel_who private": frame("channel_who", lambda w: {"channelId": w["secret"]}),
    "channel_moderate kick": frame("channel_moderate", lambda w: {"channelId": w["public"], "action": "kick",
                                                                  "user": "bob"}),
    "channel_moderate private": frame("channel_moderate", lambda w: {"channelId": w["secret"], "action": "invite",
                                                                     "user": "carol"}),
    "channel_update topic": frame("channel_update", lambda w: {"channelId": w["public"], "topic": "pwned"}),
    "get_message channel": frame("get_message", lambda w: {"eventId": w["chan_msg"]}),
    "get_message page": frame("get_message", lambda w: {"eventId": w["page_msg"]}),
    "edit_message channel": frame("edit_message", lambda w: {"eventId": w["chan_msg"], "text": "defaced"}),
    "delete_message room": frame("delete_message", lambda w: {"eventId": w["room_msg"]}),
    "report_message page": frame("report_message", lambda w: {"eventId": w["page_msg"], "reason": "nosy"}),
    "say in the hall": frame("say", lambda w: {"text": "hello?", "roomId": w["hall"]}),
}

# -- the matrix ----------------------------------------------------------------------------------------

_OUTSIDER_HTTP = {  # someone who is neither in the Hall nor on any channel
    "GET room": OK,
    "GET room history": (403, "not_in_room"),
    "GET channel": OK,
    "GET private channel": (404, "unknown_channel"),
    "GET channel history": (403, "not_a_member"),
    "GET private channel history": (404, "unknown_channel"),
    "GET page history with alice": OK,
    "GET room message": (404, "unknown_message"),
    "GET channel message": (404, "unknown_message"),
    "GET page": (404, "unknown_message"),
    "PUT channel message": (404, "unknown_message"),
    "DELETE channel message": (404, "unknown_message"),
    "DELETE room message": (404, "unknown_message"),
    "DELETE page": (404, "unknown_message"),
    "POST report of page": (404, "unknown_message"),
    "GET reports": (403, "forbidden"),
    "POST resolve report": (403, "forbidden"),
    "GET admin spam": (403, "forbidden"),
    "POST admin unmute": (403, "forbidden"),
    "GET admin federation": (403, "forbidden"),
    "DELETE channel membership": (404, "unknown_channel"),
}
_OUTSIDER_FRAMES = {
    "channel (speak)": "not_a_member",
    "join_channel private": "unknown_channel",
    "channel_who private": "unknown_channel",
    "channel_moderate kick": "forbidden",
    "channel_moderate private": "unknown_channel",
    "channel_update topic": "forbidden",
    "get_message channel": "unknown_message",
    "get_message page": "unknown_message",
    "edit_message channel": "unknown_message",
    "delete_message room": "unknown_message",
    "report_message page": "unknown_message",
    "say in the hall": "not_in_room",
}

_OTHER_FRAMES = {action: code for action, code in _OUTSIDER_FRAMES.items() if action != "say in the hall"}

MATRIX: dict[str, dict[str, Any]] = {
    "other": {
        **_OUTSIDER_HTTP, **_OTHER_FRAMES,
        # standing in the Hall: its history and messages are theirs to read, not to delete
        "GET room history": OK, "GET room message": OK, "DELETE room message": (403, "forbidden"),
        "delete_message room": "forbidden",
    },
    "nonmember": {**_OUTSIDER_HTTP, **_OUTSIDER_FRAMES},
    "banned": {**_OUTSIDER_HTTP, **_OUTSIDER_FRAMES, "join_channel public": "banned"},
    "muted": {
        **_OUTSIDER_HTTP, **_OUTSIDER_FRAMES,
        # a member: reads the channel, may not speak, edit others' messages nor moderate
        "GET channel history": OK, "GET channel message": OK, "get_message channel": "message_detail",
        "channel (speak)": "muted", "PUT channel message": (403, "forbidden"),
        "DELETE channel message": (403, "forbidden"), "edit_message channel": "forbidden",
    },
    "loggedout": {action: (401, "invalid_token") for action in HTTP_ACTIONS},
    "expired": {action: (401, "token_expired") for action in HTTP_ACTIONS},
}


def rows() -> list[tuple[str, str]]:
    return [(action, stranger) for stranger in STRANGERS for action in MATRIX[stranger]]


# -- the world -----------------------------------------------------------------------------------------


async def build(world, api) -> tuple[dict, dict]:
    wizard = await world.player("Wizard", role="builder")
    await world.player("Root", role="admin")
    hall = await world.room("Hall", wizard)
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    await world.player("Carol")
    strangers = {name: await world.player(name.capitalize()) for name in ("other", "nonmember", "banned", "muted")}
    strangers["loggedout"] = await world.offline_player("Lou")
    strangers["expired"] = await world.offline_player("Eve")
    for player in (alice, strangers["other"]):
        await acked(player.ws, "join_room", {"roomId": hall})
    public = (await api.call("POST", "/api/communication/channels", {"name": "Public"}, token=alice.token))[1]
    secret = (await api.call("POST", "/api/communication/channels", {"name": "Secret", "visibility": "private"},
                             token=alice.token))[1]
    public_id, secret_id = public["channel"]["id"], secret["channel"]["id"]
    for player in (bob, strangers["banned"], strangers["muted"]):
        await acked(player.ws, "join_channel", {"channelId": public_id})
    await acked(alice.ws, "channel_moderate", {"channelId": public_id, "action": "ban", "user": "banned"})
    await acked(alice.ws, "channel_moderate", {"channelId": public_id, "action": "mute", "user": "muted"})
    room_msg = (await acked(alice.ws, "say", {"text": "Hall talk"}))["data"]["eventId"]
    chan_msg = (await acked(alice.ws, "channel", {"channelId": public_id, "text": "Channel talk"}))["data"]["eventId"]
    page_msg = (await acked(alice.ws, "page", {"to": ["bob"], "text": "Private talk"}))["data"]["eventId"]
    status, report = await api.call("POST", f"/api/messages/{chan_msg}/report", {"reason": "test"}, token=bob.token)
    assert status == 201
    status, _ = await api.call("POST", "/api/auth/logout", token=strangers["loggedout"].token)
    assert status == 204
    w = {"api": api, "hall": hall, "public": public_id, "secret": secret_id, "room_msg": room_msg,
         "chan_msg": chan_msg, "page_msg": page_msg, "report": report["id"], "alice": alice.user_id}
    return w, strangers


# -- the test --------------------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=60)
async def test_every_stranger_is_refused_with_the_right_code(world, api, ws_url, spec, clock, server):
    w, strangers = await build(world, api)
    stored = world.event_count()
    mismatches: list[str] = []
    checked = 0

    async def run_row(action: str, stranger: str) -> None:
        nonlocal checked
        do = HTTP_ACTIONS.get(action) or FRAME_ACTIONS[action]
        got = await do(w, strangers[stranger])
        checked += 1
        if got != MATRIX[stranger][action]:
            mismatches.append(f"{action:32} {stranger:10} expected {MATRIX[stranger][action]!r}, got {got!r}")

    for action, stranger in rows():
        if stranger != "expired":
            await run_row(action, stranger)
    # A revoked token opens no socket either, by header or by auth frame.
    status, body = await refused_handshake(ws_url, spec, token=strangers["loggedout"].token)
    assert (status, body["error"]["code"]) == (401, "invalid_token")
    code, error = await refused_auth_frame(ws_url, spec, strangers["loggedout"].token)
    assert (code, error["code"]) == (4002, "invalid_token")

    clock.advance(server.context.config.token_lifetime_seconds + 1)
    for action, stranger in rows():
        if stranger == "expired":
            await run_row(action, stranger)
    status, body = await refused_handshake(ws_url, spec, token=strangers["expired"].token)
    assert (status, body["error"]["code"]) == (401, "token_expired")
    code, error = await refused_auth_frame(ws_url, spec, strangers["expired"].token)
    assert (code, error["code"]) == (4002, "token_expired")

    assert checked == len(rows()) and checked > 150
    assert not mismatches, f"{len(mismatches)} of {checked} rows differ:\n" + "\n".join(mismatches)
    assert world.event_count() == stored  # the whole matrix stored nothing
