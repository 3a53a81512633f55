"""The connection registry: who is connected, on how many sockets.

A user may hold several sockets at once (tabs, devices); the registry maps
each user to their live connections and is the one place that answers "is
this user online?". It knows nothing of Tornado: a connection is anything with
the small ``Connection`` shape below, so the registry is tested without sockets.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Protocol

from vibemuse.realtime.ids import IdSource


class Connection(Protocol):
    connection_id: str
    user_id: str
    token_hash: str
    address: str  # the peer's IP address
    expires_ms: int | None  # when its access token expires
    last_seen: float  # monotonic seconds of the last frame or pong received
    queued_bytes: int  # bytes waiting for the client to read

    def send_text(self, text: str) -> None: ...

    def send_encoded(self, frame: bytes, position: int | None = None) -> None: ...

    def ping(self) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


class ConnectionRegistry:
    def __init__(self) -> None:
        self._by_user: dict[str, dict[str, Connection]] = {}
        self._by_address: dict[str, int] = {}
        self._held = 0  # sockets held from every address
        self._ids = IdSource("c")

    def new_connection_id(self) -> str:
        return self._ids.next()

    def add(self, connection: Connection) -> None:
        self._by_user.setdefault(connection.user_id, {})[connection.connection_id] = connection

    def hold_address(self, address: str, limit: int) -> bool:
        """Count one more socket from ``address`` — from its handshake on, authenticated
        or not — unless it already has ``limit``; False then."""
        held = self._by_address.get(address, 0)
        if held >= limit:
            return False
        self._by_address[address] = held + 1
        self._held += 1
        return True

    def release_address(self, address: str) -> None:
        if address in self._by_address:
            self._held -= 1
        left = self._by_address.get(address, 1) - 1
        if left > 0:
            self._by_address[address] = left
        else:
            self._by_address.pop(address, None)

    def discard(self, connection: Connection) -> bool:
        """Unregister a socket; True if it was registered."""
        sockets = self._by_user.get(connection.user_id)
        if sockets is None:
            return False
        found = sockets.pop(connection.connection_id, None) is not None
        if not sockets:
            del self._by_user[connection.user_id]
        return found

    @property
    def held_sockets(self) -> int:
        """Sockets held from their handshake on, from every address (the server-wide count)."""
        return self._held

    def count_for_address(self, address: str) -> int:
        return self._by_address.get(address, 0)

    def count_for(self, user_id: str) -> int:
        return len(self._by_user.get(user_id, ()))

    def connections_of(self, user_id: str) -> list[Connection]:
        return list(self._by_user.get(user_id, {}).values())

    def sockets_of(self, user_id: str) -> Iterable[Connection]:
        """A user's sockets, for the fan-out loop: a live view, no copy.

        Safe because ``send_encoded`` never closes or unregisters a socket
        synchronously (an overflowing socket is closed on the next loop turn).
        """
        sockets = self._by_user.get(user_id)
        return sockets.values() if sockets else ()

    def online_user_ids(self) -> Iterable[str]:
        return self._by_user.keys()

    def is_online(self, user_id: str) -> bool:
        return user_id in self._by_user

    def __iter__(self) -> Iterator[Connection]:
        return (connection for sockets in list(self._by_user.values()) for connection in list(sockets.values()))

    def __len__(self) -> int:
        return sum(len(sockets) for sockets in self._by_user.values())

    def close_all(self, code: int, reason: str) -> int:
        closed = 0
        for connection in self:
            connection.close(code, reason)
            closed += 1
        return closed

    def close_token(self, token_hash: str, code: int, reason: str) -> int:
        """Close every socket that authenticated with one (now revoked) token."""
        matching = [connection for connection in self if connection.token_hash == token_hash]
        for connection in matching:
            connection.close(code, reason)
        return len(matching)
