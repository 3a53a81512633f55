"""Ed25519 signing of JSON objects, in Matrix's (signedjson's) format.

Theory of operation
-------------------
A signed object carries ``signatures: {signing_name: {key_id: sig_b64}}``.
The signature covers the canonical JSON of the object *without* its
``signatures`` and ``unsigned`` members, so several servers can sign the
same object, and ``unsigned`` can carry data that changes in transit.
Key ids are ``<algorithm>:<version>``; only ``ed25519`` is supported, and
signatures under any other algorithm are ignored, as Matrix requires, so
that new algorithms can be introduced without breaking old verifiers.

Verification (:func:`verify_signed_json`) checks every ``ed25519``
signature made by ``signing_name`` whose key id the caller supplied a key
for; any failure rejects the object. If none could be checked the error
says whether the signer had no signature at all (:class:`MissingSignature`)
or signed only with keys the caller does not have (:class:`UnknownKey`,
whose ``key_ids`` tell a key cache what to fetch).

Key files use Synapse's text format, one key per line:
``ed25519 <version> <unpadded base64 of the 32-byte seed>``. Old (rotated
out) keys keep only their public half, one per line, as signedjson reads
them: ``ed25519 <version> <expired_ts> <unpadded base64 public key>``.
Both are pure text here; reading and writing the files is the caller's job.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from .canonical_json import CanonicalJsonError, encode_canonical_json
from .encoding import Base64Error, decode_base64, encode_base64

__all__ = [
    "ALGORITHM",
    "BadSignature", "KeyFormatError", "MalformedSignature", "MissingSignature",
    "SignatureError", "UnknownKey",
    "OldVerifyKey", "SigningKey", "VerifyKeyLike",
    "decode_old_verify_keys_file", "decode_signing_key_file",
    "decode_verify_key_base64", "decode_verify_key_bytes",
    "encode_old_verify_keys_file", "encode_signing_key_file",
    "generate_signing_key", "parse_key_id", "sign_json",
    "signature_key_ids", "verify_key_base64", "verify_signed_json",
]

ALGORITHM = "ed25519"
SEED_BYTES = 32
_KEY_ID = re.compile(r"ed25519:([A-Za-z0-9_]+)")
_VERSION = re.compile(r"[A-Za-z0-9_]+")
_STRIPPED = ("signatures", "unsigned")

VerifyKeyLike = Union[Ed25519PublicKey, bytes]


class KeyFormatError(ValueError):
    """A key, key id, key file or key line is malformed."""


class SignatureError(ValueError):
    """Base class: a signed object failed verification."""


class MissingSignature(SignatureError):
    """The expected signer made no ed25519 signature on the object."""


class UnknownKey(SignatureError):
    """The signer signed only with keys the verifier was not given."""

    def __init__(self, signing_name: str, key_ids: Iterable[str]) -> None:
        self.signing_name = signing_name
        self.key_ids = tuple(sorted(key_ids))
        super().__init__(
            f"{signing_name} signed with unknown key(s) {', '.join(self.key_ids)}"
        )


class BadSignature(SignatureError):
    """A signature does not verify (forged, altered object, or wrong key)."""


class MalformedSignature(SignatureError):
    """The ``signatures`` member is not shaped as Matrix requires."""


@dataclass(frozen=True)
class SigningKey:
    """A server's private signing key with its version (``ed25519:<version>``)."""

    version: str
    private_key: Ed25519PrivateKey = field(repr=False, compare=False)
    algorithm: str = ALGORITHM

    def __post_init__(self) -> None:
        if self.algorithm != ALGORITHM:
            raise KeyFormatError(f"unsupported key algorithm {self.algorithm!r}")
        _check_version(self.version)

    @property
    def key_id(self) -> str:
        return f"{self.algorithm}:{self.version}"

    @property
    def seed(self) -> bytes:
        """The 32-byte seed: the secret that the key file stores."""
        return self.private_key.private_bytes(
            Encoding.Raw, PrivateFormat.Raw, NoEncryption()
        )

    @property
    def verify_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()


class OldVerifyKey(NamedTuple):
    """A rotated-out public key and when it stopped being used (ms).

    A NamedTuple so that it also unpacks as ``(verify_key, expired_ts)``.
    """

    verify_key: Ed25519PublicKey
    expired_ts: int


def _check_version(version: object) -> None:
    if not isinstance(version, str) or _VERSION.fullmatch(version) is None:
        raise KeyFormatError(f"key version {version!r} must match [A-Za-z0-9_]+")


def parse_key_id(key_id: object) -> str:
    """Return the version of an ``ed25519:<version>`` key id, or raise."""
    if not isinstance(key_id, str):
        raise KeyFormatError(f"key id must be a string, not {type(key_id).__name__}")
    match = _KEY_ID.fullmatch(key_id)
    if match is None:
        raise KeyFormatError(f"key id {key_id!r} must match ed25519:[A-Za-z0-9_]+")
    return match.group(1)


def generate_signing_key(version: str, seed: bytes | None = None) -> SigningKey:
    """Make a signing key from a 32-byte seed, or from os.urandom if None."""
    if seed is None:
        seed = os.urandom(SEED_BYTES)
    if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
        raise KeyFormatError(f"an ed25519 seed must be {SEED_BYTES} bytes")
    return SigningKey(version, Ed25519PrivateKey.from_private_bytes(seed))


def _public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def verify_key_base64(key: SigningKey | Ed25519PublicKey) -> str:
    """Unpadded base64 of the public key, as published in server keys."""
    if isinstance(key, SigningKey):
        key = key.verify_key
    return encode_base64(_public_bytes(key))


def decode_verify_key_bytes(key_id: str, raw: bytes) -> Ed25519PublicKey:
    """Turn 32 raw bytes into a public key, checking the key id too."""
    parse_key_id(key_id)
    if not isinstance(raw, bytes) or len(raw) != 32:
        raise KeyFormatError(f"verify key {key_id} must be 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def decode_verify_key_base64(key_id: str, value: str) -> Ed25519PublicKey:
    """Turn unpadded base64 into a public key, with a clear error."""
    try:
        raw = decode_base64(value)
    except Base64Error as exc:
        raise KeyFormatError(f"verify key {key_id}: {exc}") from None
    return decode_verify_key_bytes(key_id, raw)


def _as_public_key(key_id: str, key: VerifyKeyLike) -> Ed25519PublicKey:
    if isinstance(key, Ed25519PublicKey):
        return key
    return decode_verify_key_bytes(key_id, key)


# --------------------------------------------------------------------------
# Signing and verifying


def _signed_bytes(obj: Mapping[str, Any]) -> bytes:
    """Canonical JSON of ``obj`` without ``signatures`` and ``unsigned``."""
    return encode_canonical_json({k: v for k, v in obj.items() if k not in _STRIPPED})


def sign_json(
    obj: Mapping[str, Any], signing_name: str, signing_key: SigningKey
) -> dict[str, Any]:
    """Return a copy of ``obj`` with ``signing_name``'s signature added.

    Existing signatures (other servers, other keys) are kept; ``unsigned``
    is carried over untouched. The input is not modified.
    """
    if not isinstance(obj, Mapping):
        raise TypeError("only JSON objects can be signed")
    signature = signing_key.private_key.sign(_signed_bytes(obj))
    signatures = {
        name: dict(sigs) for name, sigs in _signature_map(obj).items()
    }
    signatures.setdefault(signing_name, {})[signing_key.key_id] = encode_base64(signature)
    signed = dict(obj)
    signed["signatures"] = signatures
    return signed


def _signature_map(obj: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    """The ``signatures`` member, checked for shape (may be empty)."""
    if not isinstance(obj, Mapping):
        raise MalformedSignature("only JSON objects carry signatures")
    signatures = obj.get("signatures", {})
    if not isinstance(signatures, Mapping):
        raise MalformedSignature("'signatures' must be an object")
    for name, sigs in signatures.items():
        if not isinstance(sigs, Mapping):
            raise MalformedSignature(f"signatures.{name} must be an object")
    return signatures


def signature_key_ids(obj: Mapping[str, Any], signing_name: str) -> tuple[str, ...]:
    """The ed25519 key ids ``signing_name`` signed ``obj`` with (sorted)."""
    sigs = _signature_map(obj).get(signing_name, {})
    return tuple(sorted(k for k in sigs if isinstance(k, str) and k.startswith("ed25519:")))


def verify_signed_json(
    obj: Mapping[str, Any],
    signing_name: str,
    verify_keys: Mapping[str, VerifyKeyLike],
) -> tuple[str, ...]:
    """Check ``signing_name``'s ed25519 signatures on ``obj``.

    Returns the key ids that verified. Raises :class:`MissingSignature`,
    :class:`UnknownKey`, :class:`BadSignature` or :class:`MalformedSignature`.
    """
    sigs = _signature_map(obj).get(signing_name)
    wanted = signature_key_ids(obj, signing_name)
    if not sigs or not wanted:
        raise MissingSignature(f"no ed25519 signature from {signing_name}")
    message: bytes | None = None
    verified = []
    for key_id in wanted:
        if _KEY_ID.fullmatch(key_id) is None:
            raise MalformedSignature(f"malformed key id {key_id!r} from {signing_name}")
        key = verify_keys.get(key_id)
        if key is None:
            continue
        if message is None:
            message = _verified_bytes(obj)
        _verify_one(_as_public_key(key_id, key), sigs[key_id], message, signing_name, key_id)
        verified.append(key_id)
    if not verified:
        raise UnknownKey(signing_name, wanted)
    return tuple(verified)


def _verified_bytes(obj: Mapping[str, Any]) -> bytes:
    """The bytes a received signature covers; an object that is not canonical
    JSON (a float, a non-string key) cannot carry a valid signature."""
    try:
        return _signed_bytes(obj)
    except CanonicalJsonError as exc:
        raise MalformedSignature(f"signed object is not canonical JSON: {exc}") from None


def _verify_one(
    key: Ed25519PublicKey, sig_b64: Any, message: bytes, name: str, key_id: str
) -> None:
    if not isinstance(sig_b64, str):
        raise MalformedSignature(f"signature {name}/{key_id} must be a string")
    try:
        signature = decode_base64(sig_b64)
    except Base64Error as exc:
        raise MalformedSignature(f"signature {name}/{key_id}: {exc}") from None
    if len(signature) != 64:
        raise MalformedSignature(f"signature {name}/{key_id} is not 64 bytes")
    try:
        key.verify(signature, message)
    except InvalidSignature:
        raise BadSignature(f"signature {name}/{key_id} does not verify") from None


# --------------------------------------------------------------------------
# Key files (pure text)


def encode_signing_key_file(keys: Iterable[SigningKey]) -> str:
    """Synapse's key file: ``ed25519 <version> <seed b64>`` per line."""
    return "".join(f"{k.algorithm} {k.version} {encode_base64(k.seed)}\n" for k in keys)


def decode_signing_key_file(text: str) -> list[SigningKey]:
    """Parse a key file; blank lines are ignored, anything odd is an error."""
    keys: list[SigningKey] = []
    for lineno, fields in _key_file_lines(text, 3):
        algorithm, version, seed_b64 = fields
        _check_line_key_id(lineno, algorithm, version)
        try:
            seed = decode_base64(seed_b64)
            keys.append(generate_signing_key(version, seed))
        except (Base64Error, KeyFormatError) as exc:
            raise KeyFormatError(f"key file line {lineno}: bad seed: {exc}") from None
    _check_unique([k.version for k in keys])
    if not keys:
        raise KeyFormatError("key file holds no keys")
    return keys


def encode_old_verify_keys_file(old_keys: Mapping[str, OldVerifyKey]) -> str:
    """``ed25519 <version> <expired_ts> <public key b64>`` per line, sorted."""
    lines = []
    for key_id in sorted(old_keys):
        version = parse_key_id(key_id)
        key, expired_ts = old_keys[key_id]
        lines.append(f"{ALGORITHM} {version} {int(expired_ts)} {verify_key_base64(key)}\n")
    return "".join(lines)


def decode_old_verify_keys_file(text: str) -> dict[str, OldVerifyKey]:
    """Parse the old-keys file; an empty file means no old keys."""
    old: dict[str, OldVerifyKey] = {}
    for lineno, fields in _key_file_lines(text, 4):
        algorithm, version, expired, key_b64 = fields
        key_id = _check_line_key_id(lineno, algorithm, version)
        if not expired.isdigit():
            raise KeyFormatError(f"old key file line {lineno}: expired_ts must be an integer")
        if key_id in old:
            raise KeyFormatError(f"old key file line {lineno}: duplicate key {key_id}")
        try:
            key = decode_verify_key_base64(key_id, key_b64)
        except KeyFormatError as exc:
            raise KeyFormatError(f"old key file line {lineno}: {exc}") from None
        old[key_id] = OldVerifyKey(key, int(expired))
    return old


def _key_file_lines(text: str, width: int) -> Iterable[tuple[int, list[str]]]:
    if not isinstance(text, str):
        raise KeyFormatError("key file content must be text")
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != width:
            raise KeyFormatError(
                f"key file line {lineno}: expected {width} fields, got {len(fields)}"
            )
        yield lineno, fields


def _check_line_key_id(lineno: int, algorithm: str, version: str) -> str:
    if algorithm != ALGORITHM:
        raise KeyFormatError(f"key file line {lineno}: unsupported algorithm {algorithm!r}")
    try:
        _check_version(version)
    except KeyFormatError as exc:
        raise KeyFormatError(f"key file line {lineno}: {exc}") from None
    return f"{algorithm}:{version}"


def _check_unique(versions: list[str]) -> None:
    seen: set[str] = set()
    for version in versions:
        if version in seen:
            raise KeyFormatError(f"key file has key version {version!r} twice")
        seen.add(version)
