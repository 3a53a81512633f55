"""The start of a socket's session, between ``welcome`` and live delivery.

In order: tune in to the user's channels, send the room's roster, replay what
a resuming client missed (``since``), and hand over pages and receipts that
waited while the user was offline. The socket holds live deliveries meanwhile
(see ``ClientSocketHandler._go_live``, which then announces the user's
arrival); the positions returned here are those already sent, so nothing is
sent twice at the seam. Storage is read once for the start (``SyncService.start``);
the roster and the replay come from reads shared by every socket starting
at the same time (``RoomViews``, ``Tails``), and so do replayed frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vibemuse.handlers.wire import user_to_wire
from vibemuse.storage.sync_txns import SessionStart

if TYPE_CHECKING:
    from vibemuse.handlers.websocket import ClientSocketHandler

FRAME_OF_EVENT = {
    "vm.room.message": "message",
    "vm.page": "message",
    "vm.receipt": "page_receipt",
    "vm.system": "system_message",
    "vm.channel.message": "channel_message",
    "vm.channel.member": "channel_notice",
    "vm.channel.create": "channel_notice",
    "vm.channel.settings": "channel_notice",
    "vm.edit": "message_edited",
    "vm.redaction": "message_deleted",
}


async def start_session(socket: "ClientSocketHandler", location: str, since: int | None) -> set[int]:
    context, user_id = socket.context, socket.user_id
    start = await context.sync.start(user_id)
    context.channels.tune_in_user(user_id, start.memberships)
    socket.send_session_frame(await context.chat.roster_frame(user_id, location))
    sent: set[int] = set()
    if since is not None:
        sent = await _replay(socket, location, since, start)
    if start.has_pending:
        await context.pages.deliver_pending(user_id)  # held, then deduplicated against ``sent``
    return sent


async def _replay(socket: "ClientSocketHandler", location: str, since: int, start: SessionStart) -> set[int]:
    context = socket.context
    channels_now = {member.channel_id for member, _ in start.memberships}
    replay = await context.sync.replay(socket.principal.user, location, since, channels_now)
    broadcaster = context.broadcaster
    if replay.gap is not None:
        data = {"since": since, "reason": replay.gap, "latestPosition": replay.upto}
        socket.send_session_frame(broadcaster.frame("resume_gap", data, to_user=socket.user_id))
        return set()
    users: dict[str, Any] = {}
    frames = context.sync.tails.frames  # shared: every socket replayed an event gets the same frame
    for event in replay.events:
        position = event["unsigned"]["stream_position"]
        frame = frames.get(position)
        if frame is None:
            frame = broadcaster.encode(await _event_frame(socket, event, users))
            frames.put(position, frame)
        socket.send_prepared(frame)
    data = {"since": since, "upto": replay.upto, "count": len(replay.events)}
    socket.send_session_frame(broadcaster.frame("resumed", data, to_user=socket.user_id))
    socket.replayed_through(replay.upto)
    return {event["unsigned"]["stream_position"] for event in replay.events}


async def _event_frame(socket: "ClientSocketHandler", event: dict[str, Any], users: dict[str, Any]):
    """The frame a live client would have got for this event."""
    if event["type"] == "vm.room.member":
        membership = event["content"]["membership"]
        sender = event["sender"]
        if sender not in users:
            record = await socket.context.storage.get_user(sender)
            users[sender] = user_to_wire(record) if record else None
        frame_type = "user_joined" if membership == "join" else "user_left"
        extra = {"user": users[sender]} if users[sender] else {}
        return socket.context.broadcaster.frame(frame_type, {"event": event, **extra}, from_user=sender,
                                                room_id=event["room_id"])
    routing = {key: event[key] for key in ("room_id", "channel_id") if key in event}
    return socket.context.broadcaster.frame(FRAME_OF_EVENT.get(event["type"], "message"), {"event": event},
                                            from_user=event["sender"], **routing)
