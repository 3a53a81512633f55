"""Pages and receipts from other servers (spec/v1/protocol.md 15.5, federation.md).

Theory of operation. The federation receiver hands every accepted ``vm.page``
and ``vm.receipt`` to :meth:`RemotePages.receive` (through
``federation.inbox.PageInbox``). A repeat of an event already stored is a
no-op: the origin's outbox may send an event again after an outage.

A page: each recipient of this server is judged as a local page would judge
them: no such user, a haven or a block by the recipient is a signed
``vm.receipt`` of kind ``refused`` with a reason (a block says only "not
accepting"). If anyone takes it, the page is stored once, sent live to the
recipients who are connected (receipt ``delivered``) and kept for the others
(receipt ``held``; a ``delivered`` one follows when they connect, made by
``PageService.deliver_pending``). The receipts are stored with the page and
queued for the origin in that same transaction, so none is lost.

A receipt about a page of ours: stored, then sent to the page's sender as a
``page_receipt`` frame, or kept for them until they connect.
"""

from __future__ import annotations

from typing import Any

from vibemuse.clock import Clock
from vibemuse.protocol.ids import parse_user_id
from vibemuse.protocol.federation_units import PduRefusal
from vibemuse.realtime.blocks import BlockList
from vibemuse.realtime.broadcast import Broadcaster
from vibemuse.realtime.connections import ConnectionRegistry
from vibemuse.services.events import EventWriter
from vibemuse.services.pages import not_accepting
from vibemuse.storage import Storage
from vibemuse.storage.outbox_txns import op_enqueue

PAGE = "vm.page"
RECEIPT = "vm.receipt"


def receipt_content(page_id: str, recipient: str, kind: str, reason: str | None = None,
                    message: str | None = None) -> dict[str, Any]:
    content = {"kind": kind, "relates_to": page_id, "recipient": recipient}
    if reason is not None:
        content["reason"] = reason
    if message:
        content["message"] = message
    return content


def server_of(user_id: str) -> str:
    return parse_user_id(user_id).server_name


class RemotePages:
    def __init__(self, storage: Storage, *, registry: ConnectionRegistry, broadcaster: Broadcaster,
                 events: EventWriter, blocks: BlockList, server_name: str, clock: Clock):
        self._storage = storage
        self._registry = registry
        self._broadcaster = broadcaster
        self._events = events
        self._blocks = blocks
        self._server_name = server_name
        self._clock = clock

    async def receive(self, event: dict[str, Any]) -> PduRefusal | None:
        if await self._storage.events_by_id([event["event_id"]]):
            return None  # sent again: it was handled the first time
        if event["type"] == PAGE:
            await self._receive_page(event)
            return None
        return await self._receive_receipt(event)

    # -- a page from another server ----------------------------------------

    async def _receive_page(self, page: dict[str, Any]) -> None:
        ours = [user_id for user_id in page.get("recipients", []) if server_of(user_id) == self._server_name]
        taken, receipts = [], []
        for user_id in dict.fromkeys(ours):
            refusal = await self._refusal(page["sender"], user_id)
            if refusal is None:
                taken.append(user_id)
                kind = "delivered" if self._registry.is_online(user_id) else "held"
                receipts.append(self._receipt(page, user_id, receipt_content(page["event_id"], user_id, kind)))
            else:
                receipts.append(self._receipt(page, user_id, receipt_content(page["event_id"], user_id, "refused",
                                                                             *refusal)))
        events = ([page] if taken else []) + receipts
        if not events:
            return
        offline = [user_id for user_id in taken if not self._registry.is_online(user_id)]
        now = self._clock()
        _, positions = await self._events.store(
            events, None, pending=[(0, user_id) for user_id in offline],
            ops=[op_enqueue(receipt, [page["origin"]], now) for receipt in receipts])
        online = [user_id for user_id in taken if user_id not in offline]
        if taken and positions and online:
            self._broadcaster.to_users(online, self._events.frame("message", page, positions[0]))

    async def _refusal(self, sender: str, user_id: str) -> tuple[str, str] | None:
        """(reason, message) if ``user_id`` does not take pages from ``sender``, else None."""
        user = await self._storage.get_user(user_id)
        if user is None:
            return "unknown_user", f"There is no one named {user_id!r}."
        if self._blocks.blocks(user_id, sender):
            return "not_accepting_pages", not_accepting(user.username, None)
        settings = await self._storage.get_page_settings(user_id)
        if settings.haven:
            return "not_accepting_pages", not_accepting(user.username, settings.haven_message)
        return None

    def _receipt(self, page: dict[str, Any], recipient: str, content: dict[str, Any]) -> dict[str, Any]:
        return self._events.make(RECEIPT, recipient, content, recipients=[page["sender"]])

    # -- a receipt about a page of ours ------------------------------------

    async def _receive_receipt(self, receipt: dict[str, Any]) -> PduRefusal | None:
        content = receipt.get("content", {})
        page = (await self._storage.events_by_id([content.get("relates_to", "")])).get(content.get("relates_to", ""))
        if (page is None or page["type"] != PAGE or page["sender"] not in receipt.get("recipients", [])
                or receipt["sender"] not in page.get("recipients", []) or content.get("recipient") != receipt["sender"]):
            return PduRefusal("bad_event", "The receipt is not about a page of ours to its sender.")
        sender = page["sender"]
        online = self._registry.is_online(sender)
        _, positions = await self._events.store([receipt], None, pending=[] if online else [(0, sender)])
        if online and positions:
            self._broadcaster.to_user(sender, self._events.frame("page_receipt", receipt, positions[0]))
        return None
