"""``GET /api/communication/pages/{userId}``: my conversation with one user."""

from __future__ import annotations

from vibemuse.handlers.history import HistoryHandler


class PageHistoryHandler(HistoryHandler):
    async def get(self, other: str) -> None:
        principal = await self.principal()
        request = self.history_request()
        self.send_history(await self.context.history.conversation(principal, other, request))
