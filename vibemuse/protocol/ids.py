"""Identifier grammar: server names, usernames, user ids and room ids.

Ids are server-qualified, as in Matrix, so one id names one thing on every
server of a federation:

- user id:  ``@`` localpart ``:`` server_name   (``@alice:muse.example.org``)
- room id:  ``!`` opaque ``:`` server_name      (``!Xq3fK9aB2LmN7pQr:muse.example.org``)
- channel id: ``#`` folded name ``:`` server_name (``#public:muse.example.org``)

The localpart of a user id is the lower-cased username, so names stay unique
case-insensitively while the username keeps the case its owner chose.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from vibemuse.protocol.errors import ErrorCode, ProtocolError

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
SERVER_NAME_PATTERN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]{{2,45}}\])(?::[0-9]{{1,5}})?"
USERNAME_PATTERN = r"[A-Za-z][A-Za-z0-9_.\-]{1,31}"
USER_LOCALPART_PATTERN = r"[a-z][a-z0-9_.\-]{1,31}"
ROOM_LOCALPART_PATTERN = r"[A-Za-z0-9]{16}"
CHANNEL_NAME_PATTERN = r"[A-Za-z][A-Za-z0-9_\-]{1,31}"
CHANNEL_LOCALPART_PATTERN = r"[a-z][a-z0-9_\-]{1,31}"

_SERVER_NAME = re.compile(SERVER_NAME_PATTERN)
_USERNAME = re.compile(USERNAME_PATTERN)
_USER_ID = re.compile(rf"@({USER_LOCALPART_PATTERN}):({SERVER_NAME_PATTERN})")
_ROOM_ID = re.compile(rf"!({ROOM_LOCALPART_PATTERN}):({SERVER_NAME_PATTERN})")
_CHANNEL_NAME = re.compile(CHANNEL_NAME_PATTERN)
_CHANNEL_ID = re.compile(rf"#({CHANNEL_LOCALPART_PATTERN}):({SERVER_NAME_PATTERN})")

ROOM_LOCALPART_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
ROOM_LOCALPART_LENGTH = 16


@dataclass(frozen=True)
class QualifiedId:
    """A parsed server-qualified id."""

    sigil: str
    localpart: str
    server_name: str

    def __str__(self) -> str:
        return f"{self.sigil}{self.localpart}:{self.server_name}"


def is_valid_server_name(name: str) -> bool:
    return isinstance(name, str) and _SERVER_NAME.fullmatch(name) is not None and _port_ok(name)


def _port_ok(name: str) -> bool:
    head, sep, port = name.rpartition(":")
    if not sep or head.endswith(":") or "]" in port:
        return True
    return not port.isdigit() or 0 < int(port) < 65536


def validate_username(username: object) -> str:
    """Return ``username`` if it is 2-32 characters of letters, digits, ``_ . -``
    starting with a letter; raise ``invalid_username`` otherwise."""
    if not isinstance(username, str) or _USERNAME.fullmatch(username) is None:
        raise ProtocolError(
            ErrorCode.INVALID_USERNAME,
            "Usernames are 2 to 32 characters: letters, digits, '_', '.' or '-', starting with a letter.",
        )
    return username


def user_id_for(username: str, server_name: str) -> str:
    return f"@{username.lower()}:{server_name}"


def parse_user_id(value: object) -> QualifiedId:
    match = _USER_ID.fullmatch(value) if isinstance(value, str) else None
    if match is None or not _port_ok(match.group(2)):
        raise ProtocolError(ErrorCode.INVALID_REQUEST, f"{value!r} is not a user id (@name:server).")
    return QualifiedId("@", match.group(1), match.group(2))


def user_id_of_address(value: str) -> str | None:
    """``bob@beta.example`` (how a command line names a user of any server) as
    ``@bob:beta.example``; None if ``value`` is not of that form."""
    local, at, server = value.partition("@")
    candidate = f"@{local.lower()}:{server.lower()}"
    return candidate if at and _USER_ID.fullmatch(candidate) else None


def room_id_for(localpart: str, server_name: str) -> str:
    """Format a room id; ``localpart`` comes from the caller's random source."""
    if re.fullmatch(ROOM_LOCALPART_PATTERN, localpart) is None:
        raise ValueError(f"room localpart must be {ROOM_LOCALPART_LENGTH} letters or digits")
    return f"!{localpart}:{server_name}"


def parse_room_id(value: object) -> QualifiedId:
    match = _ROOM_ID.fullmatch(value) if isinstance(value, str) else None
    if match is None or not _port_ok(match.group(2)):
        raise ProtocolError(ErrorCode.INVALID_ROOM_ID, f"{value!r} is not a room id (!<16 letters or digits>:server).")
    return QualifiedId("!", match.group(1), match.group(2))


def validate_channel_name(name: object) -> str:
    """2-32 letters, digits, '_' or '-', starting with a letter; ``invalid_channel_name`` otherwise."""
    if not isinstance(name, str) or _CHANNEL_NAME.fullmatch(name) is None:
        raise ProtocolError(
            ErrorCode.INVALID_CHANNEL_NAME,
            "Channel names are 2 to 32 characters: letters, digits, '_' or '-', starting with a letter.",
        )
    return name


def channel_id_for(name: str, server_name: str) -> str:
    return f"#{name.lower()}:{server_name}"


def parse_channel_id(value: object) -> QualifiedId | None:
    """The parts of a channel id, or None if ``value`` is not one (it may be a name)."""
    return _parse_channel_id(value) if isinstance(value, str) else None


@functools.lru_cache(maxsize=4096)  # a server sees few channel ids, each parsed several times per event
def _parse_channel_id(value: str) -> QualifiedId | None:
    match = _CHANNEL_ID.fullmatch(value)
    if match is None or not _port_ok(match.group(2)):
        return None
    return QualifiedId("#", match.group(1), match.group(2))
