"""One WebSocket text frame, encoded once for any number of sockets (RFC 6455).

Server-to-client frames are never masked and we negotiate no extensions, so
the bytes of a frame are the same for every recipient: header and payload are
built once per event and the same ``bytes`` object is queued on each socket.
"""

from __future__ import annotations

import struct

_TEXT_FIN = 0x81


def encode_text_frame(payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        header = bytes((_TEXT_FIN, length))
    elif length < 1 << 16:
        header = struct.pack("!BBH", _TEXT_FIN, 126, length)
    else:
        header = struct.pack("!BBQ", _TEXT_FIN, 127, length)
    return header + payload


def decode_text_frame(frame: bytes) -> bytes:
    """The payload of one unmasked frame made by ``encode_text_frame``."""
    length = frame[1] & 0x7F
    start = 2 if length < 126 else 4 if length == 126 else 10
    return frame[start:]
