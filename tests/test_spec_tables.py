"""protocol.md's summary tables, the quick start and what the tables read from
the sources: generated tables equal their sources, every section named exists,
envelope fields and unsigned keys are enforced by the schemas."""

from __future__ import annotations

import json
import re

import pytest

from tests.support import spec_tables
from tests.test_spec import ERRORS_JSON, EXAMPLES, SCHEMA_DOCS, SPEC, V1, frame_types, load_json, validator
from vibemuse.config import Config
from vibemuse.handlers.wire import limits_to_wire

# -- the summary tables of protocol.md ---------------------------------------

PROTOCOL_TEXT = (V1 / "protocol.md").read_text(encoding="utf-8")
TABLE_SOURCES = spec_tables.Sources()


@pytest.mark.parametrize("name", sorted(spec_tables.TABLES))
def test_protocol_md_table_is_what_the_generator_makes(name: str) -> None:
    """Fix with ``python -m tests.support.spec_tables --write`` (edit the source, not the table)."""
    assert name not in spec_tables.stale_tables(PROTOCOL_TEXT, TABLE_SOURCES), (
        f"protocol.md's {name} table is stale: run python -m tests.support.spec_tables --write")


@pytest.mark.parametrize("direction", ["client", "server"])
def test_frame_schemas_declare_what_the_tables_need(direction: str) -> None:
    """A new frame schema must say its section, and its answer (client) or envelope fields (server)."""
    needs = ["x-section", "x-answer"] if direction == "client" else ["x-section"]
    for name, schema in TABLE_SOURCES.frames(direction).items():
        assert all(key in schema for key in needs), (name, needs)
        if direction == "server":
            declared = set(schema["properties"])
            assert {"fromUser", "toUser", "roomId", "channelId"} <= declared, (name, "envelope fields")


def test_every_operation_says_its_section() -> None:
    assert [(path, method) for path, method, operation in TABLE_SOURCES.operations()
            if "x-section" not in operation] == []


def test_the_table_check_catches_a_hand_edit() -> None:
    edited = PROTOCOL_TEXT.replace("| 4009 | SPAM |", "| 4010 | SPAM |")
    assert edited != PROTOCOL_TEXT and spec_tables.stale_tables(edited, TABLE_SOURCES) == ["close-codes"]
    assert spec_tables.render(edited, TABLE_SOURCES) == PROTOCOL_TEXT


def _headings(text: str) -> set[str]:
    return set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, re.M))


def test_every_section_a_source_names_exists() -> None:
    own, events = _headings(PROTOCOL_TEXT), _headings((V1 / "events.md").read_text(encoding="utf-8"))
    federation = _headings((V1 / "federation.md").read_text(encoding="utf-8"))
    named = [schema["x-section"] for direction in ("client", "server")
             for schema in TABLE_SOURCES.frames(direction).values()]
    named += [operation["x-section"] for _, _, operation in TABLE_SOURCES.operations()]
    for sections in named:
        for section in sections.split(", "):
            if section.startswith("events.md "):
                assert section.removeprefix("events.md ") in events, sections
            elif section.startswith("federation.md "):
                assert section.removeprefix("federation.md ") in federation, sections
            else:
                assert section in own, sections


def test_client_frame_answers_name_server_frames() -> None:
    server = frame_types("server")
    for name, schema in TABLE_SOURCES.frames("client").items():
        named = set(re.findall(r"`([a-z_]+)`", schema["x-answer"])) - {"offline", "reportId"}
        assert named and named <= server, (name, named - server)


def test_limit_defaults_in_the_schema_are_the_servers() -> None:
    limits = SCHEMA_DOCS["common.json"]["$defs"]["limits"]
    assert {name: entry["default"] for name, entry in limits["properties"].items()} == limits_to_wire(Config())
    assert list(limits["properties"]) == limits["required"]


@pytest.mark.parametrize("frame_type, change", [
    ("message", {"toUser": "@alice:muse.example.org"}),  # fanned out: never addressed
    ("roster", {"roomId": None}),  # always says its room
    ("ack", {"fromUser": "@alice:muse.example.org"}),  # the server's own frame
    ("channel_message", {"roomId": "!Xq3fK9aB2LmN7pQr:muse.example.org"}),
    ("who", {"toUser": None}),
])
def test_server_frame_schemas_hold_their_envelope_fields(frame_type: str, change: dict) -> None:
    """6.2's table is enforced: every frame the tests receive is checked against these."""
    frame = load_json(EXAMPLES / f"frames/server/{frame_type}.json")
    assert validator(f"frames/server/{frame_type}.json").is_valid(frame)
    changed = {key: value for key, value in {**frame, **change}.items() if value is not None}
    assert not validator(f"frames/server/{frame_type}.json").is_valid(changed)


def test_event_unsigned_is_closed_and_knows_edited() -> None:
    """What histories add (section 19.5) is in event.json, and nothing else may be."""
    event = load_json(EXAMPLES / "event-say.json")
    edit = {"event_id": event["event_id"], "origin_server_ts": 1, "content": {"kind": "say", "body": "hi"}}
    assert validator("event.json").is_valid(dict(event, unsigned={"stream_position": 5, "edited": edit}))
    assert not validator("event.json").is_valid(dict(event, unsigned={"stream_position": 5, "edited": {}}))
    assert not validator("event.json").is_valid(dict(event, unsigned={"stream_position": 5, "age": 3}))


# -- the quick start ----------------------------------------------------------

QUICKSTART = (V1 / "quickstart.md").read_text(encoding="utf-8")


def test_quickstart_is_linked_and_its_frames_validate() -> None:
    assert "(quickstart.md)" in PROTOCOL_TEXT and "(v1/quickstart.md)" in (SPEC / "README.md").read_text("utf-8")
    frames = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", QUICKSTART, re.S)]
    frames += [json.loads(inline) for inline in re.findall(r"`(\{\"type\": .*?\})`", QUICKSTART)]
    assert len(frames) >= 3
    for frame in frames:
        validator(f"frames/client/{frame['type']}.json").validate(frame)


def test_quickstart_sections_and_names_exist() -> None:
    headings = _headings(PROTOCOL_TEXT)
    for section in re.findall(r"section (\d+(?:\.\d+)?)", QUICKSTART):
        assert section in headings, section
    named = set(re.findall(r"`([a-z_]+)`", QUICKSTART))
    known = frame_types("client") | frame_types("server") | {entry["code"] for entry in ERRORS_JSON["errors"]}
    limits = {f"limits.{name}" for name in SCHEMA_DOCS["common.json"]["$defs"]["limits"]["properties"]}
    assert {name for name in re.findall(r"`(limits\.[A-Za-z]+)`", QUICKSTART)} <= limits
    assert {"welcome", "roster", "resumed", "resume_gap", "ack", "rate_limited"} <= named & known
