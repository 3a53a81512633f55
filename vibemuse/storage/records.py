"""The records storage hands out: frozen, detached from any session."""

from __future__ import annotations

from dataclasses import dataclass

from vibemuse.protocol.errors import ErrorCode, ProtocolError


@dataclass(frozen=True)
class UserRecord:
    user_id: str
    username: str
    role: str
    password_hash: str
    created_ts: int
    location_room_id: str
    created_position: int = 0  # the newest stream position when the account was made
    banned_ts: int | None = None  # when an admin banned the account (None: not banned)
    ban_reason: str = ""


@dataclass(frozen=True)
class RoomRecord:
    seq: int
    room_id: str
    name: str
    description: str
    created_by: str | None
    created_ts: int


@dataclass(frozen=True)
class TokenRecord:
    token_hash: str
    user_id: str
    created_ts: int
    expires_ts: int
    revoked_ts: int | None


@dataclass(frozen=True)
class TransactionKey:
    """A client request: the user, the kind of request and the ``messageId`` they chose."""

    user_id: str
    kind: str
    message_id: str


@dataclass(frozen=True)
class Receipt:
    """What an acted-on request produced: the event acked (if any) and its position."""

    event_id: str | None
    stream_position: int | None
    duplicate: bool = False


@dataclass(frozen=True)
class Relocation:
    user_id: str
    room_id: str


class StorageError(Exception):
    """Base of the domain errors storage raises."""


class Conflict(StorageError):
    """A uniqueness rule would be broken (``what`` names which)."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


class NotFound(StorageError):
    pass


class DatabaseUnavailable(StorageError, ProtocolError):
    """The database cannot be reached (``engine.is_unreachable``): whatever asked gets 503
    ``unavailable``, on HTTP as on a socket, and may try again once it is back."""

    def __init__(self) -> None:
        ProtocolError.__init__(self, ErrorCode.UNAVAILABLE, "The database does not answer; try again shortly.",
                               {"failing": ["database"]})
