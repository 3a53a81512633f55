"""What one server sends another: transactions of PDUs and EDUs (pure).

Theory of operation
-------------------
``PUT /federation/v1/send/{txnId}`` carries a :class:`Transaction`:
``{origin, origin_server_ts, pdus: [<= 50 events], edus: [<= 100]}``.
:func:`parse_transaction` checks its shape and limits; a body that fails is
refused as a whole (nothing in it is looked at further). Each PDU must at
least be an object with a string ``event_id``, because the answer reports
one result per event id.

Each PDU is then judged alone by :func:`check_pdu`, built on
:func:`vibemuse.protocol.events.verify_event`. The checks, in order, and
the refusal code of each:

1. ``origin_mismatch``: its ``origin``, or its sender's server, is not the
   server that sent the request (looked at first, wherever readable);
2. ``bad_event``: not a valid event (shape, fields, canonical JSON);
3. ``event_too_large``: its hashed form is over 64 KiB;
4. ``unsupported_event_type``: a type this receiver does not accept;
5. ``invalid_event_signature``: no valid signature by the origin with a key
   that was in force when the event was made (current keys, or old keys
   whose ``expired_ts`` is after the event's ``origin_server_ts``);
6. ``invalid_event_id``: the event id does not match the contents;
7. ``invalid_event_hash``: the content does not match ``hashes.sha256``.

A refused PDU is never stored. (Matrix would keep the redacted form of an
event with a bad content hash; a page is all content, so we refuse it.)
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .canonical_json import CanonicalJsonError, encode_canonical_json
from .events import EventError, EventTooLarge, ServerKeys, check_event_size, verify_event
from .errors import ProtocolError
from .ids import is_valid_server_name, parse_user_id
from .signing import SignatureError

__all__ = [
    "MAX_EDU_BYTES", "MAX_EDUS", "MAX_PDUS", "MAX_TRANSACTION_BYTES",
    "PduRefusal", "Transaction", "TransactionError",
    "check_pdu", "is_valid_txn_id", "keys_in_force", "parse_transaction",
]

MAX_PDUS = 50
MAX_EDUS = 100
MAX_EDU_BYTES = 65536
MAX_EVENT_ID_LENGTH = 255
# 50 events of 64 KiB and 100 EDUs of at most 64 KiB would be 9.6 MiB; a
# transaction body is bounded well below that sum: 4 MiB.
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
_TXN_ID = re.compile(r"[A-Za-z0-9._~-]{1,64}")


class TransactionError(ValueError):
    """A transaction body is malformed or over a limit; refused as a whole."""


@dataclass(frozen=True)
class Transaction:
    """One received transaction, its shape already checked."""

    origin: str
    origin_server_ts: int
    pdus: tuple[Mapping[str, Any], ...]
    edus: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class PduRefusal:
    """Why one PDU was refused: a stable code (spec/errors.json) and a message."""

    code: str
    message: str


def is_valid_txn_id(txn_id: object) -> bool:
    return isinstance(txn_id, str) and _TXN_ID.fullmatch(txn_id) is not None


def parse_transaction(body: Any, origin: str) -> Transaction:
    """Check a transaction body sent by ``origin``, or raise TransactionError."""
    if not isinstance(body, Mapping):
        raise TransactionError("a transaction must be a JSON object")
    unknown = sorted(set(body) - {"origin", "origin_server_ts", "pdus", "edus"})
    if unknown:
        raise TransactionError(f"unknown field(s): {', '.join(unknown)}")
    if not is_valid_server_name(body.get("origin")) or body["origin"] != origin:
        raise TransactionError(f"origin must be the requesting server {origin}")
    ts = body.get("origin_server_ts")
    if type(ts) is not int or ts < 0:
        raise TransactionError("origin_server_ts must be a non-negative integer (ms)")
    pdus = _units(body, "pdus", MAX_PDUS)
    edus = _units(body, "edus", MAX_EDUS)
    for index, pdu in enumerate(pdus):
        event_id = pdu.get("event_id")
        if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID_LENGTH:
            raise TransactionError(f"pdus[{index}] needs an event_id string")
    for index, edu in enumerate(edus):
        if _size(edu) > MAX_EDU_BYTES:
            raise TransactionError(f"edus[{index}] is over {MAX_EDU_BYTES} bytes")
    return Transaction(body["origin"], ts, pdus, edus)


def _units(body: Mapping[str, Any], name: str, limit: int) -> tuple[Mapping[str, Any], ...]:
    units = body.get(name, [])
    if not isinstance(units, list) or len(units) > limit:
        raise TransactionError(f"{name} must be a list of at most {limit} objects")
    if not all(isinstance(unit, Mapping) for unit in units):
        raise TransactionError(f"every item of {name} must be an object")
    return tuple(units)


def _size(unit: Mapping[str, Any]) -> int:
    try:
        return len(encode_canonical_json(unit))
    except CanonicalJsonError as exc:
        raise TransactionError(f"an EDU is not canonical JSON: {exc}") from None


def keys_in_force(keys: ServerKeys, event_ts: int) -> dict[str, Ed25519PublicKey]:
    """The keys that may have signed an event made at ``event_ts``: the
    current ones, and old ones that expired after it."""
    usable = {key_id: old.verify_key for key_id, old in keys.old_verify_keys.items()
              if old.expired_ts > event_ts}
    usable.update(keys.verify_keys)
    return usable


def check_pdu(
    event: Any, origin: str, keys: ServerKeys | None, accepted_types: Collection[str]
) -> PduRefusal | None:
    """None if ``event`` (sent by ``origin``) may be accepted, else why not.

    ``keys`` is the origin's key document (None: none could be had, so no
    signature can verify).
    """
    mismatch = _origin_mismatch(event, origin)
    if mismatch is not None:
        return mismatch
    try:
        hashed = check_event_size(event)  # the shape and size, before any signature
    except EventTooLarge as exc:
        return PduRefusal("event_too_large", str(exc))
    except EventError as exc:
        return PduRefusal("bad_event", str(exc))
    if event["type"] not in accepted_types:
        return PduRefusal("unsupported_event_type", f"this server does not accept {event['type']}")
    return _check_digests(event, origin, keys, hashed)


def _origin_mismatch(event: Any, origin: str) -> PduRefusal | None:
    if not isinstance(event, Mapping):
        return None
    claimed = event.get("origin")
    if isinstance(claimed, str) and claimed != origin:
        return PduRefusal("origin_mismatch", f"event origin {claimed} is not {origin}")
    try:
        sender_server = parse_user_id(event.get("sender")).server_name
    except ProtocolError:
        return None
    if sender_server != origin:
        return PduRefusal("origin_mismatch", f"sender {event['sender']} is not on {origin}")
    return None


def _check_digests(event: Mapping[str, Any], origin: str, keys: ServerKeys | None,
                   hashed: bytes) -> PduRefusal | None:
    usable = keys_in_force(keys, event["origin_server_ts"]) if keys is not None else {}
    try:
        verified = verify_event(event, {origin: usable}, hashed=hashed)
    except SignatureError as exc:
        return PduRefusal("invalid_event_signature", str(exc))
    except EventError as exc:
        return PduRefusal("invalid_event_id", str(exc))
    if verified.redacted_only:
        return PduRefusal("invalid_event_hash", "content does not match hashes.sha256")
    return None
