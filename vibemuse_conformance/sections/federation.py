"""Federation, from the players' side: pages between servers, a channel shared across them
(protocol.md 15.1, 15.5, 16.2; federation.md 9, 10). Needs two or three base URLs.

Whether two servers federate with each other cannot be read from outside but
by trying: each is asked for the other's channel directory
(``GET /api/communication/channels?server=<name>``, 16.11), which it answers
only by asking the other server. ``home_unreachable`` (or federation off)
means they are not configured to federate: the sections are skipped, saying so.
"""

from __future__ import annotations

from vibemuse_client import VibeMuseError
from vibemuse_client.http import path_segment
from vibemuse_conformance.harness import Harness, Server
from vibemuse_conformance.runner import SectionRun, Skip, section
from vibemuse_conformance.sections.channels import notice, rendered
from vibemuse_conformance.sections.rooms import event_of

REMOTE_SECONDS = 30.0  # a federated delivery goes through two outboxes


async def require_federation(harness: Harness, servers: list[Server]) -> None:
    """Skip unless every server reaches every other one (asked through a player of each)."""
    for server in servers:
        account = await harness.account("f", server)
        api = harness.api(server, token=account.token)
        for other in servers:
            if other is server:
                continue
            try:
                await harness.http(api, account.user_id, "GET", "/api/communication/channels",
                                   query={"server": other.name, "limit": 1})
            except VibeMuseError as error:
                if error.code in ("home_unreachable", "invalid_request", "not_found"):
                    raise Skip(f"{server.name} does not reach {other.name} ({error.code}): the servers are not "
                               "configured to federate with each other") from None
                raise


@section("federation-pages", "protocol.md 15.1, 15.5 and federation.md 9: pages between servers",
         features=("pages",), servers=2)
async def federation_pages(run: SectionRun) -> None:
    harness = run.harness
    one, two = harness.servers[:2]
    await require_federation(harness, [one, two])
    a = await harness.player(await harness.account("f", one))
    b = await harness.player(await harness.account("f", two))
    async with run.check("a page by user id: ack remote; the message reaches them; a delivered receipt") as c:
        mark_a, mark_b = a.mark(), b.mark()
        text = harness.text("hello from afar")
        ack = await a.ack("page", {"to": [b.user_id], "text": text})
        c.equal(list(ack.data.get("remote", [])), [b.user_id], "the ack's remote")
        page_id = ack.data["eventId"]
        got = await b.wait_event(page_id, "message", after=mark_b, timeout=REMOTE_SECONDS)
        c.equal(event_of(got)["content"].get("rendered"), f"{a.account.username} pages: {text}", "rendered")
        c.equal(event_of(got).get("origin"), one.name, "the page's origin")
        receipt = await a.wait_type("page_receipt", after=mark_a, timeout=REMOTE_SECONDS,
                                    where=lambda f: event_of(f).get("content", {}).get("relates_to") == page_id)
        content = event_of(receipt)["content"]
        c.equal((content.get("kind"), content.get("recipient")), ("delivered", b.user_id), "kind and recipient")
        c.equal(event_of(receipt).get("origin"), two.name, "the receipt's origin")
    async with run.check("name@server pages the other way, and back") as c:
        mark_a = a.mark()
        ack = await b.ack("page", {"to": [f"{a.account.username}@{one.name}"], "text": harness.text("reply")})
        await a.wait_event(ack.data["eventId"], "message", after=mark_a, timeout=REMOTE_SECONDS)
    async with run.check("a page to nobody there: a refused receipt with unknown_user") as c:
        mark_a = a.mark()
        nobody = f"@nobody{harness.run_id}:{two.name}"
        ack = await a.ack("page", {"to": [nobody], "text": harness.text("anyone?")})
        receipt = await a.wait_type("page_receipt", after=mark_a, timeout=REMOTE_SECONDS,
                                    where=lambda f: event_of(f).get("content", {}).get("relates_to")
                                    == ack.data["eventId"])
        content = event_of(receipt)["content"]
        c.equal((content.get("kind"), content.get("reason")), ("refused", "unknown_user"), "kind and reason")
    async with run.check("each side's page history holds both sides' pages") as c:
        mine = await a.http("GET", "/api/communication/pages/" + path_segment(b.user_id))
        theirs = await b.http("GET", "/api/communication/pages/" + path_segment(a.user_id))
        c.equal(sorted(e["event_id"] for e in mine["events"]), sorted(e["event_id"] for e in theirs["events"]),
                "the same pages on both servers")
        c.expect(len(mine["events"]) >= 2, "both pages", mine["events"])


@section("federation-channels", "protocol.md 16.2 and federation.md 10: a channel shared across servers",
         features=("channels",), servers=2)
async def federation_channels(run: SectionRun) -> None:
    await shared_channel(run, run.harness.servers[:2])


async def shared_channel(run: SectionRun, servers: list[Server]) -> None:
    harness = run.harness
    await require_federation(harness, servers)
    home = servers[0]
    owner = await harness.player(await harness.account("f", home))
    guests = [await harness.player(await harness.account("f", server)) for server in servers[1:]]
    name = f"Cfed{len(servers)}{harness.run_id}"
    channel_id = f"#{name.lower()}:{home.name}"
    async with run.check("a channel of the first server, joined from the others by its id", critical=True) as c:
        await owner.http("POST", "/api/communication/channels", {"name": name})
        for guest in guests:
            mark_o, mark_g = owner.mark(), guest.mark()
            ack = await guest.ack("join_channel", {"channelId": channel_id, "alias": "fed"})
            c.expect(ack.data.get("eventId"), "the join's eventId", dict(ack.data))
            await notice(c, [owner, guest], [mark_o, mark_g], f"<{name}> {guest.account.username} has joined this channel.")
    async with run.check("a message from a guest reaches the home's members and every other server's") as c:
        speaker = guests[-1]
        marks = {id(p): p.mark() for p in [owner, *guests]}
        text = harness.text("across servers")
        ack = await speaker.ack("channel", {"alias": "fed", "text": text})
        for player in [owner, *guests]:
            heard = await player.wait_event(ack.data["eventId"], "channel_message", after=marks[id(player)],
                                            timeout=REMOTE_SECONDS)
            c.equal(rendered(heard), f'<{name}> {speaker.account.username} says, "{text}"', "rendered")
            c.equal(event_of(heard).get("channel_id"), channel_id, "the event's channel")
    async with run.check("a message from the home reaches the guests") as c:
        marks = {id(p): p.mark() for p in guests}
        ack = await owner.ack("channel", {"channelId": channel_id, "text": harness.text("from home")})
        for guest in guests:
            await guest.wait_event(ack.data["eventId"], "channel_message", after=marks[id(guest)],
                                   timeout=REMOTE_SECONDS)
    async with run.check("a guest's copy of the history holds the channel's messages") as c:
        guest = guests[0]
        history = await guest.http("GET", "/api/communication/channels/" + path_segment(channel_id) + "/history")
        c.expect(ack.data["eventId"] in [e["event_id"] for e in history["events"]], "the home's message", history)
        for event in history["events"]:
            await guest.client.verify_event(event, require_intact=True)
    async with run.check("leaving from a guest's server: the home tells the members") as c:
        guest = guests[0]
        mark_o = owner.mark()
        await guest.ack("leave_channel", {"channelId": channel_id})
        await notice(c, [owner], [mark_o], f"<{name}> {guest.account.username} has left this channel.")


@section("federation-three", "federation.md 10: a channel relayed to a third server", features=("channels",),
         servers=3)
async def federation_three(run: SectionRun) -> None:
    """The shared channel with guests of two other servers: the third's messages reach the second's."""
    await shared_channel(run, run.harness.servers[:3])
