"""Pages and receipts from other servers (spec/v1/protocol.md 15.5, federation.md).

Theory of operation. The federation receiver hands the ``vm.page`` and
``vm.receipt`` events of one received transaction that passed its checks to
:meth:`RemotePages.receive_all` (through ``federation.inbox.PageInbox``).
They are judged one by one, then stored together in one database
transaction, with the pending deliveries and the receipts they cause, and
only then announced. A repeat of an event already stored is a no-op: the
origin's outbox may send an event again after an outage.

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

from typing import Any, Callable, Sequence

from vibemuse.clock import Clock
from vibemuse.protocol.ids import parse_user_id
from vibemuse.protocol.federation_units import PduRefusal
from vibemuse.realtime.blocks import BlockList
from vibemuse.realtime.broadcast import Broadcaster
from vibemuse.realtime.connections import ConnectionRegistry
from vibemuse.services.events import EventWriter
from vibemuse.services.pages import not_accepting
from vibemuse.storage import Conflict, Storage
from vibemuse.storage.outbox_txns import op_enqueue_all

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
        # whether a user has a socket (on any process of this server: app.py sets it so with several)
        self.online: Callable[[str], bool] = registry.is_online
        self._broadcaster = broadcaster
        self._events = events
        self._blocks = blocks
        self._server_name = server_name
        self._clock = clock

    async def receive(self, event: dict[str, Any]) -> PduRefusal | None:
        return (await self.receive_all([event]))[0]

    async def receive_all(self, events: list[dict[str, Any]]) -> list[PduRefusal | None]:
        """Judge, store and announce the accepted events of one transaction (distinct
        event ids), all stored in one database transaction; a refusal per event."""
        try:
            return await self._receive_all(events)
        except Conflict:
            # another process stored some of them meanwhile: judge again, skipping those
            return await self._receive_all(events)

    async def _receive_all(self, events: list[dict[str, Any]]) -> list[PduRefusal | None]:
        known = await self._storage.events_by_id([event["event_id"] for event in events])
        pages = await self._storage.events_by_id(
            [event.get("content", {}).get("relates_to", "") for event in events if event["type"] == RECEIPT])
        batch = _Batch(self._clock())
        judge = _Judge(self)
        refusals: list[PduRefusal | None] = []
        for event in events:
            refusal = None
            if event["event_id"] in known:
                pass  # sent again: it was handled the first time
            elif event["type"] == PAGE:
                await self._receive_page(event, judge, batch)
            else:
                refusal = self._receive_receipt(event, pages.get(event.get("content", {}).get("relates_to", "")),
                                                batch)
            refusals.append(refusal)
        if batch.events:
            _, positions = await self._events.store(batch.events, None, pending=batch.pending, ops=batch.ops())
            for index, users, frame_type in batch.live:
                self._broadcaster.to_users(users, self._events.frame(frame_type, batch.events[index],
                                                                     positions[index]))
        return refusals

    # -- a page from another server ----------------------------------------

    async def _receive_page(self, page: dict[str, Any], judge: "_Judge", batch: "_Batch") -> None:
        ours = [user_id for user_id in page.get("recipients", []) if server_of(user_id) == self._server_name]
        online, offline, receipts = [], [], []
        for user_id in dict.fromkeys(ours):
            refusal = await judge.refusal(page["sender"], user_id)
            if refusal is not None:
                content = receipt_content(page["event_id"], user_id, "refused", *refusal)
            elif self.online(user_id):
                online.append(user_id)
                content = receipt_content(page["event_id"], user_id, "delivered")
            else:
                offline.append(user_id)
                content = receipt_content(page["event_id"], user_id, "held")
            receipts.append(self._receipt(page, user_id, content))
        if online or offline:
            batch.add(page, offline=offline, online=online, frame_type="message")
        for receipt in receipts:
            batch.add(receipt, queue_for=page["origin"])

    def _receipt(self, page: dict[str, Any], recipient: str, content: dict[str, Any]) -> dict[str, Any]:
        return self._events.make(RECEIPT, recipient, content, recipients=[page["sender"]])

    # -- a receipt about a page of ours ------------------------------------

    def _receive_receipt(self, receipt: dict[str, Any], page: dict[str, Any] | None,
                         batch: "_Batch") -> PduRefusal | None:
        content = receipt.get("content", {})
        if (page is None or page["type"] != PAGE or page["sender"] not in receipt.get("recipients", [])
                or receipt["sender"] not in page.get("recipients", []) or content.get("recipient") != receipt["sender"]):
            return PduRefusal("bad_event", "The receipt is not about a page of ours to its sender.")
        sender = page["sender"]
        online = self.online(sender)
        batch.add(receipt, offline=[] if online else [sender], online=[sender] if online else [],
                  frame_type="page_receipt")
        return None


class _Judge:
    """Whether recipients take pages, each user's record and settings read once per batch."""

    def __init__(self, pages: RemotePages):
        self._pages = pages
        self._users: dict[str, Any] = {}
        self._settings: dict[str, Any] = {}

    async def refusal(self, sender: str, user_id: str) -> tuple[str, str] | None:
        """(reason, message) if ``user_id`` does not take pages from ``sender``, else None."""
        storage = self._pages._storage
        if user_id not in self._users:
            self._users[user_id] = await storage.get_user(user_id)
        user = self._users[user_id]
        if user is None:
            return "unknown_user", f"There is no one named {user_id!r}."
        if self._pages._blocks.blocks(user_id, sender):
            return "not_accepting_pages", not_accepting(user.username, None)
        if user_id not in self._settings:
            self._settings[user_id] = await storage.get_page_settings(user_id)
        settings = self._settings[user_id]
        if settings.haven:
            return "not_accepting_pages", not_accepting(user.username, settings.haven_message)
        return None


class _Batch:
    """What one transaction stores: events in order, who waits for which, the outbox rows,
    and the frames to send live once stored."""

    def __init__(self, now_ms: int):
        self.now_ms = now_ms
        self.events: list[dict[str, Any]] = []
        self.pending: list[tuple[int, str]] = []
        self.queued: dict[str, list[dict[str, Any]]] = {}  # destination: events for it, in order
        self.live: list[tuple[int, list[str], str]] = []

    def add(self, event: dict[str, Any], *, offline: Sequence[str] = (), online: Sequence[str] = (),
            frame_type: str = "", queue_for: str | None = None) -> None:
        index = len(self.events)
        self.events.append(event)
        self.pending.extend((index, user_id) for user_id in offline)
        if online:
            self.live.append((index, list(online), frame_type))
        if queue_for is not None:
            self.queued.setdefault(queue_for, []).append(event)

    def ops(self) -> list[Callable[..., None]]:
        """The outbox rows, one op per destination, committed with the events."""
        return [op_enqueue_all(events, [destination], self.now_ms) for destination, events in self.queued.items()]
