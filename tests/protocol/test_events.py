"""Signed events: building, redaction, verification, key documents, spec examples.

Run ``python -m tests.protocol.test_events`` to rewrite the spec examples
(spec/v1/examples/*.json) from their fixed seeds.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

import pytest
import signedjson.key  # test-only: the reference implementation
import signedjson.sign

from vibemuse.protocol.canonical_json import encode_canonical_json
from vibemuse.protocol.content import room_message
from vibemuse.protocol.encoding import decode_base64, encode_base64
from vibemuse.protocol.events import (
    MAX_KEY_VALIDITY_MS,
    REDACTION_KEPT_CONTENT_KEYS,
    EventError,
    ServerKeysError,
    build_event,
    build_server_keys_response,
    compute_content_hash,
    compute_event_id,
    parse_server_keys_response,
    redact_event,
    verify_event,
)
from vibemuse.protocol.signing import (
    BadSignature,
    MissingSignature,
    SignatureError,
    UnknownKey,
    generate_signing_key,
    sign_json,
    verify_key_base64,
)

SPEC = Path(__file__).resolve().parents[2] / "spec" / "v1"
SERVER = "example.org"
ROOM = "!Xq3fK9aB2LmN7pQr:example.org"
TS = 1_767_225_600_000


def say(key, **overrides):
    args = dict(event_type="vm.room.message", sender="@alice:example.org", origin=SERVER,
                origin_server_ts=TS, content={"kind": "say", "body": "Hello, tavern!"},
                room_id=ROOM, signing_key=key)
    args.update(overrides)
    return build_event(**args)


# ---------------------------------------------------------------- building

def test_build_event_shape(key, keys):
    event = say(key)
    assert set(event) == {"type", "sender", "origin", "origin_server_ts", "content",
                          "room_id", "hashes", "event_id", "signatures"}
    assert re.fullmatch(r"\$[A-Za-z0-9_-]{43}", event["event_id"])
    assert event["hashes"]["sha256"] == compute_content_hash(event)
    assert event["event_id"] == compute_event_id(event)
    assert list(event["signatures"]) == [SERVER]
    result = verify_event(event, keys)
    assert (result.event, result.redacted_only, result.key_ids) == (event, False, ("ed25519:1",))


def test_build_is_deterministic(key):
    assert say(key) == say(key)
    assert say(key)["event_id"] != say(key, origin_server_ts=TS + 1)["event_id"]


def test_content_hash_ignores_unsigned_signatures_hashes_and_id(key):
    event = say(key)
    digest = compute_content_hash(event)
    noisy = {**event, "unsigned": {"age": 3}, "signatures": {}, "hashes": {"sha256": "x"},
             "event_id": "$other"}
    assert compute_content_hash(noisy) == digest
    bare = {k: v for k, v in event.items() if k not in ("hashes", "signatures", "event_id")}
    assert digest == encode_base64(hashlib.sha256(encode_canonical_json(bare)).digest())


def test_event_id_is_reference_hash_of_redacted_form(key):
    event = say(key)
    redacted = redact_event(event)
    body = {k: v for k, v in redacted.items() if k not in ("signatures", "event_id")}
    digest = hashlib.sha256(encode_canonical_json(body)).digest()
    assert event["event_id"] == "$" + encode_base64(digest, urlsafe=True)
    assert compute_event_id({**event, "unsigned": {"age": 1}, "signatures": {}}) == event["event_id"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"event_type": "Bad Type"}, "type 'Bad Type'"),
        ({"sender": "alice"}, "sender 'alice' is not a user id"),
        ({"sender": "@alice:other.org"}, "not on origin server example.org"),
        ({"origin": "bad origin!"}, "origin 'bad origin!' is not a server name"),
        ({"origin_server_ts": 1.5}, "origin_server_ts must be"),
        ({"origin_server_ts": True}, "origin_server_ts must be"),
        ({"origin_server_ts": -1}, "origin_server_ts must be"),
        ({"content": ["x"]}, "content must be an object"),
        ({"content": {"count": 1.0}}, r"floats are not allowed .* at content\.count"),
        ({"room_id": None}, "needs one of room_id, channel_id, recipients"),
        ({"room_id": "room"}, "room_id 'room' is not a room id"),
        ({"channel_id": "#c"}, "one scope field, not room_id, channel_id"),
        ({"room_id": None, "channel_id": ""}, "channel_id must be 1-255"),
        ({"room_id": None, "recipients": []}, "recipients must be a list of 1-100"),
        ({"room_id": None, "recipients": ["@bob:example.org"] * 101}, "1-100"),
        ({"room_id": None, "recipients": ["@bob:x.org", "bob"]}, r"recipients\[1\] 'bob'"),
        ({"room_id": None, "recipients": ["@bob:x.org", "@bob:x.org"]}, "twice"),
        ({"content": {"body": "x" * 70000}}, "over 65536"),
    ],
)
def test_build_rejects_malformed(key, overrides, message):
    with pytest.raises(EventError, match=message):
        say(key, **overrides)


def test_scopes(key, keys):
    page = say(key, event_type="vm.page", room_id=None,
               recipients=["@bob:example.org", "@carol:elsewhere.net"])
    channel = say(key, event_type="vm.channel.message", room_id=None, channel_id="#ooc")
    system = say(key, event_type="vm.system", room_id=None, content={"text": "Restart"})
    for event in (page, channel, system):
        assert not verify_event(event, keys).redacted_only
    assert "room_id" not in system


# ---------------------------------------------------------------- redaction

def test_redaction_keeps_table_keys_only(key):
    event = say(key, event_type="vm.channel.member", room_id=None, channel_id="#ooc",
                content={"membership": "join", "target": "@bob:example.org", "reason": "hi"})
    event["unsigned"] = {"stream_position": 7}
    redacted = redact_event(event)
    assert redacted["content"] == {"membership": "join", "target": "@bob:example.org"}
    assert "unsigned" not in redacted
    assert {k: v for k, v in redacted.items() if k != "content"} == {
        k: v for k, v in event.items() if k not in ("content", "unsigned")}


def test_redaction_of_unknown_type_keeps_no_content(key):
    event = say(key, event_type="vm.future.thing", content={"kind": "x", "a": 1})
    assert redact_event(event)["content"] == {}
    assert say(key)["content"]["kind"] == redact_event(say(key))["content"]["kind"]


def test_redaction_table_matches_spec():
    text = (SPEC / "events.md").read_text(encoding="utf-8")
    section = text.split("<!-- redaction-table:start -->")[1].split("<!-- redaction-table:end -->")[0]
    table = {}
    for row in re.findall(r"^\|\s*`([^`]+)`\s*\|([^|]*)\|", section, re.M):
        table[row[0]] = tuple(re.findall(r"`([^`]+)`", row[1]))
    assert table == dict(REDACTION_KEPT_CONTENT_KEYS)


# ---------------------------------------------------------------- verification

def test_signedjson_verifies_redacted_event(key):
    event = say(key)
    verify_key = signedjson.key.decode_verify_key_base64("ed25519", "1", verify_key_base64(key))
    signedjson.sign.verify_signed_json(redact_event(event), SERVER, verify_key)


def test_we_verify_an_event_signed_by_signedjson(key):
    their_key = signedjson.key.generate_signing_key("7")
    event = say(key)
    del event["signatures"]
    redacted = signedjson.sign.sign_json(redact_event(event), SERVER, their_key)
    event["signatures"] = redacted["signatures"]
    raw = signedjson.key.get_verify_key(their_key).encode()
    assert verify_event(event, {SERVER: {"ed25519:7": raw}}).key_ids == ("ed25519:7",)


@pytest.mark.parametrize(
    "path, value",
    [
        (("type",), "vm.page"),
        (("sender",), "@mallory:example.org"),
        (("origin_server_ts",), TS + 1),
        (("room_id",), "!AAAAAAAAAAAAAAAA:example.org"),
        (("content", "kind"), "shout"),
        (("hashes", "sha256"), encode_base64(b"\0" * 32)),
        (("event_id",), "$" + "A" * 43),
    ],
)
def test_changing_a_signed_field_breaks_the_signature(key, keys, path, value):
    event = copy.deepcopy(say(key))
    target = event
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(BadSignature):
        verify_event(event, keys)


def test_changed_content_is_kept_redacted_only(key, keys):
    event = copy.deepcopy(say(key))
    event["content"]["body"] = "Forged words"
    result = verify_event(event, keys)
    assert result.redacted_only
    assert result.event == redact_event(event)
    assert result.event["content"] == {"kind": "say"}
    assert result.event_id == event["event_id"]


def test_a_redacted_event_still_verifies(key, keys):
    event = say(key)
    result = verify_event(redact_event(event), keys)
    assert result.redacted_only and result.event_id == event["event_id"]


def test_unsigned_may_change(key, keys):
    event = {**say(key), "unsigned": {"stream_position": 12, "age": 40}}
    result = verify_event(event, keys)
    assert not result.redacted_only and result.event["unsigned"]["age"] == 40


def test_wrong_and_missing_keys(key):
    event = say(key)
    other = generate_signing_key("1", bytes(range(1, 33)))
    with pytest.raises(BadSignature):
        verify_event(event, {SERVER: {"ed25519:1": other.verify_key}})
    with pytest.raises(UnknownKey) as info:
        verify_event(event, {SERVER: {"ed25519:2": key.verify_key}})
    assert info.value.key_ids == ("ed25519:1",)
    with pytest.raises(UnknownKey):
        verify_event(event, {})
    with pytest.raises(MissingSignature):
        verify_event({**event, "signatures": {"other.org": event["signatures"][SERVER]}},
                     {SERVER: {"ed25519:1": key.verify_key}})


def test_mismatched_event_id_signed_by_origin_is_rejected(key, keys):
    event = say(key)
    event["event_id"] = "$" + "A" * 43
    event["signatures"] = sign_json(redact_event(event), SERVER, key)["signatures"]
    with pytest.raises(EventError, match="does not match contents"):
        verify_event(event, keys)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"extra": 1}, "unknown top-level field"),
        ({"hashes": {"md5": "x"}}, "sha256 string"),
        ({"hashes": {"sha256": "AAAA"}}, "32 bytes"),
        ({"event_id": "not-an-id"}, "event_id 'not-an-id'"),
        ({"unsigned": []}, "unsigned must be an object"),
        ({"signatures": []}, "signatures must be an object"),
    ],
)
def test_verify_rejects_malformed_shapes(key, keys, change, message):
    with pytest.raises(EventError, match=message):
        verify_event({**say(key), **change}, keys)


def test_verify_requires_signed_parts(key, keys):
    event = say(key)
    del event["hashes"]
    with pytest.raises(EventError, match="missing field"):
        verify_event(event, keys)
    with pytest.raises(EventError, match="JSON object"):
        verify_event(["x"], keys)


# ---------------------------------------------------------------- key documents

def test_server_keys_round_trip_and_rotation(key):
    new_key = generate_signing_key("2", bytes(range(2, 34)))
    old_event = say(key)
    document = build_server_keys_response(
        SERVER, new_key, {key.key_id: (key.verify_key, TS + 10)}, TS + 3600_000)
    assert document["verify_keys"] == {"ed25519:2": {"key": verify_key_base64(new_key)}}
    assert document["old_verify_keys"]["ed25519:1"]["expired_ts"] == TS + 10
    parsed = parse_server_keys_response(document, SERVER, TS)
    assert parsed.valid_until_ts == TS + 3600_000
    assert parsed.lookup("ed25519:1") == key.verify_key
    assert parsed.lookup("ed25519:3") is None
    result = verify_event(old_event, {SERVER: parsed.all_verify_keys()})
    assert result.key_ids == ("ed25519:1",)
    verify_key = signedjson.key.decode_verify_key_base64("ed25519", "2", verify_key_base64(new_key))
    signedjson.sign.verify_signed_json(document, SERVER, verify_key)


def test_server_keys_validity_is_clamped_to_seven_days(key):
    document = build_server_keys_response(SERVER, key, {}, TS + 30 * 86400_000)
    assert parse_server_keys_response(document, SERVER, TS).valid_until_ts == TS + MAX_KEY_VALIDITY_MS


def test_server_keys_skip_unknown_algorithms(key):
    document = build_server_keys_response(SERVER, key, {}, TS + 1000)
    document["verify_keys"]["curve25519:x"] = {"nonsense": True}
    document = sign_json(document, SERVER, key)
    assert set(parse_server_keys_response(document, SERVER, TS).verify_keys) == {"ed25519:1"}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d, k: d | {"server_name": "evil.org"}, "response names server 'evil.org'"),
        (lambda d, k: d | {"valid_until_ts": TS + 2000}, "self-signature: .*does not verify"),
        (lambda d, k: d | {"valid_until_ts": TS}, "expired"),
        (lambda d, k: d | {"valid_until_ts": 1.5}, "valid_until_ts must be an integer"),
        (lambda d, k: d | {"verify_keys": {}}, "no ed25519 key"),
        (lambda d, k: d | {"verify_keys": []}, "verify_keys must be an object"),
        (lambda d, k: d | {"verify_keys": {"ed25519:1": {"key": "AAAA"}}}, "must be 32 bytes"),
        (lambda d, k: d | {"verify_keys": {"ed25519:1": "x"}}, "with a key string"),
        (lambda d, k: d | {"old_verify_keys": {"ed25519:0": {"key": verify_key_base64(k)}}},
         "expired_ts must be an integer"),
        (lambda d, k: d | {"signatures": {}}, "no ed25519 signature from example.org"),
        (lambda d, k: "nope", "must be a JSON object"),
    ],
)
def test_server_keys_errors(key, mutate, message):
    document = build_server_keys_response(SERVER, key, {}, TS + 1000)
    with pytest.raises(ServerKeysError, match=message):
        parse_server_keys_response(mutate(document, key), SERVER, TS)


def test_server_keys_must_be_signed_by_a_listed_key(key):
    stranger = generate_signing_key("9", bytes(range(9, 41)))
    document = build_server_keys_response(SERVER, key, {}, TS + 1000)
    document.pop("signatures")
    document = sign_json(document, SERVER, stranger)
    with pytest.raises(ServerKeysError, match="unknown key") as info:
        parse_server_keys_response(document, SERVER, TS)
    assert isinstance(info.value.__cause__, SignatureError)


def test_build_server_keys_rejects_current_key_as_old(key):
    with pytest.raises(ServerKeysError, match="both current and old"):
        build_server_keys_response(SERVER, key, {key.key_id: (key.verify_key, 1)}, TS)


# ---------------------------------------------------------------- spec examples

EXAMPLE_SERVER = "muse.example.org"
EXAMPLE_TS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
# The example key document must not expire for readers of the spec (fetchers cap
# what they cache at 7 days from fetching anyway): valid until 2100-01-01.
EXAMPLE_VALID_UNTIL_TS = 4_102_444_800_000


def example_key(version: str, label: bytes):
    """Spec example keys: seed = SHA-256 of a public label (never use in production)."""
    return generate_signing_key(version, hashlib.sha256(label).digest())


def make_spec_examples() -> tuple[dict, dict]:
    current = example_key("2_Spec", b"vibemuse spec example key 2")
    old = example_key("1_Spec", b"vibemuse spec example key 1")
    event = build_event(
        event_type="vm.room.message", sender=f"@alice:{EXAMPLE_SERVER}", origin=EXAMPLE_SERVER,
        origin_server_ts=EXAMPLE_TS, content=room_message("say", "Alice", "Hello, tavern!", 4000),
        room_id=f"!Xq3fK9aB2LmN7pQr:{EXAMPLE_SERVER}", signing_key=current)
    event["unsigned"] = {"stream_position": 42}
    keys = build_server_keys_response(
        EXAMPLE_SERVER, current, {old.key_id: (old.verify_key, EXAMPLE_TS - 30 * 86400_000)},
        EXAMPLE_VALID_UNTIL_TS)
    return event, keys


def test_spec_examples_verify_and_are_reproducible():
    event = json.loads((SPEC / "examples" / "event-say.json").read_text(encoding="utf-8"))
    keys = json.loads((SPEC / "examples" / "http" / "server-keys.json").read_text(encoding="utf-8"))
    assert (event, keys) == make_spec_examples()
    parsed = parse_server_keys_response(keys, EXAMPLE_SERVER, EXAMPLE_TS)
    result = verify_event(event, {EXAMPLE_SERVER: parsed.all_verify_keys()})
    assert not result.redacted_only and result.event_id == event["event_id"]
    text = (SPEC / "events.md").read_text(encoding="utf-8")
    for value in (event["event_id"], event["hashes"]["sha256"],
                  keys["verify_keys"]["ed25519:2_Spec"]["key"]):
        assert value in text, f"events.md does not quote {value}"
    assert decode_base64(event["hashes"]["sha256"]) == hashlib.sha256(
        encode_canonical_json({k: event[k] for k in event if k not in
                               ("unsigned", "signatures", "hashes", "event_id")})).digest()


def test_spec_python_snippet_verifies_the_example():
    text = (SPEC / "events.md").read_text(encoding="utf-8")
    namespace: dict = {}
    exec(re.findall(r"```python\n(.*?)```", text, re.S)[0], namespace)
    event = json.loads((SPEC / "examples" / "event-say.json").read_text(encoding="utf-8"))
    keys = json.loads((SPEC / "examples" / "http" / "server-keys.json").read_text(encoding="utf-8"))
    key_b64 = keys["verify_keys"]["ed25519:2_Spec"]["key"]
    assert namespace["verify"](event, key_b64, "ed25519:2_Spec") is True
    event["content"]["body"] = "Forged"
    assert namespace["verify"](event, key_b64, "ed25519:2_Spec") is False

if __name__ == "__main__":
    for name, value in zip(("event-say.json", "http/server-keys.json"), make_spec_examples()):
        path = SPEC / "examples" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print("wrote", path)
