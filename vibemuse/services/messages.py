"""One message at a time: read it, edit it, delete it, report it.

Who may see a message is the one visibility rule
(``vibemuse.protocol.visibility.may_see``), the same as for every history: a
room's messages for those who stand in the room now, a channel's for its members
(from their latest join on, on a ``joined`` channel), a page for its two sides,
an announcement for everyone, an edit or deletion only with the message it is
about; everyone sees what they sent and what is addressed to them, admins
everything. Anything a user may not see
is ``unknown_message`` to them — not even its existence is told.

An edit (the author, within ``edit_window_ms``) is a signed ``vm.edit`` in
the original's scope, carrying the whole new content (``new_content``, made
the same way as the original's). A deletion (the author, the room's creator,
the channel's owner or moderators, or an admin) is a signed ``vm.redaction``;
the stored original and its edits keep only their redacted form, whose
signatures still verify. Both reach, live (``message_edited``,
``message_deleted``), everyone in the original's scope whom the rule lets see them.
"""

from __future__ import annotations

import re
from typing import Any

from vibemuse.clock import Clock
from vibemuse.protocol import content as compose
from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.markup import sanitize_text
from vibemuse.protocol.visibility import may_see, target_of
from vibemuse.realtime.blocks import BlockList
from vibemuse.realtime.broadcast import Broadcaster
from vibemuse.realtime.subscriptions import Subscriptions
from vibemuse.services.accounts import Principal
from vibemuse.services.events import EventWriter
from vibemuse.services.visibility import ChannelAudience, channel_audience, viewer_of
from vibemuse.storage import Conflict, Receipt, Storage, TransactionKey
from vibemuse.storage.message_txns import ReportRecord, StoredMessage, op_record_edit, op_redact
from vibemuse.storage.store import MessageStore

EVENT_ID = re.compile(r"\$[A-Za-z0-9_-]{43}")
EDITABLE = ("vm.room.message", "vm.channel.message", "vm.page")
SCOPE_KEYS = ("room_id", "channel_id", "recipients")
MAX_REASON = 1000


class MessageService:
    def __init__(
        self,
        storage: Storage,
        *,
        subscriptions: Subscriptions,
        broadcaster: Broadcaster,
        events: EventWriter,
        blocks: BlockList,
        max_text_length: int,
        edit_window_ms: int,
        clock: Clock,
    ):
        self._storage = storage
        self._messages = MessageStore(storage)
        self._subscriptions = subscriptions
        self._broadcaster = broadcaster
        self._events = events
        self._blocks = blocks
        self._max_text_length = max_text_length
        self._edit_window_ms = edit_window_ms
        self._clock = clock

    # -- reading -------------------------------------------------------------------

    async def get(self, principal: Principal, event_id: str) -> StoredMessage:
        well_formed = isinstance(event_id, str) and EVENT_ID.fullmatch(event_id) is not None
        stored = await self._messages.get_message(event_id) if well_formed else None
        if stored is None or not await self._visible(principal, stored.event):
            raise ProtocolError(ErrorCode.UNKNOWN_MESSAGE, "There is no such message (or it is not yours to see).")
        return stored

    async def _visible(self, principal: Principal, event: dict[str, Any]) -> bool:
        """The visibility rule, for one stored event (and, for an edit or deletion, its target)."""
        target = await self._target(event)
        channels = [e["channel_id"] for e in (event, target) if e is not None and "channel_id" in e]
        here = self._subscriptions.location_of(principal.user_id) or principal.user.location_room_id
        return may_see(await viewer_of(self._storage, principal, here, channels), event, target)

    async def _target(self, event: dict[str, Any]) -> dict[str, Any] | None:
        target_id = target_of(event)
        stored = await self._messages.get_message(target_id) if target_id else None
        return stored.event if stored is not None else None

    # -- editing ---------------------------------------------------------------------

    async def edit(self, principal: Principal, message_id: str, event_id: str, text: str) -> Receipt:
        stored = await self.get(principal, event_id)
        original = stored.event
        request = TransactionKey(principal.user_id, "edit_message", message_id)
        if original["sender"] != principal.user_id:
            return await self._refuse_unless_retry(request, ErrorCode.FORBIDDEN, "Only the author can edit a message.")
        if stored.redacted:
            return await self._refuse_unless_retry(request, ErrorCode.MESSAGE_DELETED, "That message was deleted.")
        if original["type"] not in EDITABLE:
            raise ProtocolError(ErrorCode.NOT_EDITABLE, "Only room messages, channel messages and pages can be edited.")
        if self._clock() - original["origin_server_ts"] > self._edit_window_ms:
            return await self._refuse_unless_retry(
                request, ErrorCode.EDIT_WINDOW_PASSED,
                f"Messages can be edited for {self._edit_window_ms // 60000} minutes after they are sent.")
        new_content = _recompose(original, text, self._max_text_length)
        scope = {key: original[key] for key in SCOPE_KEYS if key in original}
        edit = self._events.make("vm.edit", principal.user_id,
                                 {"relates_to": original["event_id"], "new_content": new_content}, **scope)
        audience = await self._audience(original)
        receipt, positions = await self._events.store(
            [edit], request, ops=[op_record_edit(original["event_id"], edit["event_id"], new_content.get("body"))])
        if positions:
            self._deliver(original, self._events.frame("message_edited", edit, positions[0], **_routing(original)),
                          audience)
        return receipt

    # -- deleting ---------------------------------------------------------------------

    async def delete(self, principal: Principal, message_id: str, event_id: str, reason: str | None) -> Receipt:
        stored = await self.get(principal, event_id)
        original = stored.event
        request = TransactionKey(principal.user_id, "delete_message", message_id)
        if original["type"] in ("vm.redaction", "vm.edit", "vm.receipt"):
            raise ProtocolError(ErrorCode.NOT_EDITABLE, "That event cannot be deleted; delete the message itself.")
        if stored.redacted:
            return await self._refuse_unless_retry(request, ErrorCode.MESSAGE_DELETED, "That message was deleted already.")
        if not await self._may_delete(principal, original):
            raise ProtocolError(ErrorCode.FORBIDDEN, "Only the author or a moderator can delete this message.")
        content: dict[str, Any] = {"redacts": original["event_id"]}
        if reason and sanitize_text(reason).strip():
            content["reason"] = " ".join(sanitize_text(reason).split())[:MAX_REASON]
        scope = {key: original[key] for key in SCOPE_KEYS if key in original}
        redaction = self._events.make("vm.redaction", principal.user_id, content, **scope)
        audience = await self._audience(original)
        receipt, positions = await self._events.store(
            [redaction], request, ops=[op_redact(original["event_id"], self._clock())])
        if positions:
            frame = self._events.frame("message_deleted", redaction, positions[0], **_routing(original))
            self._deliver(original, frame, audience)
        return receipt

    async def _may_delete(self, principal: Principal, event: dict[str, Any]) -> bool:
        if principal.has_role("admin") or event["sender"] == principal.user_id:
            return True
        if "channel_id" in event:
            member = await self._storage.get_membership(event["channel_id"], principal.user_id)
            return member is not None and member.role in ("owner", "moderator")
        if "room_id" in event:
            room = await self._storage.get_room(event["room_id"])
            return room is not None and room.created_by == principal.user_id
        return False

    async def _refuse_unless_retry(self, request: TransactionKey, code: ErrorCode, message: str) -> Receipt:
        earlier = await self._storage.get_receipt(request)
        if earlier is not None:
            return earlier
        raise ProtocolError(code, message)

    async def _audience(self, original: dict[str, Any]) -> ChannelAudience | None:
        """For a channel message, who may get the live frame of its edit or deletion. Read before
        the event is stored, so that the frame goes out right after its commit (in stream order):
        the members the rule lets see the original see the edit, which is newer than every floor."""
        return await channel_audience(self._storage, original, None) if "channel_id" in original else None

    def _deliver(self, original: dict[str, Any], frame: Any, audience: ChannelAudience | None) -> None:
        """Live, to everyone in the original's scope whom the visibility rule lets see the frame's event."""
        if "room_id" in original:
            self._broadcaster.to_room(original["room_id"], frame)
        elif "channel_id" in original and audience is not None:
            channel_id = original["channel_id"]
            excluded = audience.excluded(self._subscriptions.listeners(channel_id))
            self._broadcaster.to_channel(channel_id, frame,
                                         except_users=self._blocks.blockers_of(original["sender"]) | excluded)
        elif "recipients" in original:
            self._broadcaster.to_users([original["sender"], *original["recipients"]], frame)
        else:
            self._broadcaster.to_all(frame)

    # -- reports ------------------------------------------------------------------------

    async def report(self, principal: Principal, event_id: str, reason: str) -> int:
        stored = await self.get(principal, event_id)
        cleaned = " ".join(sanitize_text(reason).split())[:MAX_REASON]
        if not cleaned:
            raise ProtocolError(ErrorCode.EMPTY_TEXT, "Say why you report this message.")
        try:
            return await self._messages.add_report(stored.event["event_id"], principal.user_id, cleaned, self._clock())
        except Conflict:
            raise ProtocolError(ErrorCode.ALREADY_REPORTED, "You have reported this message already.") from None

    async def reports(self, principal: Principal, status: str | None, after: int, limit: int) -> list[ReportRecord]:
        return await self._messages.list_reports(status, await self._moderated(principal), after, limit)

    async def resolve(self, principal: Principal, report_id: int, resolution: str) -> ReportRecord:
        report = await self._messages.get_report(report_id)
        moderated = await self._moderated(principal)
        if report is None or (moderated is not None and report.channel_id not in moderated):
            raise ProtocolError(ErrorCode.UNKNOWN_REPORT, "There is no such report (or it is not yours to handle).")
        await self._messages.resolve_report(report_id, principal.user_id,
                                            " ".join(sanitize_text(resolution).split())[:MAX_REASON], self._clock())
        return await self._messages.get_report(report_id)  # type: ignore[return-value]

    async def _moderated(self, principal: Principal) -> list[str] | None:
        """None for admins (every report); else the channels the user owns or moderates."""
        if principal.has_role("admin"):
            return None
        memberships = await self._storage.memberships_of(principal.user_id)
        channels = [member.channel_id for member, _ in memberships if member.role in ("owner", "moderator")]
        if not channels:
            raise ProtocolError(ErrorCode.FORBIDDEN, "Only admins and channel moderators handle reports.")
        return channels


def _routing(event: dict[str, Any]) -> dict[str, str]:
    return {key: event[key] for key in ("room_id", "channel_id") if key in event}


def _recompose(original: dict[str, Any], text: str, max_length: int) -> dict[str, Any]:
    """The new content of an edited message, made as the original was."""
    old = original["content"]
    style = old.get("style", "say")
    if original["type"] == "vm.room.message":
        kind = old["kind"]
        return compose.room_message(kind, old["speaker"], text, max_length, style=style if kind == "ooc" else "say")
    if original["type"] == "vm.channel.message":
        return compose.channel_message(old["channel_name"], old["speaker"], text, max_length, style=style)
    return compose.page(old["speaker"], old["recipient_names"], text, max_length, style=style)
