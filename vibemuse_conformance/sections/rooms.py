"""Room communication: speaking, MUSH command lines, rooms, presence, typing and WHO (protocol.md 14)."""

from __future__ import annotations

from vibemuse_client.http import path_segment
from vibemuse_conformance.players import Player
from vibemuse_conformance.runner import Check, SectionRun, Skip, section


def event_of(frame) -> dict:
    return dict(frame.data.get("event") or {})


async def spoken(c: Check, speaker: Player, listener: Player, frame_type: str, data: dict, *,
                 message_id: str | None = None) -> tuple[dict, dict]:
    """Send a message frame; check the room's ``message`` reached both, the speaker's before its ack
    (14.1, 14.7), and that the ack names the event. Returns the event and the ack's data."""
    mark_s, mark_l = speaker.mark(), listener.mark()
    ack = await speaker.ack(frame_type, data, message_id=message_id)
    event_id = ack.data.get("eventId")
    c.expect(isinstance(event_id, str), "the ack to name the event (eventId)", dict(ack.data))
    own = await speaker.wait_event(event_id, "message", after=mark_s)
    heard = await listener.wait_event(event_id, "message", after=mark_l)
    c.expect(speaker.frames.index(own) < await speaker.index_of(ack),
             "the message frame before the ack (14.7)", [f.type for f in speaker.frames[mark_s:]])
    event = event_of(heard)
    c.equal(ack.data.get("streamPosition"), event.get("unsigned", {}).get("stream_position"),
            "the ack's streamPosition (the event's stream_position)")
    c.equal(heard.from_user, speaker.user_id, "the message frame's fromUser")
    c.equal(heard.room_id, event.get("room_id"), "the message frame's roomId")
    c.expect(heard.to_user is None, "no toUser on a frame fanned out to a room (6.2)", heard.to_user)
    c.equal(event.get("sender"), speaker.user_id, "the event's sender")
    return event, dict(ack.data)


def lines(c: Check, event: dict, rendered: str, rendered_self: str | None = None) -> None:
    content = event.get("content", {})
    c.equal(content.get("rendered"), rendered, "content.rendered")
    if rendered_self is not None:
        c.equal(content.get("rendered_self"), rendered_self, "content.rendered_self")


@section("speech", "protocol.md 14.1, 14.3-14.5, 14.7 say, pose, ooc, emit", features=("room_chat",))
async def speech(run: SectionRun) -> None:
    harness = run.harness
    a, b = await harness.players("a", "b")
    name = a.account.username
    async with run.check("say: a message to the room, the speaker's before its ack; the lines of 14.3") as c:
        text = harness.text("hello")
        event, _ = await spoken(c, a, b, "say", {"text": text})
        c.equal(event.get("type"), "vm.room.message", "the event type")
        content = event.get("content", {})
        c.equal((content.get("kind"), content.get("body"), content.get("speaker")), ("say", text, name),
                "kind, body, speaker")
        lines(c, event, f'{name} says, "{text}"', f'You say, "{text}"')
        c.equal(event.get("room_id"), a.account.location, "the event's room (the speaker's location)")
    async with run.check("pose and semipose") as c:
        text = harness.text("waves")
        event, _ = await spoken(c, a, b, "pose", {"text": text})
        c.equal(event["content"].get("kind"), "pose", "kind")
        lines(c, event, f"{name} {text}", f"{name} {text}")
        text = "'s hat " + harness.text("tilts")
        event, _ = await spoken(c, a, b, "pose", {"text": text, "semipose": True})
        c.equal(event["content"].get("kind"), "semipose", "kind")
        lines(c, event, f"{name}{text}", f"{name}{text}")
    async with run.check("ooc in its three styles") as c:
        text = harness.text("ooc")
        event, _ = await spoken(c, a, b, "ooc", {"text": text})
        c.equal((event["content"].get("kind"), event["content"].get("style")), ("ooc", "say"), "kind and style")
        lines(c, event, f'<OOC> {name} says, "{text}"', f'<OOC> You say, "{text}"')
        event, _ = await spoken(c, a, b, "ooc", {"text": text + " p", "style": "pose"})
        lines(c, event, f"<OOC> {name} {text} p", f"<OOC> {name} {text} p")
        event, _ = await spoken(c, a, b, "ooc", {"text": "'s " + text, "style": "semipose"})
        lines(c, event, f"<OOC> {name}'s {text}", f"<OOC> {name}'s {text}")
    async with run.check("markup becomes spans; styles only where there are codes (14.5)") as c:
        tail = harness.text("")
        event, _ = await spoken(c, a, b, "say", {"text": f"Hello, %xh%xrtavern%xn!{tail}"})
        content = event["content"]
        c.equal(content.get("body"), f"Hello, tavern!{tail}", "body")
        c.equal(content.get("spans"), [{"text": "Hello, "}, {"text": "tavern", "style": {"fg": "red", "bold": True}},
                                       {"text": f"!{tail}"}], "spans")
        c.expect(content.get("rendered_spans"), "rendered_spans with the styles", content)
        event, _ = await spoken(c, a, b, "say", {"text": harness.text("plain") + "%r" + "second line"})
        c.expect("\n" in event["content"]["body"], "%r as a newline in body", event["content"]["body"])
        c.expect("spans" not in event["content"] and "rendered_spans" not in event["content"],
                 "no spans for unstyled text", event["content"])
    async with run.check("a retry with the same messageId: the first ack, duplicate, nothing sent again") as c:
        message_id = "retry-" + harness.run_id
        mark_b = b.mark()
        first = await a.ack("say", {"text": harness.text("once")}, message_id=message_id)
        again = await a.ack("say", {"text": harness.text("other text")}, message_id=message_id)
        c.equal(first.data.get("duplicate"), False, "the first ack's duplicate")
        c.equal(again.data.get("duplicate"), True, "the retry's duplicate")
        c.equal((again.data.get("eventId"), again.data.get("streamPosition")),
                (first.data.get("eventId"), first.data.get("streamPosition")), "the retry's eventId and streamPosition")
        dropped = b.client.duplicates_dropped
        await a.barrier()
        await b.barrier()
        c.equal(len(b.carrying(first.data["eventId"], mark_b)), 1, "frames carrying the event at the listener")
        c.equal(b.client.duplicates_dropped, dropped, "copies of it the SDK dropped at the listener")
    async with run.check("refusals: empty_text, not_in_room with details.location, emit by a player") as c:
        await a.refused("say", {"text": "   \u200b "}, "empty_text")
        other_room = "!" + "Z" * 16 + ":" + harness.server.name
        error = await a.refused("say", {"text": harness.text("lost"), "roomId": other_room}, "not_in_room")
        c.equal(error.details.get("location"), a.account.location, "details.location")
        await a.refused("emit", {"text": harness.text("emit")}, "forbidden")
    async with run.check("a refused frame changes nothing: the listener got no message") as c:
        mark_b = b.mark()
        await a.refused("say", {"text": " "}, "empty_text")
        await a.barrier()
        await b.barrier()
        c.equal(b.frames_since(mark_b, "message"), [], "message frames at the listener")


@section("emit", "protocol.md 14.1-14.3 emit (builders and admins)", features=("room_chat",), builder=True)
async def emit(run: SectionRun) -> None:
    harness = run.harness
    builder = await harness.player(await harness.privileged("builder"))
    [a] = await harness.players("a")
    if builder.account.location != a.account.location:
        await builder.ack("join_room", {"roomId": a.account.location})
    async with run.check("emit: the text alone to the room, for everyone and the emitter (14.3)") as c:
        text = harness.text("The lights flicker.")
        event, _ = await spoken(c, builder, a, "emit", {"text": text})
        content = event.get("content", {})
        c.equal((content.get("kind"), content.get("body"), content.get("speaker")),
                ("emit", text, builder.account.username), "kind, body, speaker")
        lines(c, event, text, text)
    async with run.check("\\text and @emit text are emit; roomId of another room: not_in_room") as c:
        for line in ("\\" + harness.text("A cold wind."), "@emit " + harness.text("Thunder.")):
            mark_a = a.mark()
            answer = await builder.send("command", {"line": line})
            c.equal(answer.type, "ack", f"the answer to {line!r}")
            heard = event_of(await a.wait_event(answer.data["eventId"], "message", after=mark_a))
            c.equal((heard["content"].get("kind"), heard["content"].get("rendered")),
                    ("emit", line.split(" ", 1)[1] if line.startswith("@") else line[1:]), "kind and rendered")
        await builder.refused("emit", {"text": harness.text("lost"), "roomId": "!" + "E" * 16 + ":" + harness.server.name},
                              "not_in_room")
    async with run.check("a player may not: forbidden, with the spec's message; the room hears nothing") as c:
        mark_builder = builder.mark()
        error = await a.refused("emit", {"text": harness.text("me too")}, "forbidden")
        c.equal(error.message, "Only builders and admins can @emit.", "the message")
        await a.barrier()
        await builder.barrier()
        c.equal(builder.frames_since(mark_builder, "message"), [], "message frames in the room")
    async with run.check("spam offenders (18.2): builders list them and lift mutes; players may not") as c:
        api = harness.api(token=builder.account.token)
        offenders = await harness.http(api, builder.user_id, "GET", "/api/admin/spam")
        c.expect(isinstance(offenders.get("offenders"), list), "offenders", offenders)
        lifted = await harness.http(api, builder.user_id, "POST",
                                    "/api/admin/spam/" + path_segment(a.user_id) + "/unmute")
        c.equal((lifted.get("userId"), lifted.get("lifted")), (a.user_id, False), "userId and lifted (no mute)")
        await a.http_refused("GET", "/api/admin/spam", "forbidden")
        await a.http_refused("POST", "/api/admin/spam/" + path_segment(a.user_id) + "/unmute", "forbidden")


@section("commands", "protocol.md 14.2 MUSH command lines", features=("room_chat",))
async def commands(run: SectionRun) -> None:
    harness = run.harness
    b, a = await harness.players("a", "b")  # the second account speaks here: the first spoke a lot already
    name = a.account.username

    async def line(c: Check, command: str) -> dict:
        mark_b = b.mark()
        answer = await a.send("command", {"line": command})
        c.equal(answer.type, "ack", f"the answer to {command!r}")
        heard = await b.wait_event(answer.data["eventId"], "message", after=mark_b)
        return event_of(heard)

    async with run.check('"text and say text are say; the white space after the word is dropped') as c:
        text = harness.text("hi")
        event = await line(c, f'"{text}')
        lines(c, event, f'{name} says, "{text}"', f'You say, "{text}"')
        event = await line(c, f"say   {text}.")
        c.equal(event["content"].get("body"), f"{text}.", "body")
    async with run.check(":text poses, ;text semiposes, ooc :text is an OOC pose") as c:
        text = harness.text("waves")
        lines(c, await line(c, f":{text}"), f"{name} {text}")
        lines(c, await line(c, f";'s {text}"), f"{name}'s {text}")
        event = await line(c, f"ooc :{text}")
        c.equal((event["content"].get("kind"), event["content"].get("style")), ("ooc", "pose"), "kind and style")
        lines(c, event, f"<OOC> {name} {text}")
    async with run.check("WHO is answered with a who frame naming the command") as c:
        answer = await a.send("command", {"line": "WHO"})
        c.equal(answer.type, "who", "the answer's type")
        c.equal(answer.in_reply_to, answer.data.get("inReplyTo"), "inReplyTo")
        c.expect(a.user_id in [u["userId"] for u in answer.data.get("users", [])], "the requester among users",
                 answer.data)
    async with run.check("an unknown command: unknown_command, details.command the first word") as c:
        word = "xyzzy" + harness.run_id
        error = await a.refused("command", {"line": f"{word} now"}, "unknown_command")
        c.equal(error.details.get("command"), word, "details.command")
        c.equal(error.message, 'Huh?  (Type "help" for help.)', "the message")
    async with run.check("a command with nothing after it gets the empty text; @emit by a player: forbidden") as c:
        await a.refused("command", {"line": "say"}, "empty_text")
        await a.refused("command", {"line": "@emit " + harness.text("emit")}, "forbidden")
    async with run.check("a command's messageId is the key of the frame it stands for") as c:
        message_id = "cmd-" + harness.run_id
        first = await a.ack("command", {"line": ":" + harness.text("once")}, message_id=message_id)
        again = await a.ack("pose", {"text": harness.text("twice")}, message_id=message_id)
        c.equal((again.data.get("duplicate"), again.data.get("eventId")), (True, first.data.get("eventId")),
                "the pose's duplicate and eventId")


@section("rooms", "protocol.md 14.6, 19.1 rooms, moves and rosters", features=("room_chat",))
async def rooms(run: SectionRun) -> None:
    harness = run.harness
    a, b = await harness.players("a", "b")
    home = a.account.location
    async with run.check("join_room to the current room: the roster again, an ack without eventId") as c:
        mark = a.mark()
        ack = await a.ack("join_room", {"roomId": home})
        c.expect("eventId" not in ack.data, "no eventId", dict(ack.data))
        roster = await a.wait_type("roster", after=mark)
        c.equal(roster.room_id, home, "the roster's roomId")
        c.equal(roster.data["room"]["id"], home, "roster.data.room.id")
        members = [m["userId"] for m in roster.data.get("members", [])]
        c.expect(a.user_id in members and b.user_id in members, "both players among the members", members)
    async with run.check("leave_room in the default room: already_home; an unknown room: room_not_found") as c:
        await a.refused("leave_room", {}, "already_home")
        await a.refused("join_room", {"roomId": "!" + "Q" * 16 + ":" + harness.server.name}, "room_not_found")
    async with run.check("GET /api/rooms and the room's detail with its occupants") as c:
        listing = await a.http("GET", "/api/rooms", query={"limit": 100})
        c.expect(home in [r["id"] for r in listing["rooms"]] or listing.get("next"),
                 "the default room in the list", listing)
        detail = await a.http("GET", "/api/rooms/" + home)
        occupants = [o["id"] if isinstance(o, dict) else o for o in detail.get("occupants", [])]
        c.expect(a.user_id in occupants, "the player among the occupants", detail.get("occupants"))
        await a.http_refused("GET", "/api/rooms/not-a-room", "invalid_room_id")
    other = None
    try:
        builder = await harness.privileged("builder")
    except Skip:
        builder = None
    if builder is not None:
        async with run.check("a builder creates a room (201)", critical=True) as c:
            api = harness.api(token=builder.token)
            room = await harness.http(api, builder.user_id, "POST", "/api/rooms",
                                      {"name": "Conformance " + harness.run_id, "description": "made by the suite"})
            other = room["id"]
            await a.http_refused("POST", "/api/rooms", "forbidden", {"name": "Nope " + harness.run_id})
    else:
        listing = await a.http("GET", "/api/rooms", query={"limit": 100})
        other = next((r["id"] for r in listing["rooms"] if r["id"] != home), None)
    if other is None:
        raise Skip("moves need a second room: give --builder or --admin")
    async with run.check("join_room: user_left to the old room, the roster to the mover, then the ack") as c:
        mark_a, mark_b = a.mark(), b.mark()
        ack = await a.ack("join_room", {"roomId": other})
        arrival = ack.data.get("eventId")
        left = await b.wait_type("user_left", after=mark_b)
        c.equal(left.data["user"]["id"], a.user_id, "user_left.data.user.id")
        c.equal(event_of(left)["content"].get("rendered"), f"{a.account.username} has left.", "the departure's line")
        roster = await a.wait_type("roster", after=mark_a)
        c.equal(roster.data["room"]["id"], other, "the new roster's room")
        recent = roster.data.get("recent", [])
        c.expect(recent and recent[-1].get("event_id") == arrival, "the arrival last of recent (14.6)",
                 [e.get("event_id") for e in recent][-3:])
        c.expect(a.frames.index(roster) < await a.index_of(ack), "the roster before the ack", None)
        c.expect(not a.frames_since(mark_a, "user_left") and not a.frames_since(mark_a, "user_joined"),
                 "the mover gets neither user_left nor user_joined", [f.type for f in a.frames[mark_a:]])
    async with run.check("the room's history: readable there, not_in_room elsewhere (19.1)") as c:
        page = await a.http("GET", "/api/communication/history/" + other)
        c.expect(arrival in [e["event_id"] for e in page["events"]], "the arrival in the history", page)
        error = await b.http_refused("GET", "/api/communication/history/" + other, "not_in_room")
        c.equal(error.details.get("location"), home, "details.location")
    async with run.check("user_joined to the new room; leave_room takes the mover home") as c:
        mark_a = a.mark()
        mark_b = b.mark()
        ack = await b.ack("join_room", {"roomId": other})
        joined = await a.wait_type("user_joined", after=mark_a)
        c.equal(joined.data["user"]["id"], b.user_id, "user_joined.data.user.id")
        c.equal(joined.data["event"].get("event_id"), ack.data.get("eventId"), "the arrival event")
        c.equal(event_of(joined)["content"].get("rendered"), f"{b.account.username} has arrived.", "the arrival's line")
        mark_b = b.mark()
        await b.ack("leave_room", {})
        roster = await b.wait_type("roster", after=mark_b)
        c.equal(roster.data["room"]["id"], home, "the roster after leave_room (the default room)")
    async with run.check("the mover's location follows (GET /api/users/me)") as c:
        me = await a.http("GET", "/api/users/me")
        c.equal(me.get("location"), other, "location")
        await a.ack("leave_room", {})
        me = await a.http("GET", "/api/users/me")
        c.equal(me.get("location"), home, "location after leave_room")


@section("presence", "protocol.md 14.8 presence, typing and WHO", features=("room_chat",))
async def presence(run: SectionRun) -> None:
    harness = run.harness
    [a] = await harness.players("a")
    mark = a.mark()
    [b] = await harness.players("b")
    roster = next(f for f in b.frames if f.type == "roster")
    if roster.data.get("memberCount", 0) > harness.server.limits.presence_room_limit:
        raise Skip("the default room is over limits.presenceRoomLimit: no presence frames to the room")
    async with run.check("a user's first socket: presence online to the room") as c:
        online = await a.wait_type("presence", after=mark, where=lambda f: f.data.get("userId") == b.user_id)
        c.equal(online.data.get("status"), "online", "status")
        c.equal(online.from_user, b.user_id, "fromUser")
    async with run.check("set_presence away with a message: presence to the room and the user; an ack") as c:
        mark_a, mark_b = a.mark(), b.mark()
        ack = await b.ack("set_presence", {"status": "away", "message": "Making\u202e  tea. " + harness.run_id})
        c.expect("eventId" not in ack.data, "an ack without eventId", dict(ack.data))
        for who in (a, b):
            away = await who.wait_type("presence", after=mark_a if who is a else mark_b,
                                       where=lambda f: f.data.get("userId") == b.user_id)
            c.equal((away.data.get("status"), away.data.get("awayMessage")),
                    ("away", "Making tea. " + harness.run_id), "status and the sanitized awayMessage")
        mark_a = a.mark()
        await b.ack("set_presence", {"status": "online"})
        back = await a.wait_type("presence", after=mark_a, where=lambda f: f.data.get("userId") == b.user_id)
        c.equal(back.data.get("status"), "online", "status after set_presence online")
    async with run.check("typing: the others get it with timeoutMs, the typist does not") as c:
        mark_a, mark_b = a.mark(), b.mark()
        await a.notify("typing", {"typing": True})
        typing = await b.wait_type("typing", after=mark_b)
        c.equal((typing.data.get("userId"), typing.data.get("typing"), typing.data.get("roomId")),
                (a.user_id, True, a.account.location), "userId, typing, roomId")
        c.equal(typing.data.get("timeoutMs"), harness.server.limits.typing_timeout_ms, "timeoutMs")
        await a.barrier()
        c.equal(a.frames_since(mark_a, "typing"), [], "typing frames at the typist")
        mark_b = b.mark()
        await a.notify("typing", {"typing": False})
        stopped = await b.wait_type("typing", after=mark_b)
        c.equal(stopped.data.get("typing"), False, "typing after typing: false")
    async with run.check("typing in another room: not_in_room") as c:
        mark_a = a.mark()
        message_id = "typing-" + harness.run_id
        await a.notify("typing", {"typing": True, "roomId": "!" + "T" * 16 + ":" + harness.server.name},
                            message_id=message_id)
        error = await a.wait_type("error", after=mark_a, where=lambda f: f.in_reply_to == message_id)
        c.equal(error.data.get("code"), "not_in_room", "the code")
    async with run.check("WHO: both users, total; GET /api/who the same") as c:
        who = await a.send("who", {})
        c.equal(who.type, "who", "the answer's type")
        users = [u["userId"] for u in who.data.get("users", [])]
        c.expect(a.user_id in users and b.user_id in users, "both users listed", users)
        c.expect(who.data.get("total", 0) >= 2, "total of at least 2", who.data.get("total"))
        listing = await a.http("GET", "/api/who")
        users = [u["userId"] for u in listing.get("users", [])]
        c.expect(a.user_id in users and b.user_id in users, "both users in GET /api/who", users)
    async with run.check("the last socket closes: presence offline to the room") as c:
        mark_a = a.mark()
        await b.close()
        offline = await a.wait_type("presence", after=mark_a, where=lambda f: f.data.get("userId") == b.user_id)
        c.equal(offline.data.get("status"), "offline", "status")
