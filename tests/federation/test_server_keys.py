"""The key files on disk: creation, permissions, rotation, recovery."""

from __future__ import annotations

import io
import logging
import os
import re
import stat

import pytest
import signedjson.key  # test-only: Synapse's key file reader/writer

from vibemuse.federation import server_keys
from vibemuse.federation.server_keys import (
    KeyRing,
    load_or_create_signing_keys,
    load_signing_keys,
    next_key_version,
    old_keys_path,
    rotate_signing_key,
)
from vibemuse.protocol.encoding import encode_base64
from vibemuse.protocol.events import build_event, parse_server_keys_response, verify_event
from vibemuse.protocol.signing import (
    KeyFormatError,
    OldVerifyKey,
    encode_old_verify_keys_file,
    encode_signing_key_file,
    generate_signing_key,
)

SERVER = "example.org"
NOW = 1_767_225_600_000


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def event_signed_by(key):
    return build_event(event_type="vm.page", sender="@alice:example.org", origin=SERVER,
                       origin_server_ts=NOW, content={"body": "psst"},
                       recipients=["@bob:example.org"], signing_key=key)


def test_creates_key_file_0600_in_synapse_format(tmp_path):
    path = str(tmp_path / "keys" / "signing.key")
    old_umask = os.umask(0)
    try:
        ring = load_or_create_signing_keys(path)
    finally:
        os.umask(old_umask)
    assert mode(path) == 0o600
    text = open(path, encoding="utf-8").read()
    assert re.fullmatch(r"ed25519 1_[A-Za-z0-9]{4} [A-Za-z0-9+/]{43}\n", text)
    assert ring.current.version == text.split()[1]
    assert ring.old_verify_keys == {}
    assert not os.path.exists(old_keys_path(path))
    assert [k.name for k in os.scandir(tmp_path / "keys")] == ["signing.key"]  # no temp left
    synapse_view = signedjson.key.read_signing_keys(io.StringIO(text))
    assert synapse_view[0].version == ring.current.version


def test_loading_again_gives_the_same_key(tmp_path):
    path = str(tmp_path / "signing.key")
    first = load_or_create_signing_keys(path)
    second = load_or_create_signing_keys(path)
    assert first.current.seed == second.current.seed
    assert first.current.key_id == second.current.key_id


def test_loads_a_key_written_by_signedjson(tmp_path):
    path = tmp_path / "signing.key"
    theirs = signedjson.key.generate_signing_key("a_AbCd")
    stream = io.StringIO()
    signedjson.key.write_signing_keys(stream, [theirs])
    path.write_text(stream.getvalue())
    os.chmod(path, 0o600)
    ring = load_signing_keys(str(path))
    assert ring.current.key_id == "ed25519:a_AbCd"
    assert ring.current.seed == theirs.encode()


def test_repairs_a_group_readable_file_and_warns(tmp_path, caplog):
    path = tmp_path / "signing.key"
    path.write_text(encode_signing_key_file([generate_signing_key("1", b"k" * 32)]))
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING, logger=server_keys.__name__):
        ring = load_signing_keys(str(path))
    assert mode(path) == 0o600
    assert "had mode 644" in caplog.text and "consider rotating" in caplog.text
    assert ring.current.key_id == "ed25519:1"


def test_refuses_a_directory(tmp_path):
    with pytest.raises(KeyFormatError, match="not a regular file"):
        load_or_create_signing_keys(str(tmp_path))


@pytest.mark.parametrize(
    "text, message",
    [
        ("ed25519 1 AAAA\n", "bad seed"),
        ("garbage\n", "expected 3 fields"),
        ("", "no keys"),
    ],
)
def test_malformed_key_file(tmp_path, text, message):
    path = tmp_path / "signing.key"
    path.write_text(text)
    with pytest.raises(KeyFormatError, match=message):
        load_or_create_signing_keys(str(path))


def test_refuses_several_current_keys(tmp_path):
    path = tmp_path / "signing.key"
    keys = [generate_signing_key("1", b"a" * 32), generate_signing_key("2", b"b" * 32)]
    path.write_text(encode_signing_key_file(keys))
    with pytest.raises(KeyFormatError, match=r"holds 2 keys.*signing\.key\.old"):
        load_signing_keys(str(path))


def test_malformed_old_keys_file_names_the_file(tmp_path):
    path = str(tmp_path / "signing.key")
    load_or_create_signing_keys(path)
    with open(old_keys_path(path), "w") as handle:
        handle.write("ed25519 1 yesterday AAAA\n")
    with pytest.raises(KeyFormatError, match=r"signing\.key\.old: .*expired_ts"):
        load_signing_keys(path)


def test_rotation(tmp_path):
    path = str(tmp_path / "signing.key")
    first = load_or_create_signing_keys(path)
    second = rotate_signing_key(path, NOW)
    assert second.current.version.startswith("2_")
    assert second.current.seed != first.current.seed
    assert second.old_verify_keys == {
        first.current.key_id: OldVerifyKey(first.current.verify_key, NOW)}
    assert mode(path) == 0o600 and mode(old_keys_path(path)) == 0o600
    assert encode_base64(first.current.seed) not in open(old_keys_path(path)).read()  # secret gone
    reloaded = load_signing_keys(path)
    assert reloaded.current.seed == second.current.seed
    assert reloaded.old_verify_keys == second.old_verify_keys
    third = rotate_signing_key(path, NOW + 5)
    assert third.current.version.startswith("3_") and len(third.old_verify_keys) == 2
    assert signedjson.key.read_old_signing_keys(open(old_keys_path(path)))[0].expired == NOW


def test_event_signed_by_rotated_out_key_still_verifies(tmp_path):
    path = str(tmp_path / "signing.key")
    old_event = event_signed_by(load_or_create_signing_keys(path).current)
    ring = rotate_signing_key(path, NOW)
    document = ring.server_keys_response(SERVER, NOW + 3600_000)
    published = parse_server_keys_response(document, SERVER, NOW)
    assert list(published.verify_keys) == [ring.current.key_id]
    assert not verify_event(old_event, {SERVER: published.all_verify_keys()}).redacted_only
    assert not verify_event(event_signed_by(ring.current), {SERVER: ring.verify_keys()}).redacted_only


def test_interrupted_rotation_is_consistent(tmp_path):
    """A crash after writing .old but before the key file: current key listed as old."""
    path = str(tmp_path / "signing.key")
    ring = load_or_create_signing_keys(path)
    stale = {ring.current.key_id: OldVerifyKey(ring.current.verify_key, NOW)}
    with open(old_keys_path(path), "w") as handle:
        handle.write(encode_old_verify_keys_file(stale))
    reloaded = load_signing_keys(path)
    assert reloaded.old_verify_keys == {}
    reloaded.server_keys_response(SERVER, NOW + 1)  # would refuse current-as-old


def test_create_never_clobbers_an_existing_file(tmp_path):
    path = str(tmp_path / "signing.key")
    ring = load_or_create_signing_keys(path)
    other = encode_signing_key_file([generate_signing_key("9")])
    assert server_keys._write_atomic(path, other, replace=False) is False
    assert load_signing_keys(path).current.seed == ring.current.seed


def test_next_key_version():
    assert re.fullmatch(r"1_[A-Za-z0-9]{4}", next_key_version(None))
    ring = KeyRing(generate_signing_key("a_Synapse", b"x" * 32),
                   {"ed25519:7_abcd": OldVerifyKey(generate_signing_key("7").verify_key, 1)})
    assert next_key_version(ring).startswith("8_")
    assert len({next_key_version(ring) for _ in range(20)}) > 1  # random part
