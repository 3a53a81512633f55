"""This server's signing keys on disk: load, create on first start, rotate.

Theory of operation
-------------------
Two files, both in signedjson/Synapse text formats (parsed by the pure
functions of :mod:`vibemuse.protocol.signing`):

``<path>``
    The current signing key, exactly one line:
    ``ed25519 <version> <unpadded base64 of the 32-byte seed>``.
    The same format Synapse's ``signing_key_path`` uses, so a key can be
    moved between the two. Mode 0600.

``<path>.old``
    Rotated-out keys, public halves only, one per line:
    ``ed25519 <version> <expired_ts ms> <unpadded base64 public key>``
    (what signedjson's ``read_old_signing_keys`` reads). They are published
    as ``old_verify_keys`` so events signed before a rotation keep
    verifying; their secrets are deliberately not kept. Missing = none.

Every write goes to a temporary file in the same directory (created 0600),
is fsynced, then renamed over the target (or hard-linked into place when
creating, so two processes starting at once cannot both create a key: the
loser loads the winner's key). Rotation writes ``.old`` first, then the key
file; a crash in between leaves the current key listed in both, and loading
drops the ``.old`` entry for the current key id, so either way the state is
consistent.

A key file readable or writable by group or others is repaired to 0600 and a
warning is logged (it may have leaked: consider rotating). Key versions are
``<n>_<4 random letters/digits>``: ``n`` counts up on each rotation, and the
random part keeps a key regenerated after a lost file from reusing a key id
that remote caches still hold with the old public key.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
import string
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vibemuse.protocol.events import build_server_keys_response
from vibemuse.protocol.signing import (
    KeyFormatError,
    OldVerifyKey,
    SigningKey,
    decode_old_verify_keys_file,
    decode_signing_key_file,
    encode_old_verify_keys_file,
    encode_signing_key_file,
    generate_signing_key,
)

__all__ = [
    "KeyRing",
    "load_or_create_signing_keys",
    "load_signing_keys",
    "next_key_version",
    "old_keys_path",
    "rotate_signing_key",
]

log = logging.getLogger(__name__)

OLD_KEYS_SUFFIX = ".old"
_SUFFIX_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class KeyRing:
    """The current signing key and the public halves of rotated-out keys."""

    current: SigningKey
    old_verify_keys: Mapping[str, OldVerifyKey] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def verify_keys(self) -> dict[str, Ed25519PublicKey]:
        """Every public key of this server by key id, current and old."""
        keys = {key_id: old.verify_key for key_id, old in self.old_verify_keys.items()}
        keys[self.current.key_id] = self.current.verify_key
        return keys

    def server_keys_response(self, server_name: str, valid_until_ts: int) -> dict[str, Any]:
        """The signed body of ``GET /federation/v1/keys``."""
        return build_server_keys_response(
            server_name, self.current, self.old_verify_keys, valid_until_ts
        )


def old_keys_path(path: str) -> str:
    """Where the rotated-out public keys of ``path`` live."""
    return path + OLD_KEYS_SUFFIX


def next_key_version(ring: KeyRing | None) -> str:
    """``<n>_<random>``, with n one more than the highest n in ``ring``."""
    highest = 0
    if ring is not None:
        versions = [ring.current.version] + [k.split(":", 1)[1] for k in ring.old_verify_keys]
        for version in versions:
            head = version.split("_", 1)[0]
            if head.isdigit():
                highest = max(highest, int(head))
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(4))
    return f"{highest + 1}_{suffix}"


def load_or_create_signing_keys(path: str) -> KeyRing:
    """Load the key ring at ``path``, creating a fresh key if there is none."""
    if not os.path.exists(path):
        key = generate_signing_key(next_key_version(None))
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if _write_atomic(path, encode_signing_key_file([key]), replace=False):
            log.info("created signing key %s in %s", key.key_id, path)
    return load_signing_keys(path)


def load_signing_keys(path: str) -> KeyRing:
    """Load an existing key ring; raise KeyFormatError if malformed."""
    _secure_mode(path)
    with open(path, encoding="utf-8") as handle:
        keys = decode_signing_key_file(handle.read())
    if len(keys) != 1:
        raise KeyFormatError(
            f"{path} holds {len(keys)} keys; it must hold exactly the current key "
            f"(rotated-out keys belong in {old_keys_path(path)})"
        )
    current = keys[0]
    old = _read_old_keys(old_keys_path(path))
    old.pop(current.key_id, None)  # left by a rotation interrupted midway
    return KeyRing(current, MappingProxyType(old))


def rotate_signing_key(path: str, now_ms: int) -> KeyRing:
    """Replace the current key with a new one; the old key expires at now_ms.

    The old public key goes to ``<path>.old`` (published as
    ``old_verify_keys``), so events it signed keep verifying.
    """
    ring = load_signing_keys(path)
    new_key = generate_signing_key(next_key_version(ring))
    old = dict(ring.old_verify_keys)
    old[ring.current.key_id] = OldVerifyKey(ring.current.verify_key, now_ms)
    _write_atomic(old_keys_path(path), encode_old_verify_keys_file(old), replace=True)
    _write_atomic(path, encode_signing_key_file([new_key]), replace=True)
    log.info("rotated signing key %s -> %s", ring.current.key_id, new_key.key_id)
    return KeyRing(new_key, MappingProxyType(old))


def _read_old_keys(path: str) -> dict[str, OldVerifyKey]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}
    try:
        return decode_old_verify_keys_file(text)
    except KeyFormatError as exc:
        raise KeyFormatError(f"{path}: {exc}") from None


def _secure_mode(path: str) -> None:
    """Refuse non-regular files; repair group/other permission bits."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise KeyFormatError(f"{path} is not a regular file")
    if info.st_mode & 0o077:
        log.warning(
            "signing key file %s had mode %o; setting it to 600. The key may have "
            "been read by others: consider rotating it.",
            path, stat.S_IMODE(info.st_mode),
        )
        os.chmod(path, 0o600)


def _write_atomic(path: str, text: str, *, replace: bool) -> bool:
    """Write ``text`` to ``path`` atomically with mode 0600.

    With ``replace=False`` an existing file is left alone and False returned.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_directory(directory)
    return True


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
