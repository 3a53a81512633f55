"""Checking signed events and key documents (events.md sections 4-9): pure functions.

Theory of operation. An event's origin signs the canonical JSON of the
*redacted* event without ``signatures`` and ``unsigned``; the event id is the
hash of that redacted form without ``event_id``; and ``hashes.sha256`` covers
the full content. So a verifier checks, in order: the Ed25519 signature over
the redacted bytes (who made it), the event id (which event it is), and the
content hash (whether the content is the one signed). A bad signature or id
is a forgery; a content hash that differs means only the redacted form is
authentic (a deleted message looks like that too, legitimately).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vibemuse_client.canonical import (NotCanonical, b64decode_any, encode_canonical_json,
                                       unpadded_b64encode, urlsafe_unpadded_b64encode)
from vibemuse_client.errors import SignatureError

# events.md section 5 (a test holds this to the table there).
REDACTION_KEPT_CONTENT_KEYS: dict[str, tuple[str, ...]] = {
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
}
REDACTION_KEPT_TOP_LEVEL = ("event_id", "type", "sender", "origin", "origin_server_ts", "room_id",
                            "channel_id", "recipients", "content", "hashes", "signatures")
ED25519 = "ed25519:"


@dataclass(frozen=True)
class Verification:
    """What an event's check found: the key that signed it, and whether the content is the signed one."""

    event_id: str
    origin: str
    key_id: str
    content_intact: bool


def redact(event: Mapping[str, Any]) -> dict[str, Any]:
    redacted = {key: event[key] for key in REDACTION_KEPT_TOP_LEVEL if key in event}
    content = event.get("content") if isinstance(event.get("content"), dict) else {}
    kept = REDACTION_KEPT_CONTENT_KEYS.get(str(event.get("type")), ())
    redacted["content"] = {key: content[key] for key in kept if key in content}
    return redacted


def content_hash(event: Mapping[str, Any]) -> str:
    hashed = {key: value for key, value in event.items() if key not in ("unsigned", "signatures", "hashes", "event_id")}
    return unpadded_b64encode(hashlib.sha256(encode_canonical_json(hashed)).digest())


def compute_event_id(event: Mapping[str, Any]) -> str:
    redacted = redact(event)
    for key in ("signatures", "unsigned", "event_id"):
        redacted.pop(key, None)
    return "$" + urlsafe_unpadded_b64encode(hashlib.sha256(encode_canonical_json(redacted)).digest())


def signing_key_ids(event: Mapping[str, Any]) -> list[str]:
    """The Ed25519 key ids of the origin's signatures on the event (other algorithms are ignored)."""
    signatures = event.get("signatures")
    mine = signatures.get(event.get("origin")) if isinstance(signatures, dict) else None
    return sorted(key_id for key_id in mine if key_id.startswith(ED25519)) if isinstance(mine, dict) else []


def verify_event(event: Mapping[str, Any], keys: Mapping[str, bytes]) -> Verification:
    """Check an event with its origin's public keys (``key_id -> 32 bytes``): events.md section 9, steps 2-7.

    Raises ``SignatureError`` (``invalid_event_signature``, ``invalid_event_id``, ``bad_event``);
    a content that differs from the signed one is reported as ``content_intact=False``.
    """
    origin = event.get("origin")
    if not isinstance(event.get("event_id"), str) or not isinstance(origin, str):
        raise SignatureError("bad_event", "the event has no event_id or origin")
    try:
        signed = redact(event)
        signatures = signed.pop("signatures", None)
        signed.pop("unsigned", None)
        signed_bytes = encode_canonical_json(signed)
        key_ids = [key_id for key_id in signing_key_ids(event) if key_id in keys]
        if not key_ids:
            raise SignatureError("invalid_event_signature", f"no signature of {origin} with a key it publishes",
                                 {"signedWith": signing_key_ids(event)})
        key_id = key_ids[0]
        Ed25519PublicKey.from_public_bytes(keys[key_id]).verify(b64decode_any(signatures[origin][key_id]),
                                                                signed_bytes)
        if compute_event_id(event) != event["event_id"]:
            raise SignatureError("invalid_event_id", "the event id does not match the event")
        recorded = event.get("hashes", {}).get("sha256") if isinstance(event.get("hashes"), dict) else None
        intact = recorded == content_hash(event)
    except InvalidSignature:
        raise SignatureError("invalid_event_signature", f"the signature of {origin} does not verify") from None
    except (NotCanonical, ValueError, TypeError, AttributeError) as error:
        raise SignatureError("bad_event", f"the event is malformed: {error}") from None
    return Verification(event_id=event["event_id"], origin=origin, key_id=key_id, content_intact=intact)


def verify_key_document(document: Mapping[str, Any], server_name: str, now_ms: int) -> dict[str, tuple[bytes, int | None]]:
    """Check a ``/federation/v1/keys`` answer (events.md section 8) and return
    ``key_id -> (public key, expired_ts or None)``; raises ``SignatureError`` if it is not the server's."""
    try:
        if document.get("server_name") != server_name:
            raise SignatureError("invalid_signature", f"the key document names {document.get('server_name')!r}, "
                                 f"not {server_name!r}")
        if not isinstance(document.get("valid_until_ts"), int) or document["valid_until_ts"] <= now_ms:
            raise SignatureError("invalid_signature", "the key document has expired")
        current = {key_id: b64decode_any(entry["key"]) for key_id, entry in document["verify_keys"].items()
                   if key_id.startswith(ED25519)}
        unsigned = {key: value for key, value in document.items() if key != "signatures"}
        signatures = {key_id: value for key_id, value in document["signatures"].get(server_name, {}).items()
                      if key_id.startswith(ED25519)}
        checked = [key_id for key_id in signatures if key_id in current]
        if not checked:
            raise SignatureError("invalid_signature", "the key document is not signed by a key it lists")
        for key_id in checked:
            Ed25519PublicKey.from_public_bytes(current[key_id]).verify(
                b64decode_any(signatures[key_id]), encode_canonical_json(unsigned))
        old = {key_id: (b64decode_any(entry["key"]), int(entry["expired_ts"]))
               for key_id, entry in document.get("old_verify_keys", {}).items() if key_id.startswith(ED25519)}
    except InvalidSignature:
        raise SignatureError("invalid_signature", "the key document's signature does not verify") from None
    except (KeyError, TypeError, AttributeError, ValueError, NotCanonical) as error:
        raise SignatureError("invalid_signature", f"the key document is malformed: {error}") from None
    return {**old, **{key_id: (key, None) for key_id, key in current.items()}}
