"""``ServerContext``: the services of one running server, handed to every handler.

Handlers receive it through ``initialize(context=...)`` from the route table,
never through module globals, so several servers can run in one process
(the federation tests do).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from vibemuse.clock import Clock
from vibemuse.config import Config
from vibemuse.federation.discovery import Discovery
from vibemuse.federation.receiver import FederationReceiver
from vibemuse.federation.server_keys import KeyRing
from vibemuse.metrics import ServerMetrics
from vibemuse.protocol.schemas import SchemaSet
from vibemuse.realtime.broadcast import Broadcaster
from vibemuse.realtime.connections import ConnectionRegistry
from vibemuse.services.accounts import AccountService
from vibemuse.services.channels import ChannelService
from vibemuse.services.chat import RoomChat
from vibemuse.services.guard import Guard
from vibemuse.services.history import HistoryService
from vibemuse.services.messages import MessageService
from vibemuse.services.pages import PageService
from vibemuse.services.presence import PresenceService
from vibemuse.services.rooms import RoomService
from vibemuse.services.sync import SyncService
from vibemuse.storage import Storage
from vibemuse.storage.outbox import OutboxStore

if TYPE_CHECKING:
    from vibemuse.services.operators import Operators
    from vibemuse.services.channel_home import ChannelHome
    from vibemuse.federation.sender import FederationSender


@dataclass
class ServerContext:
    config: Config
    storage: Storage
    schemas: SchemaSet
    registry: ConnectionRegistry
    accounts: AccountService
    rooms: RoomService
    clock: Clock
    keyring: KeyRing
    broadcaster: Broadcaster
    presence: PresenceService
    chat: RoomChat
    pages: PageService
    channels: ChannelService
    history: HistoryService
    sync: SyncService
    messages: MessageService
    guard: Guard
    discovery: Discovery
    federation: FederationReceiver
    outbox: OutboxStore | None = None
    federation_sender: "FederationSender | None" = None
    channel_home: "ChannelHome | None" = None  # the home's side of channels shared with other servers
    metrics: ServerMetrics = field(default_factory=ServerMetrics)  # what GET /metrics shows
    operators: "Operators | None" = None  # what admins do to users (GET /api/admin/sessions ...)
    # another server contacted us (with several processes: told to the one that sends, over the bus)
    contacted: Callable[[str], None] | None = None
    bus_connected: Callable[[], bool] | None = None  # several processes: whether their bus is up (GET /ready)

    @property
    def server_name(self) -> str:
        return self.config.server_name
