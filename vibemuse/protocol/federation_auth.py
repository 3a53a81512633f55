"""The signature on a server-to-server request (the ``Authorization`` header).

Theory of operation
-------------------
Every request one server makes of another carries, in its ``Authorization``
header, the sending server's Ed25519 signature over the canonical JSON of::

    {"method": "PUT", "uri": "/federation/v1/send/t1",
     "origin": "alpha.test", "destination": "beta.test",
     "content": <the JSON body; absent when the request has none>,
     "ts": <ms since the epoch>, "nonce": <16-64 of [A-Za-z0-9_-]>}

The header is Matrix's ``X-Matrix`` shape with a timestamp and a nonce::

    X-VibeMUSE origin="alpha.test",destination="beta.test",key="ed25519:1",
               ts="1700000000000",nonce="...",sig="<unpadded base64>"

(one line; parameters in any order, each once, values double-quoted without
escapes; the scheme name is case-insensitive; unknown parameters are
ignored, as Matrix does, so that later versions can add some).

This module is pure: it parses and builds headers and checks signatures and
time windows. Which key belongs to ``origin``, whether ``destination`` is us
and whether the nonce was seen before are the receiver's business.

Errors::

    RequestAuthError
     +-- MalformedAuthorization   header missing, unparsable, or bad values
     +-- RequestExpired           ts outside the allowed window
     +-- InvalidRequestSignature  the signature does not verify
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .canonical_json import MAX_SAFE_INT, CanonicalJsonError, encode_canonical_json
from .encoding import Base64Error, decode_base64, encode_base64
from .ids import is_valid_server_name
from .signing import KeyFormatError, SigningKey, parse_key_id

__all__ = [
    "SCHEME", "MalformedAuthorization", "RequestAuthError", "RequestExpired",
    "InvalidRequestSignature", "RequestSignature", "check_request_time",
    "is_valid_nonce", "parse_authorization", "request_signed_bytes",
    "sign_request", "verify_request",
]

SCHEME = "X-VibeMUSE"
PARAMETERS = ("origin", "destination", "key", "ts", "nonce", "sig")
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_TS = re.compile(r"0|[1-9][0-9]{0,15}")
_PARAM = re.compile(r'[ \t]*([A-Za-z][A-Za-z0-9_]*)="([^"\\]*)"[ \t]*(?:,|$)')


class RequestAuthError(ValueError):
    """A server-to-server request's signature cannot be accepted."""


class MalformedAuthorization(RequestAuthError):
    """The Authorization header is missing, unparsable, or holds a bad value."""


class RequestExpired(RequestAuthError):
    """The request's ``ts`` is outside the receiver's window."""


class InvalidRequestSignature(RequestAuthError):
    """The signature does not verify for this request with this key."""


@dataclass(frozen=True)
class RequestSignature:
    """The parsed parameters of one Authorization header."""

    origin: str
    destination: str
    key_id: str
    ts: int
    nonce: str
    sig: bytes


def is_valid_nonce(nonce: object) -> bool:
    return isinstance(nonce, str) and _NONCE.fullmatch(nonce) is not None


def request_signed_bytes(
    *, method: str, uri: str, origin: str, destination: str, content: Any, ts: int, nonce: str
) -> bytes:
    """The canonical JSON the signature covers (``content`` None: no body).

    ``content`` may also be given as ``bytes``: its canonical JSON encoding,
    already made (a sender that encodes the body once for the wire and the
    signature). "content" sorts before every other member, so the encoding
    goes first, as the canonical encoding of the whole would put it.
    """
    signed: dict[str, Any] = {
        "method": method, "uri": uri, "origin": origin,
        "destination": destination, "ts": ts, "nonce": nonce,
    }
    if content is not None and not isinstance(content, bytes):
        signed["content"] = content
    try:
        encoded = encode_canonical_json(signed)
    except CanonicalJsonError as exc:
        raise InvalidRequestSignature(f"request is not canonical JSON: {exc}") from None
    if isinstance(content, bytes):
        return b'{"content":' + content + b"," + encoded[1:]
    return encoded


def sign_request(
    signing_key: SigningKey, *, method: str, uri: str, origin: str,
    destination: str, content: Any, ts: int, nonce: str,
) -> str:
    """The Authorization header value for one request (``content`` None: no body)."""
    if not is_valid_nonce(nonce):
        raise ValueError("nonce must be 16-64 characters of [A-Za-z0-9_-]")
    if type(ts) is not int or not 0 <= ts <= MAX_SAFE_INT:
        raise ValueError("ts must be a non-negative integer (ms)")
    message = request_signed_bytes(
        method=method, uri=uri, origin=origin, destination=destination,
        content=content, ts=ts, nonce=nonce,
    )
    sig = encode_base64(signing_key.private_key.sign(message))
    return (
        f'{SCHEME} origin="{origin}",destination="{destination}",'
        f'key="{signing_key.key_id}",ts="{ts}",nonce="{nonce}",sig="{sig}"'
    )


def parse_authorization(header: object) -> RequestSignature:
    """Parse an Authorization header value, or raise MalformedAuthorization."""
    if not isinstance(header, str) or not header:
        raise MalformedAuthorization("no Authorization header")
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != SCHEME.lower():
        raise MalformedAuthorization(f"Authorization scheme must be {SCHEME}")
    params = _split_parameters(rest)
    missing = [name for name in PARAMETERS if name not in params]
    if missing:
        raise MalformedAuthorization(f"Authorization lacks {', '.join(missing)}")
    return RequestSignature(
        origin=_server_name(params, "origin"),
        destination=_server_name(params, "destination"),
        key_id=_key_id(params["key"]),
        ts=_timestamp(params["ts"]),
        nonce=_nonce(params["nonce"]),
        sig=_signature(params["sig"]),
    )


def _split_parameters(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _PARAM.match(text, position)
        if match is None or match.end() == position:
            raise MalformedAuthorization(
                f'Authorization parameters must be name="value", comma-separated (at {position})'
            )
        name, value = match.group(1), match.group(2)
        if name in params:
            raise MalformedAuthorization(f"Authorization gives {name} twice")
        params[name] = value
        position = match.end()
    if text.endswith(","):
        raise MalformedAuthorization("Authorization ends with a comma")
    return params


def _server_name(params: dict[str, str], name: str) -> str:
    if not is_valid_server_name(params[name]):
        raise MalformedAuthorization(f"Authorization {name} is not a server name")
    return params[name]


def _key_id(value: str) -> str:
    try:
        parse_key_id(value)
    except KeyFormatError as exc:
        raise MalformedAuthorization(f"Authorization key: {exc}") from None
    return value


def _timestamp(value: str) -> int:
    if _TS.fullmatch(value) is None or int(value) > MAX_SAFE_INT:
        raise MalformedAuthorization("Authorization ts must be a non-negative integer (ms)")
    return int(value)


def _nonce(value: str) -> str:
    if not is_valid_nonce(value):
        raise MalformedAuthorization("Authorization nonce must be 16-64 of [A-Za-z0-9_-]")
    return value


def _signature(value: str) -> bytes:
    try:
        sig = decode_base64(value)
    except Base64Error as exc:
        raise MalformedAuthorization(f"Authorization sig: {exc}") from None
    if len(sig) != 64 or "=" in value or "-" in value or "_" in value:
        raise MalformedAuthorization("Authorization sig must be 64 bytes, unpadded standard base64")
    return sig


def check_request_time(ts: int, now_ms: int, window_ms: int) -> None:
    """Raise RequestExpired unless ``ts`` is within ``window_ms`` of ``now_ms`` (inclusive)."""
    if abs(now_ms - ts) > window_ms:
        raise RequestExpired(f"request ts {ts} is more than {window_ms} ms from now ({now_ms})")


def verify_request(
    sig: RequestSignature, verify_key: Ed25519PublicKey, *, method: str, uri: str, content: Any
) -> None:
    """Check the signature of a request as received (``content`` None: no body)."""
    message = request_signed_bytes(
        method=method, uri=uri, origin=sig.origin, destination=sig.destination,
        content=content, ts=sig.ts, nonce=sig.nonce,
    )
    try:
        verify_key.verify(sig.sig, message)
    except InvalidSignature:
        raise InvalidRequestSignature(f"request signature by {sig.origin} does not verify") from None
