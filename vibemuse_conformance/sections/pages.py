"""Pages: live and offline delivery, receipts, command lines, haven, blocks, history (protocol.md 15)."""

from __future__ import annotations

from vibemuse_client.http import path_segment
from vibemuse_conformance.players import Player
from vibemuse_conformance.runner import Check, SectionRun, section
from vibemuse_conformance.sections.rooms import event_of


async def paged(c: Check, sender: Player, recipient: Player, data: dict) -> tuple[dict, dict]:
    """A page between two connected players: a message to both, the sender's before its ack (15.1)."""
    mark_s, mark_r = sender.mark(), recipient.mark()
    ack = await sender.ack("page", data)
    c.equal(list(ack.data.get("offline", ["?"])), [], "the ack's offline (everyone connected)")
    own = await sender.wait_event(ack.data["eventId"], "message", after=mark_s)
    got = await recipient.wait_event(ack.data["eventId"], "message", after=mark_r)
    c.expect(sender.frames.index(own) < await sender.index_of(ack), "the message before the ack", None)
    c.expect(got.to_user is None and got.room_id is None, "no toUser and no roomId on a page's frame (6.2)",
             dict(got.raw))
    c.equal(got.from_user, sender.user_id, "fromUser")
    return event_of(got), dict(ack.data)


@section("pages", "protocol.md 15 pages, receipts, haven and blocks", features=("pages",))
async def pages(run: SectionRun) -> None:
    harness = run.harness
    a, b = await harness.players("a", "b")
    offline = await harness.account("c")
    name_a, name_b = a.account.username, b.account.username
    sent: list[str] = []
    async with run.check("a page to a connected player: the vm.page event and its lines (15.3, 15.4)") as c:
        text = harness.text("Coffee later?")
        event, ack = await paged(c, a, b, {"to": [name_b.lower()], "text": text})
        sent.append(ack["eventId"])
        c.equal(event.get("type"), "vm.page", "the event type")
        c.equal(event.get("recipients"), [b.user_id], "recipients")
        content = event.get("content", {})
        c.equal((content.get("kind"), content.get("style"), content.get("body"), content.get("speaker")),
                ("page", "say", text, name_a), "kind, style, body, speaker")
        c.equal(content.get("recipient_names"), [name_b], "recipient_names")
        c.equal(content.get("rendered"), f"{name_a} pages: {text}", "rendered")
        c.equal(content.get("rendered_self"), f"You paged {name_b} with '{text}'.", "rendered_self")
    async with run.check("a posed page, as a command line (15.2)") as c:
        mark_b = b.mark()
        text = harness.text("waves")
        answer = await a.send("command", {"line": f"page {name_b}=:{text}"})
        c.equal(answer.type, "ack", "the answer")
        sent.append(answer.data["eventId"])
        event = event_of(await b.wait_event(answer.data["eventId"], "message", after=mark_b))
        c.equal(event["content"].get("rendered"), f"From afar, {name_a} {text}", "rendered")
        c.equal(event["content"].get("rendered_self"), f"Long distance to {name_b}: {name_a} {text}", "rendered_self")
    async with run.check("a bare page: a notice naming whom one paged last; page =text pages them") as c:
        notice = await a.send("command", {"line": "page"})
        c.equal(notice.type, "notice", "the answer")
        c.equal(notice.data.get("text"), f"You last paged {name_b}.", "the notice's text")
        mark_b = b.mark()
        answer = await a.send("command", {"line": "page =" + harness.text("again")})
        sent.append(answer.data["eventId"])
        await b.wait_event(answer.data["eventId"], "message", after=mark_b)
    async with run.check("to an offline player: ack offline; delivered after their roster; a receipt back") as c:
        mark_a = a.mark()
        ack = await a.ack("page", {"to": [offline.username], "text": harness.text("while you were out")})
        c.equal(list(ack.data.get("offline", [])), [offline.user_id], "the ack's offline")
        page_id = ack.data["eventId"]
        sent_to_c = page_id
        late = await harness.player(offline)
        delivered = await late.wait_event(page_id, "message")
        roster = next(i for i, f in enumerate(late.frames) if f.type == "roster")
        c.expect(late.frames.index(delivered) > roster, "the page after the roster (5.3, 15.5)",
                 [f.type for f in late.frames])
        receipt = await a.wait_type("page_receipt", after=mark_a,
                                    where=lambda f: event_of(f).get("content", {}).get("relates_to") == page_id)
        content = event_of(receipt).get("content", {})
        c.equal((content.get("kind"), content.get("recipient")), ("delivered", offline.user_id), "kind and recipient")
        c.equal(receipt.from_user, offline.user_id, "the receipt's fromUser")
        c.equal(event_of(receipt).get("type"), "vm.receipt", "the receipt's event type")
        c.equal(event_of(receipt).get("recipients"), [a.user_id], "the receipt's recipients")
        await late.close()
    async with run.check("refusals: unknown_user, too_many_recipients, a page to nobody yet") as c:
        error = await a.refused("page", {"to": ["Nobody" + harness.run_id], "text": harness.text("?")},
                                "unknown_user")
        c.equal(error.details.get("name"), "Nobody" + harness.run_id, "details.name")
        most = harness.server.limits.max_page_recipients
        if most < 100:
            error = await a.refused("page", {"to": [name_b] * (most + 1), "text": harness.text("many")},
                                    "too_many_recipients")
            c.equal(error.details.get("maxRecipients"), most, "details.maxRecipients")
    async with run.check("haven: pages refused with not_accepting_pages and the haven message") as c:
        harness.undo(lambda: b.ack("set_haven", {"haven": False}))
        await b.ack("set_haven", {"haven": True, "message": "Writing " + harness.run_id})
        error = await a.refused("page", {"to": [name_b], "text": harness.text("knock")}, "not_accepting_pages")
        c.equal(error.message, f"{name_b} is not accepting pages: Writing {harness.run_id}", "the message")
        c.equal(error.details.get("userId"), b.user_id, "details.userId")
        await b.ack("set_haven", {"haven": False})
        _, ack = await paged(c, a, b, {"to": [name_b], "text": harness.text("after haven")})
        sent.append(ack["eventId"])
    async with run.check("blocks: the blocked get not_accepting_pages, the blocker you_blocked") as c:
        harness.undo(lambda: b.ack("block", {"user": a.user_id, "blocked": False}))
        await b.ack("block", {"user": a.user_id, "blocked": True})
        error = await a.refused("page", {"to": [name_b], "text": harness.text("hello?")}, "not_accepting_pages")
        c.equal(error.message, f"{name_b} is not accepting your pages.", "the message (no word of the block)")
        error = await b.refused("page", {"to": [name_a], "text": harness.text("hi")}, "you_blocked")
        c.equal(error.details.get("userId"), a.user_id, "details.userId")
        await b.refused("block", {"user": b.user_id, "blocked": True}, "invalid_request")
        await b.ack("block", {"user": a.user_id, "blocked": False})
        _, ack = await paged(c, b, a, {"to": [name_a], "text": harness.text("unblocked")})
        sent.append(ack["eventId"])
    async with run.check("page history: the pages between the two, both ways, oldest first (15.9)") as c:
        history = await a.http("GET", "/api/communication/pages/" + path_segment(b.user_id), query={"limit": 100})
        ids = [event["event_id"] for event in history["events"]]
        c.equal([i for i in ids if i in sent], sent, "the pages of this run, in order")
        positions = [event["unsigned"]["stream_position"] for event in history["events"]]
        c.equal(positions, sorted(positions), "oldest first")
        c.expect(sent_to_c not in ids, "no page of another pair", ids)
        for event in history["events"]:
            await a.client.verify_event(event, require_intact=True)
