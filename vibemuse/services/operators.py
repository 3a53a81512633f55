"""What an admin does to users on the running server: see who is on, kick, set roles, ban.

Every change takes effect at once on the live sessions: a kick closes the
user's sockets and telnet sessions (4010), a ban also revokes their tokens and
refuses every later login (``account_banned``) and closes them with 4011, a
role change is seen by the user's open sessions on their next frame (their
principal is replaced, not reloaded). An admin cannot ban themselves or
change their own role, so a server is never left without the admin who ran
the command by that command.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from vibemuse.clock import Clock
from vibemuse.protocol.errors import CloseCode, ErrorCode, ProtocolError
from vibemuse.realtime.connections import ConnectionRegistry
from vibemuse.services.accounts import ROLES, Principal
from vibemuse.services.presence import OnlineUser as Online
from vibemuse.storage import Storage, UserRecord

SESSIONS_CLOSED = "sessions_closed"  # the bus signal: {"user", "code", "reason"} (several processes)
ROLE_CHANGED = "role_changed"  # the bus signal: {"user", "role"}

CLOSE_REASON_BYTES = 120  # a WebSocket close reason is at most 123 bytes


@dataclass(frozen=True)
class OnlineUser:
    user: UserRecord
    location: str | None
    sockets: list[dict[str, str]]  # connectionId, transport, address (several processes: and process)
    status: str
    idle_ms: int


@dataclass(frozen=True)
class BanOutcome:
    user: UserRecord
    closed: int


class Operators:
    def __init__(self, storage: Storage, *, registry: ConnectionRegistry,
                 sessions: Callable[[], list[Online]], resolve: Callable[[str], Awaitable[UserRecord]],
                 clock: Clock):
        """``sessions()``: who is online on every process; ``resolve(name or id)``: the local
        user, or ``unknown_user``."""
        self._storage = storage
        self._registry = registry
        self._sessions = sessions
        self._resolve = resolve
        self._clock = clock
        # Several processes: what an admin does to a user's sessions is told to every process
        # (``close_sessions``, ``apply_role`` run on each), and counted over all of them
        self.share: Callable[[str, dict[str, Any]], None] | None = None
        self.sessions_of: Callable[[str], int] = registry.count_for

    async def online(self) -> list[OnlineUser]:
        """Everyone with an open session on any process, by user id, with their sockets, status
        and idle time (of a user on another process: as exact as ``Directory`` says)."""
        sessions = [online for online in self._sessions() if online.sockets]
        users = {user.user_id: user for user in await self._storage.users_by_ids([o.user_id for o in sessions])}
        now = self._clock()
        return [OnlineUser(users[o.user_id], o.location, o.sockets, o.presence.status,
                           max(0, now - o.presence.last_input_ms)) for o in sessions if o.user_id in users]

    async def kick(self, name: str, reason: str) -> tuple[UserRecord, int]:
        """Close every session of the user (they may come back); returns how many."""
        user = await self._resolve(name)
        return user, self._close_all(user.user_id, CloseCode.KICKED, reason or "kicked by an admin")

    async def set_role(self, actor: Principal, name: str, role: str) -> tuple[UserRecord, int]:
        """A new role, in force at once on the user's open sessions; returns the user and how many."""
        if role not in ROLES:
            raise ProtocolError(ErrorCode.INVALID_REQUEST, f"The role must be one of {', '.join(ROLES)}.")
        user = await self._resolve(name)
        self._not_self(actor, user, "change your own role")
        user = await self._storage.set_role(user.user_id, role)
        count = self.sessions_of(user.user_id)
        if self.share is not None:
            self.share(ROLE_CHANGED, {"user": user.user_id, "role": role})
        else:
            self.apply_role(user.user_id, role)
        return user, count

    def apply_role(self, user_id: str, role: str) -> None:
        """The user's sessions here act with their new role from their next frame."""
        for connection in self._registry.connections_of(user_id):
            principal: Any = getattr(connection, "principal", None)
            if principal is not None:
                user = dataclasses.replace(principal.user, role=role)
                connection.principal = dataclasses.replace(principal, user=user)  # type: ignore[attr-defined]

    async def ban(self, actor: Principal, name: str, reason: str) -> BanOutcome:
        user = await self._resolve(name)
        self._not_self(actor, user, "ban yourself")
        user, _revoked = await self._storage.set_ban(user.user_id, self._clock(), reason)
        return BanOutcome(user, self._close_all(user.user_id, CloseCode.BANNED, reason or "banned"))

    async def unban(self, name: str) -> BanOutcome:
        user = await self._resolve(name)
        user, _ = await self._storage.set_ban(user.user_id, None, "")
        return BanOutcome(user, 0)

    def _close_all(self, user_id: str, code: CloseCode, reason: str) -> int:
        count = self.sessions_of(user_id)
        if self.share is not None:
            self.share(SESSIONS_CLOSED, {"user": user_id, "code": int(code), "reason": reason})
        else:
            self.close_sessions(user_id, int(code), reason)
        return count

    def close_sessions(self, user_id: str, code: int, reason: str) -> None:
        """Close the user's sessions on this process."""
        shown = reason.encode("utf-8")[:CLOSE_REASON_BYTES].decode("utf-8", "ignore")
        for connection in self._registry.connections_of(user_id):
            connection.close(code, shown)

    @staticmethod
    def _not_self(actor: Principal, user: UserRecord, what: str) -> None:
        if actor.user_id == user.user_id:
            raise ProtocolError(ErrorCode.FORBIDDEN, f"You cannot {what}; ask another admin.")
