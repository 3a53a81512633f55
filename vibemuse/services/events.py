"""``EventWriter``: the one way services make, store and announce events.

Making: ``build_event`` signs with the server's current key, with an
``origin_server_ts`` that strictly increases (so two identical messages still
get different ids); an event too large once encoded is refused as
``text_too_long``. Storing: ``Storage.append_events`` with the request's
client transaction (a retry stores nothing and returns the first receipt).
Queuing for other servers: an ``outbox_txns.op_enqueue`` among the ``ops``
commits with the events, and ``on_enqueued`` then wakes the sender.
Announcing: ``frame`` wraps a stored event, with its stream position, in a
server frame for the broadcaster.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from vibemuse.clock import Clock
from vibemuse.federation.server_keys import KeyRing
from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.events import MAX_EVENT_BYTES, EventTooLarge, build_event
from vibemuse.protocol.frames import ServerFrame
from vibemuse.protocol.signing import SigningKey
from vibemuse.realtime.broadcast import Broadcaster
from vibemuse.realtime.stream import Append
from vibemuse.storage import Receipt, Relocation, Storage, TransactionKey


class EventWriter:
    def __init__(
        self,
        storage: Storage,
        *,
        broadcaster: Broadcaster,
        keyring: Callable[[], KeyRing],
        server_name: str,
        clock: Clock,
        on_stored: Sequence[Callable[[list[dict[str, Any]], list[int]], None]] = (),
        on_enqueued: Callable[[tuple[str, ...]], None] | None = None,
        stream: Callable[[Append], None] | None = None,
    ):
        self._storage = storage
        # with several processes: told of every append, which reaches ``on_stored`` in stream order
        # through the bus (``realtime/redis_bus.py``) instead of directly
        self._stream = stream
        # told of stored events (and their positions) before they are fanned out: room views, tails
        self._on_stored = list(on_stored)
        # told, after the commit, which servers got events queued by ``outbox_txns.op_enqueue``
        self._on_enqueued = on_enqueued
        self._broadcaster = broadcaster
        self._keyring = keyring
        self.server_name = server_name
        self._clock = clock
        self._last_ts = 0

    def _next_ts(self) -> int:
        self._last_ts = max(self._clock(), self._last_ts + 1)
        return self._last_ts

    def signing_key(self) -> SigningKey:
        """The server's current signing key (for what is signed besides events: stamps)."""
        return self._keyring().current

    def make(self, event_type: str, sender: str, content: dict[str, Any], **scope: Any) -> dict[str, Any]:
        try:
            return build_event(
                event_type=event_type,
                sender=sender,
                origin=self.server_name,
                origin_server_ts=self._next_ts(),
                content=content,
                signing_key=self._keyring().current,
                **scope,
            )
        except EventTooLarge:  # within maxTextLength, but too many bytes once signed
            raise ProtocolError(
                ErrorCode.TEXT_TOO_LONG,
                f"The message is too large once encoded (events are at most {MAX_EVENT_BYTES} bytes).",
                details={"maxBytes": MAX_EVENT_BYTES},
            ) from None

    async def store(
        self,
        events: list[dict[str, Any]],
        request: TransactionKey | None,
        *,
        relocation: Relocation | None = None,
        pending: Sequence[tuple[int, str]] = (),
        ops: Sequence[Callable[..., None]] = (),
    ) -> tuple[Receipt, list[int]]:
        receipt, positions, after = await self._storage.append_events(
            events, transaction=request, now_ms=self._clock(), relocation=relocation, pending=list(pending),
            ops=list(ops),
        )
        if positions:
            if self._stream is not None:
                self._stream(Append(after, tuple(positions), tuple(events)))
            for listener in self._on_stored:
                listener(events, positions)
            destinations = tuple(name for op in ops for name in getattr(op, "destinations", ()))
            if destinations and self._on_enqueued is not None:
                self._on_enqueued(destinations)
        return receipt, positions

    def frame(self, frame_type: str, event: dict[str, Any], position: int, **routing: Any) -> ServerFrame:
        extra = {key: routing.pop(key) for key in ("user",) if key in routing}
        delivered = dict(event, unsigned={"stream_position": position})
        return self._broadcaster.frame(frame_type, {"event": delivered, **extra}, from_user=event["sender"], **routing)

    def frame_stored(self, frame_type: str, event: dict[str, Any], **routing: Any) -> ServerFrame:
        """A frame for an event read back from storage (``unsigned`` already set)."""
        return self._broadcaster.frame(frame_type, {"event": event}, from_user=event["sender"], **routing)
