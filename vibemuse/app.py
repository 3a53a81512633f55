"""The composition root: builds one VibeMUSE server from a ``Config``.

``VibeMuseServer.create`` opens the database (checking the schema), makes
sure the default room exists, wires the services, and ``make_application``
builds the Tornado route table. Tests build exactly the same object with a
test config; ``vibemuse serve`` adds signal handling around it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import ssl
from typing import Any
from dataclasses import dataclass

import tornado.httpclient
import tornado.httpserver
import tornado.netutil
import tornado.web

from vibemuse.admission import AdmittingHTTPServer, effective_max_connections, raise_descriptor_limit
from vibemuse.clock import Clock, system_clock_ms
from vibemuse.config import Config
from vibemuse.context import ServerContext
from vibemuse.federation.sender import FederationSeams, FederationSender, SenderSettings
from vibemuse.federation.discovery import Discovery, DiscoveryError
from vibemuse.federation.addresses import PublicAddressResolver, peer_hosts
from vibemuse.federation.transport import HttpTransport
from vibemuse.federation.key_cache import RemoteKeyCache
from vibemuse.federation.policy import FederationPolicy
from vibemuse.federation.receiver import FederationInbox, FederationReceiver
from vibemuse.federation.client import FederationClient
from vibemuse.protocol.events import parse_server_keys_response
from vibemuse.federation.inbox import PageInbox
from vibemuse.federation.key_fetch import BaseUrlOf, KeyDocumentFetcher
from vibemuse.federation.server_keys import load_or_create_signing_keys, load_signing_keys
from vibemuse.handlers.admin import (
    BanHandler, FederationQueuesHandler, KickHandler, RoleHandler, SessionsHandler, SpamHandler, SpamUnmuteHandler,
)
from vibemuse.handlers.ops import HealthHandler, MetricsHandler, ReadyHandler
from vibemuse.logs import log_request
from vibemuse.metrics import ServerMetrics, multiprocess_dir
from vibemuse.handlers.auth import LoginHandler, LogoutHandler, MeHandler, PasswordHandler, RegisterHandler
from vibemuse.handlers.base import NotFoundHandler
from vibemuse.handlers.channels import ChannelHandler, ChannelHistoryHandler, ChannelsHandler, ServerLeaveHandler
from vibemuse.handlers.communication import AnnouncementsHandler, WhoHandler
from vibemuse.handlers.federation import (
    ChannelDirectoryHandler, ChannelEventsHandler, ChannelJoinHandler, SendTransactionHandler, ServerKeysHandler,
    WellKnownServerHandler,
)
from vibemuse.handlers.history import RoomHistoryHandler
from vibemuse.handlers.messages import MessageHandler, MessageReportHandler, ReportResolveHandler, ReportsHandler
from vibemuse.handlers.pages import PageHistoryHandler
from vibemuse.handlers.rooms import RoomHandler, RoomsHandler
from vibemuse.handlers.versions import VersionsHandler
from vibemuse.handlers.webclient import web_client_routes
from vibemuse.handlers.websocket import ClientSocketHandler
from vibemuse.protocol.errors import CloseCode
from vibemuse.realtime.blocks import BlockList
from vibemuse.realtime.broadcast import Broadcaster
from vibemuse.realtime.bus import InProcessBus
from vibemuse.processes import Processes
from vibemuse.realtime.redis_bus import OUTBOX, RedisBus, new_instance_name
from vibemuse.realtime.stream import Append, StreamOrder
from vibemuse.realtime.connections import ConnectionRegistry
from vibemuse.realtime.heartbeat import Heartbeat
from vibemuse.realtime.ids import IdSource
from vibemuse.realtime.presence import PresenceTracker
from vibemuse.realtime.ratelimit import Rate, RateLimiter
from vibemuse.realtime.subscriptions import Subscriptions
from vibemuse.realtime.ticker import Ticker
from vibemuse.realtime.typing_state import TypingState
from vibemuse.services.accounts import AccountService
from vibemuse.services.channels import ChannelService
from vibemuse.services.channel_home import ChannelHome
from vibemuse.services.remote_channels import RemoteChannels
from vibemuse.services.shared_channels import ChannelsHere
from vibemuse.services.chat import RoomChat
from vibemuse.services.guard import Guard
from vibemuse.services.login_throttle import LoginThrottle
from vibemuse.services.spam import SpamGuard, SpamRules
from vibemuse.services.events import EventWriter
from vibemuse.services.history import HistoryService
from vibemuse.services.messages import MessageService
from vibemuse.services.pages import PageService
from vibemuse.services.remote_pages import RemotePages
from vibemuse.services.presence import PresenceService
from vibemuse.services.room_views import RoomViews
from vibemuse.services.operators import Operators
from vibemuse.services.passwords import PasswordHasher
from vibemuse.services.rooms import RoomService
from vibemuse.services.sync import SyncService
from vibemuse.protocol.federation_auth import sign_request
from vibemuse.specfiles import load_schema_set
from vibemuse.telnet.listener import TelnetListener
from vibemuse.storage import Storage, create_database_engine, ensure_schema
from vibemuse.storage.lease import Lease, Leader
from vibemuse.storage.outbox import OutboxStore
from vibemuse.storage.federation_inbound import FederationInboundStore

log = logging.getLogger(__name__)

ROUTES = (
    (r"/api/versions", VersionsHandler),
    (r"/api/auth/register", RegisterHandler),
    (r"/api/auth/login", LoginHandler),
    (r"/api/auth/logout", LogoutHandler),
    (r"/api/auth/password", PasswordHandler),
    (r"/api/users/me", MeHandler),
    (r"/api/rooms", RoomsHandler),
    (r"/api/rooms/([^/]+)", RoomHandler),
    (r"/api/who", WhoHandler),
    (r"/api/communication/pages/([^/]+)", PageHistoryHandler),
    (r"/api/communication/channels", ChannelsHandler),
    (r"/api/communication/channels/([^/]+)", ChannelHandler),
    (r"/api/communication/channels/([^/]+)/history", ChannelHistoryHandler),
    (r"/api/communication/history/([^/]+)", RoomHistoryHandler),
    (r"/api/announcements", AnnouncementsHandler),
    (r"/api/messages/([^/]+)", MessageHandler),
    (r"/api/messages/([^/]+)/report", MessageReportHandler),
    (r"/api/reports", ReportsHandler),
    (r"/api/reports/([0-9]+)/resolve", ReportResolveHandler),
    (r"/api/admin/spam", SpamHandler),
    (r"/api/admin/spam/([^/]+)/unmute", SpamUnmuteHandler),
    (r"/api/admin/federation", FederationQueuesHandler),
    (r"/api/admin/channels/([^/]+)/leave", ServerLeaveHandler),
    (r"/api/admin/sessions", SessionsHandler),
    (r"/api/admin/users/([^/]+)/kick", KickHandler),
    (r"/api/admin/users/([^/]+)/role", RoleHandler),
    (r"/api/admin/users/([^/]+)/ban", BanHandler),
    (r"/metrics", MetricsHandler),
    (r"/health", HealthHandler),
    (r"/ready", ReadyHandler),
    (r"/api/ws", ClientSocketHandler),
    (r"/federation/v1/keys", ServerKeysHandler),
    (r"/\.well-known/vibemuse/server", WellKnownServerHandler),
    (r"/federation/v1/send/([^/]*)", SendTransactionHandler),
    (r"/federation/v1/channels", ChannelDirectoryHandler),
    (r"/federation/v1/channels/([^/]+)/join", ChannelJoinHandler),
    (r"/federation/v1/channels/([^/]+)/events", ChannelEventsHandler),
)


def make_application(context: ServerContext) -> tornado.web.Application:
    handlers = [(pattern, handler, {"context": context}) for pattern, handler in ROUTES]
    handlers += web_client_routes(context)  # the web client: not part of the protocol (openapi.json)
    return tornado.web.Application(
        handlers,
        default_handler_class=NotFoundHandler,
        default_handler_args={"context": context},
        websocket_max_message_size=context.config.max_frame_bytes,
        compress_response=False,
        log_function=log_request,
    )


def make_guard(config: Config, clock: Clock) -> Guard:
    rates = {action: Rate(burst, per_second) for action, (burst, per_second) in config.rate_limits.items()}
    rules = SpamRules(
        flood_count=config.spam_flood_count,
        flood_window_ms=int(config.spam_flood_window_seconds * 1000),
        repeat_count=config.spam_repeat_count,
        repeat_window_ms=int(config.spam_repeat_window_seconds * 1000),
        mute_base_ms=config.spam_mute_seconds * 1000,
        disconnect_after_muted_attempts=config.spam_disconnect_after,
    )
    return Guard(RateLimiter(rates), SpamGuard(rules, clock))


def make_discovery(config: Config, transport: HttpTransport, clock: Clock) -> Discovery:
    return Discovery(transport, peers=config.federation_peers, clock=clock,
                     cache_ms=config.federation_discovery_cache_seconds * 1000)


def make_federation_receiver(config: Config, storage: Storage, guard: Guard, clock: Clock,
                             base_url_of: BaseUrlOf, transport: HttpTransport) -> FederationReceiver:
    keys = RemoteKeyCache(KeyDocumentFetcher(base_url_of, transport), clock)
    return FederationReceiver(
        server_name=config.server_name, policy=FederationPolicy.from_config(config),
        window_ms=config.federation_request_window_seconds * 1000, keys=keys,
        store=FederationInboundStore(storage), inbox=FederationInbox(), guard=guard, clock=clock,
    )


def tls_context(config: Config) -> ssl.SSLContext | None:
    """HTTPS/WSS from the configured certificate and key; plain HTTP when none is set."""
    if not config.tls_certificate:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_certificate, config.tls_key)
    return context


def http_body_hard_limit(config: Config) -> int:
    """Past this many bytes Tornado stops reading a body and drops the connection.

    Bodies between ``max_http_body_bytes`` and this get a clean 413
    ``payload_too_large``; the margin keeps that answer for honest mistakes
    without letting anyone make the server buffer much more than the limit.
    """
    return 2 * config.max_http_body_bytes + 64 * 1024


def _close_sockets_of_token(registry: ConnectionRegistry, token_hash: str) -> None:
    registry.close_token(token_hash, CloseCode.LOGGED_OUT, "logged out")


async def _appends_between(storage: Storage, after: int, upto: int) -> list[Append]:
    """A gap of the bus, from the database: the events after ``after`` up to ``upto``, as one append."""
    found = await storage.events_between(after, upto)
    return [Append(after, tuple(position for position, _ in found), tuple(event for _, event in found))]


def federation_seams(context: ServerContext) -> FederationSeams:
    """What the sender needs: where a destination is (discovery; unknown: retried later) and the
    signature of each request, made with this server's current key at the moment of sending."""

    async def base_url_of(server_name: str) -> str | None:
        try:
            return await context.discovery.base_url_of(server_name)
        except DiscoveryError:
            return None

    def authorize(method: str, uri: str, destination: str, content: Any) -> str:
        return sign_request(context.keyring.current, method=method, uri=uri, origin=context.server_name,
                            destination=destination, content=content, ts=context.clock(),
                            nonce=secrets.token_urlsafe(18))

    return FederationSeams(base_url_of=base_url_of, authorize=authorize)


def make_sender(config: Config, storage: Storage, clock: Clock, seams: FederationSeams) -> FederationSender:
    """The outbox sender (``seams``: ``federation_seams``, or the caller's in tests)."""
    return FederationSender(
        OutboxStore(storage),
        settings=SenderSettings(origin=config.server_name, batch_size=config.federation_batch_size,
                                retry_max_ms=config.federation_retry_max_seconds * 1000),
        seams=seams,
        http=tornado.httpclient.AsyncHTTPClient(force_instance=True, resolver=federation_resolver(config)),
        clock=clock,
    )


def federation_resolver(config: Config) -> tornado.netutil.Resolver:
    """How names of other servers become addresses: only global ones, but for the hosts of
    ``federation_peers`` (or all, with ``federation_private_addresses``)."""
    resolver = tornado.netutil.DefaultLoopResolver()
    if config.federation_private_addresses:
        return resolver
    return PublicAddressResolver(resolver=resolver, trusted=peer_hosts(config.federation_peers))


# Connections the kernel may hold for accept(): when everyone reconnects at once
# (after a restart) Tornado's default of 128 drops SYNs, and each dropped client
# waits a second or more to retry. The kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 4096


@dataclass
class VibeMuseServer:
    context: ServerContext
    application: tornado.web.Application
    heartbeat: Ticker
    ticker: Ticker
    sender: FederationSender
    transport: HttpTransport = dataclasses.field(default_factory=HttpTransport)
    http_server: tornado.httpserver.HTTPServer | None = None
    telnet: TelnetListener | None = None
    _sender_started: asyncio.Task[None] | None = None
    processes: Processes | None = None  # one of several processes of the server (``bus_url``)
    leader: Leader | None = None  # the sender's lease, with a bus

    @classmethod
    async def create(
        cls, config: Config, *, clock: Clock = system_clock_ms, hasher: PasswordHasher | None = None,
        federation: FederationSeams | None = None,
        transport: HttpTransport | None = None,
        base_url_of: BaseUrlOf | None = None,
    ) -> "VibeMuseServer":
        """``transport``: how this server reaches others (default: verified TLS with the system CAs);
        ``base_url_of(server_name)``: where another server is (default: discovery)."""
        config = dataclasses.replace(
            config, max_connections=effective_max_connections(config.max_connections, raise_descriptor_limit()))
        transport = transport or HttpTransport(resolver=federation_resolver(config))
        discovery = make_discovery(config, transport, clock)
        keyring = await asyncio.to_thread(load_or_create_signing_keys, str(config.resolved_signing_key_path))
        engine = create_database_engine(config.resolved_database_url, pool_size=config.database_threads)
        await asyncio.to_thread(ensure_schema, engine, auto_migrate=config.auto_migrate)
        metrics = ServerMetrics(multiprocess_dir(config.metrics_dir))
        storage = Storage(engine, threads=config.database_threads, observe=metrics.database_time)
        registry = ConnectionRegistry()
        rooms = RoomService(storage, server_name=config.server_name, clock=clock,
                            online_users=lambda: context.presence.online_user_ids())  # every process's
        default_room = await rooms.ensure_default_room(config.default_room_name, config.default_room_description)
        guard = make_guard(config, clock)
        accounts = AccountService(
            storage,
            server_name=config.server_name,
            default_room_id=default_room.room_id,
            token_lifetime_ms=config.token_lifetime_seconds * 1000,
            password_min_length=config.password_min_length,
            hasher=hasher or PasswordHasher(),
            throttle=LoginThrottle(guard.limiter),
            clock=clock,
            on_token_revoked=lambda token_hash: _close_sockets_of_token(registry, token_hash),
        )
        bus: InProcessBus | RedisBus = InProcessBus()
        if config.bus_url:  # one of several processes of this server (README, "Scale-out"; processes.py)
            bus = RedisBus(config.bus_url, config.resolved_bus_channel, instance=new_instance_name(), clock=clock)
            bus.observe_lag = metrics.bus_received
        subscriptions = Subscriptions(registry, on_delivered=metrics.delivered)
        bus.attach(subscriptions.deliver)
        broadcaster = Broadcaster(bus, server_name=config.server_name, clock=clock, frame_ids=IdSource("f"))
        presence = PresenceService(
            registry=registry,
            subscriptions=subscriptions,
            tracker=PresenceTracker(clock, idle_after_ms=config.idle_after_seconds * 1000),
            typing=TypingState(
                clock,
                timeout_ms=int(config.typing_timeout_seconds * 1000),
                refresh_ms=int(config.typing_refresh_seconds * 1000),
            ),
            broadcaster=broadcaster,
            clock=clock,
            room_limit=config.presence_room_limit,
        )
        context = ServerContext(
            config=config,
            storage=storage,
            schemas=load_schema_set("v1"),
            registry=registry,
            accounts=accounts,
            rooms=rooms,
            clock=clock,
            keyring=keyring,
            broadcaster=broadcaster,
            presence=presence,
            chat=None,  # type: ignore[arg-type]  # set below: they need the context's keyring
            pages=None,  # type: ignore[arg-type]
            channels=None,  # type: ignore[arg-type]
            history=None,  # type: ignore[arg-type]
            sync=SyncService(storage, max_events=config.resume_max_events, clock=clock),
            messages=None,  # type: ignore[arg-type]
            guard=guard,
            discovery=discovery,
            federation=make_federation_receiver(config, storage, guard, clock, base_url_of or discovery.base_url_of,
                                                transport),
            metrics=metrics,
        )
        sender = make_sender(config, storage, clock, federation or federation_seams(context))
        context.outbox, context.federation_sender = sender.outbox, sender
        views = RoomViews(storage, recent=config.recent_messages_on_join,
                          budget_bytes=config.outbound_queue_bytes // 2, clock=clock)
        on_stored = [views.stored, context.sync.tails.stored]
        stream, wake = None, sender.wake
        if isinstance(bus, RedisBus):  # one process sends (the lease holder); the others wake it
            wake = lambda destinations: bus.signal(OUTBOX, {"destinations": list(destinations)})  # noqa: E731
            # and every process's appends reach these in stream order, through the bus
            order = StreamOrder(await storage.latest_position(), deliver=subscriptions.deliver, on_appended=on_stored)
            bus.attach_stream(order, lambda after, upto: _appends_between(storage, after, upto),
                              storage.latest_position)
            on_stored, stream = [], bus.appended
        events = EventWriter(
            storage, broadcaster=broadcaster, keyring=lambda: context.keyring, server_name=config.server_name,
            clock=clock, on_stored=on_stored, on_enqueued=wake, stream=stream,
        )
        context.chat = RoomChat(
            storage,
            presence=presence,
            broadcaster=broadcaster,
            events=events,
            default_room_id=default_room.room_id,
            max_text_length=config.max_text_length,
            views=views,
        )
        context.pages = PageService(
            storage,
            registry=registry,
            broadcaster=broadcaster,
            events=events,
            blocks=BlockList(await storage.all_blocks()),
            server_name=config.server_name,
            max_text_length=config.max_text_length,
            max_recipients=config.max_page_recipients,
            clock=clock,
            federation=config.federation,
        )
        seams = federation or federation_seams(context)
        channels_here = ChannelsHere(events=events, broadcaster=broadcaster, subscriptions=subscriptions,
                                     blocks=context.pages.blocks, server_name=config.server_name)
        remote_channels = RemoteChannels(
            storage, channels_here, client=FederationClient(transport, seams) if config.federation else None,
            clock=clock, check_stamped=context.federation.check_stamped, wake=wake,
            queue_seconds=config.federation_channel_queue_seconds)
        context.channel_home = ChannelHome(storage, channels_here, clock=clock)
        sender.on_answered, sender.too_old = remote_channels.answered, remote_channels.too_old
        context.federation.own_keys = lambda: parse_server_keys_response(
            context.keyring.server_keys_response(config.server_name, clock() + 3_600_000), config.server_name,
            clock())
        remote_pages = RemotePages(
            storage, registry=registry, broadcaster=broadcaster, events=events, blocks=context.pages.blocks,
            server_name=config.server_name, clock=clock)
        context.federation.inbox = PageInbox(remote_pages, remote_channels, context.channel_home)
        context.channels = ChannelService(
            storage,
            subscriptions=subscriptions,
            registry=registry,
            broadcaster=broadcaster,
            events=events,
            blocks=context.pages.blocks,
            pages=context.pages,
            server_name=config.server_name,
            max_text_length=config.max_text_length,
            clock=clock,
            remote=remote_channels,
        )
        context.operators = Operators(storage, registry=registry, sessions=presence.everyone_online,
                                      resolve=context.pages.resolve, clock=clock)
        context.history = HistoryService(storage, pages=context.pages, channels=context.channels)
        context.messages = MessageService(
            storage,
            subscriptions=subscriptions,
            broadcaster=broadcaster,
            events=events,
            blocks=context.pages.blocks,
            max_text_length=config.max_text_length,
            edit_window_ms=config.edit_window_seconds * 1000,
            clock=clock,
        )
        heartbeat = Ticker(
            config.heartbeat_interval_seconds,
            [Heartbeat(registry, timeout=config.heartbeat_timeout_seconds, clock=clock).beat],
        )
        chores = [presence.expire_typing, presence.sweep_idle]
        if metrics.multiprocess:  # another process may be the one scraped: keep this one's figures fresh
            chores.append(lambda: metrics.sample())
        ticker = Ticker(1.0, chores)
        server = cls(context=context, application=make_application(context), heartbeat=heartbeat, ticker=ticker,
                     sender=sender, transport=transport)
        metrics.sample = server.sample_metrics
        if isinstance(bus, RedisBus):
            server.processes = Processes(bus, context, sender, remote_pages)
            peers = list(config.federation_peers)
            server.leader = Leader(Lease(engine, "federation_sender"),
                                   start=lambda: sender.start(announce_to=peers), stop=sender.pause)
            await bus.start()
            server.processes.start()
        return server

    def sample_metrics(self) -> None:
        """Set the gauges of the moment: sockets, users online, bytes waiting to be sent."""
        registry = self.context.registry
        telnet = len(self.telnet.open) if self.telnet is not None else 0
        queued = sum(connection.queued_bytes for connection in registry)
        self.context.metrics.set_live(websockets=max(0, registry.held_sockets - telnet), telnet=telnet,
                                      users=len(self.context.presence.online_user_ids()), queued_bytes=queued)

    def listen(self, port: int | None = None, address: str | None = None) -> int:
        """Start serving; returns the bound port (useful with port 0)."""
        config = self.context.config
        self.http_server = AdmittingHTTPServer(
            self.application, max_body_size=http_body_hard_limit(config), xheaders=False,
            ssl_options=tls_context(config), max_connections=config.max_connections,
            open_sockets=lambda: self.context.registry.held_sockets,
        )
        sockets = tornado.netutil.bind_sockets(config.port if port is None else port, address or config.host,
                                               backlog=LISTEN_BACKLOG, reuse_port=config.workers > 1)
        self.http_server.add_sockets(sockets)
        bound = sockets[0].getsockname()[1]
        if bound != config.port and not config.public_base_url:  # port 0: announce the port it got
            self.context.config = dataclasses.replace(config, port=bound)
        if config.telnet_port:
            self.listen_telnet()
        self.start_background_tasks()
        return bound

    def listen_telnet(self, port: int | None = None, address: str | None = None) -> int:
        """Open the telnet port (``telnet_port`` unless given; 0: any free port); returns it."""
        config = self.context.config
        self.telnet = TelnetListener(self.context, connections=self._connections)
        sockets = tornado.netutil.bind_sockets(config.telnet_port if port is None else port,
                                               address or config.host, backlog=LISTEN_BACKLOG,
                                               reuse_port=config.workers > 1)
        self.telnet.add_sockets(sockets)
        return sockets[0].getsockname()[1]

    def _connections(self) -> int:
        http = self.http_server.open_connections if isinstance(self.http_server, AdmittingHTTPServer) else 0
        return http + self.context.registry.held_sockets

    def start_background_tasks(self) -> None:
        """Timers that run while the server serves (tests serving the app themselves call this)."""
        self.heartbeat.start()
        self.ticker.start()
        if self.context.config.federation and self.leader is not None:  # the lease holder sends
            self.leader.run()
        elif self.context.config.federation:  # off: nothing is sent (what is queued waits)
            peers = list(self.context.config.federation_peers)
            self._sender_started = asyncio.get_running_loop().create_task(self.sender.start(announce_to=peers))

    def reload_signing_keys(self) -> None:
        """Pick up keys rotated by ``vibemuse keys rotate`` while running (SIGHUP)."""
        self.context.keyring = load_signing_keys(str(self.context.config.resolved_signing_key_path))
        log.info("signing key now %s", self.context.keyring.current.key_id)

    async def shutdown(self) -> None:
        """Stop accepting, close every socket with 1001, let writes drain, close the database."""
        if self.http_server is not None:
            self.http_server.stop()
        if self.telnet is not None:
            self.telnet.stop()
            self.telnet.close_all(CloseCode.GOING_AWAY, "server shutting down")
        self.heartbeat.stop()
        self.ticker.stop()
        if self._sender_started is not None:
            await asyncio.gather(self._sender_started, return_exceptions=True)
        if self.leader is not None:
            await self.leader.close()
        await self.sender.stop()
        registry = self.context.registry
        closing = registry.close_all(CloseCode.GOING_AWAY, "server shutting down")
        deadline = asyncio.get_running_loop().time() + self.context.config.shutdown_grace_seconds
        while (len(registry) or self.telnet and self.telnet.open) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        if self.http_server is not None:
            await self.http_server.close_all_connections()
        self.transport.close()
        if self.processes is not None:  # the others hear that this one's users are gone from it
            await self.processes.stop()
        await asyncio.to_thread(self.context.storage.close)
        self.context.metrics.process_ended()
        log.info("shut down: %d sockets closed", closing)
