"""The inbox of the federation receiver: accepted pages and receipts go to the
page service's remote side (``vibemuse.services.remote_pages``)."""

from __future__ import annotations

from typing import Any

from vibemuse.federation.receiver import FederationInbox
from vibemuse.protocol.federation_units import PduRefusal
from vibemuse.services.remote_pages import RemotePages


class PageInbox(FederationInbox):
    def __init__(self, remote_pages: RemotePages):
        self._remote_pages = remote_pages

    async def accept_all(self, events: list[dict[str, Any]]) -> list[PduRefusal | None]:
        return await self._remote_pages.receive_all(events)

    async def accept(self, event: dict[str, Any]) -> PduRefusal | None:
        return await self._remote_pages.receive(event)
