"""Signed events in Matrix's shape, and the signed server-keys document.

Theory of operation
-------------------
An event is a JSON object (see ``spec/v1/events.md``)::

    {type, sender, origin, origin_server_ts, [room_id | channel_id |
     recipients], content, hashes: {sha256}, event_id, signatures, [unsigned]}

Three digests protect it, computed over canonical JSON:

1. **content hash** (``hashes.sha256``): SHA-256 of the event without
   ``unsigned``, ``signatures``, ``hashes`` and ``event_id`` -- it covers
   the full content.
2. **event id** (``event_id``): ``$`` + URL-safe unpadded base64 of SHA-256 of
   the *redacted* event without ``signatures``, ``unsigned`` and ``event_id``.
   It covers the content hash, so it pins the full content too.
3. **signature** (``signatures[origin]``): ed25519 over the redacted event
   (which keeps ``event_id``) without ``signatures`` and ``unsigned``.

Redaction keeps only the essential top-level keys and, inside ``content``,
the keys :data:`REDACTION_KEPT_CONTENT_KEYS` lists for the event's type.
Because the id and the signature cover only the redacted form, a server may
drop an event's content (on a redaction request, or because the content
does not match its hash) and the event still verifies, keeps its id and
stays in history. That is Matrix's rule, which :func:`verify_event` applies:
a bad signature or id rejects the event; a bad content hash downgrades it to
its redacted form (``VerifiedEvent.redacted_only``).

:func:`build_event` is the single code path that makes events. The key
response functions live at the end of this module.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .canonical_json import CanonicalJsonError, encode_canonical_json
from .encoding import Base64Error, decode_base64, encode_base64
from .errors import ProtocolError
from .ids import is_valid_server_name, parse_room_id, parse_user_id
from .signing import (
    KeyFormatError, OldVerifyKey, SignatureError, SigningKey, VerifyKeyLike,
    decode_verify_key_base64, decode_verify_key_bytes, parse_key_id, sign_json,
    verify_key_base64, verify_signed_json,
)

__all__ = [
    "EventError", "EventTooLarge", "MAX_EVENT_BYTES", "MAX_KEY_VALIDITY_MS", "MAX_RECIPIENTS",
    "REDACTION_KEPT_CONTENT_KEYS", "REDACTION_KEPT_TOP_LEVEL_KEYS",
    "SCOPE_FIELDS", "VerifiedEvent",
    "build_event", "compute_content_hash", "compute_event_id",
    "redact_event", "validate_event", "verify_event",
    "ServerKeys", "ServerKeysError",
    "build_server_keys_response", "parse_server_keys_response",
]

# The content keys a redaction keeps, per event type; unknown types keep
# none. spec/v1/events.md holds the same table (a test compares them).
REDACTION_KEPT_CONTENT_KEYS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "vm.room.message": ("kind",),
    "vm.room.member": ("membership",),
    "vm.page": (),
    "vm.receipt": ("kind", "relates_to", "recipient", "reason"),
    "vm.channel.message": (),
    "vm.channel.member": ("membership", "target", "target_server"),
    "vm.channel.create": ("name", "creator"),
    "vm.channel.settings": ("visibility",),
    "vm.system": (),
    "vm.edit": ("relates_to",),
    "vm.redaction": ("redacts",),
})
REDACTION_KEPT_TOP_LEVEL_KEYS = (
    "event_id", "type", "sender", "origin", "origin_server_ts",
    "room_id", "channel_id", "recipients", "content", "hashes", "signatures",
)
SCOPE_FIELDS = ("room_id", "channel_id", "recipients")
SYSTEM_EVENT_TYPE = "vm.system"
# Server-wide events have no scope: announcements, and the redactions and
# edits of announcements (which must reach everyone the announcement did).
SCOPELESS_TYPES = frozenset({SYSTEM_EVENT_TYPE, "vm.redaction", "vm.edit"})
MAX_EVENT_BYTES = 65536
MAX_RECIPIENTS = 100
MAX_CHANNEL_ID_LENGTH = 255
# A fetched key document is trusted for at most this long (Matrix: 7 days).
MAX_KEY_VALIDITY_MS = 7 * 24 * 60 * 60 * 1000

_REQUIRED = ("type", "sender", "origin", "origin_server_ts", "content")
_SIGNED_PARTS = ("hashes", "event_id", "signatures")
_ALLOWED = frozenset(_REQUIRED + SCOPE_FIELDS + _SIGNED_PARTS + ("unsigned",))
_NOT_HASHED = frozenset(("unsigned", "signatures", "hashes", "event_id"))
_NOT_IN_ID = frozenset(("unsigned", "signatures", "event_id"))
_TYPE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*")
_EVENT_ID = re.compile(r"\$[A-Za-z0-9_-]{43}")


class EventError(ValueError):
    """An event is malformed, or its id does not match its contents."""


class EventTooLarge(EventError):
    """The event's canonical JSON is over ``MAX_EVENT_BYTES``."""


@dataclass(frozen=True)
class VerifiedEvent:
    """The result of :func:`verify_event`.

    ``event`` is what may be kept: the event as received, or its redacted
    form when ``redacted_only`` (the content did not match its hash).
    """

    event: dict[str, Any]
    event_id: str
    redacted_only: bool
    key_ids: tuple[str, ...]


# --------------------------------------------------------------------------
# Digests and redaction


def _canonical(obj: Mapping[str, Any]) -> bytes:
    try:
        return encode_canonical_json(obj)
    except CanonicalJsonError as exc:
        raise EventError(f"event is not canonical JSON: {exc}") from None


def _require_object(event: Any) -> None:
    if not isinstance(event, Mapping):
        raise EventError("an event must be a JSON object")


def _hashed_bytes(event: Mapping[str, Any]) -> bytes:
    _require_object(event)
    return _canonical({k: v for k, v in event.items() if k not in _NOT_HASHED})


def compute_content_hash(event: Mapping[str, Any]) -> str:
    """Unpadded base64 SHA-256 of the event minus unsigned/signatures/hashes/event_id."""
    return encode_base64(hashlib.sha256(_hashed_bytes(event)).digest())


def redact_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """Return the redacted copy: essential keys only, content per type."""
    _require_object(event)
    redacted = {k: event[k] for k in REDACTION_KEPT_TOP_LEVEL_KEYS if k in event}
    content = event.get("content")
    event_type = event.get("type")
    kept = REDACTION_KEPT_CONTENT_KEYS.get(event_type, ()) if isinstance(event_type, str) else ()
    if isinstance(content, Mapping):
        redacted["content"] = {k: content[k] for k in kept if k in content}
    else:
        redacted["content"] = {}
    return redacted


def _id_of_redacted(redacted: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(
        _canonical({k: v for k, v in redacted.items() if k not in _NOT_IN_ID})
    ).digest()
    return "$" + encode_base64(digest, urlsafe=True)


def compute_event_id(event: Mapping[str, Any]) -> str:
    """``$`` + URL-safe unpadded base64 SHA-256 of the redacted event's id form."""
    return _id_of_redacted(redact_event(event))


# --------------------------------------------------------------------------
# Shape


def validate_event(event: Any, *, signed: bool = True) -> None:
    """Raise :class:`EventError` unless ``event`` has a valid shape.

    With ``signed=False`` the ``hashes``/``event_id``/``signatures`` members
    are not required (the shape of an event being built).
    """
    _require_object(event)
    unknown = sorted(set(event) - _ALLOWED)
    if unknown:
        raise EventError(f"unknown top-level field(s): {', '.join(map(str, unknown))}")
    needed = _REQUIRED + (_SIGNED_PARTS if signed else ())
    missing = [name for name in needed if name not in event]
    if missing:
        raise EventError(f"missing field(s): {', '.join(missing)}")
    _check_header(event)
    _check_scope(event)
    if not isinstance(event["content"], Mapping):
        raise EventError("content must be an object")
    if "unsigned" in event and not isinstance(event["unsigned"], Mapping):
        raise EventError("unsigned must be an object")
    if signed:
        _check_signed_parts(event)


def _check_header(event: Mapping[str, Any]) -> None:
    event_type, origin, ts = event["type"], event["origin"], event["origin_server_ts"]
    if not isinstance(event_type, str) or len(event_type) > 128 or not _TYPE.fullmatch(event_type):
        raise EventError(f"type {event_type!r} must be dotted lower-case words")
    if not is_valid_server_name(origin):
        raise EventError(f"origin {origin!r} is not a server name")
    try:
        sender = parse_user_id(event["sender"])
    except ProtocolError:
        raise EventError(f"sender {event['sender']!r} is not a user id") from None
    if sender.server_name != origin:
        raise EventError(f"sender {event['sender']} is not on origin server {origin}")
    if type(ts) is not int or not 0 <= ts <= 2**53 - 1:
        raise EventError("origin_server_ts must be a non-negative integer (ms)")


def _check_scope(event: Mapping[str, Any]) -> None:
    present = [name for name in SCOPE_FIELDS if name in event]
    if len(present) > 1:
        raise EventError(f"an event has one scope field, not {', '.join(present)}")
    if not present:
        if event["type"] not in SCOPELESS_TYPES:
            raise EventError("needs one of room_id, channel_id, recipients")
        return
    value = event[present[0]]
    if present[0] == "room_id":
        try:
            parse_room_id(value)
        except ProtocolError:
            raise EventError(f"room_id {value!r} is not a room id") from None
    elif present[0] == "channel_id":
        if not isinstance(value, str) or not 0 < len(value) <= MAX_CHANNEL_ID_LENGTH:
            raise EventError(f"channel_id must be 1-{MAX_CHANNEL_ID_LENGTH} characters")
    else:
        _check_recipients(value)


def _check_recipients(value: Any) -> None:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_RECIPIENTS:
        raise EventError(f"recipients must be a list of 1-{MAX_RECIPIENTS} user ids")
    for index, user_id in enumerate(value):
        try:
            parse_user_id(user_id)
        except ProtocolError:
            raise EventError(f"recipients[{index}] {user_id!r} is not a user id") from None
    if len(set(value)) != len(value):
        raise EventError("recipients holds a user id twice")


def _check_signed_parts(event: Mapping[str, Any]) -> None:
    hashes = event["hashes"]
    if not isinstance(hashes, Mapping) or not isinstance(hashes.get("sha256"), str):
        raise EventError("hashes must be an object with a sha256 string")
    try:
        if len(decode_base64(hashes["sha256"])) != 32:
            raise EventError("hashes.sha256 must encode 32 bytes")
    except Base64Error as exc:
        raise EventError(f"hashes.sha256: {exc}") from None
    event_id = event["event_id"]
    if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
        raise EventError(f"event_id {event_id!r} is not $ + 43 URL-safe base64 characters")
    if not isinstance(event["signatures"], Mapping):
        raise EventError("signatures must be an object")


# --------------------------------------------------------------------------
# Building and verifying


def build_event(
    *,
    event_type: str,
    sender: str,
    origin: str,
    origin_server_ts: int,
    content: Mapping[str, Any],
    signing_key: SigningKey,
    room_id: str | None = None,
    channel_id: str | None = None,
    recipients: list[str] | None = None,
) -> dict[str, Any]:
    """Build, hash, sign and name a new event (the one way events are made).

    ``content`` is referenced, not deep-copied: do not mutate it afterwards.
    """
    event: dict[str, Any] = {
        "type": event_type, "sender": sender, "origin": origin,
        "origin_server_ts": origin_server_ts, "content": content,
    }
    for name, value in (("room_id", room_id), ("channel_id", channel_id),
                        ("recipients", recipients)):
        if value is not None:
            event[name] = value
    validate_event(event, signed=False)
    hashed = _hashed_bytes(event)
    _check_size(hashed)
    event["hashes"] = {"sha256": encode_base64(hashlib.sha256(hashed).digest())}
    redacted = redact_event(event)
    event["event_id"] = redacted["event_id"] = _id_of_redacted(redacted)
    event["signatures"] = sign_json(redacted, origin, signing_key)["signatures"]
    return event


def _check_size(hashed: bytes) -> None:
    """Refuse an event whose hashed form (the bytes the size limit counts) is too big."""
    if len(hashed) > MAX_EVENT_BYTES:
        raise EventTooLarge(f"event is {len(hashed)} bytes, over {MAX_EVENT_BYTES}")


def check_event_size(event: Any) -> bytes:
    """Step 1 of :func:`verify_event` alone: the shape (else :class:`EventError`) and the
    size (else :class:`EventTooLarge`); returns the bytes the content hash covers."""
    validate_event(event)
    hashed = _hashed_bytes(event)
    _check_size(hashed)
    return hashed


def verify_event(
    event: Mapping[str, Any],
    verify_keys_by_server: Mapping[str, Mapping[str, VerifyKeyLike]],
    *,
    hashed: bytes | None = None,
) -> VerifiedEvent:
    """Check an event from another server (Matrix's rules, in order).

    1. shape, else :class:`EventError`; size, else :class:`EventTooLarge`
       (before any signature is checked);
    2. the origin's signature over the redacted event, else a
       ``SignatureError`` (``UnknownKey`` tells which keys to fetch);
    3. the event id, else :class:`EventError`;
    4. the content hash: on mismatch only the redacted form may be kept.

    ``hashed``: what :func:`check_event_size` returned for this event, when
    the caller has done step 1 already.
    """
    if hashed is None:
        hashed = check_event_size(event)
    origin = event["origin"]
    redacted = redact_event(event)
    key_ids = verify_signed_json(redacted, origin, verify_keys_by_server.get(origin, {}))
    event_id = _id_of_redacted(redacted)
    if event["event_id"] != event_id:
        raise EventError(f"event_id {event['event_id']} does not match contents ({event_id})")
    if hashlib.sha256(hashed).digest() != decode_base64(event["hashes"]["sha256"]):
        return VerifiedEvent(redacted, event_id, True, key_ids)
    return VerifiedEvent(dict(event), event_id, False, key_ids)


# --------------------------------------------------------------------------
# The server keys document (GET /federation/v1/keys)


class ServerKeysError(ValueError):
    """A server-keys response is malformed, wrongly signed or expired."""


@dataclass(frozen=True)
class ServerKeys:
    """A verified server-keys response; validity already clamped."""

    server_name: str
    verify_keys: Mapping[str, Ed25519PublicKey]
    old_verify_keys: Mapping[str, OldVerifyKey]
    valid_until_ts: int

    def lookup(self, key_id: str) -> Ed25519PublicKey | None:
        """The public key for ``key_id``, current or old, or None."""
        key = self.verify_keys.get(key_id)
        if key is None and key_id in self.old_verify_keys:
            key = self.old_verify_keys[key_id].verify_key
        return key

    def all_verify_keys(self) -> dict[str, Ed25519PublicKey]:
        """Current and old keys by key id: the mapping verify_event wants."""
        keys = {key_id: old.verify_key for key_id, old in self.old_verify_keys.items()}
        keys.update(self.verify_keys)
        return keys


def build_server_keys_response(
    server_name: str,
    signing_key: SigningKey,
    old_verify_keys: Mapping[str, tuple[VerifyKeyLike, int]],
    valid_until_ts: int,
) -> dict[str, Any]:
    """The signed document a server publishes about its own keys."""
    if not is_valid_server_name(server_name):
        raise ServerKeysError(f"{server_name!r} is not a server name")
    if type(valid_until_ts) is not int:
        raise ServerKeysError("valid_until_ts must be an integer (ms)")
    old: dict[str, Any] = {}
    for key_id, (key, expired_ts) in old_verify_keys.items():
        if key_id == signing_key.key_id:
            raise ServerKeysError(f"{key_id} is both current and old")
        if isinstance(key, bytes):
            key = decode_verify_key_bytes(key_id, key)
        parse_key_id(key_id)
        old[key_id] = {"key": verify_key_base64(key), "expired_ts": int(expired_ts)}
    document = {
        "server_name": server_name,
        "verify_keys": {signing_key.key_id: {"key": verify_key_base64(signing_key)}},
        "old_verify_keys": old,
        "valid_until_ts": valid_until_ts,
    }
    return sign_json(document, server_name, signing_key)


def parse_server_keys_response(
    obj: Any, expected_server_name: str, now_ms: int
) -> ServerKeys:
    """Validate and verify a fetched keys document (self-signed by a current key).

    ``valid_until_ts`` is clamped to at most ``now_ms`` + 7 days; a document
    already expired is refused. Raises :class:`ServerKeysError`.
    """
    where = f"keys of {expected_server_name}"
    if not isinstance(obj, Mapping):
        raise ServerKeysError(f"{where}: response must be a JSON object")
    if obj.get("server_name") != expected_server_name:
        raise ServerKeysError(f"{where}: response names server {obj.get('server_name')!r}")
    verify_keys = _parse_key_map(obj.get("verify_keys"), f"{where}: verify_keys", False)
    if not verify_keys:
        raise ServerKeysError(f"{where}: no ed25519 key in verify_keys")
    old = _parse_key_map(obj.get("old_verify_keys", {}), f"{where}: old_verify_keys", True)
    valid_until = obj.get("valid_until_ts")
    if type(valid_until) is not int:
        raise ServerKeysError(f"{where}: valid_until_ts must be an integer (ms)")
    if valid_until <= now_ms:
        raise ServerKeysError(f"{where}: response expired at {valid_until}")
    try:
        verify_signed_json(obj, expected_server_name, verify_keys)
    except SignatureError as exc:
        raise ServerKeysError(f"{where}: self-signature: {exc}") from exc
    return ServerKeys(
        expected_server_name, MappingProxyType(verify_keys), MappingProxyType(old),
        min(valid_until, now_ms + MAX_KEY_VALIDITY_MS),
    )


def _parse_key_map(raw: Any, where: str, old: bool) -> dict[str, Any]:
    """Parse ``{key_id: {key[, expired_ts]}}``; other algorithms are skipped."""
    if not isinstance(raw, Mapping):
        raise ServerKeysError(f"{where} must be an object")
    keys: dict[str, Any] = {}
    for key_id, entry in raw.items():
        if not isinstance(key_id, str) or not key_id.startswith("ed25519:"):
            continue
        if not isinstance(entry, Mapping) or not isinstance(entry.get("key"), str):
            raise ServerKeysError(f"{where}.{key_id} must be an object with a key string")
        try:
            key = decode_verify_key_base64(key_id, entry["key"])
        except KeyFormatError as exc:
            raise ServerKeysError(f"{where}.{key_id}: {exc}") from None
        if not old:
            keys[key_id] = key
            continue
        expired_ts = entry.get("expired_ts")
        if type(expired_ts) is not int or expired_ts < 0:
            raise ServerKeysError(f"{where}.{key_id}.expired_ts must be an integer (ms)")
        keys[key_id] = OldVerifyKey(key, expired_ts)
    return keys
