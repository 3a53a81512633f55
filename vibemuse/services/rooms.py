"""Rooms: the places characters stand in. Builders and admins make them."""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from typing import Callable, Iterable

from vibemuse.clock import Clock
from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.numbers import MAX_STREAM_POSITION, ascii_whole_number
from vibemuse.protocol.ids import ROOM_LOCALPART_ALPHABET, ROOM_LOCALPART_LENGTH, parse_room_id, room_id_for
from vibemuse.services.accounts import Principal
from vibemuse.storage import Conflict, RoomRecord, Storage, UserRecord

MAX_ROOM_NAME = 100
MAX_ROOM_DESCRIPTION = 4000
MAX_PAGE = 500


def random_room_localpart() -> str:
    return "".join(secrets.choice(ROOM_LOCALPART_ALPHABET) for _ in range(ROOM_LOCALPART_LENGTH))


def clean_text(text: str, *, allow_newlines: bool) -> str:
    """NFC-normalized text without control characters (newlines only where allowed)."""
    text = unicodedata.normalize("NFC", text)
    keep = "\n" if allow_newlines else ""
    return "".join(ch for ch in text if ch in keep or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co"))


@dataclass(frozen=True)
class RoomView:
    room: RoomRecord
    occupants: list[UserRecord]


class RoomService:
    def __init__(
        self,
        storage: Storage,
        *,
        server_name: str,
        clock: Clock,
        online_users: Callable[[], Iterable[str]],
    ):
        self._storage = storage
        self._server_name = server_name
        self._clock = clock
        self._online_users = online_users

    async def ensure_default_room(self, name: str, description: str) -> RoomRecord:
        room_id = room_id_for(random_room_localpart(), self._server_name)
        return await self._storage.ensure_default_room(room_id, name, description, self._clock())

    async def create_room(self, principal: Principal, name: str, description: str) -> RoomRecord:
        if not principal.has_role("builder", "admin"):
            raise ProtocolError(ErrorCode.FORBIDDEN, "Only builders and admins can make rooms.")
        name = clean_text(name, allow_newlines=False).strip()
        if not name or len(name) > MAX_ROOM_NAME:
            raise ProtocolError(ErrorCode.INVALID_ROOM_NAME, f"Room names are 1 to {MAX_ROOM_NAME} characters.")
        description = clean_text(description, allow_newlines=True)[:MAX_ROOM_DESCRIPTION]
        room_id = room_id_for(random_room_localpart(), self._server_name)
        try:
            return await self._storage.create_room(room_id, name, description, principal.user_id, self._clock())
        except Conflict:
            raise ProtocolError(ErrorCode.ROOM_NAME_TAKEN, f"A room named {name!r} exists already.") from None

    async def list_rooms(self, cursor: str | None, limit: int) -> tuple[list[RoomRecord], str | None]:
        after = 0
        if cursor is not None:
            after = ascii_whole_number(cursor)
            if after is None or after > MAX_STREAM_POSITION:
                raise ProtocolError(ErrorCode.INVALID_CURSOR, "The cursor is not one this server handed out.")
        limit = max(1, min(limit, MAX_PAGE))
        rooms = await self._storage.list_rooms(after, limit + 1)
        next_cursor = str(rooms[limit - 1].seq) if len(rooms) > limit else None
        return rooms[:limit], next_cursor

    async def view_room(self, room_id: str) -> RoomView:
        parse_room_id(room_id)
        room = await self._storage.get_room(room_id)
        if room is None:
            raise ProtocolError(ErrorCode.ROOM_NOT_FOUND, f"There is no room {room_id}.")
        online = set(self._online_users())
        located = await self._storage.users_located_in(room_id)
        return RoomView(room=room, occupants=[user for user in located if user.user_id in online])
