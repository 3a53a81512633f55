"""``/api/messages/{eventId}`` (get, edit, delete, report) and ``/api/reports`` (moderation)."""

from __future__ import annotations

from vibemuse.handlers.base import ApiHandler
from vibemuse.handlers.communication import idempotency_key
from vibemuse.handlers.wire import message_to_wire, report_to_wire
from vibemuse.protocol.errors import ErrorCode, ProtocolError

STATUSES = ("open", "resolved", "all")


class MessageHandler(ApiHandler):
    request_schemas = {"PUT": "message-edit-request"}

    async def get(self, event_id: str) -> None:
        principal = await self.principal()
        self.send_json(message_to_wire(await self.context.messages.get(principal, event_id)))

    async def put(self, event_id: str) -> None:
        principal = await self.principal()
        body = self.json_body()
        receipt = await self.context.messages.edit(principal, idempotency_key(self), event_id, body["text"])
        self.send_json({"eventId": receipt.event_id, "streamPosition": receipt.stream_position})

    async def delete(self, event_id: str) -> None:
        principal = await self.principal()
        reason = self.get_query_argument("reason", None)
        receipt = await self.context.messages.delete(principal, idempotency_key(self), event_id, reason)
        self.send_json({"eventId": receipt.event_id, "streamPosition": receipt.stream_position})


class MessageReportHandler(ApiHandler):
    request_schemas = {"POST": "report-request"}

    async def post(self, event_id: str) -> None:
        principal = await self.principal()
        body = self.json_body()
        report_id = await self.context.messages.report(principal, event_id, body["reason"])
        self.send_json({"id": report_id}, status=201)


class ReportsHandler(ApiHandler):
    async def get(self) -> None:
        principal = await self.principal()
        status = self.get_query_argument("status", "open")
        if status not in STATUSES:
            raise ProtocolError(ErrorCode.INVALID_REQUEST, "'status' is open, resolved or all.")
        limit = self.int_argument("limit", 50, 1, 200)
        after = self.int_argument("after", 0, 0, 2**62)
        found = await self.context.messages.reports(principal, None if status == "all" else status, after, limit + 1)
        next_cursor = str(found[limit - 1].report_id) if len(found) > limit else None
        self.send_json({"reports": [report_to_wire(report) for report in found[:limit]], "next": next_cursor})


class ReportResolveHandler(ApiHandler):
    request_schemas = {"POST": "report-resolve-request"}

    async def post(self, report_id: str) -> None:
        principal = await self.principal()
        body = self.json_body()
        if len(report_id) > 15:  # past any id this server hands out (and past what databases hold)
            raise ProtocolError(ErrorCode.UNKNOWN_REPORT, "There is no such report (or it is not yours to handle).")
        report = await self.context.messages.resolve(principal, int(report_id), body["resolution"])
        self.send_json(report_to_wire(report))
