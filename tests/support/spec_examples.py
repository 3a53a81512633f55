"""Generated spec files: errors.json and the examples of room communication.

Run ``python -m tests.support.spec_examples`` from the repository root to
rewrite them; ``tests/test_spec.py`` fails when a file differs by one byte
from what this module makes, so edit the values here, never the files.

The examples that hold or name events are made by the reference code: the
content by ``vibemuse.protocol.content``, the event by
``vibemuse.protocol.events.build_event``, signed with the fixed spec example
key (seed = SHA-256 of ``vibemuse spec example key 2``, version ``2_Spec``,
server ``muse.example.org``; its public key is in
``examples/http/server-keys.json``). Never use that key for anything real.
Frame envelopes come from ``ServerFrame.to_wire`` and presence entries from
``Presence.to_wire``, so they have the shapes the server sends.

The story the examples tell (2026-01-01, UTC): Mira posed in the Library;
Alice says hello in Town Square, then walks to the Library (a departure and
an arrival event, one transaction) and gets the Library's roster; the admin
Wizard announces a restart with @wall.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from vibemuse.config import Config
from vibemuse.protocol import content
from vibemuse.protocol.errors import CLOSE_CODE_DESCRIPTIONS, ERROR_CATALOGUE, ERROR_DETAILS, CloseCode, ErrorSpec
from vibemuse.protocol.discovery import well_known_body
from vibemuse.protocol.channel_chain import GENESIS, chain_of, make_stamp
from vibemuse.protocol.events import build_event
from vibemuse.protocol.frames import ServerFrame
from vibemuse.protocol.federation_auth import request_signed_bytes, sign_request
from vibemuse.protocol.signing import SigningKey, generate_signing_key, verify_key_base64
from vibemuse.realtime.presence import AWAY, IDLE, ONLINE, Presence

V1 = Path(__file__).resolve().parents[2] / "spec" / "v1"
EXAMPLES = V1 / "examples"

SERVER = "muse.example.org"
KEY_VERSION = "2_Spec"
KEY_SEED_LABEL = b"vibemuse spec example key 2"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00.000Z
MAX_TEXT_LENGTH = Config().max_text_length
TYPING_TIMEOUT_MS = int(Config().typing_timeout_seconds * 1000)

TOWN_SQUARE = f"!Xq3fK9aB2LmN7pQr:{SERVER}"  # the default room
LIBRARY = f"!Hb7TzR2wQe5YuI8o:{SERVER}"
LIBRARY_DESCRIPTION = "Tall shelves and a reading lamp.\nA ladder leans against the west wall."

ALICE = {"id": f"@alice:{SERVER}", "username": "Alice", "role": "player"}
MIRA = {"id": f"@mira:{SERVER}", "username": "Mira", "role": "builder"}
WIZARD = {"id": f"@wizard:{SERVER}", "username": "Wizard", "role": "admin"}

SAY_TEXT = "Hello, %xh%xrtavern%xn!"
WALL_TEXT = "The server restarts at %xh06:00 UTC%xn.%rSave your work!"

# Client messageIds: a random per-session prefix and a counter (see protocol.md 6.1).
SAY_ID, JOIN_ID, WHO_ID, PAGE_ID = "k4Jx9.7", "k4Jx9.8", "k4Jx9.9", "k4Jx9.13"


def example_key() -> SigningKey:
    return generate_signing_key(KEY_VERSION, hashlib.sha256(KEY_SEED_LABEL).digest())


def _frame_id(n: int) -> str:
    return f"f3c9a01be42.{n}"


def _event(event_type: str, sender: dict, body: dict, ts: int, position: int, **scope: str) -> dict[str, Any]:
    event = build_event(
        event_type=event_type, sender=sender["id"], origin=SERVER, origin_server_ts=ts,
        content=body, signing_key=example_key(), **scope,
    )
    event["unsigned"] = {"stream_position": position}
    return event


def _server(frame_type: str, data: dict, n: int, ts: int, *, from_user: str = SERVER, **routing: str) -> dict:
    return ServerFrame(type=frame_type, data=data, message_id=_frame_id(n), timestamp_ms=ts,
                       from_user=from_user, **routing).to_wire()


def _client(frame_type: str, message_id: str, data: dict) -> dict:
    return {"type": frame_type, "messageId": message_id, "data": data}


def _presence(user: dict, connected: int, last_input: int, status: str = ONLINE, away: str | None = None):
    return Presence(user["id"], user["username"], connected, last_input, status, away)


def make_examples() -> dict[str, Any]:
    """Every generated example, by its path under spec/v1/examples/."""
    # -- events -------------------------------------------------------------
    pose_ts, say_ts, move_ts, wall_ts = T0 - 1_500_000, T0 + 61_204, T0 + 95_310, T0 + 300_000
    mira_pose = _event("vm.room.message", MIRA,
                       content.room_message("pose", "Mira", "straightens a row of books.", MAX_TEXT_LENGTH),
                       pose_ts, 40, room_id=LIBRARY)
    alice_say = _event("vm.room.message", ALICE,
                       content.room_message("say", "Alice", SAY_TEXT, MAX_TEXT_LENGTH),
                       say_ts, 43, room_id=TOWN_SQUARE)
    departure = _event("vm.room.member", ALICE, content.membership("leave", "Alice"), move_ts, 44,
                       room_id=TOWN_SQUARE)
    # origin_server_ts strictly increases per server: the arrival is 1 ms after the departure.
    arrival = _event("vm.room.member", ALICE, content.membership("join", "Alice"), move_ts + 1, 45,
                     room_id=LIBRARY)
    wall = _event("vm.system", WIZARD, content.wall("Wizard", WALL_TEXT, MAX_TEXT_LENGTH), wall_ts, 46)
    # Alice pages Mira, who is offline; Mira connects later, and Alice gets the receipt.
    page_ts, receipt_ts = T0 + 500_000, T0 + 900_000
    alice_page = _event("vm.page", ALICE, content.page("Alice", ["Mira"], "Coffee later?", MAX_TEXT_LENGTH),
                        page_ts, 47, recipients=[MIRA["id"]])
    # Mira made the Public channel earlier; Alice joined it and says hello there.
    PUBLIC = f"#public:{SERVER}"
    chan_ts = T0 + 1_000_000
    public = {"id": PUBLIC, "name": "Public", "description": "Chat for everyone.", "topic": "Game night at 8",
              "visibility": "public", "owner": MIRA["id"], "createdAt": "2025-12-31T00:00:00.000Z",
              "historyVisibility": "shared", "retentionDays": None}
    alice_joins = _event("vm.channel.member", ALICE, {
        "membership": "join", "target": ALICE["id"], "target_name": "Alice", "speaker": "Alice",
        "rendered": content.channel_notice("Public", "Alice has joined this channel.")}, chan_ts, 49, channel_id=PUBLIC)
    chan_say = _event("vm.channel.message", ALICE, content.channel_message("Public", "Alice", "Hi all!",
                                                                          MAX_TEXT_LENGTH), chan_ts + 5_000, 50,
                      channel_id=PUBLIC)
    # Alice fixes a typo in her channel line; a moderator deletes another line.
    chan_edit = _event("vm.edit", ALICE, {"relates_to": chan_say["event_id"], "new_content": content.channel_message(
        "Public", "Alice", "Hi, all!", MAX_TEXT_LENGTH)}, chan_ts + 20_000, 51, channel_id=PUBLIC)
    chan_redaction = _event("vm.redaction", MIRA, {"redacts": chan_say["event_id"], "reason": "off topic"},
                            chan_ts + 60_000, 52, channel_id=PUBLIC)
    receipt = _event("vm.receipt", MIRA, {"kind": "delivered", "relates_to": alice_page["event_id"],
                                          "recipient": MIRA["id"]}, receipt_ts, 48, recipients=[ALICE["id"]])

    # -- presence -----------------------------------------------------------
    alice_on, mira_on, wizard_on = T0 - 3_600_000, T0 - 7_200_000, T0 - 600_000
    alice_now = _presence(ALICE, alice_on, move_ts)
    mira_idle = _presence(MIRA, mira_on, pose_ts, IDLE)
    who_ts = T0 + 240_512
    who_users = [  # longest-connected first
        mira_idle.to_wire(who_ts),
        _presence(ALICE, alice_on, who_ts).to_wire(who_ts),
        _presence(WIZARD, wizard_on, T0 - 20_000).to_wire(who_ts),
    ]
    away_ts = T0 + 420_007

    return {
        # -- client frames ---------------------------------------------------
        "frames/client/say.json": _client("say", SAY_ID, {"text": SAY_TEXT, "roomId": TOWN_SQUARE}),
        "frames/client/pose.json": _client("pose", "k4Jx9.5", {"text": "waves to everyone.", "roomId": TOWN_SQUARE}),
        "frames/client/ooc.json": _client("ooc", "k4Jx9.6", {"text": "brb, %cgtea%cn", "style": "say"}),
        "frames/client/emit.json": _client("emit", "r2Tq0.3", {"text": "A cold wind blows through the square."}),
        "frames/client/command.json": _client("command", "k4Jx9.4", {"line": ":waves to everyone.", "roomId": TOWN_SQUARE}),
        "frames/client/join_room.json": _client("join_room", JOIN_ID, {"roomId": LIBRARY}),
        "frames/client/leave_room.json": _client("leave_room", "k4Jx9.12", {"roomId": LIBRARY}),
        "frames/client/typing.json": _client("typing", "k4Jx9.10", {"typing": True, "roomId": LIBRARY}),
        "frames/client/who.json": _client("who", WHO_ID, {}),
        "frames/client/set_presence.json": _client("set_presence", "k4Jx9.11", {"status": "away", "message": "Making tea."}),
        "frames/client/wall.json": _client("wall", "z8Wd1.2", {"text": WALL_TEXT}),
        "frames/client/page.json": _client("page", PAGE_ID, {"to": ["Mira"], "text": "Coffee later?"}),
        "frames/client/set_haven.json": _client("set_haven", "m1Pq7.2", {"haven": True, "message": "Writing."}),
        "frames/client/join_channel.json": _client("join_channel", "k4Jx9.16", {"channelId": "Public", "alias": "pub"}),
        "frames/client/leave_channel.json": _client("leave_channel", "k4Jx9.20", {"alias": "pub"}),
        "frames/client/channel.json": _client("channel", "k4Jx9.17", {"alias": "pub", "text": "Hi all!"}),
        "frames/client/channel_moderate.json": _client("channel_moderate", "m1Pq7.3", {
            "channelId": PUBLIC, "action": "mute", "user": "@spammer:muse.example.org", "durationSeconds": 600,
            "reason": "flooding"}),
        "frames/client/channel_update.json": _client("channel_update", "m1Pq7.4", {"channelId": PUBLIC,
                                                                                   "topic": "Game night at 8"}),
        "frames/client/channel_who.json": _client("channel_who", "k4Jx9.18", {"channelId": PUBLIC}),
        "frames/client/channel_list.json": _client("channel_list", "k4Jx9.19", {}),
        "frames/client/get_message.json": _client("get_message", "k4Jx9.21", {"eventId": chan_say["event_id"]}),
        "frames/client/edit_message.json": _client("edit_message", "k4Jx9.22", {"eventId": chan_say["event_id"],
                                                                                 "text": "Hi, all!"}),
        "frames/client/delete_message.json": _client("delete_message", "m1Pq7.5", {"eventId": chan_say["event_id"],
                                                                                   "reason": "off topic"}),
        "frames/client/report_message.json": _client("report_message", "k4Jx9.23", {"eventId": chan_say["event_id"],
                                                                                     "reason": "spam"}),
        "frames/client/block.json": _client("block", "k4Jx9.14", {"user": "@spammer:muse.example.org",
                                                                   "blocked": True}),
        # -- server frames ---------------------------------------------------
        "frames/server/message.json": _server("message", {"event": alice_say}, 21, say_ts + 3,
                                              from_user=ALICE["id"], room_id=TOWN_SQUARE),
        "frames/server/ack.json": _server("ack", {"inReplyTo": SAY_ID, "duplicate": False,
                                                  "eventId": alice_say["event_id"], "streamPosition": 43},
                                          22, say_ts + 3, to_user=ALICE["id"]),
        "frames/server/user_left.json": _server("user_left", {"event": departure, "user": ALICE}, 23, move_ts + 4,
                                                from_user=ALICE["id"], room_id=TOWN_SQUARE),
        "frames/server/user_joined.json": _server("user_joined", {"event": arrival, "user": ALICE}, 24, move_ts + 4,
                                                  from_user=ALICE["id"], room_id=LIBRARY),
        "frames/server/roster.json": _server(
            "roster",
            {
                "room": {"id": LIBRARY, "name": "The Library", "description": LIBRARY_DESCRIPTION},
                "members": [alice_now.to_wire(move_ts + 6), mira_idle.to_wire(move_ts + 6)],
                "memberCount": 2,
                "recent": [mira_pose, arrival],
            },
            25, move_ts + 6, to_user=ALICE["id"], room_id=LIBRARY,
        ),
        "frames/server/typing.json": _server("typing", {"roomId": LIBRARY, "userId": ALICE["id"], "typing": True,
                                                        "timeoutMs": TYPING_TIMEOUT_MS},
                                             26, T0 + 180_020, from_user=ALICE["id"], room_id=LIBRARY),
        "frames/server/who.json": _server("who", {"inReplyTo": WHO_ID, "users": who_users, "total": 3}, 27, who_ts,
                                          to_user=ALICE["id"]),
        "frames/server/system_message.json": _server("system_message", {"event": wall}, 28, wall_ts + 2,
                                                     from_user=WIZARD["id"]),
        "frames/server/presence.json": _server(
            "presence", _presence(ALICE, alice_on, away_ts, AWAY, "Making tea.").to_wire(away_ts), 29, away_ts,
            from_user=ALICE["id"]),
        "frames/server/page_receipt.json": _server("page_receipt", {"event": receipt}, 30, receipt_ts + 2,
                                                   from_user=MIRA["id"]),
        "frames/server/notice.json": _server("notice", {"inReplyTo": "k4Jx9.15", "text": "You last paged Mira."},
                                             31, receipt_ts + 9, to_user=ALICE["id"]),
        "frames/server/channel_notice.json": _server("channel_notice", {"event": alice_joins}, 32, chan_ts + 2,
                                                     from_user=ALICE["id"], channel_id=PUBLIC),
        "frames/server/channel_message.json": _server("channel_message", {"event": chan_say}, 33, chan_ts + 5_002,
                                                      from_user=ALICE["id"], channel_id=PUBLIC),
        "frames/server/channel_who.json": _server("channel_who", {"inReplyTo": "k4Jx9.18", "channelId": PUBLIC, "members": [
            {"userId": MIRA["id"], "role": "owner", "online": True, "muted": False},
            {"userId": ALICE["id"], "role": "member", "online": True, "muted": False}]}, 34, chan_ts + 9_000,
            to_user=ALICE["id"]),
        "frames/server/channel_list.json": _server("channel_list", {"inReplyTo": "k4Jx9.19", "channels": [
            {"channelId": PUBLIC, "name": "Public", "role": "member", "alias": "pub"}]}, 35, chan_ts + 9_500,
            to_user=ALICE["id"]),
        "frames/server/message_detail.json": _server("message_detail", {
            "inReplyTo": "k4Jx9.21", "event": dict(chan_say, unsigned={"stream_position": 50,
                                                                       "replaced_by": chan_edit["event_id"]}),
            "deleted": False, "latestEdit": chan_edit}, 36, chan_ts + 30_000, to_user=ALICE["id"]),
        "frames/server/message_edited.json": _server("message_edited", {"event": chan_edit}, 37, chan_ts + 20_002,
                                                     from_user=ALICE["id"], channel_id=PUBLIC),
        "frames/server/message_deleted.json": _server("message_deleted", {"event": chan_redaction}, 38,
                                                      chan_ts + 60_002, from_user=MIRA["id"], channel_id=PUBLIC),
        "frames/server/resumed.json": _server("resumed", {"since": 41, "upto": 43, "count": 1}, 40, T0 + 600_004,
                                              to_user=f"@bob:{SERVER}"),
        "frames/server/resume_gap.json": _server("resume_gap", {"since": 12, "reason": "too_many",
                                                                "latestPosition": 5012}, 41, T0 + 600_004,
                                                 to_user=f"@bob:{SERVER}"),
        # -- HTTP bodies -----------------------------------------------------
        "http/event-page.json": {"events": [alice_page], "next": None},
        "http/message.json": {"event": dict(chan_say, unsigned={"stream_position": 50,
                                                                "replaced_by": chan_edit["event_id"]}),
                              "deleted": False, "latestEdit": chan_edit},
        "http/message-edit-request.json": {"text": "Hi, all!"},
        "http/password-change-request.json": {"currentPassword": "correct horse battery",
                                              "newPassword": "staple battery horse"},
        "http/spam-offenders.json": {"offenders": [{"userId": f"@spammer:{SERVER}", "strikes": 3, "mutes": 2,
                                                    "lastReason": "repeat", "mutedForMs": 97_000}]},
        "http/spam-unmute.json": {"userId": f"@spammer:{SERVER}", "lifted": True},
        "http/health.json": {"status": "ok", "checks": {"database": "ok"}},
        "http/sessions.json": {"users": [
            {**ALICE, "location": LIBRARY, "status": "online", "idleMs": 4210, "sockets": [
                {"connectionId": "c7d41e09a3f.12", "transport": "websocket", "address": "203.0.113.7",
                 "process": "app1.example.org/3f9a0c1e"},
                {"connectionId": "a90be2c4d17.3", "transport": "telnet", "address": "203.0.113.7",
                 "process": "app2.example.org/b04e77d2"}]},
            {**MIRA, "location": TOWN_SQUARE, "status": "idle", "idleMs": 912_034, "sockets": [
                {"connectionId": "c7d41e09a3f.4", "transport": "websocket", "address": "198.51.100.23",
                 "process": "app1.example.org/3f9a0c1e"}]}], "total": 2},
        "http/kick-request.json": {"reason": "Take a break and come back calmer."},
        "http/kick-result.json": {"userId": f"@spammer:{SERVER}", "closed": 2},
        "http/role-request.json": {"role": "builder"},
        "http/role-result.json": {"user": MIRA, "sessions": 1},
        "http/ban-request.json": {"reason": "Harassment after two warnings."},
        "http/ban.json": {"userId": f"@spammer:{SERVER}", "banned": True, "bannedTs": T0 + 900_000,
                          "reason": "Harassment after two warnings.", "closed": 1},
        "http/federation-queues.json": {"destinations": [
            {"destination": "beta.example.org", "depth": 0, "oldestPendingAgeMs": None, "lastDeliveryLagMs": 41,
             "consecutiveFailures": 0, "nextAttemptTs": None, "lastSuccessTs": T0 + 900_000,
             "lastContactTs": T0 + 900_000, "delivered": 1204, "refused": 1,
             "lastRefusal": "$Wq7rLxV0Yd3mK2pZs9TfBn4uJh6eCa8gRi1oNy5kQv0 event_too_large"},
            {"destination": "gamma.example.org", "depth": 17, "oldestPendingAgeMs": 754_000,
             "lastDeliveryLagMs": 310, "consecutiveFailures": 6, "nextAttemptTs": T0 + 960_000,
             "lastSuccessTs": T0 + 146_000, "lastContactTs": T0 + 146_000, "delivered": 88, "refused": 0,
             "lastRefusal": None}]},
        "http/report-request.json": {"reason": "spam"},
        "http/report-created.json": {"id": 7},
        "http/report-resolve-request.json": {"resolution": "Warned the user."},
        "http/report.json": {"id": 7, "eventId": chan_say["event_id"], "reporter": f"@bob:{SERVER}", "reason": "spam",
                             "createdAt": "2026-01-01T00:20:00.000Z", "status": "resolved",
                             "channelId": PUBLIC, "resolvedBy": MIRA["id"], "resolvedAt": "2026-01-01T00:25:00.000Z",
                             "resolution": "Warned the user."},
        "http/report-list.json": {"reports": [{"id": 7, "eventId": chan_say["event_id"], "reporter": f"@bob:{SERVER}",
                                               "reason": "spam", "createdAt": "2026-01-01T00:20:00.000Z",
                                               "status": "open", "channelId": PUBLIC}], "next": None},
        "http/channel-create-request.json": {"name": "Public", "description": "Chat for everyone.", "alias": "pub"},
        "http/channel-joined.json": {"channel": public, "created": False, "eventId": alice_joins["event_id"],
                                     "streamPosition": 49},
        "http/channel-list.json": {"channels": [public], "next": None},
        "http/channel-detail.json": {"channel": public, "members": [
            {"userId": MIRA["id"], "role": "owner", "online": True, "muted": False},
            {"userId": ALICE["id"], "role": "member", "online": True, "muted": False, "title": "Curious"}],
            "membership": {"channelId": PUBLIC, "name": "Public", "role": "member", "alias": "pub",
                           "title": "Curious"}},
        "http/channel-left.json": {"eventId": alice_joins["event_id"], "streamPosition": 49},
        "http/who.json": {"users": who_users, "total": 3},
        "http/announcement-request.json": {"text": WALL_TEXT},
        "http/receipt.json": {"eventId": wall["event_id"], "streamPosition": 46},
        # The example server is reached on its own port 8448 (federation-discovery.md).
        "federation/well-known.json": well_known_body(f"https://{SERVER}:8448"),
        **federation_examples(),
    }


REMOTE = "games.example.net"
REQUEST_NONCE = "Yb3kQm9zT1vX7wR2pL5s"


def federation_examples() -> dict[str, Any]:
    """federation.md: a transaction from muse.example.org to games.example.net, its
    answer, and the worked example of its request signature (section 3)."""
    page_ts, sent_ts = T0 + 600_000, T0 + 600_250
    remote_page = build_event(
        event_type="vm.page", sender=ALICE["id"], origin=SERVER, origin_server_ts=page_ts,
        content=content.page("Alice", ["Kai"], "Ready for the raid?", MAX_TEXT_LENGTH),
        signing_key=example_key(), recipients=[f"@kai:{REMOTE}"])
    body = {"origin": SERVER, "origin_server_ts": sent_ts, "pdus": [remote_page], "edus": []}
    uri = "/federation/v1/send/1767226200250.1"
    fields = dict(method="PUT", uri=uri, origin=SERVER, destination=REMOTE, content=body,
                  ts=sent_ts, nonce=REQUEST_NONCE)
    return {
        **channel_examples(),
        "federation/transaction.json": body,
        "federation/transaction-answer.json": {"pdus": {remote_page["event_id"]: {}}},
        "federation-request-signature.json": {
            "signed": fields,
            "canonical_json": request_signed_bytes(**fields).decode("utf-8"),
            "verify_key": {example_key().key_id: verify_key_base64(example_key())},
            "authorization": sign_request(example_key(), **fields),
        },
    }


def channel_examples() -> dict[str, Any]:
    """federation.md 10: Alice of muse.example.org joins #public:games.example.net (homed there,
    made by Kai): the join event her server made, the home's answer, and a page of the channel."""
    channel_id, kai = f"#public:{REMOTE}", f"@kai:{REMOTE}"
    home_key = generate_signing_key("g1", seed=b"\x07" * 32)
    join = build_event(event_type="vm.channel.member", sender=ALICE["id"], origin=SERVER,
                       origin_server_ts=T0 + 700_500, channel_id=channel_id, signing_key=example_key(),
                       content={"membership": "join", "target": ALICE["id"], "target_name": "Alice",
                                "speaker": "Alice", "rendered": "<Public> Alice has joined this channel."})
    # seq 1 is the channel's creation by Kai; the answer carries only what follows it here
    creation = make_stamp(channel_id, 1, "$" + "C" * 43, GENESIS, REMOTE, home_key)
    stamp = make_stamp(channel_id, 2, join["event_id"], chain_of(creation), REMOTE, home_key)
    head = {"seq": 2, "chain": chain_of(stamp)}
    return {
        "federation/channel-join.json": {"event": join},
        "federation/channel-state.json": {
            "channel": {"name": "Public", "description": "Open to all.", "topic": "", "visibility": "public",
                        "owner": kai, "created_ts": T0 + 700_000, "history_visibility": "shared"},
            "members": [{"user_id": kai, "role": "owner", "title": None, "muted_until": None,
                         "joined_ts": T0 + 700_000},
                        {"user_id": ALICE["id"], "role": "member", "title": None, "muted_until": None,
                         "joined_ts": T0 + 700_600}],
            "events": [{"event": join, "stamp": stamp}],
            "head": head,
        },
        "federation/channel-events.json": {"events": [{"event": join, "stamp": stamp}], "head": head},
        "federation/channel-directory.json": {"channels": [
            {"channel_id": channel_id, "name": "Public", "description": "Open to all.", "topic": "",
             "visibility": "public", "owner": kai, "created_ts": T0 + 700_000, "history_visibility": "shared"},
        ], "next": None},
        "http/server-leave.json": {"channelId": channel_id, "eventId": "$" + "L" * 43},
    }


def render_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def error_entry(spec: ErrorSpec) -> dict[str, Any]:
    """One code as errors.json lists it: with its ``details`` shapes, if it has any."""
    entry: dict[str, Any] = {"code": str(spec.code), "httpStatus": spec.http_status, "description": spec.description}
    shapes = ERROR_DETAILS.get(spec.code, ())
    if shapes:
        entry["details"] = [{"when": shape.when, "shape": shape.shape} if shape.when else {"shape": shape.shape}
                            for shape in shapes]
    return entry


def render_errors_json() -> str:
    """errors.json: the error catalogue and the close codes, one entry per line, in the code's order."""
    errors = [error_entry(spec) for spec in ERROR_CATALOGUE.values()]
    close_codes = [
        {"code": int(code), "name": code.name, "description": CLOSE_CODE_DESCRIPTIONS[code]} for code in CloseCode
    ]

    def lines(entries: list[dict]) -> str:
        return ",\n".join("    " + json.dumps(entry, ensure_ascii=False) for entry in entries)

    return '{\n  "errors": [\n' + lines(errors) + '\n  ],\n  "closeCodes": [\n' + lines(close_codes) + "\n  ]\n}\n"


def generated_files() -> dict[Path, str]:
    """Every generated file and its exact text."""
    files = {EXAMPLES / path: render_json(value) for path, value in make_examples().items()}
    files[V1 / "errors.json"] = render_errors_json()
    return files


def main() -> None:
    for path, text in generated_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print("wrote", path.relative_to(V1.parent.parent))


if __name__ == "__main__":
    main()
