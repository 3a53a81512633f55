"""Pages: private messages between players, with offline delivery and receipts.

Theory of operation. A page is one ``vm.page`` event addressed to its
recipients (``recipients``, server-qualified user ids, so a later federation
sends the same event to another server unchanged). It is stored once; online
recipients get it at once on every socket, as does the sender; each offline
recipient gets a row in ``pending_deliveries``. When a user connects, their
waiting events are claimed (taken out of that table in one transaction, so
each is handed out once) and sent in stream order; for every page among
them, a signed ``vm.receipt`` goes back to the page's sender — live if they
are online, else it waits for them the same way.

Refusals say only what the sender may know: a haven shows its message; a
block is "not accepting your pages" and nothing more.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable

from vibemuse.clock import Clock
from vibemuse.protocol import content as compose
from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.ids import parse_user_id, user_id_for, user_id_of_address, validate_username
from vibemuse.protocol.markup import sanitize_text
from vibemuse.realtime.blocks import BlockList
from vibemuse.realtime.broadcast import Broadcaster
from vibemuse.realtime.connections import ConnectionRegistry
from vibemuse.services.accounts import Principal
from vibemuse.services.events import EventWriter
from vibemuse.storage import Receipt, Storage, TransactionKey, UserRecord
from vibemuse.storage.outbox_txns import op_enqueue

PAGE = "vm.page"
RECEIPT = "vm.receipt"
MAX_CLAIM = 500


@dataclass(frozen=True)
class PageResult:
    receipt: Receipt
    offline: list[str]  # recipients who will get it when they next connect
    remote: list[str] = field(default_factory=list)  # recipients of other servers: their receipts come back


@dataclass(frozen=True)
class RemoteUser:
    """A user of another server: nothing of them is known here but their id."""

    user_id: str
    username: str
    server: str


def not_accepting(username: str, haven_message: str | None) -> str:
    """Why a page is refused, as the sender may know it: a haven shows its message, a block nothing."""
    if haven_message:
        return f"{username} is not accepting pages: {haven_message}"
    return f"{username} is not accepting your pages."


class PageService:
    def __init__(
        self,
        storage: Storage,
        *,
        registry: ConnectionRegistry,
        broadcaster: Broadcaster,
        events: EventWriter,
        blocks: BlockList,
        server_name: str,
        max_text_length: int,
        max_recipients: int,
        clock: Clock,
        federation: bool = False,
    ):
        self._storage = storage
        self._registry = registry
        # whether a user has a socket (on any process of this server: app.py sets it so with several)
        self.online: Callable[[str], bool] = registry.is_online
        self._broadcaster = broadcaster
        self._events = events
        self.blocks = blocks
        # a block set or lifted: applied here, or (several processes) told to every process
        self.block_changed: Callable[[str, str, bool], None] = self.apply_block
        self._server_name = server_name
        self._max_text_length = max_text_length
        self.max_recipients = max_recipients
        self._clock = clock
        self._federation = federation
        self._claiming: dict[str, asyncio.Lock] = {}

    # -- sending -----------------------------------------------------------

    async def page(
        self, principal: Principal, message_id: str, names: list[str] | None, text: str, style: str = "say"
    ) -> PageResult:
        request = TransactionKey(principal.user_id, "page", message_id)
        recipients = await self._recipients(principal, names)
        content = compose.page(
            principal.user.username, [user.username for user in recipients], text, self._max_text_length, style=style
        )
        ids = [user.user_id for user in recipients]
        event = self._events.make(PAGE, principal.user_id, content, recipients=ids)
        local = [user.user_id for user in recipients if not isinstance(user, RemoteUser)]
        remote = [user.user_id for user in recipients if isinstance(user, RemoteUser)]
        servers = list(dict.fromkeys(user.server for user in recipients if isinstance(user, RemoteUser)))
        offline = [user_id for user_id in local if not self.online(user_id)]
        receipt, positions = await self._events.store(
            [event], request, pending=[(0, user_id) for user_id in offline],
            ops=[op_enqueue(event, servers, self._clock())] if servers else [],
        )
        if not positions:  # a retry: the first ack again
            return PageResult(receipt, [])
        self._broadcaster.to_users([principal.user_id, *local], self._events.frame("message", event, positions[0]))
        await self._storage.set_last_paged(principal.user_id, tuple(ids))
        return PageResult(receipt, offline, remote)

    async def _recipients(self, principal: Principal, names: list[str] | None) -> list[UserRecord | RemoteUser]:
        if not names:
            last = (await self._storage.get_page_settings(principal.user_id)).last_paged
            if not last:
                raise ProtocolError(ErrorCode.INVALID_REQUEST, "Page whom? You have not paged anyone yet.")
            names = list(last)
        # Counted as written, before duplicates merge: eleven spellings of one name are eleven.
        if len(names) > self.max_recipients:
            raise ProtocolError(
                ErrorCode.TOO_MANY_RECIPIENTS,
                f"A page goes to at most {self.max_recipients} people.",
                details={"maxRecipients": self.max_recipients},
            )
        unique = list({name.casefold(): name for name in names}.values())
        users = [await self._recipient(name) for name in unique]
        users = list({user.user_id: user for user in users}.values())
        for user in users:
            await self._check_accepts(principal, user)
        return users

    async def _recipient(self, name: str) -> UserRecord | RemoteUser:
        """A page recipient: as ``resolve``, or (federation on) a user of another server, by
        user id or ``name@server``, whose server decides whether they exist and take pages."""
        if self._federation:
            user_id = name if name.startswith("@") else user_id_of_address(name)
            try:
                parsed = parse_user_id(user_id) if user_id else None
            except ProtocolError:
                parsed = None
            if parsed is not None and parsed.server_name != self._server_name:
                return RemoteUser(str(parsed), parsed.localpart, parsed.server_name)
            if parsed is not None:
                name = str(parsed)
        return await self.resolve(name)

    async def user_or_remote(self, name: str) -> UserRecord | RemoteUser:
        """A user of this server, or (federation on) of another, named as a page recipient is."""
        return await self._recipient(name)

    async def partner(self, name: str) -> str:
        """The user id of a page partner (page history): as a page recipient is named."""
        return (await self._recipient(name)).user_id

    async def resolve(self, name: str) -> UserRecord:
        """A username of this server or a user id, to the user; ``unknown_user`` otherwise."""
        try:
            user_id = str(parse_user_id(name)) if name.startswith("@") else user_id_for(
                validate_username(name), self._server_name)
        except ProtocolError:
            user_id = None
        user = await self._storage.get_user(user_id) if user_id else None
        if user is None:
            shown = sanitize_text(name)[:64]
            raise ProtocolError(ErrorCode.UNKNOWN_USER, f"There is no one named {shown!r}.", details={"name": shown})
        return user

    async def _check_accepts(self, principal: Principal, recipient: UserRecord | RemoteUser) -> None:
        sender = principal.user_id
        if recipient.user_id == sender:
            return
        if self.blocks.blocks(sender, recipient.user_id):
            raise ProtocolError(
                ErrorCode.YOU_BLOCKED,
                f"You are blocking {recipient.username}; unblock them to page them.",
                details={"userId": recipient.user_id},
            )
        if isinstance(recipient, RemoteUser):  # the rest is for the recipient's server to say
            return
        if self.blocks.blocks(recipient.user_id, sender):
            raise self._not_accepting(recipient, None)
        settings = await self._storage.get_page_settings(recipient.user_id)
        if settings.haven:
            raise self._not_accepting(recipient, settings.haven_message)

    @staticmethod
    def _not_accepting(recipient: UserRecord, haven_message: str | None) -> ProtocolError:
        return ProtocolError(ErrorCode.NOT_ACCEPTING_PAGES, not_accepting(recipient.username, haven_message),
                             details={"userId": recipient.user_id})

    async def last_paged(self, principal: Principal) -> list[str]:
        """The names of the last page's recipients: usernames here, ``name@server`` elsewhere."""
        names = []
        for user_id in (await self._storage.get_page_settings(principal.user_id)).last_paged:
            parsed = parse_user_id(user_id)
            if parsed.server_name != self._server_name:
                names.append(f"{parsed.localpart}@{parsed.server_name}")
            elif (user := await self._storage.get_user(user_id)) is not None:
                names.append(user.username)
        return names

    # -- offline delivery and receipts ----------------------------------------

    async def deliver_pending(self, user_id: str) -> int:
        """Send a user who just connected everything that waited for them; returns how many.
        (A write on the event writer: called only when ``SessionStart.has_pending`` says so.)"""
        lock = self._claiming.setdefault(user_id, asyncio.Lock())
        async with lock:
            waiting = await self._storage.claim_pending(user_id, MAX_CLAIM)
            for event in waiting:
                frame_type = "page_receipt" if event["type"] == RECEIPT else "message"
                self._broadcaster.to_user(user_id, self._events.frame_stored(frame_type, event))
            for event in waiting:
                if event["type"] == PAGE and event["sender"] != user_id:
                    await self._send_receipt(event, user_id)
        if not lock.locked():
            self._claiming.pop(user_id, None)
        return len(waiting)

    async def _send_receipt(self, page: dict[str, Any], recipient: str) -> None:
        sender = page["sender"]
        content = {"kind": "delivered", "relates_to": page["event_id"], "recipient": recipient}
        event = self._events.make(RECEIPT, recipient, content, recipients=[sender])
        server = parse_user_id(sender).server_name
        if server != self._server_name:  # a page from another server: the receipt goes back there
            await self._events.store([event], None, ops=[op_enqueue(event, [server], self._clock())])
            return
        online = self.online(sender)
        _, positions = await self._events.store([event], None, pending=[] if online else [(0, sender)])
        if online:
            self._broadcaster.to_user(sender, self._events.frame("page_receipt", event, positions[0]))

    # -- haven, blocks ----------------------------------------------------

    async def set_haven(self, principal: Principal, haven: bool, message: str | None) -> None:
        cleaned = " ".join(sanitize_text(message).split())[:300] if message else None
        await self._storage.set_haven(principal.user_id, haven, cleaned or None)

    async def set_block(self, principal: Principal, name: str, blocked: bool) -> UserRecord | RemoteUser:
        """Block or unblock a user: of this server, or (federation on) of another, named as a
        page recipient is; their pages are then refused here, where they arrive."""
        target = await self._recipient(name)
        if target.user_id == principal.user_id:
            raise ProtocolError(ErrorCode.INVALID_REQUEST, "You cannot block yourself.")
        await self._storage.set_block(principal.user_id, target.user_id, blocked, self._clock())
        self.block_changed(principal.user_id, target.user_id, blocked)
        return target

    def apply_block(self, blocker: str, blocked: str, on: bool) -> None:
        """Keep the in-memory list as storage now says (here, or told by another process)."""
        if on:
            self.blocks.add(blocker, blocked)
        else:
            self.blocks.remove(blocker, blocked)
