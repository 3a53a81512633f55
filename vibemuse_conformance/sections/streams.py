"""The stream: histories, resuming, message management, signatures, announcements and admins
(protocol.md 5.7, 14.9, 17, 19, 20.3; events.md 8-9)."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from vibemuse_client.http import path_segment
from vibemuse_conformance.harness import HandshakeRefused
from vibemuse_conformance.players import RawSocket
from vibemuse_conformance.runner import Check, CheckFailed, SectionRun, section
from vibemuse_conformance.sections.rooms import event_of

EVENT_FRAMES = frozenset({"message", "user_joined", "user_left", "system_message", "page_receipt", "channel_message",
                          "channel_notice", "message_edited", "message_deleted"})


def position(event: dict) -> int:
    return int(event.get("unsigned", {}).get("stream_position", -1))


@section("history", "protocol.md 19 history: cursors, filters, search", features=("history", "room_chat"))
async def history(run: SectionRun) -> None:
    harness = run.harness
    a, b = await harness.players("a", "b")
    path = "/api/communication/history/" + a.account.location
    word = "zq" + harness.run_id + "w"
    start = (await a.ack("say", {"text": harness.text("before")})).data["streamPosition"]
    sent = []
    for player, kind, text in ((a, "say", harness.text("one")), (a, "pose", harness.text("two")),
                               (b, "say", harness.text(f"three {word}")), (a, "say", harness.text("four"))):
        ack = await player.ack(kind, {"text": text})
        sent.append((ack.data["eventId"], ack.data["streamPosition"], player.user_id, kind))
    ids = [s[0] for s in sent]

    async def get(**query) -> dict:
        return await a.http("GET", path, query=query)

    async with run.check("after a position: every later event, oldest first") as c:
        page = await get(after=start, limit=100)
        got = [e["event_id"] for e in page["events"]]
        c.equal([i for i in got if i in ids], ids, "this run's events in order")
        positions = [position(e) for e in page["events"]]
        c.expect(positions == sorted(positions) and all(p > start for p in positions),
                 "positions ascending and after the cursor", positions)
    async with run.check("after cursors walk forwards: next is the newest position returned") as c:
        first = await get(after=start, limit=2)
        c.equal(len(first["events"]), 2, "events on a page of limit=2")
        c.equal(first["next"], str(position(first["events"][-1])), "next")
        second = await get(after=first["next"], limit=2)
        c.equal([e["event_id"] for e in first["events"] + second["events"]], ids, "two pages of after cursors")
    async with run.check("before cursors walk back: next is the oldest position returned") as c:
        newest = await get(limit=2, before=sent[-1][1] + 1)
        c.equal([e["event_id"] for e in newest["events"]], ids[2:], "the newest page")
        c.equal(newest["next"], str(sent[2][1]), "next")
        older = await get(limit=2, before=newest["next"])
        c.equal([e["event_id"] for e in older["events"]], ids[:2], "the page before it")
    async with run.check("filters: kind, sender, since and until") as c:
        poses = await get(after=start, kind="pose,semipose")
        c.equal([e["event_id"] for e in poses["events"]], [ids[1]], "kind=pose,semipose")
        by_b = await get(after=start, sender=b.account.username.lower())
        c.equal([e["event_id"] for e in by_b["events"]], [ids[2]], "sender")
        full = (await get(after=start, limit=100))["events"]
        stamps = {e["event_id"]: e["origin_server_ts"] for e in full}
        since = await get(after=start, since=stamps[ids[3]])
        c.expect(ids[3] in [e["event_id"] for e in since["events"]] and
                 all(e["origin_server_ts"] >= stamps[ids[3]] for e in since["events"]), "since keeps later ones",
                 since["events"])
        until = await get(after=start, until=stamps[ids[0]])
        c.expect(all(e["origin_server_ts"] < stamps[ids[0]] for e in until["events"]), "until keeps earlier ones",
                 until["events"])
    async with run.check("search: every word of q, whole words, any case") as c:
        found = await get(q=word.upper() + " THREE")
        c.equal([e["event_id"] for e in found["events"]], [ids[2]], "the events q finds")
        none = await get(q=word[:-1])
        c.equal([e["event_id"] for e in none["events"] if e["event_id"] in ids], [], "a part of a word finds nothing")
    async with run.check("malformed queries: invalid_request; an unknown sender: unknown_user") as c:
        for query in ({"before": 5, "after": 1}, {"limit": 0}, {"limit": "+1"}, {"kind": "nonsense"},
                      {"since": "yesterday"}):
            await a.http_refused("GET", path, "invalid_request", query=query)
        await a.http_refused("GET", path, "unknown_user", query={"sender": "Nobody" + harness.run_id})
    async with run.check("history events verify with the server's keys") as c:
        for event in (await get(after=start))["events"]:
            verification = await a.client.verify_event(event, require_intact=True)
            c.equal(verification.event_id, event["event_id"], "the verified event id")


async def read_stream(raw: RawSocket, wanted: set[str], timeout: float = 20.0) -> list[dict]:
    """Frames of a raw socket until every event id of ``wanted`` and a resumed (or resume_gap) came."""
    frames: list[dict] = []
    seen: set[str] = set()

    async def read() -> None:
        while not (wanted <= seen and any(f["type"] in ("resumed", "resume_gap") for f in frames)):
            frame = await raw.read(timeout)
            if frame is None:
                raise CheckFailed("the socket to stay open", f"closed with {raw.close_code}")
            frames.append(frame)
            if frame["type"] in EVENT_FRAMES:
                seen.add(frame["data"]["event"]["event_id"])

    try:
        await asyncio.wait_for(read(), timeout)
    except asyncio.TimeoutError:
        raise CheckFailed(f"events {sorted(wanted - seen)} and resumed within {timeout:.0f} s",
                          [f["type"] for f in frames][-15:]) from None
    return frames


def check_replay(c: Check, frames: list[dict], since: int, wanted: list[str]) -> None:
    """5.7: welcome, roster, the replay, resumed; every event once, in order; ``wanted`` among them in order."""
    types = [f["type"] for f in frames]
    c.equal(types[:2], ["welcome", "roster"], "the first frames")
    c.expect("resumed" in types, "a resumed frame", types)
    cut = types.index("resumed")
    resumed = frames[cut]["data"]
    events = [f["data"]["event"] for f in frames if f["type"] in EVENT_FRAMES]
    ids = [e["event_id"] for e in events]
    c.equal(len(ids), len(set(ids)), "each event once (no duplicate at the seam)")
    positions = [position(e) for e in events]
    c.equal(positions, sorted(positions), "the events in stream order")
    c.expect(all(p > since for p in positions), f"only events after since={since}", positions)
    c.equal([i for i in ids if i in wanted], wanted, "the other player's events, each once, in order")
    replayed = [position(f["data"]["event"]) for f in frames[:cut] if f["type"] in EVENT_FRAMES]
    live = [position(f["data"]["event"]) for f in frames[cut:] if f["type"] in EVENT_FRAMES]
    c.equal(resumed.get("since"), since, "resumed.since")
    c.equal(resumed.get("count"), len(replayed), "resumed.count (the events replayed)")
    c.expect(all(p <= resumed.get("upto", -1) for p in replayed) and all(p > resumed.get("upto", -1) for p in live),
             "replayed events up to resumed.upto, live ones after it", (replayed, resumed, live))


@section("resume", "protocol.md 5.7 resuming: exactly once, in order, the seam under live traffic",
         features=("resume", "room_chat"))
async def resume(run: SectionRun) -> None:
    harness = run.harness
    a, b = await harness.players("a", "b")
    token = a.account.token
    async with run.check("a reconnect with since replays what was missed, then resumed") as c:
        since = (await a.ack("say", {"text": harness.text("leaving")})).data["streamPosition"]
        await a.close()
        missed = [(await b.ack("say", {"text": harness.text(f"missed {n}")})).data["eventId"] for n in range(3)]
        raw = await harness.raw(token=token, query=f"?since={since}")
        frames = await read_stream(raw, set(missed))
        check_replay(c, frames, since, missed)
        raw.close()
    async with run.check("the seam under live traffic: nothing lost, nothing twice, in order") as c:
        since = (await b.ack("say", {"text": harness.text("seam start")})).data["streamPosition"]
        sent: list[str] = []

        async def talk() -> None:
            for n in range(8):
                sent.append((await b.ack("say", {"text": harness.text(f"live {n}")})).data["eventId"])

        talking = asyncio.create_task(talk())
        while not sent and not talking.done():
            await asyncio.sleep(0.01)
        raw = await harness.raw(token=token, query=f"?since={since}")
        await talking
        frames = await read_stream(raw, set(sent))
        check_replay(c, frames, since, sent)
        raw.close()
    async with run.check("with the auth frame: since in its data") as c:
        since = (await b.ack("say", {"text": harness.text("frame since")})).data["streamPosition"]
        missed = [(await b.ack("pose", {"text": harness.text("posed")})).data["eventId"]]
        raw = await harness.raw()
        raw.send({"type": "auth", "messageId": "resume-auth", "data": {"token": token, "since": since}})
        check_replay(c, await read_stream(raw, set(missed)), since, missed)
        raw.close()
    async with run.check("a since that is not a number: HTTP 400 invalid_request") as c:
        try:
            await harness.raw(token=token, query="?since=" + quote("+1"))
            raise CheckFailed("HTTP 400 invalid_request", "the socket opened")
        except HandshakeRefused as refusal:
            c.equal((refusal.status, refusal.code), (400, "invalid_request"), "status and code")


@section("messages", "protocol.md 17 message management: get, edit, delete, report",
         features=("message_management", "room_chat"))
async def messages(run: SectionRun) -> None:
    harness = run.harness
    a, b = await harness.players("a", "b")
    text = harness.text("original")
    event_id = (await a.ack("say", {"text": text})).data["eventId"]
    path = "/api/messages/" + quote(event_id, safe="")
    async with run.check("get_message and GET: the event, not deleted") as c:
        detail = await b.send("get_message", {"eventId": event_id})
        c.equal(detail.type, "message_detail", "the answer")
        c.equal((detail.data["event"]["event_id"], detail.data.get("deleted")), (event_id, False), "event and deleted")
        body = await b.http("GET", path)
        c.equal(body["event"]["event_id"], event_id, "GET's event")
    async with run.check("edit_message: an ack, message_edited to the room, the latest text on GET") as c:
        mark_b = b.mark()
        new_text = harness.text("edited")
        ack = await a.ack("edit_message", {"eventId": event_id, "text": new_text})
        edited = await b.wait_event(ack.data["eventId"], "message_edited", after=mark_b)
        edit = event_of(edited)
        c.equal((edit.get("type"), edit["content"].get("relates_to")), ("vm.edit", event_id), "type and relates_to")
        c.equal(edit["content"].get("new_content", {}).get("body"), new_text, "new_content.body")
        body = await b.http("GET", path)
        c.equal(body.get("latestEdit", {}).get("event_id"), ack.data["eventId"], "latestEdit")
        c.equal(body["event"].get("unsigned", {}).get("replaced_by"), ack.data["eventId"], "unsigned.replaced_by")
    async with run.check("only the author edits: forbidden; a report once: reportId, then already_reported") as c:
        await b.refused("edit_message", {"eventId": event_id, "text": harness.text("mine now")}, "forbidden")
        ack = await b.ack("report_message", {"eventId": event_id, "reason": "testing reports"})
        c.expect(isinstance(ack.data.get("reportId"), int), "reportId", dict(ack.data))
        await b.refused("report_message", {"eventId": event_id, "reason": "again"}, "already_reported")
    async with run.check("delete_message: message_deleted to the room; deleted; its signature still verifies") as c:
        mark_b = b.mark()
        ack = await a.ack("delete_message", {"eventId": event_id, "reason": "oops"})
        deleted = await b.wait_event(ack.data["eventId"], "message_deleted", after=mark_b)
        c.equal(event_of(deleted)["content"].get("redacts"), event_id, "content.redacts")
        body = await b.http("GET", path)
        c.equal(body.get("deleted"), True, "deleted")
        c.expect("body" not in body["event"]["content"], "the redacted form (no body)", body["event"]["content"])
        verification = await b.client.verify_event(body["event"])
        c.equal(verification.event_id, event_id, "the redacted event's id verifying")
        await a.refused("delete_message", {"eventId": event_id}, "message_deleted")
        await a.refused("edit_message", {"eventId": event_id, "text": harness.text("late")}, "message_deleted")
    async with run.check("over HTTP: PUT edits, DELETE deletes") as c:
        other = (await a.ack("say", {"text": harness.text("http")})).data["eventId"]
        other_path = "/api/messages/" + quote(other, safe="")
        receipt = await a.http("PUT", other_path, {"text": harness.text("http edited")})
        c.expect(isinstance(receipt.get("eventId"), str), "a receipt with eventId", receipt)
        await b.http_refused("DELETE", other_path, "forbidden")
        await a.http("DELETE", other_path, query={"reason": "tidy"})
        c.equal((await a.http("GET", other_path)).get("deleted"), True, "deleted")
    async with run.check("an id no event has: unknown_message") as c:
        await b.refused("get_message", {"eventId": "$" + "A" * 43}, "unknown_message")
        await b.http_refused("GET", "/api/messages/" + quote("$" + "B" * 43, safe=""), "unknown_message")


@section("signatures", "events.md 8-9 signed events and server keys", features=("signed_events", "room_chat"))
async def signatures(run: SectionRun) -> None:
    harness = run.harness
    a, b = await harness.players("a", "b")
    async with run.check("the key document verifies itself and names the server") as c:
        document = await harness.api().server_keys()
        c.equal(document.get("server_name"), harness.server.name, "server_name")
        keys = await a.client.keys.keys_of(harness.server.name)
        c.expect(keys, "at least one verify key", document)
    async with run.check("a live event verifies: signature, event id, content hash") as c:
        mark_b = b.mark()
        ack = await a.ack("say", {"text": harness.text("signed")})
        frame = await b.wait_event(ack.data["eventId"], "message", after=mark_b)
        verification = await b.client.verify_event(frame.data["event"], require_intact=True)
        c.equal(verification.event_id, ack.data["eventId"], "the verified id")
        c.equal(frame.data["event"].get("origin"), harness.server.name, "origin")
        c.expect(harness.server.name in frame.data["event"].get("signatures", {}),
                 "a signature of the origin", frame.data["event"].get("signatures"))
    async with run.check("the roster's recent events verify (a deleted one in its redacted form)") as c:
        mark_a = a.mark()
        await a.ack("join_room", {"roomId": a.account.location})
        roster = await a.wait_type("roster", after=mark_a)
        recent = roster.data.get("recent", [])
        c.expect(recent, "recent events in the roster", roster.data)
        for event in recent:
            verification = await a.client.verify_event(event)
            c.equal(verification.event_id, event.get("event_id"), "the verified event id")
    async with run.check("an event changed in transit does not verify") as c:
        event = dict(frame.data["event"])
        event["sender"] = b.user_id
        try:
            await b.client.verify_event(event)
            raise CheckFailed("a forged event to fail verification", "it verified")
        except CheckFailed:
            raise
        except Exception as error:  # SignatureError
            c.expect(getattr(error, "code", "") in ("invalid_event_signature", "invalid_event_id"),
                     "invalid_event_signature or invalid_event_id", error)


@section("announcements", "protocol.md 14.9 announcements", features=("room_chat",), admin=True)
async def announcements(run: SectionRun) -> None:
    harness = run.harness
    admin_account = await harness.privileged("admin")
    admin = await harness.player(admin_account)
    [a] = await harness.players("a")
    async with run.check("wall: a system_message to everyone, the admin's before the ack") as c:
        mark_a, mark_admin = a.mark(), admin.mark()
        text = harness.text("Server restart at noon")
        ack = await admin.ack("wall", {"text": text})
        heard = await a.wait_event(ack.data["eventId"], "system_message", after=mark_a)
        own = await admin.wait_event(ack.data["eventId"], "system_message", after=mark_admin)
        c.expect(admin.frames.index(own) < await admin.index_of(ack), "the system_message before the ack", None)
        c.equal(event_of(heard)["content"].get("rendered"),
                f'Announcement: {admin_account.username} shouts, "{text}"', "rendered")
        c.equal(event_of(heard).get("type"), "vm.system", "the event type")
    async with run.check("POST /api/announcements: 201 and a receipt; the same Idempotency-Key, the same event") as c:
        key = "ann-" + harness.run_id
        first = await admin.http("POST", "/api/announcements", {"text": harness.text("over http")},
                                 idempotency_key=key)
        again = await admin.http("POST", "/api/announcements", {"text": harness.text("over http again")},
                                 idempotency_key=key)
        c.equal(again.get("eventId"), first.get("eventId"), "the retry's eventId")
    async with run.check("players may not: forbidden") as c:
        await a.refused("wall", {"text": harness.text("me too")}, "forbidden")
        await a.http_refused("POST", "/api/announcements", "forbidden", {"text": harness.text("me too")})


async def admin_and_target(harness, tag: str):
    """The --admin account, an API with its token, and the run's account ``tag`` to act on."""
    admin_account = await harness.privileged("admin")
    return admin_account, harness.api(token=admin_account.token), await harness.account(tag)


@section("admin", "protocol.md 20.3 admins: sessions and kick", admin=True)
async def admin_sessions(run: SectionRun) -> None:
    harness = run.harness
    admin_account, api, target = await admin_and_target(harness, "b")
    raw = await harness.raw(token=target.token)
    welcome = await raw.read_type("welcome")
    async with run.check("GET /api/admin/sessions lists the user's socket by its connectionId") as c:
        sessions = await harness.http(api, admin_account.user_id, "GET", "/api/admin/sessions")
        theirs = [user for user in sessions["users"] if user["id"] == target.user_id]
        c.expect(theirs, "the user listed", sessions)
        c.expect(welcome["data"]["connectionId"] in [s.get("connectionId") for s in theirs[0]["sockets"]],
                 "the welcome's connectionId among the user's sockets", theirs[0]["sockets"])
    async with run.check("a player may not: forbidden") as c:
        player_api = harness.api(token=target.token)
        await harness.http_refused(player_api, target.user_id, "GET", "/api/admin/sessions", "forbidden")
    async with run.check("kick closes the user's sockets with 4010") as c:
        result = await harness.http(api, admin_account.user_id, "POST",
                                    "/api/admin/users/" + path_segment(target.user_id) + "/kick", {"reason": "test"})
        c.expect(result, "an answer", result)
        c.equal(await raw.closed(), 4010, "the close code")


@section("roles", "protocol.md 12, 18.8, 20.3 admins: roles, bans, the federation outbox", admin=True)
async def roles_and_bans(run: SectionRun) -> None:
    harness = run.harness
    admin_account, api, target = await admin_and_target(harness, "c")
    user_path = "/api/admin/users/" + path_segment(target.user_id)

    async def admin_http(method: str, path: str, body=None, **options):
        return await harness.http(api, admin_account.user_id, method, path, body, **options)

    async def put_back() -> None:  # whatever happened: a player again, not banned, with a working token
        await admin_http("DELETE", user_path + "/ban")
        await admin_http("PUT", user_path + "/role", {"role": "player"})

    harness.undo(put_back)
    player = await harness.player(target)
    async with run.check("PUT role builder: in force from the session's next frame (emit); back to player") as c:
        result = await admin_http("PUT", user_path + "/role", {"role": "builder"})
        c.equal((result["user"]["id"], result["user"].get("role")), (target.user_id, "builder"), "user.id and role")
        c.expect(result.get("sessions", 0) >= 1, "the open session counted", result)
        await player.ack("emit", {"text": harness.text("now I build")})
        await admin_http("PUT", user_path + "/role", {"role": "player"})
        await player.refused("emit", {"text": harness.text("no more")}, "forbidden")
    async with run.check("roles: not one's own (forbidden), not by a player (forbidden), unknown_user") as c:
        await harness.http_refused(api, admin_account.user_id, "PUT",
                                   "/api/admin/users/" + path_segment(admin_account.user_id) + "/role", "forbidden",
                                   {"role": "player"})
        await player.http_refused("PUT", user_path + "/role", "forbidden", {"role": "admin"})
        await harness.http_refused(api, admin_account.user_id, "PUT",
                                   "/api/admin/users/nobody" + harness.run_id + "/role", "unknown_user",
                                   {"role": "builder"})
    async with run.check("ban: the sessions close with 4011, login is account_banned; unban lets them in") as c:
        reason = "conformance " + harness.run_id
        await player.close()
        raw = await harness.raw(token=target.token)
        await raw.read_type("roster")
        ban = await admin_http("POST", user_path + "/ban", {"reason": reason})
        c.equal((ban.get("userId"), ban.get("banned"), ban.get("reason")), (target.user_id, True, reason),
                "userId, banned, reason")
        c.expect(ban.get("closed", 0) >= 1, "the open session closed", ban)
        c.equal(await raw.closed(), 4011, "the close code (BANNED)")
        await harness.pacer.take(harness.server.base_url, "address", "login_address")
        error = await harness.http_refused(harness.api(), "address", "POST", "/api/auth/login", "account_banned",
                                           {"username": target.username, "password": target.password},
                                           authenticated=False)
        c.equal((error.status, error.details.get("reason")), (403, reason), "the status and details.reason")
        lifted = await admin_http("DELETE", user_path + "/ban")
        c.equal((lifted.get("banned"), lifted.get("closed")), (False, 0), "banned and closed after DELETE")
        await harness.login(target)
        me = await harness.api(token=target.token).me()
        c.equal(me["user"]["id"], target.user_id, "the user, logged in again")
        await harness.http_refused(api, admin_account.user_id, "POST",
                                   "/api/admin/users/" + path_segment(admin_account.user_id) + "/ban", "forbidden", {})
    async with run.check("the federation outbox (18.8) and a server's leave (federation.md 10.6): admins only") as c:
        queues = await admin_http("GET", "/api/admin/federation")
        c.expect(isinstance(queues.get("destinations"), list), "destinations", queues)
        player_api = harness.api(token=target.token)
        await harness.http_refused(player_api, target.user_id, "GET", "/api/admin/federation", "forbidden")
        local = path_segment(f"#nochannel{harness.run_id}:{harness.server.name}")
        await harness.http_refused(api, admin_account.user_id, "POST", f"/api/admin/channels/{local}/leave",
                                   "unknown_channel")
        await harness.http_refused(player_api, target.user_id, "POST", f"/api/admin/channels/{local}/leave",
                                   "forbidden")
