"""``/api/who`` and ``/api/announcements``: WHO and @wall over HTTP."""

from __future__ import annotations

import re
import secrets

from vibemuse.handlers.base import ApiHandler
from vibemuse.protocol.errors import ErrorCode, ProtocolError

_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:~-]{1,64}")


class WhoHandler(ApiHandler):
    async def get(self) -> None:
        await self.principal()
        users, total = self.context.presence.who()
        self.send_json({"users": users, "total": total})


class AnnouncementsHandler(ApiHandler):
    request_schemas = {"POST": "announcement-request"}

    async def post(self) -> None:
        principal = await self.principal()
        body = self.json_body()
        receipt = await self.context.chat.wall(principal, idempotency_key(self), body["text"])
        self.send_json({"eventId": receipt.event_id, "streamPosition": receipt.stream_position}, status=201)


def idempotency_key(handler: ApiHandler) -> str:
    """The client's ``Idempotency-Key`` header (its messageId over HTTP), or a fresh one."""
    key = handler.request.headers.get("Idempotency-Key")
    if key is None:
        return "http-" + secrets.token_urlsafe(16)
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ProtocolError(ErrorCode.INVALID_REQUEST, "Idempotency-Key must be 1-64 of A-Z a-z 0-9 . _ : ~ -")
    return key
