"""What can go wrong, as exceptions that carry the spec's codes.

The whole hierarchy::

    VibeMuseError                 .code  .message  .details  .status  .in_reply_to
     ├── ConnectionClosed         the socket closed: .close_code (errors.json#/closeCodes)
     │    └── SessionEnded        a close after which reconnecting would not help
     │                            (4003 logged out, 4005 too many sockets, a refused token ...)
     ├── SignatureError           an event does not verify (invalid_event_signature,
     │                            invalid_event_id, invalid_event_hash, bad_event)
     └── SchemaViolation          the server sent a frame or body its schema does not allow
                                  (only with ``validate=True``)

A refused request (an ``error`` frame, or an HTTP error body) is a plain
``VibeMuseError`` whose ``code`` is the spec's code from ``errors.json``
(``not_in_room``, ``rate_limited`` ...) and whose ``status`` is the code's HTTP
status. Branch on ``code``; ``message`` is for people and may change.
"""

from __future__ import annotations

from typing import Any


class VibeMuseError(Exception):
    """A refusal or failure named by a stable code of the spec."""

    def __init__(self, code: str, message: str = "", details: dict[str, Any] | None = None, *,
                 status: int | None = None, in_reply_to: str | None = None):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.status = status
        self.in_reply_to = in_reply_to

    @classmethod
    def from_error_object(cls, error: dict[str, Any], *, status: int | None = None) -> "VibeMuseError":
        """From ``{"code", "message", "details"?, "inReplyTo"?}`` (an error frame's data or an HTTP error)."""
        return cls(str(error.get("code", "unknown")), str(error.get("message", "")), error.get("details"),
                   status=status, in_reply_to=error.get("inReplyTo"))


class ConnectionClosed(VibeMuseError):
    """The WebSocket closed. ``code`` is the close code's name in lower case (``going_away``,
    ``logged_out``; ``abnormal`` for a connection dropped without a close frame, 1006)."""

    def __init__(self, close_code: int | None, reason: str = "", *, name: str | None = None,
                 error: VibeMuseError | None = None):
        self.close_code = 1006 if close_code is None else close_code
        self.reason = reason or ""
        self.error = error  # the error frame sent just before the close (4002, 4005), if any
        code = (name or ("abnormal" if self.close_code == 1006 else f"close_{self.close_code}")).lower()
        super().__init__(code, self.reason or (error.message if error else ""), status=None)


class SessionEnded(ConnectionClosed):
    """A close (or a refused handshake) after which the client does not reconnect by itself."""


class SignatureError(VibeMuseError):
    """An event failed verification with its origin's published keys (events.md section 9)."""


class SchemaViolation(VibeMuseError):
    """Something the server sent does not match spec/'s schema for it (``details.path``, ``details.schema``)."""
