"""``GET /api/communication/pages/{userId}``: my conversation with one user."""

from __future__ import annotations


from vibemuse.handlers.base import ApiHandler

MAX_PAGE_SIZE = 100


class PageHistoryHandler(ApiHandler):
    async def get(self, other: str) -> None:
        principal = await self.principal()
        limit = self.int_argument("limit", 50, 1, MAX_PAGE_SIZE)
        before = self.int_argument("before", 0, 1, 2**62) or None
        events = await self.context.pages.conversation(principal, other, before, limit)
        next_cursor = str(events[0]["unsigned"]["stream_position"]) if len(events) == limit else None
        self.send_json({"events": events, "next": next_cursor})
