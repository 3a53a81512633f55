"""Signed events at their edges: every limit at the edge and one past it, every
error path, and key documents with more than one key.

Written from the survivors of a mutation run (``make mutation``): each test
pins a behaviour that some mutant of ``vibemuse/protocol/events.py`` changed
without any other test noticing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vibemuse.protocol.canonical_json import DEFAULT_MAX_DEPTH, encode_canonical_json
from vibemuse.protocol.events import (
    MAX_CHANNEL_ID_LENGTH,
    MAX_EVENT_BYTES,
    MAX_RECIPIENTS,
    EventError,
    EventTooLarge,
    ServerKeysError,
    build_event,
    build_server_keys_response,
    compute_content_hash,
    compute_event_id,
    parse_server_keys_response,
    redact_event,
    validate_event,
    verify_event,
)
from vibemuse.protocol.signing import (
    UnknownKey,
    generate_signing_key,
    sign_json,
    verify_key_base64,
)

SERVER = "example.org"
ROOM = "!Xq3fK9aB2LmN7pQr:example.org"
TS = 1_767_225_600_000
WHERE = f"keys of {SERVER}"


def unsigned_say(**fields):
    event = {"type": "vm.room.message", "sender": "@alice:example.org", "origin": SERVER,
             "origin_server_ts": TS, "content": {"kind": "say", "body": "hi"}, "room_id": ROOM}
    event.update(fields)
    return {name: value for name, value in event.items() if value is not None}


def sign_as_origin(event, key):
    """Hash, name and sign ``event`` by hand, skipping build_event's own checks."""
    event = {k: v for k, v in event.items() if k not in ("hashes", "event_id", "signatures")}
    event["hashes"] = {"sha256": compute_content_hash(event)}
    event["event_id"] = compute_event_id(event)
    event["signatures"] = sign_json(redact_event(event), event["origin"], key)["signatures"]
    return event


def build(key, event):
    scope = {name: event.get(name) for name in ("room_id", "channel_id", "recipients")}
    return build_event(event_type=event["type"], sender=event["sender"], origin=event["origin"],
                       origin_server_ts=event["origin_server_ts"], content=event["content"],
                       signing_key=key, **scope)


def event_of_size(size):
    """An unsigned event whose hashed bytes (what the limit counts) number ``size``."""
    overhead = len(encode_canonical_json(unsigned_say(content={"body": ""})))
    return unsigned_say(content={"body": "x" * (size - overhead)})


# ---------------------------------------------------------------- size

def test_an_event_of_exactly_the_limit_builds_and_verifies(key, keys):
    event = build(key, event_of_size(MAX_EVENT_BYTES))
    assert len(encode_canonical_json(unsigned_say(content=event["content"]))) == MAX_EVENT_BYTES
    assert verify_event(event, keys).redacted_only is False


def test_an_event_one_byte_over_the_limit_is_not_built(key):
    with pytest.raises(EventTooLarge, match=f"^event is {MAX_EVENT_BYTES + 1} bytes, over {MAX_EVENT_BYTES}$"):
        build(key, event_of_size(MAX_EVENT_BYTES + 1))


def test_a_received_event_over_the_limit_is_refused_before_its_signature(key, keys):
    oversize = sign_as_origin(event_of_size(MAX_EVENT_BYTES + 1), key)
    with pytest.raises(EventTooLarge, match=f"^event is {MAX_EVENT_BYTES + 1} bytes"):
        verify_event(oversize, keys)
    with pytest.raises(EventTooLarge):  # not UnknownKey: no key is needed to refuse it
        verify_event(oversize, {})


# ---------------------------------------------------------------- field limits

def test_the_spec_states_the_limits_the_code_enforces():
    spec = " ".join((Path(__file__).resolve().parents[2] / "spec/v1/events.md").read_text().split())
    for sentence in (
        f"is at most {MAX_EVENT_BYTES} bytes: an event of exactly {MAX_EVENT_BYTES} such bytes is valid",
        "`type` at most 128 characters",
        "`origin_server_ts` from 0 to 2^53-1",
        f"`channel_id` 1 to {MAX_CHANNEL_ID_LENGTH} characters",
        f"`recipients` 1 to {MAX_RECIPIENTS} entries",
        "integers in the range [-(2^53)+1, 2^53-1]",
        f"over-deep nesting (more than {DEFAULT_MAX_DEPTH} levels)",
    ):
        assert sentence in spec


@pytest.mark.parametrize("fields", [
    {"type": "v" * 128},
    {"origin_server_ts": 0},
    {"origin_server_ts": 2**53 - 1},
    {"room_id": None, "channel_id": "c"},
    {"room_id": None, "channel_id": "c" * 255},
    {"room_id": None, "recipients": ["@bob:example.org"]},
    {"room_id": None, "recipients": [f"@u{n}:example.org" for n in range(MAX_RECIPIENTS)]},
])
def test_fields_at_their_limits_are_accepted(key, keys, fields):
    event = build(key, unsigned_say(**fields))
    assert verify_event(event, keys).event == event


@pytest.mark.parametrize("fields, message", [
    ({"type": "v" * 129}, f"type '{'v' * 129}' must be dotted lower-case words"),
    ({"type": 5}, "type 5 must be dotted lower-case words"),
    ({"origin_server_ts": -1}, "origin_server_ts must be a non-negative integer (ms)"),
    ({"origin_server_ts": 2**53}, "origin_server_ts must be a non-negative integer (ms)"),
    ({"room_id": None, "channel_id": ""}, "channel_id must be 1-255 characters"),
    ({"room_id": None, "channel_id": "c" * 256}, "channel_id must be 1-255 characters"),
    ({"room_id": None, "recipients": []}, "recipients must be a list of 1-100 user ids"),
    ({"room_id": None, "recipients": [f"@u{n}:example.org" for n in range(MAX_RECIPIENTS + 1)]},
     "recipients must be a list of 1-100 user ids"),
    ({"room_id": None, "recipients": ["@bob:example.org", "@carol:example.org", "@bob:example.org"]},
     "recipients holds a user id twice"),
    ({"room_id": None}, "needs one of room_id, channel_id, recipients"),
    ({"content": "hi"}, "content must be an object"),
    ({"unsigned": []}, "unsigned must be an object"),
    ({"extra": 1, "more": 2}, "unknown top-level field(s): extra, more"),
])
def test_fields_one_past_their_limits_are_refused(fields, message):
    with pytest.raises(EventError) as info:
        validate_event(unsigned_say(**fields), signed=False)
    assert str(info.value) == message


def test_missing_fields_are_all_named():
    with pytest.raises(EventError, match=r"^missing field\(s\): hashes, event_id, signatures$"):
        validate_event(unsigned_say())
    with pytest.raises(EventError, match="^an event must be a JSON object$"):
        validate_event("event")


@pytest.mark.parametrize("change, message", [
    ({"hashes": []}, "hashes must be an object with a sha256 string"),
    ({"hashes": {"sha256": "AAAA"}}, "hashes.sha256 must encode 32 bytes"),
    ({"hashes": {"sha256": "!!!!"}}, "hashes.sha256: base64 contains characters outside the alphabet"),
    ({"hashes": {"sha256": "A"}}, "hashes.sha256: base64 length 1 is impossible"),
    ({"signatures": []}, "signatures must be an object"),
])
def test_bad_signed_parts_raise_event_error(key, keys, change, message):
    with pytest.raises(EventError) as info:
        verify_event({**build(key, unsigned_say()), **change}, keys)
    assert type(info.value) is EventError  # not the encoding module's Base64Error
    assert str(info.value) == message


def test_a_content_mismatch_keeps_the_verifying_key_ids(key, keys):
    event = build(key, unsigned_say())
    tampered = {**event, "content": {"kind": "say", "body": "changed"}}
    result = verify_event(tampered, keys)
    assert (result.redacted_only, result.key_ids) == (True, (key.key_id,))
    assert result.event == redact_event(event)


# ---------------------------------------------------------------- redaction

@pytest.mark.parametrize("digest", [redact_event, compute_content_hash, compute_event_id])
@pytest.mark.parametrize("not_an_event", [["not", "an", "event"], "event", None])
def test_digests_refuse_what_is_not_an_object(digest, not_an_event):
    with pytest.raises(EventError, match="^an event must be a JSON object$"):
        digest(not_an_event)


@pytest.mark.parametrize("event", [
    {"type": ["vm.room.message"], "content": {"kind": "say"}},
    {"type": "vm.room.message", "content": "say"},
    {"type": "vm.room.message"},
])
def test_redaction_of_odd_shapes_keeps_an_empty_content(event):
    assert redact_event(event) == {**event, "content": {}}


# ---------------------------------------------------------------- key documents

def resign_document(document, *signing_keys):
    document = {k: v for k, v in document.items() if k != "signatures"}
    for signing_key in signing_keys:
        document = sign_json(document, SERVER, signing_key)
    return document


def test_a_foreign_key_listed_first_is_skipped_not_the_end(key):
    document = build_server_keys_response(SERVER, key, {}, TS + 1000)
    document["verify_keys"] = {"curve25519:a": {"key": "x"}, **document["verify_keys"]}
    document["old_verify_keys"] = {"curve25519:a": {}}
    parsed = parse_server_keys_response(resign_document(document, key), SERVER, TS)
    assert set(parsed.verify_keys) == {key.key_id}
    assert parsed.lookup(key.key_id) == key.verify_key
    assert parsed.server_name == SERVER


@pytest.mark.parametrize("change, reason", [
    ({"old_verify_keys": {7: {}}}, "object key 7 is int, not str at old_verify_keys"),
    ({"extra": 1.5}, "floats are not allowed (got 1.5) at extra"),
])
def test_a_document_that_is_not_canonical_json_is_a_key_error(key, change, reason):
    document = build_server_keys_response(SERVER, key, {}, TS + 1000)
    with pytest.raises(ServerKeysError) as info:
        parse_server_keys_response(document | change, SERVER, TS)
    assert str(info.value) == f"{WHERE}: self-signature: signed object is not canonical JSON: {reason}"


def test_two_current_keys_both_verify(key):
    second = generate_signing_key("2", bytes(range(1, 33)))
    document = build_server_keys_response(SERVER, key, {}, TS + 1000)
    document["verify_keys"]["ed25519:2"] = {"key": verify_key_base64(second)}
    parsed = parse_server_keys_response(resign_document(document, key, second), SERVER, TS)
    assert parsed.all_verify_keys() == {key.key_id: key.verify_key, "ed25519:2": second.verify_key}
    only_one = parse_server_keys_response(resign_document(document, second), SERVER, TS)
    assert set(only_one.verify_keys) == {key.key_id, "ed25519:2"}


def test_two_current_keys_one_bad_signature_refuses_the_document(key):
    second = generate_signing_key("2", bytes(range(1, 33)))
    document = build_server_keys_response(SERVER, key, {}, TS + 1000)
    document["verify_keys"]["ed25519:2"] = {"key": verify_key_base64(second)}
    signed = resign_document(document, key, second)
    signed["signatures"][SERVER]["ed25519:1"] = signed["signatures"][SERVER]["ed25519:2"]
    with pytest.raises(ServerKeysError, match="^keys of example.org: self-signature: .*ed25519:1 does not verify"):
        parse_server_keys_response(signed, SERVER, TS)


def test_old_keys_keep_their_expiry_and_zero_is_a_time(key):
    old = generate_signing_key("0", bytes(range(3, 35)))
    document = build_server_keys_response(SERVER, key, {old.key_id: (old.verify_key, 0)}, TS + 1000)
    parsed = parse_server_keys_response(document, SERVER, TS)
    assert parsed.old_verify_keys[old.key_id] == (old.verify_key, 0)
    document["old_verify_keys"][old.key_id]["expired_ts"] = -1
    with pytest.raises(ServerKeysError) as info:
        parse_server_keys_response(resign_document(document, key), SERVER, TS)
    assert str(info.value) == f"{WHERE}: old_verify_keys.ed25519:0.expired_ts must be an integer (ms)"


def test_a_document_without_old_keys_has_none(key):
    document = build_server_keys_response(SERVER, key, {}, TS + 1000)
    del document["old_verify_keys"]
    assert parse_server_keys_response(resign_document(document, key), SERVER, TS).old_verify_keys == {}


def test_key_document_messages_name_the_server(key):
    document = build_server_keys_response(SERVER, key, {}, TS + 1000)
    with pytest.raises(ServerKeysError) as info:
        parse_server_keys_response(document | {"verify_keys": []}, SERVER, TS)
    assert str(info.value) == f"{WHERE}: verify_keys must be an object"


def test_old_keys_may_be_given_as_raw_bytes(key):
    old = generate_signing_key("0", bytes(range(3, 35)))
    raw = verify_key_base64(old)
    document = build_server_keys_response(
        SERVER, key, {old.key_id: (old.verify_key.public_bytes_raw(), 5)}, TS + 1000)
    assert document["old_verify_keys"] == {old.key_id: {"key": raw, "expired_ts": 5}}
    with pytest.raises(Exception, match="verify key ed25519:0 must be 32 bytes"):
        build_server_keys_response(SERVER, key, {old.key_id: (b"short", 5)}, TS + 1000)


@pytest.mark.parametrize("server_name, valid_until, message", [
    ("bad name!", TS, "'bad name!' is not a server name"),
    (SERVER, 1.5, "valid_until_ts must be an integer (ms)"),
])
def test_build_server_keys_refuses_bad_arguments(key, server_name, valid_until, message):
    with pytest.raises(ServerKeysError) as info:
        build_server_keys_response(server_name, key, {}, valid_until)
    assert str(info.value) == message


def test_an_event_signed_before_and_after_a_rotation_verifies_with_either_key(key):
    new_key = generate_signing_key("2", bytes(range(2, 34)))
    event = build(key, unsigned_say())
    event["signatures"] = sign_json(redact_event(event), SERVER, new_key)["signatures"]
    assert sorted(event["signatures"][SERVER]) == [key.key_id, new_key.key_id]
    assert verify_event(event, {SERVER: {new_key.key_id: new_key.verify_key}}).key_ids == (new_key.key_id,)
    assert verify_event(event, {SERVER: {key.key_id: key.verify_key}}).key_ids == (key.key_id,)
    with pytest.raises(UnknownKey):
        verify_event(event, {SERVER: {}})
