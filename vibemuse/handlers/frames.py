"""What each client frame does on an authenticated socket.

One small async function per frame type of spec/v1, each: read the frame's
data, call a service, answer the requesting socket (``ack``, ``pong``,
``who``). ``FRAME_HANDLERS`` maps every client frame type to its function; a
test checks that its keys are exactly the client frame files of spec/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Awaitable, Callable

from vibemuse.handlers.wire import member_to_wire, membership_to_wire, message_to_wire
from vibemuse.protocol import commands
from vibemuse.protocol.errors import CloseCode, ErrorCode, ProtocolError
from vibemuse.protocol.frames import ClientFrame
from vibemuse.protocol.markup import sanitize_text
from vibemuse.protocol.rendering import join_names
from vibemuse.services.chat import Speech
from vibemuse.services.remote_channels import Answering
from vibemuse.storage import Receipt

if TYPE_CHECKING:
    from vibemuse.handlers.websocket import ClientSocketHandler

FrameHandler = Callable[["ClientSocketHandler", ClientFrame], Awaitable[None]]


def ack(socket: "ClientSocketHandler", frame: ClientFrame, receipt: Receipt | Answering, **extra: object) -> None:
    if isinstance(receipt, Answering):  # the home's answer comes later: the socket goes on meanwhile
        socket.answer_later(frame, receipt.answer, lambda done: ack(socket, frame, done, **extra))
        return
    data: dict = {"inReplyTo": frame.message_id, "duplicate": receipt.duplicate, **extra}
    if receipt.event_id is not None:
        data["eventId"] = receipt.event_id
    if receipt.stream_position is not None:  # none yet for an event a channel's home orders (16.3)
        data["streamPosition"] = receipt.stream_position
    socket.send_frame(socket.context.broadcaster.frame("ack", data, to_user=socket.user_id))


async def on_auth(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    raise ProtocolError(ErrorCode.ALREADY_AUTHENTICATED, "This socket is authenticated already.")


async def on_ping(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    socket.send_frame(socket.context.broadcaster.frame("pong", {"inReplyTo": frame.message_id}, to_user=socket.user_id))


async def _speak(socket: "ClientSocketHandler", frame: ClientFrame, kind: str, style: str = "say") -> None:
    data = frame.data
    speech = Speech(frame.message_id, kind, data["text"], data.get("roomId"), style)
    ack(socket, frame, await socket.context.chat.speak(socket.principal, speech))


async def on_say(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    await _speak(socket, frame, "say")


async def on_pose(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    await _speak(socket, frame, "semipose" if frame.data.get("semipose") else "pose")


async def on_ooc(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    await _speak(socket, frame, "ooc", frame.data.get("style", "say"))


async def on_emit(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    await _speak(socket, frame, "emit")


async def on_wall(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    ack(socket, frame, await socket.context.chat.wall(socket.principal, frame.message_id, frame.data["text"]))


async def on_join_room(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    ack(socket, frame, await socket.context.chat.join(socket.principal, frame.message_id, frame.data["roomId"]))


async def on_leave_room(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    receipt = await socket.context.chat.leave(socket.principal, frame.message_id, frame.data.get("roomId"))
    ack(socket, frame, receipt)


async def on_typing(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    presence = socket.context.presence
    here = presence.subscriptions.location_of(socket.user_id)
    room_id = frame.data.get("roomId", here)
    if room_id != here:
        raise ProtocolError(ErrorCode.NOT_IN_ROOM, "You are not in that room.", details={"location": here})
    presence.set_typing(socket.user_id, room_id, frame.data["typing"])


async def on_who(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    users, total = socket.context.presence.who()
    data = {"inReplyTo": frame.message_id, "users": users, "total": total}
    socket.send_frame(socket.context.broadcaster.frame("who", data, to_user=socket.user_id))


async def on_set_presence(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    socket.context.presence.set_status(socket.user_id, frame.data["status"], frame.data.get("message"))
    ack(socket, frame, Receipt(None, None))


async def on_page(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    data = frame.data
    result = await socket.context.pages.page(
        socket.principal, frame.message_id, data.get("to"), data["text"], data.get("style", "say")
    )
    remote = {"remote": result.remote} if result.remote else {}
    ack(socket, frame, result.receipt, offline=result.offline, **remote)


async def on_set_haven(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    await socket.context.pages.set_haven(socket.principal, frame.data["haven"], frame.data.get("message"))
    ack(socket, frame, Receipt(None, None))


async def on_block(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    await socket.context.pages.set_block(socket.principal, frame.data["user"], frame.data["blocked"])
    ack(socket, frame, Receipt(None, None))


async def on_join_channel(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    data = frame.data
    receipt = await socket.context.channels.join(
        socket.principal, frame.message_id, data["channelId"], data.get("alias"), data.get("title"))
    ack(socket, frame, receipt)


async def on_leave_channel(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    data = frame.data
    receipt = await socket.context.channels.leave(
        socket.principal, frame.message_id, data.get("channelId"), data.get("alias"))
    ack(socket, frame, receipt)


async def on_channel(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    data = frame.data
    receipt = await socket.context.channels.speak(
        socket.principal, frame.message_id, data["text"], ref=data.get("channelId"), alias=data.get("alias"),
        style=data.get("style", "say"))
    ack(socket, frame, receipt)


async def on_channel_moderate(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    data = frame.data
    receipt = await socket.context.channels.moderate(
        socket.principal, frame.message_id, data["channelId"], data["action"], data.get("user"),
        server=data.get("server"), reason=data.get("reason"), duration_seconds=data.get("durationSeconds"))
    ack(socket, frame, receipt)


async def on_channel_update(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    changes = {key: frame.data[key] for key in ("topic", "description", "visibility", "historyVisibility",
                                               "retentionDays") if key in frame.data}
    receipt = await socket.context.channels.update(socket.principal, frame.message_id, frame.data["channelId"],
                                                   changes)
    ack(socket, frame, receipt)


async def on_channel_who(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    channels = socket.context.channels
    view = await channels.view(socket.principal, frame.data["channelId"])
    online, now = channels.online(view.channel.channel_id), socket.context.clock()
    members = [member_to_wire(m, m.user_id in online, now) for m in view.members if m.user_id in online]
    data = {"inReplyTo": frame.message_id, "channelId": view.channel.channel_id, "members": members}
    socket.send_frame(socket.context.broadcaster.frame("channel_who", data, to_user=socket.user_id))


async def on_channel_list(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    memberships = await socket.context.channels.memberships(socket.principal)
    data = {"inReplyTo": frame.message_id, "channels": [membership_to_wire(m, c) for m, c in memberships]}
    socket.send_frame(socket.context.broadcaster.frame("channel_list", data, to_user=socket.user_id))


async def on_get_message(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    stored = await socket.context.messages.get(socket.principal, frame.data["eventId"])
    data = {"inReplyTo": frame.message_id, **message_to_wire(stored)}
    socket.send_frame(socket.context.broadcaster.frame("message_detail", data, to_user=socket.user_id))


async def on_edit_message(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    data = frame.data
    ack(socket, frame, await socket.context.messages.edit(socket.principal, frame.message_id, data["eventId"],
                                                          data["text"]))


async def on_delete_message(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    data = frame.data
    ack(socket, frame, await socket.context.messages.delete(socket.principal, frame.message_id, data["eventId"],
                                                            data.get("reason")))


async def on_report_message(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    report_id = await socket.context.messages.report(socket.principal, frame.data["eventId"], frame.data["reason"])
    ack(socket, frame, Receipt(None, None), reportId=report_id)


def notice(socket: "ClientSocketHandler", frame: ClientFrame, text: str) -> None:
    """A line for the player alone, answering a command (e.g. a bare ``page``)."""
    data = {"inReplyTo": frame.message_id, "text": text}
    socket.send_frame(socket.context.broadcaster.frame("notice", data, to_user=socket.user_id))


async def _last_paged(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    names = await socket.context.pages.last_paged(socket.principal)
    notice(socket, frame, f"You last paged {join_names(names)}." if names else "You have not paged anyone yet.")


async def on_command(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    """A raw MUSH command line: parsed, then handled as the frame it stands for."""
    command = commands.parse_command(sanitize_text(frame.data["line"]))
    if isinstance(command, commands.Page) and command.text is None:
        await _last_paged(socket, frame)
        return
    room = {"roomId": frame.data["roomId"]} if "roomId" in frame.data else {}
    translated = _translate(command, room)
    if translated is None:
        raise ProtocolError(ErrorCode.UNKNOWN_COMMAND, 'Huh?  (Type "help" for help.)')
    frame_type, data = translated
    await dispatch(socket, ClientFrame(frame_type, frame.message_id, data, frame.from_user))


def _translate(command: commands.Command, room: dict) -> tuple[str, dict] | None:
    match command:
        case commands.Say(text=text):
            return "say", {"text": text, **room}
        case commands.Pose(text=text, semipose=semipose):
            return "pose", {"text": text, "semipose": semipose, **room}
        case commands.Ooc(text=text, style=style):
            return "ooc", {"text": text, "style": style, **room}
        case commands.Emit(text=text):
            return "emit", {"text": text, **room}
        case commands.Wall(text=text):
            return "wall", {"text": text}
        case commands.Who():
            return "who", {}
        case commands.Home():
            return "leave_room", {}
        case commands.Page(recipients=recipients, text=text, style=style):
            return "page", {"text": text, "style": style, **({"to": list(recipients)} if recipients else {})}
        case commands.ChannelSpeak(text=text, style=style, alias=alias, channel=channel):
            target = {"alias": alias} if alias else {"channelId": channel}
            return "channel", {"text": text, "style": style, **target}
        case commands.ChannelJoin(channel=channel, alias=alias):
            return "join_channel", {"channelId": channel, **({"alias": alias} if alias else {})}
        case commands.ChannelLeave(channel=channel, alias=alias):
            return "leave_channel", {"alias": alias} if alias else {"channelId": channel}
        case commands.ChannelList():
            return "channel_list", {}
        case commands.ChannelWho(channel=channel):
            return "channel_who", {"channelId": channel}
    return None


FRAME_HANDLERS: dict[str, FrameHandler] = {
    "auth": on_auth,
    "ping": on_ping,
    "say": on_say,
    "pose": on_pose,
    "ooc": on_ooc,
    "emit": on_emit,
    "wall": on_wall,
    "join_room": on_join_room,
    "leave_room": on_leave_room,
    "typing": on_typing,
    "who": on_who,
    "set_presence": on_set_presence,
    "command": on_command,
    "page": on_page,
    "set_haven": on_set_haven,
    "block": on_block,
    "join_channel": on_join_channel,
    "leave_channel": on_leave_channel,
    "channel": on_channel,
    "channel_moderate": on_channel_moderate,
    "channel_update": on_channel_update,
    "channel_who": on_channel_who,
    "channel_list": on_channel_list,
    "get_message": on_get_message,
    "edit_message": on_edit_message,
    "delete_message": on_delete_message,
    "report_message": on_report_message,
}

# The rate-limit class of each frame type (``config.rate_limits``); frames
# that carry a message are also checked against the spam rules.
ACTION_OF: dict[str, str] = {
    "ping": "queries", "who": "queries", "channel_who": "queries", "channel_list": "queries",
    "get_message": "queries",
    "say": "speech", "pose": "speech", "ooc": "speech", "emit": "speech", "wall": "speech",
    "channel": "channel", "page": "page", "typing": "typing",
    "join_room": "moves", "leave_room": "moves", "join_channel": "moves", "leave_channel": "moves",
    "edit_message": "actions", "delete_message": "actions", "report_message": "actions",
    "channel_moderate": "actions", "channel_update": "actions", "set_haven": "actions", "block": "actions",
    "set_presence": "actions",
}
SPOKEN = frozenset({"say", "pose", "ooc", "emit", "wall", "channel", "page", "edit_message"})


async def dispatch(socket: "ClientSocketHandler", frame: ClientFrame) -> None:
    """Run one frame of an authenticated socket: limits and spam rules first, then its handler."""
    guard = socket.context.guard
    # The spam rules see every attempt, even one the rate limit then refuses:
    # a flooder held at the limit is still a flooder, and a muted one still
    # works towards the disconnect.
    spoken = frame.type in SPOKEN
    verdict = guard.speech(socket.user_id, frame.data["text"], f"{frame.type}:{frame.message_id}") if spoken else None
    if verdict is not None and verdict.disconnect:
        socket.close(CloseCode.SPAM, "spam")
        return
    action = ACTION_OF.get(frame.type)
    try:
        if action is not None:
            guard.limit(action, socket.user_id)
        await FRAME_HANDLERS[frame.type](socket, frame)
    finally:  # a strike's warning is owed even when the attempt itself is refused
        if verdict is not None and verdict.warning:
            notice(socket, frame, verdict.warning)
