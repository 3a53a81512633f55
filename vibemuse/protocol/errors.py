"""The stable error codes of protocol v1, and the exception that carries one.

Every refusal the server makes, over HTTP or WebSocket, names one of these
codes. The catalogue below is published as ``spec/v1/errors.json``; a test
fails if the two drift. Codes are part of the wire: they are only ever added,
never renamed or reused with another meaning.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class ErrorCode(enum.StrEnum):
    BAD_JSON = "bad_json"
    INVALID_FRAME = "invalid_frame"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_REQUEST = "invalid_request"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    NOT_AUTHENTICATED = "not_authenticated"
    ALREADY_AUTHENTICATED = "already_authenticated"
    INVALID_TOKEN = "invalid_token"
    TOKEN_EXPIRED = "token_expired"
    INVALID_CREDENTIALS = "invalid_credentials"
    INVALID_USERNAME = "invalid_username"
    USERNAME_TAKEN = "username_taken"
    WEAK_PASSWORD = "weak_password"
    FORBIDDEN = "forbidden"
    INVALID_ROOM_ID = "invalid_room_id"
    ROOM_NOT_FOUND = "room_not_found"
    INVALID_ROOM_NAME = "invalid_room_name"
    ROOM_NAME_TAKEN = "room_name_taken"
    INVALID_CURSOR = "invalid_cursor"
    UNSUPPORTED_VERSION = "unsupported_version"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    INTERNAL_ERROR = "internal_error"
    EMPTY_TEXT = "empty_text"
    TEXT_TOO_LONG = "text_too_long"
    UNKNOWN_COMMAND = "unknown_command"
    NOT_IN_ROOM = "not_in_room"
    ALREADY_HOME = "already_home"
    UNKNOWN_USER = "unknown_user"
    TOO_MANY_RECIPIENTS = "too_many_recipients"
    NOT_ACCEPTING_PAGES = "not_accepting_pages"
    YOU_BLOCKED = "you_blocked"
    INVALID_CHANNEL_NAME = "invalid_channel_name"
    UNKNOWN_CHANNEL = "unknown_channel"
    NOT_A_MEMBER = "not_a_member"
    BANNED = "banned"
    MUTED = "muted"
    INVITE_ONLY = "invite_only"
    UNKNOWN_MESSAGE = "unknown_message"
    NOT_EDITABLE = "not_editable"
    EDIT_WINDOW_PASSED = "edit_window_passed"
    MESSAGE_DELETED = "message_deleted"
    ALREADY_REPORTED = "already_reported"
    UNKNOWN_REPORT = "unknown_report"
    RATE_LIMITED = "rate_limited"
    FORBIDDEN_ORIGIN = "forbidden_origin"
    SERVER_FULL = "server_full"
    NOT_READY = "not_ready"
    ACCOUNT_BANNED = "account_banned"
    # Federation (spec/v1/federation.md): refusals of a server's request ...
    UNAUTHENTICATED_SERVER = "unauthenticated_server"
    WRONG_DESTINATION = "wrong_destination"
    SERVER_FORBIDDEN = "server_forbidden"
    REQUEST_EXPIRED = "request_expired"
    INVALID_SIGNATURE = "invalid_signature"
    REPLAYED_REQUEST = "replayed_request"
    # ... and of one event (PDU) in a transaction's answer
    BAD_EVENT = "bad_event"
    EVENT_TOO_LARGE = "event_too_large"
    INVALID_EVENT_SIGNATURE = "invalid_event_signature"
    INVALID_EVENT_HASH = "invalid_event_hash"
    INVALID_EVENT_ID = "invalid_event_id"
    ORIGIN_MISMATCH = "origin_mismatch"
    UNSUPPORTED_EVENT_TYPE = "unsupported_event_type"
    INVALID_STAMP = "invalid_stamp"
    OUT_OF_ORDER = "out_of_order"
    # ... and of channels homed on another server
    HOME_UNREACHABLE = "home_unreachable"
    # ... and of a server whose database does not answer
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class ErrorSpec:
    """What one code means: its HTTP status (for HTTP answers) and when it is used."""

    code: ErrorCode
    http_status: int
    description: str


ERROR_CATALOGUE: dict[ErrorCode, ErrorSpec] = {
    spec.code: spec
    for spec in (
        ErrorSpec(ErrorCode.BAD_JSON, 400, "The body or frame is not valid UTF-8 JSON."),
        ErrorSpec(ErrorCode.INVALID_FRAME, 400,
                  "The frame is JSON but does not match the schema of its type."),
        ErrorSpec(ErrorCode.UNKNOWN_TYPE, 400,
                  "The frame's type is not a client frame type of this protocol version."),
        ErrorSpec(ErrorCode.INVALID_REQUEST, 400,
                  "The HTTP body or query does not match the endpoint's schema."),
        ErrorSpec(ErrorCode.PAYLOAD_TOO_LARGE, 413, "The HTTP body is larger than the server accepts."),
        ErrorSpec(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 415,
                  "The endpoint takes a JSON body and the request's Content-Type is not application/json "
                  "(optionally with charset=utf-8)."),
        ErrorSpec(ErrorCode.NOT_AUTHENTICATED, 401,
                  "The request needs an access token and none was given (or, on a socket, "
                  "the auth frame has not been sent yet)."),
        ErrorSpec(ErrorCode.ALREADY_AUTHENTICATED, 400, "An auth frame on a socket that is already authenticated."),
        ErrorSpec(ErrorCode.INVALID_TOKEN, 401, "The access token is unknown, malformed or revoked."),
        ErrorSpec(ErrorCode.TOKEN_EXPIRED, 401, "The access token was valid but has expired; log in again."),
        ErrorSpec(ErrorCode.INVALID_CREDENTIALS, 401, "Wrong username or password."),
        ErrorSpec(ErrorCode.INVALID_USERNAME, 400, "The username breaks the username rules."),
        ErrorSpec(ErrorCode.USERNAME_TAKEN, 409, "The username is taken (names are unique case-insensitively)."),
        ErrorSpec(ErrorCode.WEAK_PASSWORD, 400, "The password is empty, too short or too easy to guess."),
        ErrorSpec(ErrorCode.FORBIDDEN, 403, "The user's role or membership does not allow this."),
        ErrorSpec(ErrorCode.INVALID_ROOM_ID, 400, "The room id is not a well-formed room id."),
        ErrorSpec(ErrorCode.ROOM_NOT_FOUND, 404, "No room has this id."),
        ErrorSpec(ErrorCode.INVALID_ROOM_NAME, 400, "The room name is empty, too long or holds control characters."),
        ErrorSpec(ErrorCode.ROOM_NAME_TAKEN, 409, "Another room has this name (case-insensitively)."),
        ErrorSpec(ErrorCode.INVALID_CURSOR, 400, "The pagination cursor is malformed."),
        ErrorSpec(ErrorCode.UNSUPPORTED_VERSION, 400,
                  "The client asked only for protocol versions this server does not speak."),
        ErrorSpec(ErrorCode.TOO_MANY_CONNECTIONS, 429, "The user has as many open sockets as the server allows."),
        ErrorSpec(ErrorCode.NOT_FOUND, 404, "No such endpoint or resource."),
        ErrorSpec(ErrorCode.METHOD_NOT_ALLOWED, 405, "The endpoint exists but not with this HTTP method."),
        ErrorSpec(ErrorCode.INTERNAL_ERROR, 500, "The server failed; nothing was changed. Retry later."),
        ErrorSpec(ErrorCode.EMPTY_TEXT, 400, "The text is empty once invisible and control characters are removed."),
        ErrorSpec(ErrorCode.TEXT_TOO_LONG, 400,
                  "The text is longer than limits.maxTextLength characters (details: maxLength, length), or "
                  "its event would be over 65536 bytes once encoded (details: maxBytes). Nothing is ever cut "
                  "silently."),
        ErrorSpec(ErrorCode.UNKNOWN_COMMAND, 400, "The command line names no command this server knows."),
        ErrorSpec(ErrorCode.NOT_IN_ROOM, 403, "You are not in that room."),
        ErrorSpec(ErrorCode.ALREADY_HOME, 400, "leave_room in the default room: there is nowhere to go; join another room."),
        ErrorSpec(ErrorCode.UNKNOWN_USER, 404, "No user has this name or id."),
        ErrorSpec(ErrorCode.TOO_MANY_RECIPIENTS, 400, "A page's to list has more than limits.maxPageRecipients entries (counted as written, duplicates included)."),
        ErrorSpec(ErrorCode.NOT_ACCEPTING_PAGES, 403,
                  "The recipient is not accepting pages (haven, with their message), or not yours (nothing more is said)."),
        ErrorSpec(ErrorCode.YOU_BLOCKED, 403, "You are blocking the recipient; unblock them to page them."),
        ErrorSpec(ErrorCode.INVALID_CHANNEL_NAME, 400, "The channel name breaks the channel name rules."),
        ErrorSpec(ErrorCode.UNKNOWN_CHANNEL, 404,
                  "No channel has this id, name or alias (private channels you may not see are unknown too)."),
        ErrorSpec(ErrorCode.NOT_A_MEMBER, 403, "Only members of the channel may do this."),
        ErrorSpec(ErrorCode.BANNED, 403, "You are banned from this channel (details: reason)."),
        ErrorSpec(ErrorCode.MUTED, 403,
                  "You are muted: on this channel (details: untilMs, or none for ever), or on the whole server "
                  "for spam (details: scope server, untilMs, remainingMs)."),
        ErrorSpec(ErrorCode.INVITE_ONLY, 403, "The channel is private: you need an invitation to join."),
        ErrorSpec(ErrorCode.UNKNOWN_MESSAGE, 404, "No message has this id, or it is not yours to see."),
        ErrorSpec(ErrorCode.NOT_EDITABLE, 400, "This kind of event cannot be edited or deleted this way."),
        ErrorSpec(ErrorCode.EDIT_WINDOW_PASSED, 403, "The message is older than the edit window."),
        ErrorSpec(ErrorCode.MESSAGE_DELETED, 410, "The message was deleted: it can be neither edited nor deleted again."),
        ErrorSpec(ErrorCode.ALREADY_REPORTED, 409, "You have reported this message already."),
        ErrorSpec(ErrorCode.UNKNOWN_REPORT, 404, "No report has this id, or it is not yours to handle."),
        ErrorSpec(ErrorCode.RATE_LIMITED, 429,
                  "Too many requests of this kind; nothing was done. details.retryAfterMs says when to try again."),
        ErrorSpec(ErrorCode.FORBIDDEN_ORIGIN, 403, "The WebSocket handshake came from a web page of another origin."),
        ErrorSpec(ErrorCode.SERVER_FULL, 503,
                  "The server holds as many connections as it accepts (max_connections), or is out of file "
                  "descriptors; nothing was done. Retry later (Retry-After, in seconds), with backoff."),
        ErrorSpec(ErrorCode.NOT_READY, 503,
                  "GET /ready: the server cannot serve now (details: failing, what does not answer); send "
                  "clients to another server."),
        ErrorSpec(ErrorCode.ACCOUNT_BANNED, 403,
                  "The account is banned from this server: it cannot log in (details: reason)."),
        ErrorSpec(ErrorCode.UNAUTHENTICATED_SERVER, 401,
                  "Federation: the request has no Authorization header, or it is not a well-formed X-VibeMUSE "
                  "signature (federation.md section 3)."),
        ErrorSpec(ErrorCode.WRONG_DESTINATION, 401,
                  "Federation: the request was signed for another destination server."),
        ErrorSpec(ErrorCode.SERVER_FORBIDDEN, 403,
                  "Federation: this server does not federate with the origin (federation_deny, federation_allow)."),
        ErrorSpec(ErrorCode.REQUEST_EXPIRED, 401,
                  "Federation: the request's ts is further from the receiver's clock than its window "
                  "(federation_request_window_seconds, default 300)."),
        ErrorSpec(ErrorCode.INVALID_SIGNATURE, 401,
                  "Federation: the request's signature does not verify with a current key of the origin "
                  "(or the origin's keys could not be fetched)."),
        ErrorSpec(ErrorCode.REPLAYED_REQUEST, 401,
                  "Federation: the origin already sent a request with this nonce within the window."),
        ErrorSpec(ErrorCode.BAD_EVENT, 400,
                  "Federation, per event of a transaction: the event is malformed (fails the event rules of "
                  "events.md)."),
        ErrorSpec(ErrorCode.EVENT_TOO_LARGE, 400,
                  "Federation, per event of a transaction: the event is over 65536 bytes (events.md)."),
        ErrorSpec(ErrorCode.INVALID_EVENT_SIGNATURE, 400,
                  "Federation, per event of a transaction: no valid signature of the origin with a key in force "
                  "when the event was made."),
        ErrorSpec(ErrorCode.INVALID_EVENT_HASH, 400,
                  "Federation, per event of a transaction: the content does not match hashes.sha256."),
        ErrorSpec(ErrorCode.INVALID_EVENT_ID, 400,
                  "Federation, per event of a transaction: the event id does not match the event."),
        ErrorSpec(ErrorCode.ORIGIN_MISMATCH, 400,
                  "Federation, per event of a transaction: the event's origin or its sender's server is not the "
                  "server that sent the transaction."),
        ErrorSpec(ErrorCode.UNSUPPORTED_EVENT_TYPE, 400,
                  "Federation, per event of a transaction: this server does not accept events of this type "
                  "(it accepts vm.page, vm.receipt and the vm.channel.* events of federation.md section 10)."),
        ErrorSpec(ErrorCode.INVALID_STAMP, 400,
                  "Federation, per event of a transaction: a relayed channel event's stamp is malformed, is not "
                  "for this event, or is not signed by the channel's home (federation.md section 10)."),
        ErrorSpec(ErrorCode.OUT_OF_ORDER, 400,
                  "Federation, per event of a transaction: a relayed channel event does not follow the last one "
                  "held here (a gap, or a channel not held yet); the receiver fetches what it misses from the "
                  "home (federation.md section 10)."),
        ErrorSpec(ErrorCode.HOME_UNREACHABLE, 503,
                  "The channel's home server could not be reached (or did not answer) within the time allowed; "
                  "nothing was done. Try again later."),
        ErrorSpec(ErrorCode.UNAVAILABLE, 503,
                  "The server cannot reach its database just now (details: failing); it recovers by itself "
                  "when the database is back. Retry later (HTTP: Retry-After, in seconds), with backoff. If the "
                  "link broke while the request was being committed it may have been done: a frame or request "
                  "that stores something is sent again with the same messageId (or Idempotency-Key), and is "
                  "never done twice (section 14.7)."),
    )
}


class CloseCode(enum.IntEnum):
    """WebSocket close codes the server uses (RFC 6455 ones and 4000-4999 of ours)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    INVALID_PAYLOAD = 1007
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    AUTH_TIMEOUT = 4001
    AUTH_FAILED = 4002
    LOGGED_OUT = 4003
    HEARTBEAT_TIMEOUT = 4004
    TOO_MANY_CONNECTIONS = 4005
    TOKEN_EXPIRED = 4006
    SLOW_CONSUMER = 4008
    SPAM = 4009
    KICKED = 4010
    BANNED = 4011
    RESUME = 4012


CLOSE_CODE_DESCRIPTIONS: dict[CloseCode, str] = {
    CloseCode.NORMAL: "The client or server ended the session normally.",
    CloseCode.GOING_AWAY: "The server is shutting down; reconnect later.",
    CloseCode.PROTOCOL_ERROR: "The client broke RFC 6455: an unmasked frame, reserved bits set, an unknown opcode, "
                              "a control frame over 125 bytes or fragmented, a broken fragmentation, or a close "
                              "frame with a code a client may not send.",
    CloseCode.UNSUPPORTED_DATA: "The client sent a binary message; frames are JSON in text messages.",
    CloseCode.INVALID_PAYLOAD: "A text message (or a close reason) was not valid UTF-8.",
    CloseCode.MESSAGE_TOO_BIG: "A frame was larger than limits.maxFrameBytes.",
    CloseCode.INTERNAL_ERROR: "The server failed to start the session (roster, replay, waiting pages); nothing was "
                              "lost: reconnect with backoff and resume with since.",
    CloseCode.AUTH_TIMEOUT: "No auth frame arrived within limits.authTimeoutMs.",
    CloseCode.AUTH_FAILED: "The token in the auth frame was refused (the error frame before the close says why).",
    CloseCode.LOGGED_OUT: "The access token this socket used was revoked (logout).",
    CloseCode.HEARTBEAT_TIMEOUT: "The client answered no ping within limits.heartbeatTimeoutMs.",
    CloseCode.TOO_MANY_CONNECTIONS: "The user already has limits.maxConnectionsPerUser open sockets.",
    CloseCode.TOKEN_EXPIRED: "The access token this socket used has expired; log in again and reconnect.",
    CloseCode.SLOW_CONSUMER: "The client read too slowly: its outbound queue passed limits.outboundQueueBytes.",
    CloseCode.SPAM: "The user kept sending messages while muted for spam.",
    CloseCode.KICKED: "An admin disconnected the user (the close reason may say why); they may reconnect.",
    CloseCode.BANNED: "An admin banned the account: its tokens are revoked and it cannot log in again.",
    CloseCode.RESUME: "The server may have missed live frames for this socket (its processes lost touch for a "
                      "moment); nothing stored was lost: reconnect at once and resume with since.",
}


@dataclass(frozen=True)
class DetailsShape:
    """The ``details`` one code carries in one case: ``when`` (empty if always) and its shape."""

    when: str
    shape: str


# What ``details`` holds, by code (codes not listed send none). Published in
# errors.json and rendered into protocol.md section 10.
ERROR_DETAILS: dict[ErrorCode, tuple[DetailsShape, ...]] = {
    ErrorCode.INVALID_FRAME: (DetailsShape("schema failure", '{"path": JSON pointer of the offending value}'),),
    ErrorCode.INVALID_REQUEST: (DetailsShape("body schema failure", '{"path": JSON pointer}'),),
    ErrorCode.UNKNOWN_TYPE: (DetailsShape("type not in v1", '{"known": [client frame types]}'),),
    ErrorCode.UNSUPPORTED_VERSION: (DetailsShape("", '{"offered": [...], "supported": [...]}'),),
    ErrorCode.TEXT_TOO_LONG: (
        DetailsShape("the text is too long",
                     '{"maxLength": limits.maxTextLength, "length": the text\'s length after sanitizing}'),
        DetailsShape("the event would be too large (section 14.4)", '{"maxBytes": 65536}'),
    ),
    ErrorCode.UNKNOWN_COMMAND: (
        DetailsShape("", '{"command": the first word of the line, sanitized, at most 32 characters}'),),
    ErrorCode.NOT_IN_ROOM: (
        DetailsShape("from say, pose, ooc, emit, leave_room, typing, command, and a room's history (section 19.1)",
                     '{"location": the room id the character is in}'),),
    ErrorCode.UNKNOWN_USER: (DetailsShape("", '{"name": the name or id as given, sanitized, at most 64 characters}'),),
    ErrorCode.TOO_MANY_RECIPIENTS: (DetailsShape("", '{"maxRecipients": limits.maxPageRecipients}'),),
    ErrorCode.NOT_ACCEPTING_PAGES: (DetailsShape("", '{"userId": the recipient\'s user id}'),),
    ErrorCode.YOU_BLOCKED: (DetailsShape("", '{"userId": the recipient\'s user id}'),),
    ErrorCode.UNKNOWN_CHANNEL: (
        DetailsShape("named by id or name", '{"channel": the reference as given, sanitized, at most 64 characters}'),
        DetailsShape("named by alias", '{"alias": the alias, at most 16 characters}'),
    ),
    ErrorCode.BANNED: (DetailsShape("", '{"reason": the ban\'s reason, "" if none was given}'),),
    ErrorCode.MUTED: (
        DetailsShape("on a channel, for a while (a channel mute without end has no details)",
                     '{"untilMs": when the mute ends, milliseconds since the Unix epoch}'),
        DetailsShape("on the whole server, for spam (section 18.2)",
                     '{"scope": "server", "untilMs": when the mute ends, "remainingMs": milliseconds left}'),
    ),
    ErrorCode.NOT_READY: (DetailsShape("", '{"failing": [what does not answer: "database", "bus"]}'),),
    ErrorCode.UNAVAILABLE: (DetailsShape("", '{"failing": ["database"]}'),),
    ErrorCode.ACCOUNT_BANNED: (DetailsShape("", '{"reason": the ban\'s reason, "" if none was given}'),),
    ErrorCode.RATE_LIMITED: (
        DetailsShape("", '{"retryAfterMs": milliseconds until a request of this kind may succeed, '
                         '"action": the bucket (section 18.1)}'),),
}


@dataclass
class ProtocolError(Exception):
    """A refusal with a stable code; ``in_reply_to`` names the client frame it answers."""

    code: ErrorCode
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    in_reply_to: str | None = None

    def __post_init__(self) -> None:
        super().__init__(f"{self.code}: {self.message}")

    @property
    def http_status(self) -> int:
        return ERROR_CATALOGUE[self.code].http_status

    def to_wire(self) -> dict[str, Any]:
        """The ``error`` object as it appears in HTTP bodies and error frames."""
        wire: dict[str, Any] = {"code": str(self.code), "message": self.message}
        if self.details:
            wire["details"] = self.details
        return wire
