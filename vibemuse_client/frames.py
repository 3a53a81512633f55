"""Typed views of what the server sends: frozen dataclasses over the JSON of spec/.

Each record names the schema it reads (``SCHEMA``, and ``PART`` when it is a
part of that schema); its fields are the schema's properties in snake case
(``inReplyTo`` is ``in_reply_to``), and a test holds the two together. Fields
a newer revision adds are ignored (protocol.md 6.2: clients ignore what they
do not know); the whole JSON stays in ``raw``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

# Frames that carry one event of the stream in data.event (protocol.md 14.10, 17.6).
EVENT_FRAME_TYPES = frozenset({"message", "user_joined", "user_left", "system_message", "page_receipt",
                               "channel_message", "channel_notice", "message_edited", "message_deleted"})
# Frames that answer one client frame, naming it in data.inReplyTo (protocol.md 5.4).
ANSWER_FRAME_TYPES = frozenset({"ack", "error", "pong", "who", "notice", "channel_who", "channel_list",
                                "message_detail"})


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _record(cls: type, data: Mapping[str, Any]) -> Any:
    """Build a record from JSON by its fields' camelCase names (nested records by field metadata)."""
    values = {}
    for item in dataclasses.fields(cls):
        if item.name == "raw":
            values["raw"] = dict(data)
            continue
        key = item.metadata.get("json", camel(item.name))
        if key not in data:
            continue
        value = data[key]
        nested = item.metadata.get("record")
        if nested is not None and value is not None:
            value = nested.from_json(value)
        elif isinstance(value, list):
            value = tuple(value)
        values[item.name] = value
    return cls(**values)


class _Json:
    SCHEMA: ClassVar[str]
    PART: ClassVar[str] = "data"  # where the fields are in the schema: "data" of a frame, "" for the root

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Any:
        return _record(cls, data)


@dataclass(frozen=True)
class Event(_Json):
    """A signed event (``schemas/event.json``, events.md), with its place in the server's stream."""

    SCHEMA: ClassVar[str] = "event.json"
    PART: ClassVar[str] = ""
    event_id: str
    type: str
    sender: str
    origin: str
    origin_server_ts: int
    content: Mapping[str, Any]
    hashes: Mapping[str, Any] = field(default_factory=dict, compare=False)
    signatures: Mapping[str, Any] = field(default_factory=dict, compare=False)
    room_id: str | None = None
    channel_id: str | None = None
    recipients: tuple[str, ...] | None = None
    unsigned: Mapping[str, Any] = field(default_factory=dict, compare=False)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Event":
        # Event keys are snake case already (Matrix's format): no renaming.
        names = {item.name for item in dataclasses.fields(cls)} - {"raw"}
        values = {key: (tuple(value) if isinstance(value, list) else value)
                  for key, value in data.items() if key in names}
        return cls(**values, raw=dict(data))

    @property
    def stream_position(self) -> int | None:
        return self.unsigned.get("stream_position")

    @property
    def body(self) -> str | None:
        return self.content.get("body")

    def line_for(self, user_id: str) -> str | None:
        """The line a plain-text client shows this user (protocol.md 14.3)."""
        if self.sender == user_id and "rendered_self" in self.content:
            return self.content["rendered_self"]
        return self.content.get("rendered")


@dataclass(frozen=True)
class User(_Json):
    SCHEMA: ClassVar[str] = "common.json#/$defs/user"
    PART: ClassVar[str] = ""
    id: str
    username: str
    role: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Limits(_Json):
    """The limits a server enforces (``common.json#/$defs/limits``); defaults are the spec's."""

    SCHEMA: ClassVar[str] = "common.json#/$defs/limits"
    PART: ClassVar[str] = ""
    max_frame_bytes: int = 65536
    max_http_body_bytes: int = 262144
    auth_timeout_ms: int = 10000
    heartbeat_interval_ms: int = 25000
    heartbeat_timeout_ms: int = 60000
    max_connections_per_user: int = 10
    max_text_length: int = 4000
    outbound_queue_bytes: int = 524288
    idle_after_ms: int = 600000
    typing_timeout_ms: int = 6000
    typing_refresh_ms: int = 3000
    max_page_recipients: int = 10
    resume_max_events: int = 1000
    presence_room_limit: int = 100
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Session(_Json):
    """What register and login answer (``http/session.json``)."""

    SCHEMA: ClassVar[str] = "http/session.json"
    PART: ClassVar[str] = ""
    user: User = field(metadata={"record": User})
    location: str
    access_token: str
    expires_at: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Versions(_Json):
    """``GET /api/versions``: what the server speaks, its feature flags and limits (protocol.md 3)."""

    SCHEMA: ClassVar[str] = "http/versions.json"
    PART: ClassVar[str] = ""
    versions: tuple[str, ...]
    subprotocols: tuple[str, ...]
    features: Mapping[str, Any]
    server: Mapping[str, Any]
    limits: Limits = field(metadata={"record": Limits})
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def has(self, flag: str, version: str = "v1") -> bool:
        """Check a feature flag, never a version string."""
        return flag in self.features.get(version, ())


@dataclass(frozen=True)
class Welcome(_Json):
    SCHEMA: ClassVar[str] = "frames/server/welcome.json"
    user: User = field(metadata={"record": User})
    location: str
    connection_id: str
    server_name: str
    server_version: str
    protocol_version: str
    limits: Limits = field(metadata={"record": Limits})
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Ack(_Json):
    """Your request is done and durable (protocol.md 14.7)."""

    SCHEMA: ClassVar[str] = "frames/server/ack.json"
    in_reply_to: str
    duplicate: bool
    event_id: str | None = None
    stream_position: int | None = None
    offline: tuple[str, ...] = ()
    remote: tuple[str, ...] = ()
    report_id: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Resumed(_Json):
    SCHEMA: ClassVar[str] = "frames/server/resumed.json"
    since: int
    upto: int
    count: int
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class ResumeGap(_Json):
    SCHEMA: ClassVar[str] = "frames/server/resume_gap.json"
    since: int
    reason: str
    latest_position: int
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Frame(_Json):
    """Any server frame (``envelope-server.json``); ``data`` as sent, typed views by property."""

    SCHEMA: ClassVar[str] = "envelope-server.json"
    PART: ClassVar[str] = ""
    type: str
    message_id: str
    timestamp: str
    from_user: str
    data: Mapping[str, Any]
    to_user: str | None = None
    room_id: str | None = None
    channel_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def in_reply_to(self) -> str | None:
        return self.data.get("inReplyTo")

    @property
    def event(self) -> Event | None:
        """The event of an event frame (``message``, ``user_joined`` ...), else None."""
        event = self.data.get("event")
        return Event.from_json(event) if isinstance(event, dict) else None

    @property
    def is_stream_event(self) -> bool:
        """Carries one event of the stream: counts for ``since`` and is de-duplicated."""
        return self.type in EVENT_FRAME_TYPES and isinstance(self.data.get("event"), dict)

    def ack(self) -> Ack:
        return Ack.from_json(self.data)

    def welcome(self) -> Welcome:
        return Welcome.from_json(self.data)


TYPED_RECORDS = (Event, User, Limits, Session, Versions, Welcome, Ack, Resumed, ResumeGap, Frame)
