"""The visibility rule in its two forms: ``may_see`` (pure, for single events, live
fan-out and the resume replay) and its SQL (channel histories and search) decide the
same, event by event, on both engines."""

from __future__ import annotations

import random

import pytest

from vibemuse.protocol.visibility import WHOLE_HISTORY, Floor, Viewer, channel_floor, may_see, target_of
from vibemuse.storage import create_database_engine, ensure_schema
from vibemuse.storage.event_txns import append_events_txn
from vibemuse.storage.history_txns import HistoryQuery, history_select

CHANNEL, OTHER_CHANNEL = "#lore:test", "#other:test"
VIEWER, AUTHOR, MODERATOR = "@viewer:test", "@olive:test", "@mod:test"
GONE = "$" + "G" * 43  # an event the server no longer keeps


def _event(number: int, event_type: str, sender: str, content: dict) -> dict:
    return {"event_id": f"${number:043d}", "type": event_type, "sender": sender, "channel_id": CHANNEL,
            "origin_server_ts": 1000 * number, "content": content}


def _stream(seed: int, count: int = 60) -> list[dict]:
    """Messages by three users, kicks and invitations, edits and deletions of earlier messages
    (some of a target that is gone)."""
    chooser, made = random.Random(seed), []
    for number in range(1, count + 1):
        messages = [event for event in made if event["type"] == "vm.channel.message"]
        roll = chooser.random()
        if roll < 0.5 or not messages:
            sender = chooser.choice((VIEWER, AUTHOR, MODERATOR))
            body = chooser.choice(("fruit tea", "plain tea"))
            made.append(_event(number, "vm.channel.message", sender, {"kind": "channel", "body": body}))
        elif roll < 0.6:
            target = chooser.choice((VIEWER, AUTHOR))
            made.append(_event(number, "vm.channel.member", MODERATOR,
                               {"membership": chooser.choice(("kick", "invite")), "target": target}))
        elif roll < 0.85:
            target = chooser.choice(messages + [{"event_id": GONE, "sender": AUTHOR}])
            made.append(_event(number, "vm.edit", target["sender"],
                               {"relates_to": target["event_id"], "new_content": {"body": "edited"}}))
        else:
            target = chooser.choice(messages)
            made.append(_event(number, "vm.redaction", chooser.choice((target["sender"], MODERATOR)),
                               {"redacts": target["event_id"]}))
    return made


@pytest.fixture
def stored_stream(database_url):
    """A channel's stream, stored; each event with the position it got."""
    engine = create_database_engine(database_url, pool_size=1)
    ensure_schema(engine, auto_migrate=False)
    stream = _stream(seed=7)
    with engine.begin() as connection:
        positions = append_events_txn(connection, stream, None, None, 0).positions
    for event, position in zip(stream, positions):
        event["unsigned"] = {"stream_position": position}
    yield engine, stream
    engine.dispose()


FLOORS = [WHOLE_HISTORY, Floor(position=1), Floor(position=15), Floor(position=30), Floor(position=61),
          Floor(ts=20_000), Floor(ts=45_500)]


@pytest.mark.parametrize("words", [(), ("fruit",)])
def test_the_sql_form_decides_like_may_see(stored_stream, words):
    engine, stream = stored_stream
    by_id = {event["event_id"]: event for event in stream}
    dialect = engine.dialect.name
    plans = (False, True) if dialect == "sqlite" and words else (False,)
    with engine.connect() as connection:
        for floor in FLOORS:
            viewer = Viewer(VIEWER, channels={CHANNEL: floor})
            expected = [event["unsigned"]["stream_position"] for event in stream
                        if may_see(viewer, event, by_id.get(target_of(event) or ""))
                        and (not words or "fruit" in event["content"].get("body", ""))]
            query = HistoryQuery(limit=100, channel_id=CHANNEL, viewer=VIEWER, floor=floor, words=words, after=0)
            for fts_first in plans:
                rows = connection.execute(history_select(query, dialect, fts_first=fts_first)).all()
                assert [row.stream_position for row in rows] == expected, (floor, fts_first)
            assert 0 < len(expected) <= len(stream)
    hidden_edit = any(not may_see(Viewer(VIEWER, channels={CHANNEL: Floor(position=30)}), event, by_id.get(
        target_of(event) or "")) and event["unsigned"]["stream_position"] >= 30 for event in stream)
    assert hidden_edit, "the stream has an edit or deletion after the floor of a message before it"


def _at(position: int, **event) -> dict:
    return {"origin_server_ts": position, "unsigned": {"stream_position": position}, "content": {}, **event}


ROOM = "!AAAAAAAAAAAAAAAA:test"
MESSAGE = _at(5, type="vm.channel.message", sender=AUTHOR, channel_id=CHANNEL, event_id="$m")
EDIT = _at(9, type="vm.edit", sender=AUTHOR, channel_id=CHANNEL, content={"relates_to": "$m"})
DELETION = _at(9, type="vm.redaction", sender=MODERATOR, channel_id=CHANNEL, content={"redacts": "$m"})
KICK = _at(8, type="vm.channel.member", sender=MODERATOR, channel_id=CHANNEL,
           content={"membership": "kick", "target": VIEWER})
SAID = _at(3, type="vm.room.message", sender=AUTHOR, room_id=ROOM)
PAGE = _at(4, type="vm.page", sender=AUTHOR, recipients=[MODERATOR])
WALL = _at(6, type="vm.system", sender=AUTHOR)
WALL_EDIT = _at(7, type="vm.edit", sender=AUTHOR, content={"relates_to": "$w"})


@pytest.mark.parametrize("viewer, event, target, seen", [
    (Viewer(VIEWER, channels={CHANNEL: WHOLE_HISTORY}), MESSAGE, None, True),
    (Viewer(VIEWER, channels={CHANNEL: Floor(position=6)}), MESSAGE, None, False),  # joined after it
    (Viewer(VIEWER, channels={CHANNEL: Floor(position=5)}), MESSAGE, None, True),  # the floor is included
    (Viewer(VIEWER, channels={CHANNEL: Floor(ts=6)}), MESSAGE, None, False),  # a join kept by its time
    (Viewer(VIEWER, channels={OTHER_CHANNEL: WHOLE_HISTORY}), MESSAGE, None, False),  # not a member
    (Viewer(VIEWER, channels={CHANNEL: Floor(position=6)}), EDIT, MESSAGE, False),  # the edit of a hidden message
    (Viewer(VIEWER, channels={CHANNEL: Floor(position=6)}), DELETION, MESSAGE, False),
    (Viewer(VIEWER, channels={CHANNEL: Floor(position=6)}), EDIT, None, True),  # its message is gone
    (Viewer(VIEWER, channels={CHANNEL: WHOLE_HISTORY}), EDIT, MESSAGE, True),
    (Viewer(AUTHOR, channels={CHANNEL: Floor(position=6)}), DELETION, MESSAGE, True),  # their own message
    (Viewer(AUTHOR), MESSAGE, None, True),  # authors see their own, members or not
    (Viewer(VIEWER, admin=True), DELETION, MESSAGE, True),
    (Viewer(VIEWER), KICK, None, True),  # a kicked member sees their kick, member no more
    (Viewer(AUTHOR, channels={CHANNEL: Floor(position=9)}), KICK, None, False),
    (Viewer(VIEWER, room_id=ROOM), SAID, None, True),
    (Viewer(VIEWER, room_id="!BBBBBBBBBBBBBBBB:test"), SAID, None, False),  # stands elsewhere now
    (Viewer(MODERATOR), PAGE, None, True),
    (Viewer(VIEWER), PAGE, None, False),
    (Viewer(VIEWER), WALL, None, True),
    (Viewer(VIEWER), WALL_EDIT, WALL, True),
])
def test_may_see(viewer, event, target, seen):
    assert may_see(viewer, event, target) is seen


def test_channel_floor():
    assert channel_floor("shared", 40, 123) == WHOLE_HISTORY
    assert channel_floor("joined", 40, 123) == Floor(position=40)
    assert channel_floor("joined", None, 123) == Floor(ts=123)
