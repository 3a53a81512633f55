"""Frame parsing and encoding, ids and version negotiation: pure code, no server."""

from __future__ import annotations

import json

import pytest

from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.frames import ServerFrame, format_timestamp, parse_client_frame
from vibemuse.protocol.ids import (
    is_valid_server_name,
    parse_room_id,
    parse_user_id,
    room_id_for,
    user_id_for,
    user_id_of_address,
    validate_username,
)
from vibemuse.protocol.versions import V1, negotiate
from vibemuse.specfiles import load_schema_set


@pytest.fixture(scope="module")
def schemas():
    return load_schema_set("v1")


def refusal(raw, schemas) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_client_frame(raw, schemas)
    return caught.value


def test_a_good_frame_parses(schemas):
    frame = parse_client_frame('{"type":"auth","messageId":"m-1","data":{"token":"vmt_x"}}', schemas)
    assert (frame.type, frame.message_id, frame.data, frame.from_user) == ("auth", "m-1", {"token": "vmt_x"}, None)
    frame = parse_client_frame(b'{"type":"ping","messageId":"m2","data":{},"fromUser":"@a1:x.org"}', schemas)
    assert frame.from_user == "@a1:x.org"


@pytest.mark.parametrize(
    "raw, code, in_reply_to",
    [
        ("{", ErrorCode.BAD_JSON, None),
        (b"\xc3\x28", ErrorCode.BAD_JSON, None),
        ('{"type":"ping","messageId":"a","data":{},"x":Infinity}', ErrorCode.BAD_JSON, None),
        ("42", ErrorCode.INVALID_FRAME, None),
        ('{"type":1,"messageId":"a","data":{}}', ErrorCode.INVALID_FRAME, "a"),
        ('{"type":"nope","messageId":"a","data":{}}', ErrorCode.UNKNOWN_TYPE, "a"),
        ('{"type":"ping","messageId":"a b","data":{}}', ErrorCode.INVALID_FRAME, None),
        ('{"type":"ping","messageId":"' + "a" * 65 + '","data":{}}', ErrorCode.INVALID_FRAME, None),
        ('{"type":"auth","messageId":"a","data":{}}', ErrorCode.INVALID_FRAME, "a"),
        ('{"type":"auth","messageId":"a","data":{"token":"t","more":1}}', ErrorCode.INVALID_FRAME, "a"),
    ],
)
def test_bad_frames_are_refused_with_a_code(schemas, raw, code, in_reply_to):
    error = refusal(raw, schemas)
    assert error.code is code
    assert error.in_reply_to == in_reply_to
    assert error.to_wire()["code"] == str(code)


def test_schema_errors_point_at_the_field(schemas):
    error = refusal('{"type":"auth","messageId":"a","data":{"token":5}}', schemas)
    assert error.details["path"] == "/data/token"


def test_deep_nesting_is_bad_json_not_a_crash(schemas):
    error = refusal("[" * 100_000 + "]" * 100_000, schemas)
    assert error.code is ErrorCode.BAD_JSON


def test_server_frames_encode_the_envelope():
    frame = ServerFrame("pong", {"inReplyTo": "m1"}, "f.1", 1_764_139_092_123, "muse.org", to_user="@a1:muse.org")
    wire = json.loads(frame.encode())
    assert wire == {
        "type": "pong",
        "messageId": "f.1",
        "timestamp": "2025-11-26T06:38:12.123Z",
        "fromUser": "muse.org",
        "toUser": "@a1:muse.org",
        "data": {"inReplyTo": "m1"},
    }


def test_timestamps_keep_milliseconds():
    assert format_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert format_timestamp(1_000_000_000_007) == "2001-09-09T01:46:40.007Z"


@pytest.mark.parametrize("name", ["localhost", "muse.example.org", "localhost:4201", "[::1]:8448", "1.2.3.4"])
def test_good_server_names(name):
    assert is_valid_server_name(name)


@pytest.mark.parametrize("name", ["", "bad name", "-x.org", "x.org:", "x.org:99999", "x.org:0", "a/b", "[zz]"])
def test_bad_server_names(name):
    assert not is_valid_server_name(name)


def test_user_ids_fold_case():
    assert user_id_for(validate_username("Alice_B"), "muse.org") == "@alice_b:muse.org"
    parsed = parse_user_id("@alice_b:muse.org:8448")
    assert (parsed.localpart, parsed.server_name) == ("alice_b", "muse.org:8448")
    with pytest.raises(ProtocolError):
        parse_user_id("@Alice:muse.org")


@pytest.mark.parametrize("name", ["A", "1abc", "a b", "a" * 33, "é", "", None, 5])
def test_bad_usernames(name):
    with pytest.raises(ProtocolError) as caught:
        validate_username(name)
    assert caught.value.code is ErrorCode.INVALID_USERNAME


def test_room_ids():
    room_id = room_id_for("Ab3" * 5 + "z", "muse.org")
    assert parse_room_id(room_id).server_name == "muse.org"
    for bad in ("!short:muse.org", "#AAAAAAAAAAAAAAAA:muse.org", "!AAAAAAAAAAAAAAAA", "!AAAAAAAAAAAAAAAA:bad name"):
        with pytest.raises(ProtocolError) as caught:
            parse_room_id(bad)
        assert caught.value.code is ErrorCode.INVALID_ROOM_ID
    with pytest.raises(ValueError):
        room_id_for("short", "muse.org")


def test_version_negotiation():
    assert negotiate([]) is V1
    assert negotiate([" "]) is V1
    assert negotiate(["vibemuse.v9", "vibemuse.v1"]) is V1
    with pytest.raises(ProtocolError) as caught:
        negotiate(["vibemuse.v9", "chat"])
    assert caught.value.code is ErrorCode.UNSUPPORTED_VERSION
    assert caught.value.details["offered"] == ["vibemuse.v9", "chat"]


@pytest.mark.parametrize(
    "address, user_id",
    [
        ("bob@beta.example", "@bob:beta.example"),
        ("Bob@Beta.Example:8448", "@bob:beta.example:8448"),
        ("bob", None),
        ("@bob:beta.example", None),
        ("bob@", None),
        ("@beta.example", None),
        ("bo b@beta.example", None),
        ("bob@beta..example", None),
    ],
)
def test_a_name_at_server_address_is_a_user_id_of_that_server(address, user_id):
    assert user_id_of_address(address) == user_id
