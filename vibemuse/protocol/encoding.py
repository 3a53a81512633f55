"""Unpadded base64, as Matrix uses it for keys, signatures, hashes and ids.

Matrix writes base64 without ``=`` padding. Event ids use the URL-safe
alphabet (``-`` and ``_``); everything else uses the standard one (``+`` and
``/``). Decoding is deliberately liberal about padding and alphabet, so that
input from other implementations is accepted, but strict about everything
else: stray characters, impossible lengths, wrong padding and a mix of both
alphabets all raise :class:`Base64Error`. Non-zero trailing bits (``QR``
for ``QQ``) are accepted, as other implementations accept them and real keys
carry them (signedjson's test seed does). So one byte string can have
several spellings: compare decoded bytes, never base64 text, where it
matters (the content-hash check does).
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["Base64Error", "decode_base64", "encode_base64"]

_SHAPE = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


class Base64Error(ValueError):
    """Raised when a string is not valid (padded or unpadded) base64."""


def encode_base64(data: bytes, urlsafe: bool = False) -> str:
    """Encode ``data`` as unpadded base64 (URL-safe alphabet if asked)."""
    if urlsafe:
        encoded = base64.urlsafe_b64encode(data)
    else:
        encoded = base64.b64encode(data)
    return encoded.rstrip(b"=").decode("ascii")


def decode_base64(value: str | bytes) -> bytes:
    """Decode padded or unpadded base64 in either alphabet.

    Raises :class:`Base64Error` with a short reason on anything else.
    """
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            raise Base64Error("base64 must be ASCII") from None
    if not isinstance(value, str):
        raise Base64Error(f"base64 must be a string, not {type(value).__name__}")
    if _SHAPE.fullmatch(value) is None:
        raise Base64Error("base64 contains characters outside the alphabet")
    body = value.rstrip("=")
    _check_padding(body, len(value) - len(body))
    urlsafe = _pick_alphabet(body)
    try:
        padded = body + "=" * (-len(body) % 4)
        if urlsafe:
            decoded = base64.urlsafe_b64decode(padded)
        else:
            decoded = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - shape checked
        raise Base64Error(f"invalid base64: {exc}") from None
    return decoded


def _check_padding(body: str, pad: int) -> None:
    """Reject lengths no base64 encoder produces, and wrong padding."""
    if len(body) % 4 == 1:
        raise Base64Error(f"base64 length {len(body)} is impossible")
    if pad and (len(body) + pad) % 4 != 0:
        raise Base64Error("base64 has the wrong amount of '=' padding")


def _pick_alphabet(body: str) -> bool:
    """Return True for the URL-safe alphabet; reject a mix of both."""
    standard = "+" in body or "/" in body  # (four scans in C beat building a set of the characters)
    urlsafe = "-" in body or "_" in body
    if standard and urlsafe:
        raise Base64Error("base64 mixes the standard and URL-safe alphabets")
    return urlsafe
