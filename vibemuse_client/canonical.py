"""Canonical JSON and unpadded base64, as events.md sections 2 and 3 define them.

Written here from the spec, not shared with the server: a client built from
spec/ alone must compute the same bytes, and the tests hold the two to the
spec's worked example.
"""

from __future__ import annotations

import base64
import json
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 64


class NotCanonical(ValueError):
    """A value canonical JSON cannot represent (a float, a huge integer, a lone surrogate ...)."""


def encode_canonical_json(value: Any) -> bytes:
    """Sorted keys (by code point), no whitespace, UTF-8 as is, integers only."""
    _check(value, 0)
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:  # a lone surrogate
        raise NotCanonical(f"not valid Unicode: {error}") from None


def _check(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise NotCanonical(f"nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise NotCanonical(f"integer out of range: {value}")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonical(f"object key is not a string: {key!r}")
            _check(item, depth + 1)
        return
    raise NotCanonical(f"not a canonical JSON value: {type(value).__name__}")


def unpadded_b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def urlsafe_unpadded_b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64decode_any(text: str) -> bytes:
    """Either alphabet, padded or not (readers accept both, events.md section 3)."""
    standard = text.replace("-", "+").replace("_", "/").rstrip("=")
    return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
