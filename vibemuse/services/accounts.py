"""Accounts: registration, login, logout and access-token authentication.

Access tokens are 256 random bits shown to the client once; the database only
keeps their SHA-256, so a leaked database holds no usable token, and looking
a token up by its hash compares in constant time for free.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from typing import Awaitable, Callable

from vibemuse.clock import Clock
from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.ids import user_id_for, validate_username
from vibemuse.services.login_throttle import LoginThrottle
from vibemuse.services.passwords import PasswordHasher, check_password_policy
from vibemuse.storage import Conflict, Storage, UserRecord

ROLES = ("player", "builder", "admin")
TOKEN_PREFIX = "vmt_"


@dataclass(frozen=True)
class Session:
    """What a successful login or registration hands the client."""

    user: UserRecord
    access_token: str
    expires_ts: int


@dataclass(frozen=True)
class Principal:
    """An authenticated user, and the token that proved it."""

    user: UserRecord
    token_hash: str
    expires_ts: int

    @property
    def user_id(self) -> str:
        return self.user.user_id

    def has_role(self, *roles: str) -> bool:
        return self.user.role in roles


def _check_not_banned(user: UserRecord) -> None:
    if user.banned_ts is not None:
        raise ProtocolError(ErrorCode.ACCOUNT_BANNED, "This account is banned from this server.",
                            details={"reason": user.ban_reason})


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AccountService:
    def __init__(
        self,
        storage: Storage,
        *,
        server_name: str,
        default_room_id: str,
        token_lifetime_ms: int,
        password_min_length: int,
        hasher: PasswordHasher,
        throttle: LoginThrottle,
        clock: Clock,
        on_token_revoked: Callable[[str], Awaitable[None] | None] | None = None,
    ):
        self._storage = storage
        self._server_name = server_name
        self._default_room_id = default_room_id
        self._token_lifetime_ms = token_lifetime_ms
        self._password_min_length = password_min_length
        self._hasher = hasher
        self._throttle = throttle
        self._clock = clock
        self.on_token_revoked = on_token_revoked

    async def create_user(self, username: object, password: object, role: str = "player") -> UserRecord:
        """Make an account (no session). Used by registration and by ``vibemuse user create``."""
        username = validate_username(username)
        password = check_password_policy(password, username, self._password_min_length)
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        try:
            return await self._storage.create_user(
                user_id_for(username, self._server_name),
                username,
                role,
                password_hash,
                self._default_room_id,
                self._clock(),
            )
        except Conflict:
            raise ProtocolError(ErrorCode.USERNAME_TAKEN, f"The name {username!r} is taken.") from None

    async def register(self, username: object, password: object) -> Session:
        user = await self.create_user(username, password)
        return await self._open_session(user)

    async def login(self, username: str, password: str, address: str) -> Session:
        """A session for the right password; wrong ones count against the login limits of
        ``address`` and of the account (``login_throttle``)."""
        attempt = self._throttle.attempt(username, address)
        try:
            user_id = user_id_for(validate_username(username), self._server_name)
        except ProtocolError:
            user_id = None
        user = await self._storage.get_user(user_id) if user_id else None  # the database away: 503
        stored = user.password_hash if user else None
        if await asyncio.to_thread(self._hasher.verify, password, stored) and user is not None:
            self._throttle.succeeded(attempt)
            _check_not_banned(user)  # told only to who knows the password
            return await self._open_session(user)
        raise ProtocolError(ErrorCode.INVALID_CREDENTIALS, "Wrong username or password.")

    async def _open_session(self, user: UserRecord) -> Session:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        record = await self._storage.create_access_token(
            hash_token(token), user.user_id, now, now + self._token_lifetime_ms
        )
        return Session(user=user, access_token=token, expires_ts=record.expires_ts)

    async def authenticate(self, token: object) -> Principal:
        """The principal behind ``token``, or ``invalid_token`` / ``token_expired``."""
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            raise ProtocolError(ErrorCode.INVALID_TOKEN, "The access token is not valid.")
        found = await self._storage.get_access_token(hash_token(token))
        if found is None or found[0].revoked_ts is not None:
            raise ProtocolError(ErrorCode.INVALID_TOKEN, "The access token is not valid.")
        record, user = found
        _check_not_banned(user)
        if record.expires_ts <= self._clock():
            raise ProtocolError(ErrorCode.TOKEN_EXPIRED, "The access token has expired; log in again.")
        return Principal(user=user, token_hash=record.token_hash, expires_ts=record.expires_ts)

    async def change_password(self, principal: Principal, current: str, new: object, address: str) -> Session:
        """Check the current password (a wrong one counts as a failed login: a stolen token must
        not guess faster than a login could), set the new one, revoke every token of the user
        (closing their sockets) and open a fresh session."""
        user = principal.user
        attempt = self._throttle.attempt(user.username, address)
        if not await asyncio.to_thread(self._hasher.verify, current, user.password_hash):
            raise ProtocolError(ErrorCode.INVALID_CREDENTIALS, "The current password is wrong.")
        self._throttle.succeeded(attempt)
        new = check_password_policy(new, user.username, self._password_min_length)
        revoked = await self._storage.change_password(
            user.user_id, await asyncio.to_thread(self._hasher.hash, new), self._clock())
        for token_hash in revoked:
            await self._revoked(token_hash)
        return await self._open_session(user)

    async def _revoked(self, token_hash: str) -> None:
        if self.on_token_revoked is not None:
            result = self.on_token_revoked(token_hash)
            if result is not None:
                await result

    async def logout(self, principal: Principal) -> None:
        """Revoke the token the principal used; sockets opened with it are closed."""
        await self._storage.revoke_access_token(principal.token_hash, self._clock())
        await self._revoked(principal.token_hash)
