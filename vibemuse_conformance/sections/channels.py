"""Channels: creation, joining, talking, looking, moderation, privacy, history (protocol.md 16)."""

from __future__ import annotations

from vibemuse_client import Frame
from vibemuse_client.http import path_segment
from vibemuse_conformance.players import Player
from vibemuse_conformance.runner import Check, SectionRun, section
from vibemuse_conformance.sections.rooms import event_of


def rendered(frame) -> str:
    return str(event_of(frame).get("content", {}).get("rendered"))


async def notice(c: Check, players: list[Player], marks: list[int], line: str) -> None:
    """Every one of ``players`` gets a channel_notice whose line is ``line``."""
    for player, mark in zip(players, marks):
        await player.wait_type("channel_notice", f"the notice {line!r}", after=mark,
                               where=lambda f: rendered(f) == line)


@section("channels", "protocol.md 16 channels and moderation", features=("channels",))
async def channels(run: SectionRun) -> None:
    harness = run.harness
    a, b = await harness.players("a", "b")
    name_a, name_b = a.account.username, b.account.username
    name = "Cf" + harness.run_id
    channel_id = f"#{name.lower()}:{harness.server.name}"
    path = "/api/communication/channels/" + path_segment(channel_id)
    events: list[str] = []

    async def moderate(data: dict) -> Frame:
        return await a.ack("channel_moderate", {"channelId": channel_id, **data})

    async with run.check("POST creates the channel: 201, its owner, the two notices", critical=True) as c:
        mark_a = a.mark()
        created = await a.http("POST", "/api/communication/channels",
                               {"name": name, "description": "made by the conformance suite", "alias": "cfa"})
        c.equal(created.get("created"), True, "created")
        c.equal((created["channel"]["id"], created["channel"]["owner"]), (channel_id, a.user_id), "the id and owner")
        await notice(c, [a], [mark_a], f"<{name}> Channel created by {name_a}.")
        await notice(c, [a], [mark_a], f"<{name}> {name_a} has joined this channel.")
    async with run.check("join_channel by name: a notice to every member, then the ack with eventId") as c:
        mark_a, mark_b = a.mark(), b.mark()
        ack = await b.ack("join_channel", {"channelId": name.upper(), "alias": "cfb"})
        c.expect(ack.data.get("eventId"), "an eventId", dict(ack.data))
        await notice(c, [a, b], [mark_a, mark_b], f"<{name}> {name_b} has joined this channel.")
        again = await b.ack("join_channel", {"channelId": channel_id, "title": "Curious"})
        c.expect("eventId" not in again.data, "no eventId for a member's join (alias, title)", dict(again.data))
    async with run.check("channel by alias: channel_message to every member, the speaker's before its ack") as c:
        mark_a, mark_b = a.mark(), b.mark()
        text = harness.text("Hi all!")
        ack = await b.ack("channel", {"alias": "cfb", "text": text})
        events.append(ack.data["eventId"])
        heard = await a.wait_event(ack.data["eventId"], "channel_message", after=mark_a)
        own = await b.wait_event(ack.data["eventId"], "channel_message", after=mark_b)
        c.expect(b.frames.index(own) < await b.index_of(ack), "the channel_message before the ack", None)
        c.equal((heard.channel_id, heard.from_user), (channel_id, b.user_id), "channelId and fromUser")
        c.equal(rendered(heard), f'<{name}> Curious {name_b} says, "{text}"', "rendered (with the title)")
        c.equal(event_of(heard).get("type"), "vm.channel.message", "the event type")
    async with run.check("+alias command lines speak on the channel") as c:
        mark_a = a.mark()
        text = harness.text("waves")
        answer = await b.send("command", {"line": f"+cfb :{text}"})
        c.equal(answer.type, "ack", "the answer")
        events.append(answer.data["eventId"])
        heard = await a.wait_event(answer.data["eventId"], "channel_message", after=mark_a)
        c.equal(rendered(heard), f"<{name}> Curious {name_b} {text}", "rendered")
    async with run.check("channel_who, channel_list, the detail and the listing") as c:
        who = await a.send("channel_who", {"channelId": name})
        roles = {m["userId"]: m["role"] for m in who.data.get("members", [])}
        c.equal((roles.get(a.user_id), roles.get(b.user_id)), ("owner", "member"), "the members' roles")
        listing = await b.send("channel_list", {})
        mine = [m for m in listing.data.get("channels", []) if m["channelId"] == channel_id]
        c.expect(mine and mine[0].get("alias") == "cfb" and mine[0].get("role") == "member",
                 "the channel in channel_list with its alias and role", listing.data)
        detail = await b.http("GET", path)
        c.equal(detail.get("membership", {}).get("alias"), "cfb", "the detail's membership.alias")
        found = await b.http("GET", "/api/communication/channels", query={"q": name.lower()})
        c.expect(channel_id in [ch["id"] for ch in found["channels"]], "the channel found by q", found)
    async with run.check("a report about a channel's message: its owner lists and resolves it (17.5)") as c:
        reported = events[0]
        created = await a.http("POST", "/api/messages/" + path_segment(reported) + "/report",
                               {"reason": "conformance " + harness.run_id})
        report_id = created.get("id")
        c.expect(isinstance(report_id, int), "201 with the report's id", created)
        listing = await a.http("GET", "/api/reports", query={"status": "open", "limit": 100})
        mine = [r for r in listing["reports"] if r["id"] == report_id]
        c.expect(mine, "the report among the owner's open reports", listing)
        c.equal((mine[0]["eventId"], mine[0].get("channelId"), mine[0]["reporter"], mine[0]["status"]),
                (reported, channel_id, a.user_id, "open"), "eventId, channelId, reporter, status")
        await b.http_refused("GET", "/api/reports", "forbidden")
        await b.http_refused("POST", f"/api/reports/{report_id}/resolve", "forbidden", {"resolution": "mine"})
        resolved = await a.http("POST", f"/api/reports/{report_id}/resolve", {"resolution": "looked at it"})
        c.equal((resolved.get("status"), resolved.get("resolution"), resolved.get("resolvedBy")),
                ("resolved", "looked at it", a.user_id), "status, resolution, resolvedBy")
        await a.http_refused("POST", "/api/reports/999999999/resolve", "unknown_report", {"resolution": "x"})
    async with run.check("mute: the target is refused with muted; unmute lets them speak") as c:
        mark_a, mark_b = a.mark(), b.mark()
        await moderate({"action": "mute", "user": b.user_id, "durationSeconds": 600, "reason": "testing"})
        await notice(c, [a, b], [mark_a, mark_b], f"<{name}> {name_b} has been muted by {name_a} (testing).")
        error = await b.refused("channel", {"channelId": channel_id, "text": harness.text("muffled")}, "muted")
        c.expect(isinstance(error.details.get("untilMs"), int), "details.untilMs", error.details)
        mark_b = b.mark()
        await moderate({"action": "unmute", "user": b.user_id})
        await notice(c, [b], [mark_b], f"<{name}> {name_b} may speak again.")
        ack = await b.ack("channel", {"channelId": channel_id, "text": harness.text("free")})
        events.append(ack.data["eventId"])
    async with run.check("only owners and moderators moderate; nobody acts against themselves") as c:
        await b.refused("channel_moderate", {"channelId": channel_id, "action": "kick", "user": a.user_id},
                        "forbidden")
        await a.refused("channel_moderate", {"channelId": channel_id, "action": "mute", "user": a.user_id},
                        "invalid_request")
    async with run.check("channel_update: the settings notice") as c:
        mark_a, mark_b = a.mark(), b.mark()
        topic = "Game night " + harness.run_id
        await a.ack("channel_update", {"channelId": channel_id, "topic": topic})
        await notice(c, [a, b], [mark_a, mark_b], f"<{name}> {name_a} set the topic: {topic}.")
    async with run.check("kick: the target hears it, then nothing more of the channel") as c:
        mark_b = b.mark()
        await moderate({"action": "kick", "user": b.user_id, "reason": "out"})
        await notice(c, [b], [mark_b], f"<{name}> {name_b} has been kicked by {name_a} (out).")
        mark_b = b.mark()
        ack = await a.ack("channel", {"channelId": channel_id, "text": harness.text("after the kick")})
        await b.barrier()
        c.equal(b.carrying(ack.data["eventId"], mark_b), [], "frames of the channel at the kicked member")
        await b.refused("channel", {"channelId": channel_id, "text": harness.text("let me")}, "not_a_member")
    async with run.check("ban: the target hears it and cannot join; unban lets them") as c:
        mark_b = b.mark()
        await moderate({"action": "ban", "user": b.user_id, "reason": "spam"})
        await notice(c, [b], [mark_b], f"<{name}> {name_b} has been banned by {name_a} (spam).")
        error = await b.refused("join_channel", {"channelId": channel_id}, "banned")
        c.equal(error.details.get("reason"), "spam", "details.reason")
        await moderate({"action": "unban", "user": b.user_id})
        await b.ack("join_channel", {"channelId": channel_id})
    async with run.check("leave: a notice to the members and the leaver; then not_a_member") as c:
        mark_a, mark_b = a.mark(), b.mark()
        await b.ack("leave_channel", {"channelId": channel_id})
        await notice(c, [a, b], [mark_a, mark_b], f"<{name}> {name_b} has left this channel.")
        await b.refused("leave_channel", {"channelId": channel_id}, "not_a_member")
    async with run.check("the history is for members: not_a_member for others; events in order, signed") as c:
        await b.http_refused("GET", path + "/history", "not_a_member")
        history = await a.http("GET", path + "/history", query={"limit": 100})
        ids = [event["event_id"] for event in history["events"]]
        c.equal([i for i in ids if i in events], events, "this run's channel messages, in order")
        types = {event["type"] for event in history["events"]}
        c.expect({"vm.channel.create", "vm.channel.member", "vm.channel.settings"} <= types,
                 "creation, memberships and settings in the history", types)
        only = await a.http("GET", path + "/history", query={"kind": "channel", "limit": 100})
        c.expect(all(e["type"] == "vm.channel.message" for e in only["events"]), "kind=channel: messages only",
                 [e["type"] for e in only["events"]])
        for event in history["events"]:
            await a.client.verify_event(event, require_intact=True)
    async with run.check("unknown_channel and invalid_channel_name") as c:
        error = await b.refused("join_channel", {"channelId": "Nochannel" + harness.run_id}, "unknown_channel")
        c.equal(error.details.get("channel"), "Nochannel" + harness.run_id, "details.channel")
        await b.http_refused("POST", "/api/communication/channels", "invalid_channel_name", {"name": "9lives"})
    async with run.check("a private channel is unknown to outsiders until invited (16.10)") as c:
        secret = "Cs" + harness.run_id
        await a.http("POST", "/api/communication/channels", {"name": secret, "visibility": "private"})
        secret_path = "/api/communication/channels/" + path_segment(secret)
        await b.http_refused("GET", secret_path, "unknown_channel")
        await b.refused("join_channel", {"channelId": secret}, "unknown_channel")
        mark_b = b.mark()
        await a.ack("channel_moderate", {"channelId": secret, "action": "invite", "user": b.user_id})
        await notice(c, [b], [mark_b], f"<{secret}> {name_a} has invited {name_b}.")
        await b.ack("join_channel", {"channelId": secret})
        left = await b.http("DELETE", secret_path)
        c.expect(isinstance(left.get("eventId"), str), "DELETE answers the leave's eventId", left)
        await b.refused("join_channel", {"channelId": secret}, "unknown_channel")
