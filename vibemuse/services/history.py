"""History: reading what was said in a room, on a channel, or in a page conversation.

Theory of operation. The three histories are one storage query
(``history_txns.history_txn``) with a different scope; this service decides
who may read which scope, and how far back:

- a room's history is for the characters standing in it **now** (past
  visits do not count: a MUSH room's log belongs to those present), else
  ``not_in_room``;
- a channel's history is for its members (``not_a_member``), and holds what
  the visibility rule (``vibemuse.protocol.visibility``, in SQL
  ``storage.visibility_txns``) lets them see: on a ``joined`` channel, from
  their own (latest) join event on, their own events and those about them
  from before it, and no edit or deletion of a message from before it;
- a page conversation is only ever the requester's own with one other user;
- admins read every room and channel in full.

The filters (kinds, sender, time range, search words) come parsed from the
handler as a ``HistoryRequest``; the sender is resolved here (a username or
user id, ``unknown_user`` if nobody has it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.ids import parse_room_id, parse_user_id, validate_username
from vibemuse.services.accounts import Principal
from vibemuse.services.channels import ChannelService
from vibemuse.services.messages import EDITABLE
from vibemuse.services.pages import PageService
from vibemuse.services.visibility import floor_of
from vibemuse.storage import Storage
from vibemuse.storage.history_txns import KINDS, HistoryPage, HistoryQuery
from vibemuse.storage.store import MessageStore

DEFAULT_LIMIT, MAX_LIMIT = 50, 100


@dataclass(frozen=True)
class HistoryRequest:
    """The query of a history request, already checked for form."""

    limit: int = DEFAULT_LIMIT
    before: int | None = None
    after: int | None = None
    kinds: tuple[str, ...] = ()
    sender: str | None = None  # a username or user id, as given
    since_ms: int | None = None
    until_ms: int | None = None
    words: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Form only, before anything is read: known kinds, a sender that could name a user."""
        unknown = [kind for kind in self.kinds if kind not in KINDS]
        if unknown:
            raise ProtocolError(ErrorCode.INVALID_REQUEST,
                                f"Unknown kind {unknown[0][:32]!r} in 'kind'; kinds are: {', '.join(KINDS)}.")
        if self.sender is not None:
            _check_user_ref(self.sender)


@dataclass(frozen=True)
class History:
    events: list[dict]
    next: str | None  # the cursor for the next request in the same direction


class HistoryService:
    def __init__(self, storage: Storage, *, pages: PageService, channels: ChannelService):
        self._storage = storage
        self._pages = pages
        self._channels = channels

    async def room(self, principal: Principal, room_id: str, request: HistoryRequest) -> History:
        parse_room_id(room_id)
        room = await self._storage.get_room(room_id)
        if room is None:
            raise ProtocolError(ErrorCode.ROOM_NOT_FOUND, f"There is no room {room_id}.")
        here = principal.user.location_room_id
        if here != room_id and not principal.has_role("admin"):
            raise ProtocolError(ErrorCode.NOT_IN_ROOM, "Only those in a room may read its history.",
                                details={"location": here})
        return await self._read(HistoryQuery(limit=request.limit, room_id=room_id), request)

    async def channel(self, principal: Principal, ref: str, request: HistoryRequest) -> History:
        channel = await self._channels.find(principal, ref)
        query = HistoryQuery(limit=request.limit, channel_id=channel.channel_id, viewer=principal.user_id)
        if not principal.has_role("admin"):
            member = await self._storage.get_membership(channel.channel_id, principal.user_id)
            if member is None:
                raise ProtocolError(ErrorCode.NOT_A_MEMBER, f"Only members of {channel.name} may read its history.")
            query = replace(query, floor=floor_of(channel, member))  # the visibility rule, in SQL
        return await self._read(query, request)

    async def conversation(self, principal: Principal, other_ref: str, request: HistoryRequest) -> History:
        other = await self._pages.partner(other_ref)
        query = HistoryQuery(limit=request.limit, conversation=(principal.user_id, other))
        return await self._read(query, request)

    async def _read(self, query: HistoryQuery, request: HistoryRequest) -> History:
        sender = (await self._pages.resolve(request.sender)).user_id if request.sender is not None else None
        query = replace(query, before=request.before, after=request.after, kinds=request.kinds, sender=sender,
                        since_ms=request.since_ms, until_ms=request.until_ms, words=request.words)
        page: HistoryPage = await self._storage.history(query)
        await self._mark_edits(page.events)
        next_cursor = None
        if page.more and page.events:
            edge = page.events[-1] if request.after is not None else page.events[0]
            next_cursor = str(edge["unsigned"]["stream_position"])
        return History(page.events, next_cursor)


    async def _mark_edits(self, events: list[dict]) -> None:
        """Edited messages show their latest text: ``unsigned.replaced_by`` names the edit and
        ``unsigned.edited`` carries it (its id, time and new content)."""
        edited = [event["unsigned"]["stream_position"] for event in events if event["type"] in EDITABLE]
        edits = await MessageStore(self._storage).edits_of(edited)
        for event in events:
            edit = edits.get(event["unsigned"]["stream_position"])
            if edit is not None:
                event["unsigned"]["replaced_by"] = edit["event_id"]
                event["unsigned"]["edited"] = {"event_id": edit["event_id"],
                                               "origin_server_ts": edit["origin_server_ts"],
                                               "content": edit["content"].get("new_content", {})}


def _check_user_ref(ref: str) -> None:
    """A sender filter must at least look like a username or a user id."""
    try:
        parse_user_id(ref) if ref.startswith("@") else validate_username(ref)
    except ProtocolError:
        raise ProtocolError(ErrorCode.INVALID_REQUEST, "'sender' must be a username or a user id.") from None
