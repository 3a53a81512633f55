"""``Storage``: the one narrow interface the rest of VibeMUSE has to its database.

Theory of operation. Each public method is a domain verb (``create_user``,
``set_location`` ...) and a coroutine. It runs one ``_txn`` function inside
one transaction on a worker thread, so database work never blocks the Tornado
event loop. Writes go to their own executor: one thread on SQLite (a single
writer, which is all SQLite allows anyway, taking ``BEGIN IMMEDIATE``), a pool
on PostgreSQL; reads go to a pool on both. The ``_txn`` functions take a
SQLAlchemy ``Connection`` and return frozen records, never live rows.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from vibemuse.storage import chain_txns, channel_txns, history_txns, message_txns, sync_txns, visibility_txns
from vibemuse.storage.batching import ReadBatcher
from vibemuse.storage.channel_txns import BanRecord, ChannelOp, ChannelRecord, MemberRecord, ServerBanRecord
from vibemuse.storage.engine import WRITE, is_unreachable
from vibemuse.storage.event_txns import (
    Appended,
    append_events_txn,
    events_between_txn,
    claim_pending_txn,
    get_receipt_txn,
    recent_room_events_txn,
)
from vibemuse.storage.settings_txns import (
    PageSettings,
    all_blocks_txn,
    get_settings_txn,
    set_block_txn,
    set_haven_txn,
    set_last_paged_txn,
)
from vibemuse.storage.models import AccessToken, Room, ServerState, User
from vibemuse.storage.records import (
    Conflict,
    DatabaseUnavailable,
    NotFound,
    Receipt,
    Relocation,
    RoomRecord,
    TokenRecord,
    TransactionKey,
    UserRecord,
)

T = TypeVar("T")

log = logging.getLogger(__name__)

UNREACHABLE_LOG_EVERY_SECONDS = 10.0  # while the database is away, one warning this often (not one per request)

rooms = Room.__table__
users = User.__table__
access_tokens = AccessToken.__table__
server_state = ServerState.__table__


def fold_name(name: str) -> str:
    """The form in which names are compared for uniqueness."""
    return name.casefold()


class Storage:
    def __init__(self, engine: Engine, *, threads: int = 4,
                 observe: Callable[[bool, float], None] | None = None):
        """``observe(write, seconds)``: told the time of every transaction (metrics)."""
        self.engine = engine
        self._observe = observe
        self.dialect = engine.dialect.name
        self._readers = ThreadPoolExecutor(threads, thread_name_prefix="db-read")
        writers = 1 if self.dialect == "sqlite" else threads
        self._writers = ThreadPoolExecutor(writers, thread_name_prefix="db-write")
        # Events get their stream positions from one writer thread, so positions
        # commit in the order they were handed out (a reader that has seen
        # position N never later finds a smaller one appear).
        self._event_writer = (
            self._writers if self.dialect == "sqlite" else ThreadPoolExecutor(1, thread_name_prefix="db-events")
        )
        # Every socket reads its token and its session start: asked for together, read together.
        self._tokens: ReadBatcher[str, tuple[TokenRecord, UserRecord] | None] = ReadBatcher(
            lambda hashes: self._read(_get_access_tokens_txn, hashes), missing=None)
        self._warned_unreachable = 0.0
        self._session_starts: ReadBatcher[str, sync_txns.SessionStart] = ReadBatcher(
            lambda user_ids: self._read(sync_txns.session_starts_txn, user_ids),
            missing=sync_txns.SessionStart([], False))

    # -- plumbing -------------------------------------------------------

    async def _read(self, txn: Callable[..., T], *args: Any) -> T:
        return await self._submit(self._readers, False, txn, args)

    async def _write(self, txn: Callable[..., T], *args: Any) -> T:
        return await self._submit(self._writers, True, txn, args)

    async def _append(self, txn: Callable[..., T], *args: Any) -> T:
        return await self._submit(self._event_writer, True, txn, args)

    async def _submit(self, executor: ThreadPoolExecutor, write: bool, txn: Callable[..., T], args: tuple) -> T:
        call = functools.partial(self._run, write, txn, args)
        return await asyncio.get_running_loop().run_in_executor(executor, call)

    def _run(self, write: bool, txn: Callable[..., T], args: tuple) -> T:
        started = time.perf_counter()
        try:
            with self.engine.connect() as connection:
                if write:
                    connection = connection.execution_options(**WRITE)
                with connection.begin():
                    return txn(connection, *args)
        except DBAPIError as error:
            if not is_unreachable(error):
                raise
            if time.monotonic() - self._warned_unreachable >= UNREACHABLE_LOG_EVERY_SECONDS:
                self._warned_unreachable = time.monotonic()
                cause = (str(error.orig).strip().splitlines() or [type(error.orig).__name__])[0]
                log.warning("the database does not answer (%s): requests get 503 unavailable until it does", cause)
            raise DatabaseUnavailable() from error
        finally:
            if self._observe is not None:
                self._observe(write, time.perf_counter() - started)

    async def ping(self) -> None:
        """A trivial query on a fresh transaction: raises when the database does not answer."""
        await self._read(_ping_txn)

    def close(self) -> None:
        """Finish queued work, then release every connection."""
        self._event_writer.shutdown(wait=True)
        self._writers.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self.engine.dispose()

    # -- server state ---------------------------------------------------

    async def get_state(self, key: str) -> str | None:
        return await self._read(_get_state_txn, key)

    async def ensure_default_room(self, room_id: str, name: str, description: str, now_ms: int) -> RoomRecord:
        """The room new characters start in: made on the first start, the same ever after (also
        when several processes of one server start at once: the one that lost the race reads it)."""
        try:
            return await self._write(_ensure_default_room_txn, room_id, name, description, now_ms)
        except (Conflict, IntegrityError):
            return await self._write(_ensure_default_room_txn, room_id, name, description, now_ms)

    # -- rooms ----------------------------------------------------------

    async def create_room(
        self, room_id: str, name: str, description: str, created_by: str | None, now_ms: int
    ) -> RoomRecord:
        return await self._write(_create_room_txn, room_id, name, description, created_by, now_ms)

    async def get_room(self, room_id: str) -> RoomRecord | None:
        return await self._read(_get_room_txn, room_id)

    async def list_rooms(self, after_seq: int, limit: int) -> list[RoomRecord]:
        return await self._read(_list_rooms_txn, after_seq, limit)

    # -- users and locations --------------------------------------------

    async def create_user(
        self, user_id: str, username: str, role: str, password_hash: str, location_room_id: str, now_ms: int
    ) -> UserRecord:
        return await self._write(_create_user_txn, user_id, username, role, password_hash, location_room_id, now_ms)

    async def get_user(self, user_id: str) -> UserRecord | None:
        return await self._read(_get_user_txn, user_id)

    async def users_by_ids(self, user_ids: list[str]) -> list[UserRecord]:
        """The users of these ids that exist (in no particular order)."""
        return await self._read(_users_by_ids_txn, user_ids)

    async def set_role(self, user_id: str, role: str) -> UserRecord:
        return await self._write(_set_role_txn, user_id, role)

    async def set_ban(self, user_id: str, banned_ts: int | None, reason: str) -> tuple[UserRecord, list[str]]:
        """Ban (``banned_ts``: when) or lift a ban (None). A ban revokes every token of the user;
        returns the user and the revoked token hashes."""
        return await self._write(_set_ban_txn, user_id, banned_ts, reason)

    async def set_location(self, user_id: str, room_id: str) -> None:
        await self._write(_set_location_txn, user_id, room_id)

    async def users_located_in(self, room_id: str) -> list[UserRecord]:
        return await self._read(_users_located_in_txn, room_id)

    async def admins_among(self, user_ids: list[str]) -> set[str]:
        return await self._read(visibility_txns.admins_among_txn, user_ids)

    # -- access tokens --------------------------------------------------

    async def create_access_token(self, token_hash: str, user_id: str, now_ms: int, expires_ms: int) -> TokenRecord:
        return await self._write(_create_access_token_txn, token_hash, user_id, now_ms, expires_ms)

    async def get_access_token(self, token_hash: str) -> tuple[TokenRecord, UserRecord] | None:
        return await self._tokens.get(token_hash)

    async def revoke_access_token(self, token_hash: str, now_ms: int) -> bool:
        return await self._write(_revoke_access_token_txn, token_hash, now_ms)

    async def change_password(self, user_id: str, password_hash: str, now_ms: int) -> list[str]:
        """Set a new password hash and revoke every token of the user; returns the revoked hashes."""
        return await self._write(_change_password_txn, user_id, password_hash, now_ms)

    async def purge_expired_tokens(self, now_ms: int) -> int:
        return await self._write(_purge_expired_tokens_txn, now_ms)

    # -- events ---------------------------------------------------------

    async def append_events(
        self,
        events: list[dict[str, Any]],
        *,
        transaction: TransactionKey | None,
        now_ms: int,
        relocation: Relocation | None = None,
        pending: list[tuple[int, str]] = (),  # type: ignore[assignment]
        ops: list[ChannelOp] = (),  # type: ignore[assignment]
    ) -> Appended:
        """Durably store signed events (and a move); returns the receipt, the new positions and
        the position they follow (``event_txns.Appended``).

        If ``transaction`` was seen before, nothing is stored and the first
        receipt comes back marked ``duplicate``. Any other uniqueness clash (an
        event id stored meanwhile by another writer) is a ``Conflict``.
        """
        try:
            return await self._append(append_events_txn, events, transaction, relocation, now_ms, pending, ops)
        except IntegrityError:
            # Two sockets raced with one messageId: the loser gets the winner's receipt.
            if transaction is not None:
                receipt = await self.get_receipt(transaction)
                if receipt is not None:
                    return Appended(receipt, [], 0)
            raise Conflict("event") from None

    async def get_receipt(self, transaction: TransactionKey) -> Receipt | None:
        return await self._read(get_receipt_txn, transaction)

    async def recent_room_events(self, room_id: str, limit: int) -> list[dict[str, Any]]:
        return await self._read(recent_room_events_txn, room_id, limit)

    async def claim_pending(self, user_id: str, limit: int) -> list[dict[str, Any]]:
        """Events that waited for ``user_id`` while offline, oldest first; each is returned once."""
        return await self._append(claim_pending_txn, user_id, limit)

    async def history(self, query: history_txns.HistoryQuery) -> history_txns.HistoryPage:
        """One page of a room's, a channel's or a page conversation's history (``history_txns``)."""
        return await self._read(history_txns.history_txn, query)

    # -- channels -------------------------------------------------------------

    async def get_channel(self, channel_id: str) -> ChannelRecord | None:
        return await self._read(channel_txns.get_channel_txn, channel_id)

    async def channel_head(self, channel_id: str) -> tuple[int, str] | None:
        """(last seq, chain hash) of a channel's order; None: no such channel here."""
        return await self._read(chain_txns.head_txn, channel_id)

    async def queue_for_home(self, event: dict[str, Any], home: str, request: TransactionKey,
                             now_ms: int) -> Receipt:
        """Queue a member's channel event for the channel's home (``chain_txns``)."""
        return await self._append(chain_txns.queue_for_home_txn, event, home, request, now_ms)

    async def request_of(self, user_id: str, event_id: str) -> str | None:
        """The messageId of the request of ``user_id`` that made ``event_id`` (client transactions)."""
        return await self._read(chain_txns.request_of_txn, user_id, event_id)

    async def stamped_after(self, channel_id: str, after_seq: int, limit: int) -> list[chain_txns.Stamped]:
        """A channel's events after ``after_seq`` in its order, with their stamps."""
        return await self._read(chain_txns.stamped_after_txn, channel_id, after_seq, limit)

    async def get_membership(self, channel_id: str, user_id: str) -> MemberRecord | None:
        return await self._read(channel_txns.get_membership_txn, channel_id, user_id)

    async def channel_members(self, channel_id: str) -> list[MemberRecord]:
        return await self._read(channel_txns.members_txn, channel_id)

    async def memberships_of(self, user_id: str) -> list[tuple[MemberRecord, ChannelRecord]]:
        return await self._read(channel_txns.memberships_of_txn, user_id)

    async def standing_mute(self, channel_id: str, user_id: str) -> int | None:
        return await self._read(channel_txns.standing_mute_txn, channel_id, user_id)

    async def get_ban(self, channel_id: str, user_id: str) -> BanRecord | None:
        return await self._read(channel_txns.get_ban_txn, channel_id, user_id)

    async def get_server_ban(self, channel_id: str, server_name: str) -> ServerBanRecord | None:
        return await self._read(channel_txns.get_server_ban_txn, channel_id, server_name)

    async def is_invited(self, channel_id: str, user_id: str) -> bool:
        return await self._read(channel_txns.is_invited_txn, channel_id, user_id)

    async def list_channels(
        self, viewer: str, search: str | None, after: str | None, limit: int, *, see_all: bool = False,
        home: str | None = None,
    ) -> list[ChannelRecord]:
        return await self._read(channel_txns.list_channels_txn, viewer, search, after, limit, see_all, home)

    # -- resuming --------------------------------------------------------------

    async def session_start(self, user_id: str) -> sync_txns.SessionStart:
        """What a starting socket needs: its channels, and whether events wait for it."""
        return await self._session_starts.get(user_id)

    async def tail(self, since: int, limit: int) -> sync_txns.Tail:
        """Every event after ``since``, at most ``limit``, with the newest and oldest positions."""
        return await self._read(sync_txns.tail_txn, since, limit)

    async def events_between(self, after: int, upto: int) -> list[tuple[int, dict[str, Any]]]:
        """(position, event) of the events after ``after`` up to ``upto``, in order (a gap in the bus)."""
        return await self._read(events_between_txn, after, upto)

    async def latest_position(self) -> int:
        """The newest stream position stored (0 before the first event)."""
        return await self._read(sync_txns.latest_position_txn)

    async def resume_point(self, user_id: str, since: int) -> sync_txns.ResumePoint:
        """What decides one user's replay after ``since`` (when a shared tail cannot serve)."""
        return await self._read(sync_txns.resume_point_txn, user_id, since)

    async def events_since(
        self, user_id: str, since: int, rooms: list[str], channels: list[str], limit: int
    ) -> list[dict[str, Any]]:
        return await self._read(sync_txns.events_since_txn, user_id, since, rooms, channels, limit)

    async def channel_joins_until(self, user_id: str, until: int) -> dict[str, tuple[int, int]]:
        return await self._read(sync_txns.channel_joins_until_txn, user_id, until)

    async def events_by_id(self, event_ids: list[str]) -> dict[str, dict[str, Any]]:
        return await self._read(sync_txns.events_by_id_txn, event_ids)

    # -- page settings and blocks ------------------------------------------

    async def get_page_settings(self, user_id: str) -> PageSettings:
        return await self._read(get_settings_txn, user_id)

    async def set_haven(self, user_id: str, haven: bool, message: str | None) -> None:
        await self._write(set_haven_txn, user_id, haven, message)

    async def set_last_paged(self, user_id: str, recipients: tuple[str, ...]) -> None:
        await self._write(set_last_paged_txn, user_id, recipients)

    async def set_block(self, blocker: str, blocked: str, on: bool, now_ms: int) -> bool:
        return await self._write(set_block_txn, blocker, blocked, on, now_ms)

    async def all_blocks(self) -> list[tuple[str, str]]:
        return await self._read(all_blocks_txn)


# -- transactions ------------------------------------------------------------


def _room(row: Any) -> RoomRecord:
    return RoomRecord(row.seq, row.room_id, row.name, row.description, row.created_by, row.created_ts)


def _user(row: Any) -> UserRecord:
    return UserRecord(row.user_id, row.username, row.role, row.password_hash, row.created_ts, row.location_room_id,
                      row.created_position, row.banned_ts, row.ban_reason or "")


def _ping_txn(connection: Connection) -> None:
    connection.execute(select(func.count()).select_from(server_state)).scalar_one()


def _get_state_txn(connection: Connection, key: str) -> str | None:
    return connection.execute(select(server_state.c.value).where(server_state.c.key == key)).scalar()


DEFAULT_ROOM_KEY = "default_room_id"


def _ensure_default_room_txn(
    connection: Connection, room_id: str, name: str, description: str, now_ms: int
) -> RoomRecord:
    existing = _get_state_txn(connection, DEFAULT_ROOM_KEY)
    if existing is not None:
        room = _get_room_txn(connection, existing)
        if room is None:
            raise NotFound(f"default room {existing} is recorded but missing")
        return room
    taken = connection.execute(select(rooms).where(rooms.c.name_folded == fold_name(name))).first()
    room = _room(taken) if taken else _create_room_txn(connection, room_id, name, description, None, now_ms)
    connection.execute(insert(server_state).values(key=DEFAULT_ROOM_KEY, value=room.room_id))
    return room


def _create_room_txn(
    connection: Connection, room_id: str, name: str, description: str, created_by: str | None, now_ms: int
) -> RoomRecord:
    if connection.execute(select(rooms.c.seq).where(rooms.c.name_folded == fold_name(name))).first():
        raise Conflict("room_name")
    try:
        with connection.begin_nested():
            seq = connection.execute(
                insert(rooms)
                .values(
                    room_id=room_id,
                    name=name,
                    name_folded=fold_name(name),
                    description=description,
                    created_by=created_by,
                    created_ts=now_ms,
                )
                .returning(rooms.c.seq)
            ).scalar_one()
    except IntegrityError:
        raise Conflict("room_name") from None
    return RoomRecord(seq, room_id, name, description, created_by, now_ms)


def _get_room_txn(connection: Connection, room_id: str) -> RoomRecord | None:
    row = connection.execute(select(rooms).where(rooms.c.room_id == room_id)).first()
    return _room(row) if row else None


def _list_rooms_txn(connection: Connection, after_seq: int, limit: int) -> list[RoomRecord]:
    query = select(rooms).where(rooms.c.seq > after_seq).order_by(rooms.c.seq).limit(limit)
    return [_room(row) for row in connection.execute(query)]


def _create_user_txn(
    connection: Connection,
    user_id: str,
    username: str,
    role: str,
    password_hash: str,
    location_room_id: str,
    now_ms: int,
) -> UserRecord:
    if connection.execute(select(users.c.user_id).where(users.c.user_id == user_id)).first():
        raise Conflict("username")
    created_position = sync_txns.latest_position_txn(connection)
    try:
        with connection.begin_nested():
            connection.execute(
                insert(users).values(
                    user_id=user_id,
                    username=username,
                    role=role,
                    password_hash=password_hash,
                    created_ts=now_ms,
                    location_room_id=location_room_id,
                    created_position=created_position,
                )
            )
    except IntegrityError:
        raise Conflict("username") from None
    return UserRecord(user_id, username, role, password_hash, now_ms, location_room_id, created_position)


def _get_user_txn(connection: Connection, user_id: str) -> UserRecord | None:
    row = connection.execute(select(users).where(users.c.user_id == user_id)).first()
    return _user(row) if row else None


def _users_by_ids_txn(connection: Connection, user_ids: list[str]) -> list[UserRecord]:
    found: list[UserRecord] = []
    for start in range(0, len(user_ids), 500):  # bounded IN lists
        rows = connection.execute(select(users).where(users.c.user_id.in_(user_ids[start:start + 500])))
        found.extend(_user(row) for row in rows)
    return found


def _set_role_txn(connection: Connection, user_id: str, role: str) -> UserRecord:
    if connection.execute(update(users).where(users.c.user_id == user_id).values(role=role)).rowcount != 1:
        raise NotFound(user_id)
    return _get_user_txn(connection, user_id)  # type: ignore[return-value]


def _set_location_txn(connection: Connection, user_id: str, room_id: str) -> None:
    if _get_room_txn(connection, room_id) is None:
        raise NotFound(room_id)
    if connection.execute(update(users).where(users.c.user_id == user_id).values(location_room_id=room_id)).rowcount != 1:
        raise NotFound(user_id)


def _users_located_in_txn(connection: Connection, room_id: str) -> list[UserRecord]:
    query = select(users).where(users.c.location_room_id == room_id).order_by(users.c.user_id)
    return [_user(row) for row in connection.execute(query)]


def _create_access_token_txn(
    connection: Connection, token_hash: str, user_id: str, now_ms: int, expires_ms: int
) -> TokenRecord:
    connection.execute(
        insert(access_tokens).values(token_hash=token_hash, user_id=user_id, created_ts=now_ms, expires_ts=expires_ms)
    )
    return TokenRecord(token_hash, user_id, now_ms, expires_ms, None)


# Every socket authenticates with this: the token and its user in one query.
_TOKEN_AND_USER = select(
    access_tokens.c.token_hash, access_tokens.c.user_id, access_tokens.c.created_ts.label("token_created_ts"),
    access_tokens.c.expires_ts, access_tokens.c.revoked_ts, users.c.username, users.c.role, users.c.password_hash,
    users.c.created_ts, users.c.location_room_id, users.c.created_position, users.c.banned_ts, users.c.ban_reason,
).join(users, users.c.user_id == access_tokens.c.user_id)


def _get_access_tokens_txn(connection: Connection, hashes: list[str]) -> dict[str, tuple[TokenRecord, UserRecord]]:
    """Tokens by hash, each with its user (``storage.batching``: several sockets at once)."""
    found = {}
    for row in connection.execute(_TOKEN_AND_USER.where(access_tokens.c.token_hash.in_(hashes))):
        token = TokenRecord(row.token_hash, row.user_id, row.token_created_ts, row.expires_ts, row.revoked_ts)
        found[row.token_hash] = (token, _user(row))
    return found


def _revoke_access_token_txn(connection: Connection, token_hash: str, now_ms: int) -> bool:
    query = (
        update(access_tokens)
        .where(access_tokens.c.token_hash == token_hash, access_tokens.c.revoked_ts.is_(None))
        .values(revoked_ts=now_ms)
    )
    return connection.execute(query).rowcount == 1


def _change_password_txn(connection: Connection, user_id: str, password_hash: str, now_ms: int) -> list[str]:
    if connection.execute(update(users).where(users.c.user_id == user_id).values(
            password_hash=password_hash)).rowcount != 1:
        raise NotFound(user_id)
    return _revoke_all_tokens_txn(connection, user_id, now_ms)


def _set_ban_txn(connection: Connection, user_id: str, banned_ts: int | None,
                 reason: str) -> tuple[UserRecord, list[str]]:
    values = {"banned_ts": banned_ts, "ban_reason": reason if banned_ts is not None else None}
    if connection.execute(update(users).where(users.c.user_id == user_id).values(**values)).rowcount != 1:
        raise NotFound(user_id)
    revoked = _revoke_all_tokens_txn(connection, user_id, banned_ts) if banned_ts is not None else []
    return _get_user_txn(connection, user_id), revoked  # type: ignore[return-value]


def _revoke_all_tokens_txn(connection: Connection, user_id: str, now_ms: int) -> list[str]:
    live = (access_tokens.c.user_id == user_id) & access_tokens.c.revoked_ts.is_(None)
    hashes = [row.token_hash for row in connection.execute(select(access_tokens.c.token_hash).where(live))]
    connection.execute(update(access_tokens).where(live).values(revoked_ts=now_ms))
    return hashes


def _purge_expired_tokens_txn(connection: Connection, now_ms: int) -> int:
    return connection.execute(delete(access_tokens).where(access_tokens.c.expires_ts < now_ms)).rowcount


def count_rows(connection: Connection, table_name: str) -> int:
    """Rows in one table (used by tests and the CLI to show that nothing changed)."""
    table = {t.name: t for t in (rooms, users, access_tokens, server_state)}[table_name]
    return connection.execute(select(func.count()).select_from(table)).scalar_one()


class MessageStore:
    """Verbs for single messages and reports (``message_txns``), on the same engine and threads."""

    def __init__(self, storage: Storage):
        self._storage = storage

    async def get_message(self, event_id: str) -> message_txns.StoredMessage | None:
        return await self._storage._read(message_txns.get_message_txn, event_id)

    async def edits_of(self, positions: list[int]) -> dict[int, dict[str, Any]]:
        return await self._storage._read(message_txns.edits_of_txn, positions)

    async def add_report(self, event_id: str, reporter: str, reason: str, now_ms: int) -> int:
        return await self._storage._write(message_txns.add_report_txn, event_id, reporter, reason, now_ms)

    async def list_reports(self, status: str | None, channels: list[str] | None, after: int,
                           limit: int) -> list[message_txns.ReportRecord]:
        return await self._storage._read(message_txns.list_reports_txn, status, channels, after, limit)

    async def get_report(self, report_id: int) -> message_txns.ReportRecord | None:
        return await self._storage._read(message_txns.get_report_txn, report_id)

    async def resolve_report(self, report_id: int, by: str, resolution: str, now_ms: int) -> None:
        await self._storage._write(message_txns.resolve_report_txn, report_id, by, resolution, now_ms)
