"""``/api/communication/channels``: create or join, leave, list, look, read history (``history.py``)."""

from __future__ import annotations


from vibemuse.handlers.base import ApiHandler
from vibemuse.handlers.communication import idempotency_key
from vibemuse.handlers.history import HistoryHandler
from vibemuse.handlers.wire import channel_to_wire, member_to_wire, membership_to_wire
from vibemuse.protocol.errors import ErrorCode, ProtocolError

MAX_LIST = 200


class ChannelsHandler(ApiHandler):
    request_schemas = {"POST": "channel-create-request"}

    async def get(self) -> None:
        """Channels I may see, by name; ``q`` searches names and descriptions."""
        principal = await self.principal()
        limit = self.int_argument("limit", 50, 1, MAX_LIST)
        search = self.get_query_argument("q", None)
        if search is not None and len(search) > 100:
            raise ProtocolError(ErrorCode.INVALID_REQUEST, "'q' is at most 100 characters.")
        after = self.get_query_argument("after", None)
        found, next_cursor = await self.context.channels.listing(principal, search, after, limit,
                                                                 self.get_query_argument("server", None))
        self.send_json({"channels": [channel_to_wire(c) for c in found], "next": next_cursor})

    async def post(self) -> None:
        """Create the channel (you own it) or, if it exists, join it."""
        principal = await self.principal()
        body = self.json_body()
        channel, created, receipt = await self.context.channels.create_or_join(
            principal, idempotency_key(self), body["name"], description=body.get("description", ""),
            visibility=body.get("visibility", "public"), alias=body.get("alias"), title=body.get("title"),
            history_visibility=body.get("historyVisibility", "shared"))
        self.send_json({"channel": channel_to_wire(channel), "created": created,
                        "eventId": receipt.event_id, "streamPosition": receipt.stream_position},
                       status=201 if created else 200)


class ChannelHandler(ApiHandler):
    async def get(self, ref: str) -> None:
        principal = await self.principal()
        channels = self.context.channels
        view = await channels.view(principal, ref)
        online, now = channels.online(view.channel.channel_id), self.context.clock()
        body = {"channel": channel_to_wire(view.channel),
                "members": [member_to_wire(m, m.user_id in online, now) for m in view.members]}
        if view.membership is not None:
            body["membership"] = membership_to_wire(view.membership, view.channel)
        self.send_json(body)

    async def delete(self, ref: str) -> None:
        principal = await self.principal()
        receipt = await self.context.channels.leave(principal, idempotency_key(self), ref)
        self.send_json({"eventId": receipt.event_id, "streamPosition": receipt.stream_position})


class ChannelHistoryHandler(HistoryHandler):
    async def get(self, ref: str) -> None:
        principal = await self.principal()
        request = self.history_request()
        self.send_history(await self.context.history.channel(principal, ref, request))


class ServerLeaveHandler(ApiHandler):
    """``POST /api/admin/channels/{channelId}/leave``: every player of this server leaves a
    channel homed on another (admins only; federation.md 10.6)."""

    async def post(self, ref: str) -> None:
        receipt = await self.context.channels.leave_as_server(await self.principal(), ref)
        self.send_json({"channelId": ref, "eventId": receipt.event_id})
