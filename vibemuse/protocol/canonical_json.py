"""Canonical JSON (Matrix's flavour) and a strict JSON decoder.

Theory of operation
-------------------
Signatures and hashes are computed over bytes, so every server must turn the
same value into the same bytes. Matrix's canonical JSON fixes the choices
JSON leaves open:

* object keys sorted by Unicode code point; no insignificant whitespace;
* UTF-8 output, with non-ASCII characters written as themselves (only the
  characters JSON requires are escaped, exactly as Python's ``json`` does);
* numbers are integers in [-(2**53)+1, 2**53-1]; floats are refused, even
  ``1.0`` (so ``-0`` and NaN cannot occur either);
* values are only ``dict`` (with ``str`` keys), ``list``, ``str``, ``int``,
  ``bool`` and ``None``.

Encoding is one recursive check of the value followed by one call to the C
JSON encoder. Python compares ``str`` by code point, so ``sort_keys`` gives
code-point order (not UTF-16 order, which differs for astral-plane keys);
the tests pin this. A lone surrogate cannot be written as UTF-8: the final
encode fails and only then is the value walked again to name the path.

:func:`decode_json_strict` is the inbound counterpart: it refuses what the
encoder would refuse, plus duplicate keys, NaN/Infinity, oversize input and
over-deep nesting, so that a value accepted from the network can always be
re-encoded canonically.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "CanonicalJsonError",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "MAX_SAFE_INT",
    "MIN_SAFE_INT",
    "decode_json_strict",
    "encode_canonical_json",
]

MAX_SAFE_INT = 2**53 - 1
MIN_SAFE_INT = -(2**53) + 1
DEFAULT_MAX_BYTES = 65536
DEFAULT_MAX_DEPTH = 64
# The digits of the longest in-range integer (2**53-1 has 16); longer
# literals are refused before int() is asked to parse them (avoids quadratic
# work on huge literals).
_MAX_INT_DIGITS = len(str(MAX_SAFE_INT))
_SURROGATE = re.compile("[\ud800-\udfff]")

_ENCODER = json.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,
    sort_keys=True,
    separators=(",", ":"),
    check_circular=False,
)


class CanonicalJsonError(ValueError):
    """A value cannot be canonical JSON, or input JSON is not acceptable.

    ``path`` names the offending place (``content.count``, ``recipients[2]``);
    it is ``""`` for the top level and is included in the message.
    """

    def __init__(self, reason: str, path: str = "") -> None:
        self.reason = reason
        self.path = path
        where = f" at {path}" if path else ""
        super().__init__(f"{reason}{where}")


def encode_canonical_json(value: Any) -> bytes:
    """Return the canonical JSON encoding of ``value`` as UTF-8 bytes."""
    try:
        _check_value(value, 0)
    except _Invalid as exc:
        raise CanonicalJsonError(exc.reason, _format_path(exc.parts)) from None
    text = _ENCODER.encode(value)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        _find_surrogate(value, "")
        # Unreachable: every str the encoder wrote was walked just above.
        raise CanonicalJsonError("string is not valid Unicode") from None  # pragma: no mutate


class _Invalid(Exception):
    """Internal: carries the reason up the walk, which adds the path parts.

    Building the path only when something is wrong keeps the walk cheap.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.parts: list[str | int] = []


def _format_path(parts: list[str | int]) -> str:
    path = ""
    for part in reversed(parts):
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, part)
    return path


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_value(value: Any, depth: int) -> None:
    """Raise _Invalid unless ``value`` may be canonically encoded.

    ``depth`` counts the containers (objects and arrays alike) around
    ``value``; the 65th nested container is refused.
    """
    if value is None or isinstance(value, (str, bool)):
        return
    if type(value) is int:
        _check_int(value)
        return
    if depth >= DEFAULT_MAX_DEPTH:
        raise _Invalid(f"nesting deeper than {DEFAULT_MAX_DEPTH}")
    if isinstance(value, dict):
        _check_dict(value, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                continue
            try:
                _check_value(item, depth + 1)
            except _Invalid as exc:
                exc.parts.append(index)
                raise
    else:
        _reject_scalar(value)


def _check_dict(value: dict[Any, Any], depth: int) -> None:
    for key, item in value.items():
        if not isinstance(key, str):
            raise _Invalid(f"object key {key!r} is {type(key).__name__}, not str")
        if isinstance(item, str):
            continue
        try:
            _check_value(item, depth)
        except _Invalid as exc:
            exc.parts.append(key)
            raise


def _check_int(value: int) -> None:
    if not MIN_SAFE_INT <= value <= MAX_SAFE_INT:
        raise _Invalid("integer out of range [-(2**53)+1, 2**53-1]")


def _reject_scalar(value: Any) -> None:
    """Explain why a non-container value is not allowed."""
    if isinstance(value, float):
        raise _Invalid(f"floats are not allowed (got {value!r})")
    if isinstance(value, int):  # int subclasses other than bool (IntEnum)
        _check_int(int(value))
        return
    raise _Invalid(f"{type(value).__name__} is not a JSON type")


def _find_surrogate(value: Any, path: str) -> None:
    """Raise naming the first string (or key) holding a lone surrogate."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise CanonicalJsonError("string contains a lone surrogate", path)
    elif isinstance(value, dict):
        for key, item in value.items():
            if _SURROGATE.search(key):
                raise CanonicalJsonError("object key contains a lone surrogate", path)
            _find_surrogate(item, _join(path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _find_surrogate(item, f"{path}[{index}]")


# --------------------------------------------------------------------------
# Strict decoding


def decode_json_strict(
    data: bytes | str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    require_canonical: bool = False,
) -> Any:
    """Parse JSON, refusing anything canonical JSON cannot represent.

    Refused with :class:`CanonicalJsonError`: input over ``max_bytes`` (UTF-8
    bytes), invalid UTF-8, syntax errors, floats, integers out of range,
    NaN/Infinity, duplicate object keys, lone surrogates, and nesting deeper
    than ``max_depth``. With ``require_canonical`` the input must also be
    byte-for-byte the canonical encoding of the result.
    """
    raw, text = _as_bytes_and_text(data, max_bytes)
    try:
        value = json.loads(
            text,
            parse_float=_refuse_float,
            parse_int=_parse_int,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_object,
        )
    except RecursionError:
        raise CanonicalJsonError(f"nesting deeper than {max_depth}") from None
    except json.JSONDecodeError as exc:
        raise CanonicalJsonError(
            f"invalid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from None
    _check_decoded(value, max_depth)
    if require_canonical and encode_canonical_json(value) != raw:
        raise CanonicalJsonError("JSON is valid but not in canonical form")
    return value


def _as_bytes_and_text(data: bytes | str, max_bytes: int) -> tuple[bytes, str]:
    """Check the size and the UTF-8 of ``data``; return both forms."""
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            raise CanonicalJsonError("input contains a lone surrogate") from None
        _check_size(raw, max_bytes)
        return raw, data
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CanonicalJsonError(f"cannot decode {type(data).__name__} as JSON")
    raw = bytes(data)
    _check_size(raw, max_bytes)
    try:
        return raw, raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CanonicalJsonError(f"input is not valid UTF-8 ({exc.reason})") from None


def _check_size(raw: bytes, max_bytes: int) -> None:
    if len(raw) > max_bytes:
        raise CanonicalJsonError(f"JSON is {len(raw)} bytes, over the {max_bytes} limit")


def _refuse_float(literal: str) -> Any:
    raise CanonicalJsonError(f"floats are not allowed (got {literal})")


def _refuse_constant(literal: str) -> Any:
    raise CanonicalJsonError(f"{literal} is not allowed")


def _parse_int(literal: str) -> int:
    if len(literal.lstrip("-")) > _MAX_INT_DIGITS:
        raise CanonicalJsonError(f"integer out of range (more than {_MAX_INT_DIGITS} digits)")
    number = int(literal)
    if not MIN_SAFE_INT <= number <= MAX_SAFE_INT:
        raise CanonicalJsonError(f"integer out of range (got {literal})")
    return number


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise CanonicalJsonError(f"duplicate object key {key!r}")
            seen.add(key)
    return obj


def _check_decoded(value: Any, max_depth: int) -> None:
    """Walk a parsed value for depth and lone surrogates (no recursion)."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                raise CanonicalJsonError("string contains a lone surrogate", path)
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth >= max_depth:
            raise CanonicalJsonError(f"nesting deeper than {max_depth}", path)
        if isinstance(item, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(item))
            continue
        for key, child in item.items():
            if not key.isascii() and _SURROGATE.search(key):
                raise CanonicalJsonError("object key contains a lone surrogate", path)
            stack.append((child, _join(path, key), depth + 1))
