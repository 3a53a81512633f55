"""The inbox of the federation receiver: accepted pages and receipts go to the page
service's remote side (``services.remote_pages``), channel events to the channels' sides
(``services.shared_channels``): relays to the copies here (``services.remote_channels``),
remote members' events to the home (``services.channel_home``); each kind in the order it came."""

from __future__ import annotations

from typing import Any

from vibemuse.federation.receiver import FederationInbox
from vibemuse.protocol.channel_chain import STAMP_KEY
from vibemuse.protocol.federation_units import PduRefusal
from vibemuse.services.channel_home import ChannelHome
from vibemuse.services.remote_channels import RemoteChannels
from vibemuse.services.remote_pages import RemotePages
from vibemuse.services.shared_channels import CHANNEL_TYPES


class PageInbox(FederationInbox):
    def __init__(self, remote_pages: RemotePages, remote_channels: RemoteChannels | None = None,
                 channel_home: ChannelHome | None = None):
        self._remote_pages = remote_pages
        self._remote_channels = remote_channels
        self._channel_home = channel_home

    async def accept_all(self, events: list[dict[str, Any]]) -> list[PduRefusal | None]:
        results: list[PduRefusal | None] = [None] * len(events)
        channel = [index for index, event in enumerate(events) if event["type"] in CHANNEL_TYPES]
        pages = [index for index in range(len(events)) if index not in set(channel)]
        if pages:
            for index, result in zip(pages, await self._remote_pages.receive_all([events[i] for i in pages])):
                results[index] = result
        if channel:
            if self._remote_channels is None or self._channel_home is None:
                refusal = PduRefusal("unsupported_event_type", "this server takes no channel events")
                for index in channel:
                    results[index] = refusal
            else:
                received = await self._channel_events(self._remote_channels, self._channel_home,
                                                      [events[i] for i in channel])
                for index, result in zip(channel, received):
                    results[index] = result
        return results

    async def accept(self, event: dict[str, Any]) -> PduRefusal | None:
        return (await self.accept_all([event]))[0]

    @staticmethod
    async def _channel_events(copies: RemoteChannels, home: ChannelHome, events: list[dict[str, Any]]
                              ) -> list[PduRefusal | None]:
        """Channel events of one received transaction, in order: relays (stamped by their home) to
        the copies here, consecutive relays of one channel together; remote members' events (not
        stamped) to the home."""
        results: list[PduRefusal | None] = []
        index = 0
        while index < len(events):
            event = events[index]
            stamp = (event.get("unsigned") or {}).get(STAMP_KEY)
            if stamp is None:
                results.append(await home.receive_event(event))
                index += 1
                continue
            run = [event]
            while (index + len(run) < len(events) and events[index + len(run)].get("channel_id") == event["channel_id"]
                   and (events[index + len(run)].get("unsigned") or {}).get(STAMP_KEY) is not None):
                run.append(events[index + len(run)])
            results.extend(await copies.receive_relays(
                event["channel_id"], [(item, item["unsigned"][STAMP_KEY]) for item in run]))
            index += len(run)
        return results
