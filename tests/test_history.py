"""Histories over real sockets and HTTP, on both engines: rooms, channels and page
conversations share one query (cursors, kind/sender/time filters, full-text search),
and each has its access rule; the queries use indexes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlencode

import pytest

from tests.support.client import acked, refused
from vibemuse.protocol.visibility import Floor
from vibemuse.storage import create_database_engine, ensure_schema, history_txns
from vibemuse.storage.history_txns import HistoryQuery, history_select

SERVER = "test.localhost"


def room_path(room_id: str) -> str:
    return "/api/communication/history/" + quote(room_id, safe="")


def channel_path(ref: str) -> str:
    return f"/api/communication/channels/{quote(ref, safe='')}/history"


def page_path(ref: str) -> str:
    return f"/api/communication/pages/{quote(ref, safe='')}"


async def read(world, path, player, **params):
    """A history that must be served: the body, checked against http/event-page.json."""
    query = urlencode(params, doseq=True)
    status, body = await world.api.call("GET", path + ("?" + query if query else ""), token=player.token,
                                        schema="event-page")
    assert status == 200, body
    positions = [event["unsigned"]["stream_position"] for event in body["events"]]
    assert positions == sorted(positions), "oldest first"
    return body


async def refusal(world, path, player, **params):
    query = urlencode(params, doseq=True)
    status, body = await world.api.call("GET", path + ("?" + query if query else ""),
                                        token=player.token if player else None)
    return status, body["error"]


def bodies(body):
    return [event["content"]["body"] for event in body["events"] if "body" in event["content"]]


def positions(body):
    return [event["unsigned"]["stream_position"] for event in body["events"]]


async def in_room(world, name="Library"):
    """A builder's room with Alice in it."""
    wizard = await world.player("Wizard", role="builder")
    room = await world.room(name, wizard)
    alice = await world.player("Alice")
    await acked(alice.ws, "join_room", {"roomId": room})
    return room, wizard, alice


# -- rooms: who may read ------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_room_history_is_for_those_in_the_room_now(world):
    room, _, alice = await in_room(world)
    bob = await world.player("Bob")
    admin = await world.player("Root", role="admin")
    await acked(bob.ws, "join_room", {"roomId": room})
    await acked(alice.ws, "say", {"text": "one"})
    await acked(bob.ws, "pose", {"text": "nods."})
    body = await read(world, room_path(room), alice)
    assert bodies(body) == ["one", "nods."] and body["next"] is None
    arrivals = [e["content"]["speaker"] for e in body["events"] if e["type"] == "vm.room.member"]
    assert arrivals == ["Alice", "Bob"]
    assert all(event["room_id"] == room for event in body["events"])

    carol = await world.player("Carol")  # in the default room
    status, error = await refusal(world, room_path(room), carol)
    assert (status, error["code"]) == (403, "not_in_room")
    assert error["details"] == {"location": carol.session["location"]}
    await acked(carol.ws, "join_room", {"roomId": room})
    assert bodies(await read(world, room_path(room), carol)) == ["one", "nods."]  # what came before too

    await acked(alice.ws, "leave_room", {})  # a past visit does not count
    status, error = await refusal(world, room_path(room), alice)
    assert (status, error["code"]) == (403, "not_in_room")
    assert bodies(await read(world, room_path(room), admin)) == ["one", "nods."]  # admins read any room
    assert (await read(world, room_path(carol.session["location"]), alice))["events"]  # the square: Alice's moves

    status, error = await refusal(world, room_path("not-a-room"), alice)
    assert (status, error["code"]) == (400, "invalid_room_id")
    status, error = await refusal(world, room_path(f"!AAAAAAAAAAAAAAAA:{SERVER}"), alice)
    assert (status, error["code"]) == (404, "room_not_found")
    status, error = await refusal(world, room_path(room), None)
    assert (status, error["code"]) == (401, "not_authenticated")


# -- cursors ---------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_cursors_go_back_with_before_and_forward_with_after(world):
    room, _, alice = await in_room(world)
    for n in range(7):
        await acked(alice.ws, "say", {"text": f"m{n}"})
    everything = await read(world, room_path(room), alice)
    assert bodies(everything) == [f"m{n}" for n in range(7)] and len(everything["events"]) == 8  # + arrival
    all_positions = positions(everything)

    newest = await read(world, room_path(room), alice, limit=3)
    assert bodies(newest) == ["m4", "m5", "m6"] and newest["next"] == str(all_positions[5])
    older = await read(world, room_path(room), alice, limit=3, before=newest["next"])
    assert bodies(older) == ["m1", "m2", "m3"] and older["next"] == str(all_positions[2])
    oldest = await read(world, room_path(room), alice, limit=3, before=older["next"])
    assert positions(oldest) == all_positions[:2] and oldest["next"] is None  # nothing older: no cursor

    first = await read(world, room_path(room), alice, limit=3, after=all_positions[0])
    assert bodies(first) == ["m0", "m1", "m2"] and first["next"] == str(all_positions[3])
    second = await read(world, room_path(room), alice, limit=3, after=first["next"])
    assert bodies(second) == ["m3", "m4", "m5"] and second["next"] == str(all_positions[6])
    last = await read(world, room_path(room), alice, limit=3, after=second["next"])
    assert bodies(last) == ["m6"] and last["next"] is None
    assert (await read(world, room_path(room), alice, after=all_positions[-1]))["events"] == []
    exact = await read(world, room_path(room), alice, limit=7, before=all_positions[-1] + 1)
    assert exact["next"] == str(all_positions[1])  # one more event (the arrival) is older


@pytest.mark.parametrize("params, word", [
    ({"before": 5, "after": 2}, "at most one"),
    ({"before": 0}, "before"), ({"before": "abc"}, "before"), ({"after": "-3"}, "after"),
    ({"before": str(2**62 + 1)}, "before"),
    ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "ten"}, "limit"),
    ({"kind": "shout"}, "kind"), ({"kind": "say,whisper"}, "kind"),
    ({"sender": "!!"}, "sender"), ({"sender": "@bad"}, "sender"),
    ({"since": "yesterday"}, "since"), ({"until": "2026-01-01"}, "until"), ({"since": "2026-01-01T00:00:00"}, "since"),
    ({"since": "2026-13-01T00:00:00Z"}, "since"), ({"until": "1" * 16}, "until"),
    ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since"),
    ({"q": "!!! ..."}, "q"), ({"q": "x" * 201}, "q"), ({"q": ""}, "q"),
    ({"q": " ".join(f"w{n}" for n in range(17))}, "q"),
])
@pytest.mark.gen_test(timeout=30)
async def test_bad_queries_are_invalid_requests_and_change_nothing(world, params, word):
    room, _, alice = await in_room(world)
    before = world.event_count()
    for path in (room_path(room), page_path("alice"), channel_path("nowhere")):
        status, error = await refusal(world, path, alice, **params)
        assert (status, error["code"]) == (400, "invalid_request"), (path, error)
        assert word in error["message"]
    assert world.event_count() == before


# -- filters ----------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_kind_and_sender_filters(world):
    room, wizard, alice = await in_room(world)
    await acked(wizard.ws, "join_room", {"roomId": room})
    bob = await world.player("Bob")
    await acked(alice.ws, "say", {"text": "s1"})
    await acked(alice.ws, "pose", {"text": "p1"})
    await acked(alice.ws, "command", {"line": ";'s hat tips."})
    await acked(alice.ws, "ooc", {"text": "o1"})
    await acked(wizard.ws, "emit", {"text": "e1"})
    await acked(bob.ws, "join_room", {"roomId": room})
    await acked(bob.ws, "say", {"text": "b1"})
    await acked(bob.ws, "leave_room", {})
    path = room_path(room)

    assert bodies(await read(world, path, alice, kind="pose")) == ["p1"]
    assert bodies(await read(world, path, alice, kind="pose,SEMIPOSE")) == ["p1", "'s hat tips."]
    assert bodies(await read(world, path, alice, kind=["say", "ooc"])) == ["s1", "o1", "b1"]
    assert bodies(await read(world, path, alice, kind="emit")) == ["e1"]
    joins = await read(world, path, alice, kind="join")
    assert [e["content"]["speaker"] for e in joins["events"]] == ["Alice", "Wizard", "Bob"]
    assert {e["content"]["membership"] for e in joins["events"]} == {"join"}
    leaves = await read(world, path, alice, kind="leave")
    assert [(e["content"]["speaker"], e["type"]) for e in leaves["events"]] == [("Bob", "vm.room.member")]
    assert (await read(world, path, alice, kind="page,channel,wall,moderation,settings"))["events"] == []

    by_bob = await read(world, path, alice, sender="bob")
    assert {e["sender"] for e in by_bob["events"]} == {bob.user_id} and len(by_bob["events"]) == 3
    assert by_bob == await read(world, path, alice, sender=bob.user_id)
    assert bodies(await read(world, path, alice, sender="Alice", kind="say,pose")) == ["s1", "p1"]
    assert (await read(world, path, alice, sender="wizard", kind="say"))["events"] == []
    limited = await read(world, path, alice, sender="alice", limit=2)
    assert len(limited["events"]) == 2 and limited["next"] is not None  # filters and cursors combine
    rest = await read(world, path, alice, sender="alice", before=limited["next"])
    assert [e["sender"] for e in rest["events"]] == [alice.user_id] * 3

    status, error = await refusal(world, path, alice, sender="nobody")
    assert (status, error["code"], error["details"]) == (404, "unknown_user", {"name": "nobody"})


def rfc3339(ms: int, hours: int = 0) -> str:
    zone = timezone(timedelta(hours=hours))
    return datetime.fromtimestamp(ms / 1000, tz=zone).isoformat(timespec="milliseconds")


@pytest.mark.gen_test(timeout=30)
async def test_time_range(world, clock):
    room, _, alice = await in_room(world)
    start = clock()
    await acked(alice.ws, "say", {"text": "early"})
    clock.advance(3600)
    await acked(alice.ws, "say", {"text": "middle"})
    clock.advance(3600)
    await acked(alice.ws, "say", {"text": "late"})
    path = room_path(room)
    half_hour, hour_and_half = start + 1_800_000, start + 5_400_000

    assert bodies(await read(world, path, alice, since=half_hour)) == ["middle", "late"]
    assert bodies(await read(world, path, alice, until=rfc3339(half_hour))) == ["early"]
    window = await read(world, path, alice, since=rfc3339(half_hour, 2), until=rfc3339(hour_and_half, -5))
    assert bodies(window) == ["middle"]
    exact = await read(world, path, alice, since=start + 3_600_000, until=start + 7_200_000)
    assert bodies(exact) == ["middle"]  # since is inclusive, until exclusive
    zulu = datetime.fromtimestamp(start / 1000 + 3600, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert bodies(await read(world, path, alice, since=zulu, kind="say")) == ["middle", "late"]


# -- search -----------------------------------------------------------------------------

LINES = [
    "The dragon sleeps in the cave.",
    "A red dragon flies over the library.",
    "Tea is served in the library.",
    "Beware the dragon's hoard!",
    'He wrote "NEAR(dragon AND * OR -tea: ^ in the margin.',
]


@pytest.mark.gen_test(timeout=30)
async def test_search_matches_whole_words_and_never_breaks(world):
    room, _, alice = await in_room(world)
    for line in LINES:
        await acked(alice.ws, "say", {"text": line})
    path = room_path(room)

    assert bodies(await read(world, path, alice, q="dragon")) == [LINES[0], LINES[1], LINES[3], LINES[4]]
    assert bodies(await read(world, path, alice, q="DRAGON library")) == [LINES[1]]  # every word, any case
    assert bodies(await read(world, path, alice, q="tea")) == [LINES[2], LINES[4]]
    assert bodies(await read(world, path, alice, q="drag")) == []  # whole words only
    for tricky in ('NEAR(', '"unbalanced', "AND", "dragon*", "-tea", "tea:", "^in", "a OR b", "NOT", "it's", "(x"):
        await read(world, path, alice, q=tricky)  # FTS syntax is never read as such: no error
    assert bodies(await read(world, path, alice, q='"NEAR(dragon AND')) == [LINES[4]]
    assert bodies(await read(world, path, alice, q="margin", kind="pose")) == []
    newest = await read(world, path, alice, q="dragon", limit=2)
    assert bodies(newest) == [LINES[3], LINES[4]] and newest["next"] is not None
    older = await read(world, path, alice, q="dragon", before=newest["next"])
    assert bodies(older) == [LINES[0], LINES[1]] and older["next"] is None
    forward = await read(world, path, alice, q="library", after=positions(older)[0])
    assert bodies(forward) == [LINES[1], LINES[2]]


@pytest.mark.gen_test(timeout=30)
async def test_both_search_plans_give_the_same_answers(world, server, monkeypatch):
    """SQLite drives a search by the FTS index or by the room's, whichever its probes find
    cheaper; each way gives the same events (on PostgreSQL the planner chooses)."""
    room, wizard, alice = await in_room(world)
    closet = await world.room("Closet", wizard)
    bob = await world.player("Bob")
    await acked(bob.ws, "join_room", {"roomId": room})
    for n in range(30):
        speaker = alice if n % 3 else bob
        await acked(speaker.ws, "say", {"text": f"common words {'rare' if n % 7 == 0 else 'plain'} line {n}"})
    await acked(bob.ws, "join_room", {"roomId": closet})
    await acked(bob.ws, "say", {"text": "common words in the closet"})
    monkeypatch.setattr(history_txns, "PROBE_ROWS", 4)
    queries = [
        HistoryQuery(limit=5, room_id=closet, words=("common",)),  # a common word in a quiet room
        HistoryQuery(limit=5, room_id=closet, words=("closet",)),
        HistoryQuery(limit=5, room_id=room, words=("common",)),
        HistoryQuery(limit=5, room_id=room, words=("rare",)),
        HistoryQuery(limit=5, room_id=room, words=("common", "line"), sender=bob.user_id),
        HistoryQuery(limit=3, room_id=room, words=("common",), before=40),
        HistoryQuery(limit=3, room_id=room, words=("plain",), after=10),
        HistoryQuery(limit=50, room_id=room, words=("rare",), kinds=("say",)),
    ]
    engine = server.context.storage.engine
    chosen = set()
    for query in queries:
        with engine.connect() as connection:
            answers = {str(connection.execute(history_select(query, engine.dialect.name, fts_first=lead)).all())
                       for lead in (True, False)} if engine.dialect.name == "sqlite" else {None}
            if engine.dialect.name == "sqlite":
                chosen.add(history_txns._fts_leads(connection, query))
        assert len(answers) == 1, query
        page = await server.context.storage.history(query)
        assert page.events and all(set(query.words) <= set(e["content"]["body"].split()) for e in page.events)
    if engine.dialect.name == "sqlite":
        assert chosen == {True, False}  # both plans were exercised


# -- channels ----------------------------------------------------------------------------


async def create_channel(world, player, name="Lore", **body):
    status, created = await world.api.call("POST", "/api/communication/channels", {"name": name, **body},
                                           token=player.token, schema="channel-joined")
    assert status == 201, created
    return created["channel"]


@pytest.mark.gen_test(timeout=30)
async def test_channel_history_for_members_and_joined_visibility(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    mallory = await world.player("Mallory")
    admin = await world.player("Root", role="admin")
    channel = await create_channel(world, alice, historyVisibility="joined")
    assert (channel["historyVisibility"], channel["retentionDays"]) == ("joined", None)
    channel_id = channel["id"]
    await acked(alice.ws, "channel", {"channelId": channel_id, "text": "before bob"})
    await acked(bob.ws, "join_channel", {"channelId": "lore"})
    await acked(alice.ws, "channel", {"channelId": channel_id, "text": "after bob"})

    seen = await read(world, channel_path(channel_id), bob)
    first = seen["events"][0]
    assert (first["type"], first["content"]["membership"], first["content"]["target"]) == (
        "vm.channel.member", "join", bob.user_id)  # from his own join on
    assert bodies(seen) == ["after bob"]
    assert bodies(await read(world, channel_path("lore"), alice)) == ["before bob", "after bob"]
    full = await read(world, channel_path(channel_id), admin)  # admins: all, members or not
    assert full["events"][0]["type"] == "vm.channel.create" and bodies(full) == ["before bob", "after bob"]

    await acked(bob.ws, "leave_channel", {"channelId": channel_id})
    status, error = await refusal(world, channel_path(channel_id), bob)
    assert (status, error["code"]) == (403, "not_a_member")
    await acked(alice.ws, "channel", {"channelId": channel_id, "text": "while away"})
    await acked(bob.ws, "join_channel", {"channelId": channel_id})
    again = await read(world, channel_path(channel_id), bob)
    assert bodies(again) == [] and again["events"][0]["content"]["membership"] == "join"  # the latest join
    assert (await read(world, channel_path(channel_id), bob, after=0, kind="channel"))["events"] == []
    assert (await read(world, channel_path(channel_id), bob, q="before"))["events"] == []

    status, error = await refusal(world, channel_path(channel_id), mallory)
    assert (status, error["code"]) == (403, "not_a_member")
    assert (await refused(bob.ws, "channel_update", {"channelId": channel_id,
                                                     "historyVisibility": "shared"}))["code"] == "forbidden"
    await acked(alice.ws, "channel_update", {"channelId": channel_id, "historyVisibility": "shared"})
    notice = await bob.ws.receive_type("channel_notice")
    while notice["data"]["event"]["type"] != "vm.channel.settings":
        notice = await bob.ws.receive_type("channel_notice")
    assert notice["data"]["event"]["content"]["rendered"] == "<Lore> Alice shared the history with all members."
    assert bodies(await read(world, channel_path(channel_id), bob)) == ["before bob", "after bob", "while away"]


@pytest.mark.gen_test(timeout=30)
async def test_channel_retention_is_for_admins_and_private_channels_stay_unknown(world):
    alice = await world.player("Alice")
    admin = await world.player("Root", role="admin")
    stranger = await world.player("Mallory")
    channel = await create_channel(world, alice, "Staff", visibility="private")
    assert channel["historyVisibility"] == "shared"
    error = await refused(alice.ws, "channel_update", {"channelId": "staff", "retentionDays": 30})
    assert error["code"] == "forbidden"
    await acked(admin.ws, "channel_update", {"channelId": "staff", "retentionDays": 30})
    status, detail = await world.api.call("GET", "/api/communication/channels/staff", token=alice.token,
                                          schema="channel-detail")
    assert detail["channel"]["retentionDays"] == 30
    settings = await read(world, channel_path("staff"), alice, kind="settings")
    assert [e["content"].get("retention_days") for e in settings["events"]] == [None, 30]
    assert settings["events"][-1]["content"]["rendered"] == "<Staff> Root kept the history for 30 days."
    await acked(admin.ws, "channel_update", {"channelId": "staff", "retentionDays": None})
    status, detail = await world.api.call("GET", "/api/communication/channels/staff", token=alice.token)
    assert detail["channel"]["retentionDays"] is None
    status, error = await refusal(world, channel_path("staff"), stranger)
    assert (status, error["code"]) == (404, "unknown_channel")


@pytest.mark.gen_test(timeout=30)
async def test_channel_filters(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    carol = await world.player("Carol")
    channel_id = (await create_channel(world, alice, "Public"))["id"]
    for player in (bob, carol):
        await acked(player.ws, "join_channel", {"channelId": channel_id})
    await acked(bob.ws, "channel", {"channelId": channel_id, "text": "hello dragons"})
    await acked(carol.ws, "command", {"line": "@chat public=:waves at the dragons"})
    await acked(alice.ws, "channel_moderate", {"channelId": channel_id, "action": "kick", "user": "carol"})
    await acked(alice.ws, "channel_update", {"channelId": channel_id, "topic": "Dragons"})
    path = channel_path(channel_id)

    assert bodies(await read(world, path, alice, kind="channel")) == ["hello dragons", "waves at the dragons"]
    joins = await read(world, path, alice, kind="join")
    assert [e["content"]["target_name"] for e in joins["events"]] == ["Alice", "Bob", "Carol"]
    moderation = await read(world, path, alice, kind="moderation")
    assert [(e["content"]["membership"], e["content"]["target_name"]) for e in moderation["events"]] == [
        ("kick", "Carol")]
    settings = await read(world, path, alice, kind="settings")
    assert [e["type"] for e in settings["events"]] == ["vm.channel.create", "vm.channel.settings"]
    assert bodies(await read(world, path, alice, sender="carol")) == ["waves at the dragons"]
    assert bodies(await read(world, path, bob, q="dragons", sender="bob")) == ["hello dragons"]
    assert (await read(world, path, bob, kind="say,pose,page"))["events"] == []  # room and page kinds


# -- pages -------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_page_history_filters_and_another_pairs_pages(world):
    alice = await world.player("Alice")
    bob = await world.player("Bob")
    carol = await world.player("Carol")
    await acked(alice.ws, "page", {"to": ["bob"], "text": "secret plan one"})
    await acked(bob.ws, "page", {"to": ["alice"], "text": "plan two?"})
    await acked(alice.ws, "page", {"to": ["bob", "carol"], "text": "group plan"})
    await acked(carol.ws, "page", {"to": ["bob"], "text": "carol to bob plan"})
    await acked(alice.ws, "page", {"to": ["carol"], "text": "alice to carol"})

    assert bodies(await read(world, page_path("bob"), alice)) == ["secret plan one", "plan two?", "group plan"]
    assert bodies(await read(world, page_path("alice"), bob, q="plan")) == [
        "secret plan one", "plan two?", "group plan"]
    assert bodies(await read(world, page_path("bob"), alice, sender="bob")) == ["plan two?"]
    assert bodies(await read(world, page_path(bob.user_id), alice, kind="page", q="secret")) == ["secret plan one"]
    assert (await read(world, page_path("bob"), alice, kind="say"))["events"] == []
    # Carol asking about Bob sees only her own pages with him, whatever she searches for.
    assert bodies(await read(world, page_path("bob"), carol)) == ["carol to bob plan"]
    assert bodies(await read(world, page_path("bob"), carol, q="secret")) == []
    assert bodies(await read(world, page_path("carol"), alice)) == ["group plan", "alice to carol"]
    first = await read(world, page_path("bob"), alice, limit=1, after=0)
    assert bodies(first) == ["secret plan one"] and first["next"] is not None
    rest = await read(world, page_path("bob"), alice, after=first["next"])
    assert bodies(rest) == ["plan two?", "group plan"] and rest["next"] is None
    status, error = await refusal(world, page_path("nobody"), alice)
    assert (status, error["code"]) == (404, "unknown_user")


# -- indexes -----------------------------------------------------------------------------

ROOM, CHANNEL = f"!AAAAAAAAAAAAAAAA:{SERVER}", f"#lore:{SERVER}"
ALICE, BOB = f"@alice:{SERVER}", f"@bob:{SERVER}"
INDEXED_QUERIES = {
    "room": HistoryQuery(limit=50, room_id=ROOM),
    "room before": HistoryQuery(limit=50, room_id=ROOM, before=1000),
    "room after": HistoryQuery(limit=50, room_id=ROOM, after=1000),
    "room kind": HistoryQuery(limit=50, room_id=ROOM, kinds=("pose", "join")),
    "room sender": HistoryQuery(limit=50, room_id=ROOM, sender=ALICE, kinds=("say",)),
    "room time": HistoryQuery(limit=50, room_id=ROOM, since_ms=1, until_ms=2),
    "room search": HistoryQuery(limit=50, room_id=ROOM, words=("dragon",)),
    "channel": HistoryQuery(limit=50, channel_id=CHANNEL, before=1000),
    "channel joined": HistoryQuery(limit=50, channel_id=CHANNEL, viewer=BOB, floor=Floor(position=10), kinds=("channel",)),
    "channel joined by time": HistoryQuery(limit=50, channel_id=CHANNEL, viewer=BOB, floor=Floor(ts=10), after=5),
    "channel joined search": HistoryQuery(limit=50, channel_id=CHANNEL, viewer=BOB, floor=Floor(position=10),
                                          words=("dragon",)),
    "channel sender": HistoryQuery(limit=50, channel_id=CHANNEL, sender=BOB),
    "channel search": HistoryQuery(limit=50, channel_id=CHANNEL, words=("dragon", "cave"), after=5),
    "pages": HistoryQuery(limit=50, conversation=(ALICE, BOB), before=1000),
    "pages search": HistoryQuery(limit=50, conversation=(ALICE, BOB), words=("plan",), sender=BOB),
}


@pytest.fixture
def fresh_engine(database_url):
    engine = create_database_engine(database_url, pool_size=1)
    ensure_schema(engine, auto_migrate=False)
    yield engine
    engine.dispose()


def plan(connection, select_statement, dialect) -> list[str]:
    sql = str(select_statement.compile(connection, compile_kwargs={"literal_binds": True}))
    if dialect == "sqlite":
        return [row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    return [row[0] for row in connection.exec_driver_sql("EXPLAIN " + sql)]


@pytest.mark.parametrize("name", sorted(INDEXED_QUERIES))
def test_history_queries_use_indexes(fresh_engine, name):
    """No history query reads a whole table: on SQLite every step is a SEARCH through an
    index (or the FTS index); on PostgreSQL, with sequential scans priced out, none is left."""
    query, dialect = INDEXED_QUERIES[name], fresh_engine.dialect.name
    with fresh_engine.connect() as connection, connection.begin():
        for fts_first in ((True, False) if dialect == "sqlite" and query.words and not query.conversation
                          else (False,)):
            steps = plan(connection, history_select(query, dialect, fts_first=fts_first), dialect)
            if dialect == "sqlite":
                tables = [step for step in steps if step.startswith(("SCAN ", "SEARCH "))]
                assert tables and all(step.startswith(("SEARCH ", "SCAN events_fts VIRTUAL", "SCAN anon_",
                                                       "SCAN (subquery")) for step in tables), steps
                assert any("INDEX" in step or "PRIMARY KEY" in step for step in tables), steps
                if name.startswith("room") and not query.words:
                    assert any("ix_events_room" in step for step in steps), steps
                if name.startswith("channel") and not query.words:
                    assert any("ix_events_channel" in step for step in steps), steps
                if "sender" in name and not query.words:
                    assert any("sender_position" in step for step in steps), steps
            else:
                assert not [step for step in steps if "Seq Scan on events" in step
                            or "Seq Scan on event_recipients" in step], steps
                assert any("Index" in step for step in steps), steps
