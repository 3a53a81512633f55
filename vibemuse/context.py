"""``ServerContext``: the services of one running server, handed to every handler.

Handlers receive it through ``initialize(context=...)`` from the route table,
never through module globals, so several servers can run in one process
(the federation tests do).
"""

from __future__ import annotations

from dataclasses import dataclass

from vibemuse.clock import Clock
from vibemuse.config import Config
from vibemuse.federation.server_keys import KeyRing
from vibemuse.protocol.frames import ServerFrame
from vibemuse.protocol.schemas import SchemaSet
from vibemuse.realtime.connections import ConnectionRegistry
from vibemuse.realtime.ids import IdSource
from vibemuse.services.accounts import AccountService
from vibemuse.services.rooms import RoomService
from vibemuse.storage import Storage


@dataclass
class ServerContext:
    config: Config
    storage: Storage
    schemas: SchemaSet
    registry: ConnectionRegistry
    accounts: AccountService
    rooms: RoomService
    clock: Clock
    frame_ids: IdSource
    keyring: KeyRing

    @property
    def server_name(self) -> str:
        return self.config.server_name

    def frame(self, frame_type: str, data: dict, *, from_user: str | None = None, **routing: str | None) -> ServerFrame:
        """A server frame stamped with a fresh id and the current time."""
        return ServerFrame(
            type=frame_type,
            data=data,
            message_id=self.frame_ids.next(),
            timestamp_ms=self.clock(),
            from_user=from_user or self.server_name,
            **routing,
        )
