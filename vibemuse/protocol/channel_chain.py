"""The order of a channel: sequence numbers and a hash chain, stamped by its home.

A channel belongs to the server named in its id (``#public:alpha.example``
is homed on ``alpha.example``). The home gives every event of the channel
the next **sequence number** (1, 2, 3, ...) and a **stamp**, a small object
it signs (Matrix's signing format, as events are):

    {"channel_id": "#public:alpha.example", "seq": 7,
     "event_id": "$...", "prev": "<chain of seq 6>", "home": "alpha.example",
     "signatures": {"alpha.example": {"ed25519:a1": "..."}}}

The stamp's **chain** is the unpadded base64 SHA-256 of its canonical JSON
without ``signatures``; ``prev`` is the chain of the stamp before it (the
empty string for seq 1). So each stamp names its predecessor, and a server
that holds the stamps 1..N can prove it with the chain of N: one changed,
missing or reordered event changes every chain after it.

The event itself is not changed: its id, hashes and its origin's signature
stay as its sender's server made them. This module is pure (spec/v1/
federation.md section 10).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from .canonical_json import CanonicalJsonError, encode_canonical_json
from .encoding import encode_base64
from .ids import is_valid_server_name, parse_channel_id
from .signing import SignatureError, SigningKey, VerifyKeyLike, sign_json, verify_signed_json

__all__ = ["GENESIS", "STAMP_KEY", "StampError", "chain_of", "check_successor", "make_stamp", "verify_stamp"]

GENESIS = ""  # the ``prev`` of seq 1
STAMP_KEY = "channel_stamp"  # a relayed event carries its stamp as ``unsigned.channel_stamp``
MAX_SEQ = 2**53 - 1
_FIELDS = frozenset({"channel_id", "seq", "event_id", "prev", "home", "signatures"})


class StampError(ValueError):
    """A stamp is malformed, not the home's, does not verify, or does not follow its predecessor."""


def make_stamp(channel_id: str, seq: int, event_id: str, prev: str, home: str,
               signing_key: SigningKey) -> dict[str, Any]:
    """The home's signed stamp for the event ``event_id`` at ``seq`` after the chain ``prev``."""
    stamp = {"channel_id": channel_id, "seq": seq, "event_id": event_id, "prev": prev, "home": home}
    _check_shape(stamp)
    return sign_json(stamp, home, signing_key)


def chain_of(stamp: Mapping[str, Any]) -> str:
    """The chain hash of a stamp: base64 SHA-256 of its canonical JSON without signatures."""
    unsigned = {key: value for key, value in stamp.items() if key != "signatures"}
    try:
        return encode_base64(hashlib.sha256(encode_canonical_json(unsigned)).digest())
    except CanonicalJsonError as exc:
        raise StampError(f"stamp is not canonical JSON: {exc}") from None


def verify_stamp(stamp: Any, event: Mapping[str, Any], home_keys: Mapping[str, VerifyKeyLike]) -> str:
    """Check that ``stamp`` is the home's signed stamp of ``event``; its chain hash.

    The home is the server of the channel id; ``home_keys`` its verify keys
    (key id -> key) in force at the stamp's time.
    """
    _check_shape(stamp)
    if stamp["event_id"] != event.get("event_id"):
        raise StampError(f"stamp is for {stamp['event_id']}, not {event.get('event_id')}")
    if stamp["channel_id"] != event.get("channel_id"):
        raise StampError(f"stamp is for {stamp['channel_id']}, the event for {event.get('channel_id')}")
    try:
        verify_signed_json(stamp, stamp["home"], home_keys)
    except SignatureError as exc:
        raise StampError(f"stamp signature: {exc}") from None
    return chain_of(stamp)


def check_successor(stamp: Mapping[str, Any], head_seq: int, head_chain: str) -> bool:
    """Whether ``stamp`` comes right after a chain whose last stamp is ``head_seq``/``head_chain``.

    True: it is the next one. False: it is at or below the head (already
    held, or older history). A gap, or a ``prev`` that is not the head's
    chain, is a :class:`StampError` (the holder must backfill from the home).
    """
    seq = stamp["seq"]
    if seq <= head_seq:
        return False
    if seq != head_seq + 1:
        raise StampError(f"seq {seq} does not follow {head_seq}: events are missing")
    expected = head_chain if head_seq else GENESIS
    if stamp["prev"] != expected:
        raise StampError(f"seq {seq} names a predecessor that is not the chain's seq {head_seq}")
    return True


def _check_shape(stamp: Any) -> None:
    if not isinstance(stamp, Mapping):
        raise StampError("stamp must be an object")
    unknown = sorted(set(stamp) - _FIELDS)
    if unknown:
        raise StampError(f"stamp has unknown members: {', '.join(unknown)}")
    channel = parse_channel_id(stamp.get("channel_id"))
    if channel is None:
        raise StampError("stamp.channel_id is not a channel id")
    seq = stamp.get("seq")
    if type(seq) is not int or not 1 <= seq <= MAX_SEQ:
        raise StampError("stamp.seq must be an integer from 1")
    if not isinstance(stamp.get("event_id"), str) or not stamp["event_id"].startswith("$"):
        raise StampError("stamp.event_id must be an event id")
    prev = stamp.get("prev")
    if not isinstance(prev, str) or (seq == 1) != (prev == GENESIS):
        raise StampError("stamp.prev must be the previous chain hash ('' exactly for seq 1)")
    home = stamp.get("home")
    if not isinstance(home, str) or not is_valid_server_name(home):
        raise StampError("stamp.home must be a server name")
    if home != channel.server_name:
        raise StampError(f"stamp.home {home} is not the home of {stamp['channel_id']}")
