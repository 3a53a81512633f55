"""Frames: the JSON envelopes that travel over ``/api/ws``.

Every frame, in either direction, is one JSON object in one WebSocket text
message, with the envelope of protocol v1::

    {"type": ..., "messageId": ..., "data": {...}, "timestamp": ...,
     "fromUser": ..., "toUser"?: ..., "roomId"?: ..., "channelId"?: ...}

Client frames need ``type``, ``messageId`` and ``data``; the server fills in
the rest of its own frames. Parsing is pure: bytes in, a ``ClientFrame`` or a
``ProtocolError`` out, checked against the published schema of its type.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.schemas import SchemaSet

MAX_MESSAGE_ID_LENGTH = 64
MAX_DEPTH = 32  # no frame of the protocol nests deeper; deeper ones are refused before validation
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abAB]")
# common.json#/$defs/messageId: only such ids are echoed in inReplyTo.
_MESSAGE_ID = re.compile(rf"[A-Za-z0-9._:~-]{{1,{MAX_MESSAGE_ID_LENGTH}}}")


@dataclass(frozen=True)
class ClientFrame:
    """One validated client frame. ``data`` matches the schema of ``type``."""

    type: str
    message_id: str
    data: dict[str, Any]
    from_user: str | None = None


class EncodedData(str):
    """A frame's ``data`` already encoded as JSON, from pieces many frames share (a
    crowded room's roster): spliced into the frame as is, not encoded again."""


@dataclass(frozen=True)
class ServerFrame:
    """One server frame before encoding."""

    type: str
    data: dict[str, Any] | EncodedData
    message_id: str
    timestamp_ms: int
    from_user: str
    to_user: str | None = None
    room_id: str | None = None
    channel_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "type": self.type,
            "messageId": self.message_id,
            "timestamp": format_timestamp(self.timestamp_ms),
            "fromUser": self.from_user,
            "data": self.data,
        }
        for key, value in (("toUser", self.to_user), ("roomId", self.room_id), ("channelId", self.channel_id)):
            if value is not None:
                wire[key] = value
        return wire

    def encode(self) -> str:
        if not isinstance(self.data, EncodedData):
            return encode_frame(self.to_wire())
        wire = self.to_wire()
        head = {key: wire.pop(key) for key in ("type", "messageId", "timestamp", "fromUser")}
        del wire["data"]
        tail = "," + encode_frame(wire)[1:] if wire else "}"
        return encode_frame(head)[:-1] + ',"data":' + self.data + tail


def encode_frame(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def format_timestamp(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-26T06:38:12.123Z``."""
    moment = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_json_object(raw: str | bytes, what: str = "frame") -> Any:
    """Parse strict JSON (no NaN/Infinity, valid UTF-8, no lone surrogates, at most
    ``MAX_DEPTH`` levels); ``bad_json`` otherwise."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
        value = json.loads(text, parse_constant=_reject_constant)
        _check_shape(value, _SURROGATE_ESCAPE.search(text) is not None, what)
        return value
    except UnicodeDecodeError:
        raise ProtocolError(ErrorCode.BAD_JSON, f"The {what} is not valid UTF-8.") from None
    except RecursionError:
        raise ProtocolError(ErrorCode.BAD_JSON, f"The {what} is nested too deeply.") from None
    except ValueError as error:
        raise ProtocolError(ErrorCode.BAD_JSON, f"The {what} is not valid JSON: {error}") from None


def _check_shape(value: Any, maybe_surrogates: bool, what: str) -> None:
    """Refuse deep nesting and (only if the text escaped one) lone surrogates, iteratively."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values()) + (list(item) if maybe_surrogates else [])
        elif isinstance(item, list):
            children = item
        else:
            if maybe_surrogates and isinstance(item, str) and _has_lone_surrogate(item):
                raise ProtocolError(ErrorCode.BAD_JSON, f"The {what} holds a lone UTF-16 surrogate (not Unicode text).")
            continue
        if depth > MAX_DEPTH:
            raise ProtocolError(ErrorCode.BAD_JSON, f"The {what} is nested deeper than {MAX_DEPTH} levels.")
        stack.extend((child, depth + 1) for child in children)


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_client_frame(raw: str | bytes, schemas: SchemaSet) -> ClientFrame:
    """Decode and validate one client frame, or raise ``ProtocolError``.

    The error names the client's ``messageId`` in ``in_reply_to`` whenever
    the frame carried a usable one, so the client can match the refusal.
    """
    frame = decode_json_object(raw)
    if not isinstance(frame, dict):
        raise ProtocolError(ErrorCode.INVALID_FRAME, "A frame is a JSON object.")
    message_id = frame.get("messageId")
    in_reply_to = message_id if _usable_message_id(message_id) else None
    frame_type = frame.get("type")
    if not isinstance(frame_type, str):
        raise ProtocolError(ErrorCode.INVALID_FRAME, "A frame needs a string 'type'.", in_reply_to=in_reply_to)
    if frame_type not in schemas.client_frame_types:
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE,
            f"{frame_type[:64]!r} is not a client frame type.",
            details={"known": sorted(schemas.client_frame_types)},
            in_reply_to=in_reply_to,
        )
    violation = schemas.client_frame_violation(frame_type, frame)
    if violation is not None:
        raise ProtocolError(
            ErrorCode.INVALID_FRAME,
            f"The {frame_type} frame does not match its schema at {violation.path}: {violation.reason}",
            details={"path": violation.path},
            in_reply_to=in_reply_to,
        )
    return ClientFrame(type=frame_type, message_id=message_id, data=frame["data"], from_user=frame.get("fromUser"))


def _usable_message_id(value: Any) -> bool:
    return isinstance(value, str) and _MESSAGE_ID.fullmatch(value) is not None
