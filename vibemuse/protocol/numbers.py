"""Whole numbers in query strings: counts, stream positions, milliseconds.

Python's ``str.isdigit`` and ``int`` accept far more than a client should send:
superscripts (``²``), other scripts' digits (``٣``), signs, spaces and
underscores (``int(" +1_0")`` is 10). Every number the server reads from a URL
goes through :func:`parse_whole_number`, which accepts ASCII digits only,
within bounds, and refuses anything else with ``invalid_request``.
"""

from __future__ import annotations

import re

from vibemuse.protocol.errors import ErrorCode, ProtocolError

__all__ = ["MAX_DIGITS", "MAX_STREAM_POSITION", "ascii_whole_number", "parse_whole_number"]

MAX_STREAM_POSITION = 2**62
MAX_DIGITS = 20  # room for every bound used here (2**62 has 19 digits) and a leading zero
_ASCII_DIGITS = re.compile(r"[0-9]{1,%d}" % MAX_DIGITS)


def ascii_whole_number(raw: str | None) -> int | None:
    """``raw`` as a whole number if it is 1 to 20 ASCII digits, else ``None``."""
    if not isinstance(raw, str) or _ASCII_DIGITS.fullmatch(raw) is None:
        return None
    return int(raw)


def parse_whole_number(name: str, raw: str, lowest: int, highest: int) -> int:
    """The query parameter ``name`` as a whole number from ``lowest`` to ``highest``.

    Anything but ASCII digits within the bounds is ``invalid_request`` naming
    the parameter and its bounds.
    """
    number = ascii_whole_number(raw)
    if number is None or not lowest <= number <= highest:
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST,
            f"'{name}' must be a whole number from {lowest} to {highest}, in ASCII digits.",
        )
    return number
