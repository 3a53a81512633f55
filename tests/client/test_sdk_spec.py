"""The SDK's pure parts against spec/ alone: canonical JSON, signatures, key caching,
typed records, and the rule that vibemuse_client imports nothing of the server."""

from __future__ import annotations

import ast
import asyncio
import copy
import dataclasses
import json
import re
from pathlib import Path

import pytest

import vibemuse_client
from vibemuse_client.canonical import NotCanonical, encode_canonical_json
from vibemuse_client.errors import SignatureError
from vibemuse_client.frames import TYPED_RECORDS, Ack, Frame, Welcome, camel
from vibemuse_client.keys import KeyStore
from vibemuse_client.signing import REDACTION_KEPT_CONTENT_KEYS, compute_event_id, redact
from vibemuse_client.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "spec" / "v1"
EXAMPLES = SPEC / "examples"
NOW_MS = 1767225600000  # 2026-01-01: the example key document is valid until 2100


def example(path: str) -> dict:
    return json.loads((EXAMPLES / path).read_text(encoding="utf-8"))


def signed_events(value):
    """Every signed event anywhere in an example."""
    if isinstance(value, dict):
        if "event_id" in value and "signatures" in value:
            yield value
        for item in value.values():
            yield from signed_events(item)
    elif isinstance(value, list):
        for item in value:
            yield from signed_events(item)


class CountingKeys:
    """The key document of the spec's worked example, served through the KeyStore's fetch seam."""

    def __init__(self, document: dict | None = None):
        self.document = document or example("http/server-keys.json")
        self.fetched: list[str] = []

    async def __call__(self, server_name: str) -> dict:
        self.fetched.append(server_name)
        return copy.deepcopy(self.document)


def run(coroutine):
    return asyncio.new_event_loop().run_until_complete(coroutine)


def test_canonical_json_gives_the_bytes_events_md_quotes():
    event = example("event-say.json")
    text = (SPEC / "events.md").read_text(encoding="utf-8")
    keys = {key: value for key, value in example("http/server-keys.json").items() if key != "signatures"}
    signed = {key: value for key, value in redact(event).items() if key not in ("signatures", "unsigned")}
    hashed = {key: value for key, value in event.items() if key not in ("unsigned", "signatures", "hashes", "event_id")}
    for value in (keys, signed, hashed):
        assert "\n" + encode_canonical_json(value).decode("utf-8") + "\n" in text
    assert compute_event_id(event) == event["event_id"]


def test_canonical_json_sorts_by_code_point_and_refuses_what_it_cannot_represent():
    assert encode_canonical_json({"\U0001F600": 1, "\uffff": 2, "a": [True, None, "é\n"]}) == \
        '{"a":[true,null,"é\\n"],"\uffff":2,"\U0001F600":1}'.encode("utf-8")
    assert encode_canonical_json({"c": "\x01"}) == b'{"c":"\\u0001"}'
    for bad in ({"f": 1.0}, {"n": 2**53}, {"s": "\ud800"}, {1: "key"}, {"set": {1}}, _deep(70)):
        with pytest.raises(NotCanonical):
            encode_canonical_json(bad)


def _deep(levels: int):
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


def test_every_signed_example_of_the_spec_verifies_and_the_keys_are_fetched_once():
    fetch = CountingKeys()
    store = KeyStore(fetch, clock_ms=lambda: NOW_MS)
    events = [event for path in sorted(EXAMPLES.rglob("*.json")) for event in signed_events(json.loads(path.read_text()))
              if event.get("origin") == "muse.example.org"]
    assert len(events) > 10
    intact = []
    for event in events:
        verification = run(store.verify_event(event))
        assert verification.event_id == event["event_id"] and verification.key_id == "ed25519:2_Spec"
        intact.append(verification.content_intact)
    assert all(intact)
    assert fetch.fetched == ["muse.example.org"]


def test_a_tampered_event_fails_with_the_code_of_what_was_changed():
    store = KeyStore(CountingKeys(), clock_ms=lambda: NOW_MS)
    event = example("event-say.json")
    body_changed = copy.deepcopy(event)
    body_changed["content"]["body"] = "Goodbye, tavern!"
    assert run(store.verify_event(body_changed)).content_intact is False  # only the redacted form is authentic
    with pytest.raises(SignatureError) as altered:
        run(store.verify_event(body_changed, require_intact=True))
    assert altered.value.code == "invalid_event_hash"
    for field, value in (("sender", "@mallory:muse.example.org"), ("origin_server_ts", 1),
                         ("event_id", "$" + "A" * 43)):
        forged = copy.deepcopy(event)
        forged[field] = value
        with pytest.raises(SignatureError) as refused:
            run(store.verify_event(forged))
        assert refused.value.code == "invalid_event_signature", field
    unsigned = copy.deepcopy(event)
    unsigned["signatures"] = {}
    with pytest.raises(SignatureError) as missing:
        run(store.verify_event(unsigned))
    assert missing.value.code == "invalid_event_signature"


def test_a_key_document_that_is_not_the_servers_is_refused():
    forged = example("http/server-keys.json")
    forged["valid_until_ts"] += 1  # no longer what was signed
    with pytest.raises(SignatureError) as refused:
        run(KeyStore(CountingKeys(forged), clock_ms=lambda: NOW_MS).verify_event(example("event-say.json")))
    assert refused.value.code == "invalid_signature"
    with pytest.raises(SignatureError):  # expired by the reader's clock
        run(KeyStore(CountingKeys(), clock_ms=lambda: 4102444800000).verify_event(example("event-say.json")))


def test_an_unknown_key_id_fetches_again_at_most_every_30_seconds():
    now = [NOW_MS]
    fetch = CountingKeys()
    store = KeyStore(fetch, clock_ms=lambda: now[0])
    event = example("event-say.json")
    run(store.verify_event(event))
    stranger = copy.deepcopy(event)
    stranger["signatures"]["muse.example.org"] = {"ed25519:9_New": "AAAA"}
    for _ in range(3):
        with pytest.raises(SignatureError):
            run(store.verify_event(stranger))
    assert len(fetch.fetched) == 1  # within 30 s of the last fetch: no new one
    now[0] += 30_000
    with pytest.raises(SignatureError):
        run(store.verify_event(stranger))
    assert len(fetch.fetched) == 2


def test_the_redaction_table_is_the_one_of_events_md():
    text = (SPEC / "events.md").read_text(encoding="utf-8")
    table = text.split("<!-- redaction-table:start -->")[1].split("<!-- redaction-table:end -->")[0]
    rows = {}
    for line in table.strip().splitlines()[2:]:
        kind, kept = [cell.strip() for cell in line.strip("|").split("|")]
        rows[kind.strip("`")] = tuple(re.findall(r"`([^`]+)`", kept))
    assert rows == REDACTION_KEPT_CONTENT_KEYS


def test_typed_records_have_the_fields_of_their_schemas():
    spec = load_spec()
    for record in TYPED_RECORDS:
        document, _, pointer = record.SCHEMA.partition("#")
        schema = spec.documents[document]
        for part in [p for p in pointer.split("/") if p]:
            schema = schema[part]
        properties = dict(schema.get("properties", {}))
        for item in schema.get("allOf", []):  # a frame: its envelope's fields are the Frame's
            properties.update(item.get("properties", {}))
        if record.PART == "data":
            properties = schema["properties"]["data"]["properties"]
        names = {item.name for item in dataclasses.fields(record)} - {"raw"}
        wire = names if record.__name__ == "Event" else {camel(name) for name in names}
        assert wire == set(properties), record.__name__


def test_every_server_frame_example_reads_as_a_frame_and_validates():
    spec = load_spec()
    for path in sorted((EXAMPLES / "frames" / "server").glob("*.json")):
        raw = json.loads(path.read_text())
        spec.check_server_frame(raw)
        frame = Frame.from_json(raw)
        assert frame.type == path.stem and frame.raw == raw
    ack = Frame.from_json(example("frames/server/ack.json")).ack()
    assert isinstance(ack, Ack) and ack.in_reply_to and ack.duplicate is False
    welcome = Frame.from_json(example("frames/server/welcome.json")).welcome()
    assert isinstance(welcome, Welcome) and welcome.limits.max_frame_bytes == 65536


def test_the_spec_maps_answers_to_their_schemas_and_codes_to_statuses():
    spec = load_spec()
    assert spec.response_schema("GET", "/api/communication/history/!Xq3fK9aB2LmN7pQr:x", 200) == "http/event-page.json"
    assert spec.response_schema("GET", "/api/communication/channels/%23pub%3Ax/history", 200) == "http/event-page.json"
    assert spec.response_schema("POST", "/api/auth/register", 201) == "http/session.json"
    assert spec.response_schema("GET", "/api/auth/register", 200) is None
    assert spec.error_status["not_in_room"] == 403 and spec.close_names[4003] == "LOGGED_OUT"
    assert {"say", "auth", "page"} <= spec.client_frame_types and "welcome" in spec.server_frame_types


def test_vibemuse_client_imports_nothing_of_the_server():
    package = Path(vibemuse_client.__file__).parent
    modules = sorted(package.glob("*.py"))
    assert len(modules) >= 8
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                root = name.split(".")[0]
                assert root not in ("vibemuse", "tests"), f"{module.name} imports {name}"
    # ... and the rule itself is checked: a module that does is caught.
    assert any(isinstance(n, ast.ImportFrom) and n.module.split(".")[0] == "vibemuse"
               for n in ast.walk(ast.parse("from vibemuse.protocol import events")))
