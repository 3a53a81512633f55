"""Histories as async iterators (protocol.md section 19).

``client.history.room(room_id)`` walks a room's history from the newest
event back (``before`` cursors), yielding events newest first;
``client.history.room(room_id, after=0)`` walks it forward from a stream
position (``after`` cursors), oldest first. The same for ``channel`` and
``pages`` (a page conversation). Filters (``kind``, ``sender``, ``since``,
``until``, ``q``) are sent again with every cursor, as 19.2 asks.
``pages()`` gives the answers themselves, one ``HistoryPage`` each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator

from vibemuse_client.frames import Event
from vibemuse_client.http import HttpApi, path_segment


@dataclass(frozen=True)
class HistoryPage:
    """One answer (``http/event-page.json``): events oldest first, and the cursor onwards."""

    events: tuple[Event, ...]
    next: str | None


class HistoryReader:
    def __init__(self, http: HttpApi, path: str, *, limit: int | None = None, before: int | str | None = None,
                 after: int | str | None = None, kind: str | list[str] | None = None, sender: str | None = None,
                 since: int | str | None = None, until: int | str | None = None, q: str | None = None):
        if before is not None and after is not None:
            raise ValueError("give before or after, not both (protocol.md 19.2)")
        self._http, self._path = http, path
        self.forward = after is not None
        self._cursor = after if self.forward else before
        self._filters = {"limit": limit, "kind": ",".join(kind) if isinstance(kind, list) else kind,
                         "sender": sender, "since": since, "until": until, "q": q}

    async def pages(self) -> AsyncIterator[HistoryPage]:
        cursor = self._cursor
        direction = "after" if self.forward else "before"
        while True:
            answer = await self._http.request("GET", self._path, query={**self._filters, direction: cursor})
            page = HistoryPage(tuple(Event.from_json(event) for event in answer["events"]), answer["next"])
            yield page
            if page.next is None or not page.events:
                return
            cursor = page.next

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        async for page in self.pages():
            for event in (page.events if self.forward else reversed(page.events)):
                yield event

    async def collect(self, at_most: int | None = None) -> list[Event]:
        events: list[Event] = []
        async for event in self:
            events.append(event)
            if at_most is not None and len(events) >= at_most:
                break
        return events


class History:
    def __init__(self, http: HttpApi):
        self._http = http

    def room(self, room_id: str, **options: Any) -> HistoryReader:
        return HistoryReader(self._http, f"/api/communication/history/{path_segment(room_id)}", **options)

    def channel(self, channel: str, **options: Any) -> HistoryReader:
        return HistoryReader(self._http, f"/api/communication/channels/{path_segment(channel)}/history", **options)

    def pages(self, user: str, **options: Any) -> HistoryReader:
        """The page conversation with ``user`` (a user id or a local username, protocol.md 15.9)."""
        return HistoryReader(self._http, f"/api/communication/pages/{path_segment(user)}", **options)
