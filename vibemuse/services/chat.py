"""Room communication: say, pose, OOC, emit, moving between rooms, @wall.

Theory of operation. Every message is an event, made by one path:

1. check what the request may do (is the speaker in that room? may they
   @emit?), sanitize and parse the text (``protocol.markup``) and compose the
   content with the rendered lines (``protocol.content``);
2. build, hash and sign the event (``protocol.events.build_event``);
3. store it with its client transaction (``Storage.append_events``) — the
   only await, and durable before anything is sent;
4. fan it out once (``Broadcaster``), then return the receipt, from which the
   handler acks the requesting socket.

A retried ``messageId`` is found in step 3: nothing new is stored or sent,
and the first receipt comes back (marked ``duplicate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vibemuse.protocol import content as compose
from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.frames import EncodedData, ServerFrame
from vibemuse.protocol.ids import parse_room_id
from vibemuse.realtime.broadcast import Broadcaster
from vibemuse.services.accounts import Principal
from vibemuse.services.events import EventWriter
from vibemuse.services.presence import PresenceService
from vibemuse.services.room_views import RoomViews
from vibemuse.storage import Receipt, Relocation, Storage, TransactionKey
from vibemuse.storage.records import NotFound

ROSTER_MAX_MEMBERS = 200  # a crowded room's roster lists the most recently active; memberCount has them all
ROOM_MESSAGE = "vm.room.message"
ROOM_MEMBER = "vm.room.member"
SYSTEM = "vm.system"


@dataclass(frozen=True)
class Speech:
    """A request to say something in a room."""

    message_id: str
    kind: str  # say | pose | semipose | ooc | emit
    text: str
    room_id: str | None = None
    style: str = "say"  # for ooc: say | pose | semipose


class RoomChat:
    def __init__(
        self,
        storage: Storage,
        *,
        presence: PresenceService,
        broadcaster: Broadcaster,
        events: EventWriter,
        default_room_id: str,
        max_text_length: int,
        views: RoomViews,
    ):
        self._storage = storage
        self._presence = presence
        self._broadcaster = broadcaster
        self._events = events
        self.default_room_id = default_room_id
        self._max_text_length = max_text_length
        self._views = views

    # -- speaking ----------------------------------------------------------

    async def speak(self, principal: Principal, speech: Speech) -> Receipt:
        request = TransactionKey(principal.user_id, "pose" if speech.kind == "semipose" else speech.kind,
                                 speech.message_id)
        room_id = self._location(principal)
        if speech.room_id is not None and speech.room_id != room_id:
            return await self._not_in_room(request, speech.room_id, room_id)
        if speech.kind == "emit" and not principal.has_role("builder", "admin"):
            raise ProtocolError(ErrorCode.FORBIDDEN, "Only builders and admins can @emit.")
        content = compose.room_message(
            speech.kind, principal.user.username, speech.text, self._max_text_length, style=speech.style
        )
        event = self._event(ROOM_MESSAGE, principal.user_id, content, room_id=room_id)
        receipt, positions = await self._store([event], request)
        if positions:
            self._presence.stopped_typing(principal.user_id, room_id)
            frame = self._event_frame("message", event, positions[0], room_id=room_id)
            self._broadcaster.to_room(room_id, frame)
        return receipt

    def _location(self, principal: Principal) -> str:
        return self._presence.subscriptions.location_of(principal.user_id) or principal.user.location_room_id

    async def _not_in_room(self, request: TransactionKey, room_id: str, here: str) -> Receipt:
        """Refuse a request for another room — unless it is a retry of one done before the move."""
        parse_room_id(room_id)
        earlier = await self._storage.get_receipt(request)
        if earlier is not None:
            return earlier
        raise ProtocolError(ErrorCode.NOT_IN_ROOM, "You are not in that room.", details={"location": here})

    # -- moving --------------------------------------------------------------

    async def join(self, principal: Principal, message_id: str, room_id: str) -> Receipt:
        """Move the character to ``room_id``: a departure and an arrival event, one transaction."""
        request = TransactionKey(principal.user_id, "join_room", message_id)
        parse_room_id(room_id)
        room = await self._storage.get_room(room_id)
        if room is None:
            raise ProtocolError(ErrorCode.ROOM_NOT_FOUND, f"There is no room {room_id}.")
        here = self._location(principal)
        if here == room_id:  # already there (or a retry of the move that brought us)
            self._broadcaster.to_user(principal.user_id, await self.roster_frame(principal.user_id, room_id))
            return await self._storage.get_receipt(request) or Receipt(None, None)
        return await self._move(principal, request, here, room_id)

    async def leave(self, principal: Principal, message_id: str, room_id: str | None) -> Receipt:
        """Leave the current room for the default room (a character is always somewhere)."""
        request = TransactionKey(principal.user_id, "leave_room", message_id)
        here = self._location(principal)
        if room_id is not None and room_id != here:
            return await self._not_in_room(request, room_id, here)
        if here == self.default_room_id:
            earlier = await self._storage.get_receipt(request)
            if earlier is not None:
                return earlier
            raise ProtocolError(ErrorCode.ALREADY_HOME, "You are in the default room; join another room instead.")
        return await self._move(principal, request, here, self.default_room_id)

    async def _move(self, principal: Principal, request: TransactionKey, here: str, there: str) -> Receipt:
        name, user_id = principal.user.username, principal.user_id
        departure = self._event(ROOM_MEMBER, user_id, compose.membership("leave", name), room_id=here)
        arrival = self._event(ROOM_MEMBER, user_id, compose.membership("join", name), room_id=there)
        receipt, positions = await self._store([departure, arrival], request, relocation=Relocation(user_id, there))
        if not positions:
            return receipt
        self._presence.stopped_typing(user_id, here)
        self._presence.place(user_id, there, positions[1])
        user = {"id": user_id, "username": name, "role": principal.user.role}
        left = self._event_frame("user_left", departure, positions[0], room_id=here, user=user)
        self._broadcaster.to_room(here, left)
        joined = self._event_frame("user_joined", arrival, positions[1], room_id=there, user=user)
        self._broadcaster.to_room(there, joined, except_user=user_id)
        self._broadcaster.to_user(user_id, await self.roster_frame(user_id, there))
        return receipt

    async def roster_frame(self, user_id: str, room_id: str) -> ServerFrame:
        """Who is in the room and what was said there lately (sent on arrival and on connect).

        ``recent`` holds at most ``recent_messages_on_join`` events and at most half
        the outbound queue of them (the oldest are dropped first: ``RoomViews``), so a
        roster never overflows a socket's outbound queue by itself.
        """
        view = await self._views.get(room_id)
        if view is None:
            raise NotFound(room_id)
        members = self._presence.members(room_id, user_id, ROSTER_MAX_MEMBERS)
        if members.encoded is not None:  # a crowded room: spliced from shared, encoded pieces
            data: dict[str, Any] | EncodedData = EncodedData(
                f'{{"room":{view.room_json},"members":{members.encoded},"memberCount":{members.count},'
                f'"recent":{view.recent_json}}}')
        else:
            room = view.room
            data = {
                "room": {"id": room.room_id, "name": room.name, "description": room.description},
                "members": members.listed,
                "memberCount": members.count,
                "recent": view.recent,
            }
        return self._broadcaster.frame("roster", data, room_id=room_id, to_user=user_id)

    # -- announcements -------------------------------------------------------

    async def wall(self, principal: Principal, message_id: str, text: str) -> Receipt:
        if not principal.has_role("admin"):
            raise ProtocolError(ErrorCode.FORBIDDEN, "Only admins can @wall.")
        content = compose.wall(principal.user.username, text, self._max_text_length)
        event = self._event(SYSTEM, principal.user_id, content)
        receipt, positions = await self._store([event], TransactionKey(principal.user_id, "wall", message_id))
        if positions:
            self._broadcaster.to_all(self._event_frame("system_message", event, positions[0]))
        return receipt

    # -- plumbing ----------------------------------------------------------------

    def _event(self, event_type: str, sender: str, content: dict[str, Any], **scope: str) -> dict[str, Any]:
        return self._events.make(event_type, sender, content, **scope)

    async def _store(
        self, events: list[dict[str, Any]], request: TransactionKey, *, relocation: Relocation | None = None
    ) -> tuple[Receipt, list[int]]:
        return await self._events.store(events, request, relocation=relocation)

    def _event_frame(self, frame_type: str, event: dict[str, Any], position: int, **routing: Any) -> ServerFrame:
        return self._events.frame(frame_type, event, position, **routing)
