"""Ed25519 JSON signing: the signedjson vector, interop, failures, key files."""

from __future__ import annotations

import copy
import io

import pytest
import signedjson.key  # test-only: the reference implementation
import signedjson.sign

from vibemuse.protocol.encoding import decode_base64, encode_base64
from vibemuse.protocol.signing import (
    BadSignature,
    KeyFormatError,
    MalformedSignature,
    MissingSignature,
    OldVerifyKey,
    SignatureError,
    UnknownKey,
    decode_old_verify_keys_file,
    decode_signing_key_file,
    decode_verify_key_base64,
    decode_verify_key_bytes,
    encode_old_verify_keys_file,
    encode_signing_key_file,
    generate_signing_key,
    parse_key_id,
    sign_json,
    signature_key_ids,
    verify_key_base64,
    verify_signed_json,
)

VECTOR_SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
VECTOR_SIGNATURE = (
    "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
)


@pytest.fixture
def other_key():
    return generate_signing_key("2", bytes(range(1, 33)))


def test_signedjson_known_vector():
    key = generate_signing_key("1", decode_base64(VECTOR_SEED))
    signed = sign_json({}, "domain", key)
    assert signed == {"signatures": {"domain": {"ed25519:1": VECTOR_SIGNATURE}}}
    assert verify_signed_json(signed, "domain", {"ed25519:1": key.verify_key}) == ("ed25519:1",)


def test_key_record(key):
    assert key.key_id == "ed25519:1"
    assert key.seed == bytes(range(32))
    assert "private_key" not in repr(key)
    assert generate_signing_key("1", bytes(range(32))).verify_key == key.verify_key
    assert generate_signing_key("1").seed != generate_signing_key("1").seed


@pytest.mark.parametrize("seed", [b"", b"x" * 31, b"x" * 33, "x" * 32])
def test_bad_seed(seed):
    with pytest.raises(KeyFormatError, match="32 bytes"):
        generate_signing_key("1", seed)


@pytest.mark.parametrize("version", ["", "a-b", "a:b", "a b", 1])
def test_bad_version(version):
    with pytest.raises(KeyFormatError, match=r"\[A-Za-z0-9_\]\+"):
        generate_signing_key(version, b"x" * 32)


@pytest.mark.parametrize("key_id", ["ed25519", "ed25519:", "curve25519:a", "ed25519:a-b", 3])
def test_parse_key_id_rejects(key_id):
    with pytest.raises(KeyFormatError, match="key id"):
        parse_key_id(key_id)
    assert parse_key_id("ed25519:a_1") == "a_1"


def test_decode_verify_key(key):
    text = verify_key_base64(key)
    assert decode_verify_key_base64("ed25519:1", text) == key.verify_key
    assert decode_verify_key_bytes("ed25519:1", decode_base64(text)) == key.verify_key
    with pytest.raises(KeyFormatError, match="must be 32 bytes"):
        decode_verify_key_base64("ed25519:1", text[:-4])
    with pytest.raises(KeyFormatError, match="outside the alphabet"):
        decode_verify_key_base64("ed25519:1", "!!" + text)
    with pytest.raises(KeyFormatError, match="key id"):
        decode_verify_key_base64("rsa:1", text)


def test_sign_returns_new_dict_and_keeps_others(key, other_key):
    original = {"a": 1, "unsigned": {"age": 5}, "signatures": {"other.org": {"ed25519:x": "sig"}}}
    before = copy.deepcopy(original)
    signed = sign_json(original, "example.org", key)
    assert original == before
    assert signed["unsigned"] == {"age": 5}
    assert signed["signatures"]["other.org"] == {"ed25519:x": "sig"}
    twice = sign_json(signed, "example.org", other_key)
    assert set(twice["signatures"]["example.org"]) == {"ed25519:1", "ed25519:2"}
    assert signed["signatures"]["example.org"].keys() == {"ed25519:1"}
    keys = {"ed25519:1": key.verify_key, "ed25519:2": other_key.verify_key}
    assert verify_signed_json(twice, "example.org", keys) == ("ed25519:1", "ed25519:2")


def test_unsigned_and_signatures_are_not_covered(key):
    signed = sign_json({"a": 1}, "example.org", key)
    signed["unsigned"] = {"age": 99}
    signed["signatures"]["third.org"] = {"ed25519:z": "whatever"}
    verify_signed_json(signed, "example.org", {"ed25519:1": key.verify_key})


def test_tampering_breaks_verification(key):
    signed = sign_json({"a": 1, "b": {"c": "d"}}, "example.org", key)
    keys = {"ed25519:1": key.verify_key}
    for change in ({"a": 2}, {"b": {"c": "e"}}, {"extra": True}):
        with pytest.raises(BadSignature, match="example.org/ed25519:1 does not verify"):
            verify_signed_json({**signed, **change}, "example.org", keys)


def test_wrong_key_fails(key, other_key):
    signed = sign_json({"a": 1}, "example.org", key)
    with pytest.raises(BadSignature):
        verify_signed_json(signed, "example.org", {"ed25519:1": other_key.verify_key})


def test_bytes_verify_keys_accepted(key):
    signed = sign_json({"a": 1}, "example.org", key)
    raw = decode_base64(verify_key_base64(key))
    assert verify_signed_json(signed, "example.org", {"ed25519:1": raw}) == ("ed25519:1",)


def test_missing_and_unknown(key):
    signed = sign_json({"a": 1}, "example.org", key)
    with pytest.raises(MissingSignature, match="no ed25519 signature from other.org"):
        verify_signed_json(signed, "other.org", {"ed25519:1": key.verify_key})
    with pytest.raises(MissingSignature):
        verify_signed_json({"a": 1}, "example.org", {"ed25519:1": key.verify_key})
    with pytest.raises(UnknownKey) as info:
        verify_signed_json(signed, "example.org", {"ed25519:9": key.verify_key})
    assert info.value.key_ids == ("ed25519:1",)
    assert info.value.signing_name == "example.org"
    assert issubclass(UnknownKey, SignatureError) and issubclass(SignatureError, ValueError)


def test_unknown_algorithms_are_skipped(key):
    signed = sign_json({"a": 1}, "example.org", key)
    signed["signatures"]["example.org"]["curve25519:x"] = "not even base64!"
    assert verify_signed_json(signed, "example.org", {"ed25519:1": key.verify_key})
    assert signature_key_ids(signed, "example.org") == ("ed25519:1",)
    only_other = {"a": 1, "signatures": {"example.org": {"curve25519:x": "AAAA"}}}
    with pytest.raises(MissingSignature):
        verify_signed_json(only_other, "example.org", {"ed25519:1": key.verify_key})


@pytest.mark.parametrize(
    "signatures, message",
    [
        ("nope", "'signatures' must be an object"),
        ({"example.org": []}, "signatures.example.org must be an object"),
        ({"example.org": {"ed25519:bad-id": "AAAA"}}, "malformed key id"),
        ({"example.org": {"ed25519:1": 5}}, "must be a string"),
        ({"example.org": {"ed25519:1": "!!!"}}, "outside the alphabet"),
        ({"example.org": {"ed25519:1": "AAAA"}}, "not 64 bytes"),
    ],
)
def test_malformed_signatures(key, signatures, message):
    with pytest.raises(MalformedSignature, match=message):
        verify_signed_json({"a": 1, "signatures": signatures}, "example.org",
                           {"ed25519:1": key.verify_key})


# ---------------------------------------------------------------- interop

def test_signedjson_verifies_ours(key):
    signed = sign_json({"a": [1, "é"], "unsigned": {"x": 1}}, "example.org", key)
    verify_key = signedjson.key.decode_verify_key_base64("ed25519", "1", verify_key_base64(key))
    signedjson.sign.verify_signed_json(signed, "example.org", verify_key)


def test_we_verify_signedjson():
    their_key = signedjson.key.generate_signing_key("abc")
    obj = signedjson.sign.sign_json({"b": {"c": 1}, "a": "日本"}, "theirs.org", their_key)
    raw = signedjson.key.get_verify_key(their_key).encode()
    assert verify_signed_json(obj, "theirs.org", {"ed25519:abc": raw}) == ("ed25519:abc",)
    obj["a"] = "changed"
    with pytest.raises(BadSignature):
        verify_signed_json(obj, "theirs.org", {"ed25519:abc": raw})


# ---------------------------------------------------------------- key files

def test_key_file_round_trip_and_synapse_compat(key, other_key):
    text = encode_signing_key_file([key, other_key])
    assert text.splitlines()[0] == f"ed25519 1 {encode_base64(key.seed)}"
    loaded = decode_signing_key_file(text)
    assert [(k.key_id, k.seed) for k in loaded] == [(key.key_id, key.seed),
                                                    (other_key.key_id, other_key.seed)]
    theirs = signedjson.key.read_signing_keys(io.StringIO(text))
    assert [k.version for k in theirs] == ["1", "2"]
    stream = io.StringIO()
    signedjson.key.write_signing_keys(stream, theirs)
    assert [k.seed for k in decode_signing_key_file(stream.getvalue())] == [key.seed, other_key.seed]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "no keys"),
        ("\n\n", "no keys"),
        ("ed25519 1\n", "line 1: expected 3 fields, got 2"),
        ("\ned25519 1 AAAA extra\n", "line 2: expected 3 fields, got 4"),
        ("rsa 1 AAAA\n", "line 1: unsupported algorithm 'rsa'"),
        ("ed25519 a-b AAAA\n", r"line 1: key version 'a-b'"),
        ("ed25519 1 !!!!\n", "line 1: bad seed: .*outside the alphabet"),
        ("ed25519 1 AAAA\n", "line 1: bad seed: .*32 bytes"),
    ],
)
def test_malformed_key_files(text, message):
    with pytest.raises(KeyFormatError, match=message):
        decode_signing_key_file(text)


def test_duplicate_key_version(key):
    with pytest.raises(KeyFormatError, match="version '1' twice"):
        decode_signing_key_file(encode_signing_key_file([key, key]))


def test_old_keys_file(key, other_key):
    old = {"ed25519:2": OldVerifyKey(other_key.verify_key, 2000),
           "ed25519:1": OldVerifyKey(key.verify_key, 1000)}
    text = encode_old_verify_keys_file(old)
    assert text.splitlines()[0] == f"ed25519 1 1000 {verify_key_base64(key)}"
    assert decode_old_verify_keys_file(text) == old
    theirs = signedjson.key.read_old_signing_keys(io.StringIO(text))
    assert [(k.version, k.expired) for k in theirs] == [("1", 1000), ("2", 2000)]
    assert decode_old_verify_keys_file("") == {}


@pytest.mark.parametrize(
    "line, message",
    [
        ("ed25519 1 soon AAAA", "expired_ts must be an integer"),
        ("ed25519 1 5 AAAA", "line 1: verify key ed25519:1 must be 32 bytes"),
        ("ed25519 1 5", "expected 4 fields"),
    ],
)
def test_malformed_old_keys_file(line, message):
    with pytest.raises(KeyFormatError, match=message):
        decode_old_verify_keys_file(line + "\n")


# ---------------------------------------------------------------- edges: loops with several items

def test_a_signature_by_an_unknown_key_sorting_first_does_not_hide_a_known_one(key, other_key):
    """Key rotation: the signer holds ed25519:1 (retired) and ed25519:2; a verifier
    that only has the new key must still verify."""
    signed = sign_json(sign_json({"a": 1}, "example.org", key), "example.org", other_key)
    assert signature_key_ids(signed, "example.org") == ("ed25519:1", "ed25519:2")
    assert verify_signed_json(signed, "example.org", {"ed25519:2": other_key.verify_key}) == ("ed25519:2",)
    assert verify_signed_json(signed, "example.org", {"ed25519:1": key.verify_key}) == ("ed25519:1",)
    both = {"ed25519:1": key.verify_key, "ed25519:2": other_key.verify_key}
    assert verify_signed_json(signed, "example.org", both) == ("ed25519:1", "ed25519:2")


def test_every_known_signature_must_verify(key, other_key):
    signed = sign_json(sign_json({"a": 1}, "example.org", key), "example.org", other_key)
    signed["signatures"]["example.org"]["ed25519:2"] = signed["signatures"]["example.org"]["ed25519:1"]
    both = {"ed25519:1": key.verify_key, "ed25519:2": other_key.verify_key}
    with pytest.raises(BadSignature, match="^signature example.org/ed25519:2 does not verify$"):
        verify_signed_json(signed, "example.org", both)


def test_unknown_key_message_lists_every_key():
    error = UnknownKey("example.org", ["ed25519:b", "ed25519:a"])
    assert str(error) == "example.org signed with unknown key(s) ed25519:a, ed25519:b"


# ---------------------------------------------------------------- edges: error paths

@pytest.mark.parametrize("call, error, message", [
    (lambda k: sign_json(["a"], "example.org", k), TypeError, "only JSON objects can be signed"),
    (lambda k: verify_signed_json(["a"], "example.org", {}), MalformedSignature,
     "only JSON objects carry signatures"),
    (lambda k: signature_key_ids("a", "example.org"), MalformedSignature,
     "only JSON objects carry signatures"),
    (lambda k: verify_signed_json({"signatures": "x"}, "example.org", {}), MalformedSignature,
     "'signatures' must be an object"),
    (lambda k: parse_key_id(5), KeyFormatError, "key id must be a string, not int"),
    (lambda k: decode_signing_key_file(b"ed25519 1 AAAA"), KeyFormatError, "key file content must be text"),
    (lambda k: decode_signing_key_file("\n"), KeyFormatError, "key file holds no keys"),
    (lambda k: type(k)("1", k.private_key, algorithm="rsa"), KeyFormatError, "unsupported key algorithm 'rsa'"),
])
def test_error_messages(key, call, error, message):
    with pytest.raises(error) as info:
        call(key)
    assert str(info.value) == message


def test_duplicate_old_key_names_its_line(key):
    line = f"ed25519 1 5 {verify_key_base64(key)}\n"
    with pytest.raises(KeyFormatError, match="^old key file line 3: duplicate key ed25519:1$"):
        decode_old_verify_keys_file(line + "\n" + line)
    with pytest.raises(KeyFormatError, match="^key file line 2: unsupported algorithm 'rsa'$"):
        decode_old_verify_keys_file(line + "rsa 1 5 AAAA\n")
