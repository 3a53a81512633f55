"""The inbox of the federation receiver: accepted pages and receipts go to the page
service's remote side (``services.remote_pages``), channel events to the channels' remote side
(``services.remote_channels``), each kind in the order it came."""

from __future__ import annotations

from typing import Any

from vibemuse.federation.receiver import FederationInbox
from vibemuse.protocol.federation_units import PduRefusal
from vibemuse.services.remote_channels import CHANNEL_TYPES, RemoteChannels
from vibemuse.services.remote_pages import RemotePages


class PageInbox(FederationInbox):
    def __init__(self, remote_pages: RemotePages, remote_channels: RemoteChannels | None = None):
        self._remote_pages = remote_pages
        self._remote_channels = remote_channels

    async def accept_all(self, events: list[dict[str, Any]]) -> list[PduRefusal | None]:
        results: list[PduRefusal | None] = [None] * len(events)
        channel = [index for index, event in enumerate(events) if event["type"] in CHANNEL_TYPES]
        pages = [index for index in range(len(events)) if index not in set(channel)]
        if pages:
            for index, result in zip(pages, await self._remote_pages.receive_all([events[i] for i in pages])):
                results[index] = result
        if channel:
            if self._remote_channels is None:
                refusal = PduRefusal("unsupported_event_type", "this server takes no channel events")
                for index in channel:
                    results[index] = refusal
            else:
                received = await self._remote_channels.receive_all([events[i] for i in channel])
                for index, result in zip(channel, received):
                    results[index] = result
        return results

    async def accept(self, event: dict[str, Any]) -> PduRefusal | None:
        return (await self.accept_all([event]))[0]
