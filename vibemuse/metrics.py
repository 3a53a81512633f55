"""``ServerMetrics``: what ``GET /metrics`` shows, in the Prometheus text format.

Theory of operation. Each server builds one ``ServerMetrics``. With no metrics
folder the metrics live in a ``CollectorRegistry`` of that server alone, so
several servers in one process (the tests, the federation tests) never mix
their figures. With a metrics folder (``metrics_dir``, or the
``PROMETHEUS_MULTIPROC_DIR`` environment variable that prometheus_client
reads) every process of one server writes its figures to files there, and a
scrape of any process reads and merges them all (prometheus_client's
multiprocess mode); the folder must be emptied before the server's processes
start, as prometheus_client asks.

The hot paths pay one counter increment per frame or per delivery, never one
per recipient: a fan-out adds its copy count once. Gauges of the moment
(sockets, users online, queued bytes) are read from the live state when a
scrape asks (and every second in multiprocess mode, where another process
may be the one scraped). Users online is the whole server's figure on every
process (a user on two processes counts once; see ``users_online``). Federation queue figures come from the database at
the scrape, the same figures as ``GET /api/admin/federation``.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from vibemuse.storage.outbox_txns import QueueStats

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
DATABASE_BUCKETS = (0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
BUS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
FANOUT_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


def multiprocess_dir(configured: str) -> str:
    """The folder of multiprocess mode: the setting, else the environment; empty: off."""
    return configured or os.environ.get(MULTIPROCESS_VARIABLE, "")


def enable_multiprocess(folder: str) -> None:
    """Make this process write its metrics to ``folder`` (before any ``ServerMetrics`` is built).

    prometheus_client picks its value store from the environment when first
    imported; a folder given by the ``metrics_dir`` setting is put there and
    the store switched, so the setting and the variable mean the same."""
    os.makedirs(folder, exist_ok=True)
    os.environ[MULTIPROCESS_VARIABLE] = folder
    if values.ValueClass is values.MutexValue:
        values.ValueClass = values.MultiProcessValue()


class ServerMetrics:
    def __init__(self, folder: str = ""):
        self.folder = folder
        self.multiprocess = bool(folder)
        if self.multiprocess and values.ValueClass is values.MutexValue:
            enable_multiprocess(folder)
        # Multiprocess: the values live in the folder's files; the registry is only the handle.
        self.registry = CollectorRegistry(auto_describe=True)
        own = None if self.multiprocess else self.registry
        live = {"multiprocess_mode": "livesum"} if self.multiprocess else {}
        self.frames_received = Counter(
            "vibemuse_frames_received", "Client frames received on sessions, by type (a telnet line: command).",
            ["type"], registry=own)
        self.frames_sent = Counter(
            "vibemuse_frames_sent", "Server frames queued on sockets, by type (each copy of a fan-out counts).",
            ["type"], registry=own)
        self.fanout_copies = Counter(
            "vibemuse_fanout_copies", "Copies of frames queued on sockets by fan-out (rooms, channels, users, all).",
            registry=own)
        self.fanout_seconds = Histogram(
            "vibemuse_fanout_seconds", "Time to queue one delivery on every socket it is for.",
            buckets=FANOUT_BUCKETS, registry=own)
        self.ack_latency = Histogram(
            "vibemuse_ack_latency_seconds", "From a client frame read to its answer (ack or reply frame) queued.",
            ["type"], buckets=LATENCY_BUCKETS, registry=own)
        self.database_seconds = Histogram(
            "vibemuse_database_seconds", "Time of one database transaction, queue wait excluded.",
            ["access"], buckets=DATABASE_BUCKETS, registry=own)
        self.refusals = Counter(
            "vibemuse_refusals", "Error answers (error frames and HTTP error bodies), by error code; "
            "rate_limited and muted are the rate-limit and spam refusals.", ["code"], registry=own)
        self.slow_consumer_closes = Counter(
            "vibemuse_slow_consumer_closes", "Sockets closed because their client read too slowly (4008).",
            registry=own)
        self.sockets_open = Gauge(
            "vibemuse_sockets_open", "Open client sockets, WebSocket from the handshake on, and telnet sessions.",
            ["transport"], registry=own, **live)
        # Every process counts the whole server's users (its own and those the Directory tells of):
        # a user on two processes counts once, and in multiprocess mode the live processes' maximum
        # is the figure (they agree but for a moment's news).
        self.users_online = Gauge(
            "vibemuse_users_online", "Users with at least one open session on any process of the server.",
            registry=own, **({"multiprocess_mode": "livemax"} if self.multiprocess else {}))
        self.bus_lag = Histogram(
            "vibemuse_bus_lag_seconds", "From a bus record queued for Redis in one process to its receipt in "
            "another, by kind (delivery, append, signal).", ["kind"], buckets=BUS_BUCKETS, registry=own)
        self.outbound_queue_bytes = Gauge(
            "vibemuse_outbound_queue_bytes", "Bytes waiting to be sent to clients that read slower than we write.",
            registry=own, **live)
        if not self.multiprocess:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        # Sets the gauges of the moment from the live state (the composition root provides it).
        self.sample: Callable[[], None] = lambda: None
        self._received: dict[str, Counter] = {}
        self._sent: dict[str, Counter] = {}
        self._latency: dict[str, Histogram] = {}
        self._refused: dict[str, Counter] = {}
        self._lag: dict[str, Histogram] = {}
        self._database = {True: self.database_seconds.labels("write"), False: self.database_seconds.labels("read")}

    # -- what the hot paths call ---------------------------------------------

    def frame_received(self, frame_type: str) -> None:
        (self._received.get(frame_type) or _child(self._received, self.frames_received, frame_type)).inc()

    def frame_answered(self, frame_type: str, started: float) -> None:
        """A frame's answer was queued; ``started``: ``time.perf_counter()`` when it was read."""
        child = self._latency.get(frame_type) or _child(self._latency, self.ack_latency, frame_type)
        child.observe(time.perf_counter() - started)

    def frames_queued(self, frame_type: str, copies: int = 1) -> None:
        (self._sent.get(frame_type) or _child(self._sent, self.frames_sent, frame_type)).inc(copies)

    def delivered(self, frame_type: str, copies: int, seconds: float) -> None:
        """One fan-out: ``copies`` sockets got the frame, in ``seconds``."""
        if copies:
            self.frames_queued(frame_type, copies)
            self.fanout_copies.inc(copies)
        self.fanout_seconds.observe(seconds)

    def bus_received(self, kind: str, seconds: float) -> None:
        """A record from another process came through the bus, ``seconds`` after it was queued."""
        (self._lag.get(kind) or _child(self._lag, self.bus_lag, kind)).observe(seconds)

    def refused(self, code: str) -> None:
        (self._refused.get(code) or _child(self._refused, self.refusals, code)).inc()

    def database_time(self, write: bool, seconds: float) -> None:
        """From the database threads (prometheus_client's values are thread-safe)."""
        self._database[write].observe(seconds)

    # -- the moment's figures and the scrape -----------------------------------

    def set_live(self, *, websockets: int, telnet: int, users: int, queued_bytes: int) -> None:
        self.sockets_open.labels("websocket").set(websockets)
        self.sockets_open.labels("telnet").set(telnet)
        self.users_online.set(users)
        self.outbound_queue_bytes.set(queued_bytes)

    def exposition(self, federation: Iterable[QueueStats] = (), now_ms: int = 0) -> bytes:
        """The text of one scrape: this server's metrics (every process's, in multiprocess
        mode), then the federation queues as the database has them now."""
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.folder)
            text = generate_latest(registry)
        else:
            text = generate_latest(self.registry)
        queues = CollectorRegistry()
        queues.register(_FederationQueues(list(federation), now_ms))
        return text + generate_latest(queues)

    def process_ended(self) -> None:
        """Multiprocess: this process's live gauges stop counting (on shutdown)."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid(), self.folder)


def _child(cache: dict[str, Any], metric: Any, label: str) -> Any:
    """The metric's child for one label value, kept: ``labels()`` costs a lookup under a lock."""
    child = cache[label] = metric.labels(label)
    return child


class _FederationQueues:
    """The outbox of each destination (``GET /api/admin/federation``) as gauges."""

    def __init__(self, stats: list[QueueStats], now_ms: int):
        self._stats, self._now_ms = stats, now_ms

    def collect(self) -> Iterable[GaugeMetricFamily]:
        def family(name: str, documentation: str, value: Callable[[QueueStats], float | None]) -> GaugeMetricFamily:
            gauge = GaugeMetricFamily(name, documentation, labels=["destination"])
            for stats in self._stats:
                figure = value(stats)
                if figure is not None:
                    gauge.add_metric([stats.state.destination], figure)
            return gauge

        yield family("vibemuse_federation_queue_depth", "Events waiting in the outbox of each destination server.",
                     lambda stats: stats.depth)
        yield family("vibemuse_federation_oldest_pending_seconds",
                     "Age of the oldest event waiting for each destination (absent: none waits).",
                     lambda stats: None if stats.oldest_enqueued_ts is None
                     else max(0, self._now_ms - stats.oldest_enqueued_ts) / 1000)
        yield family("vibemuse_federation_delivery_lag_seconds",
                     "From enqueue to acceptance of the last delivered transaction, per destination.",
                     lambda stats: None if stats.state.last_delivery_lag_ms is None
                     else stats.state.last_delivery_lag_ms / 1000)
        yield family("vibemuse_federation_consecutive_failures",
                     "Failed attempts in a row to reach each destination (0: it answers).",
                     lambda stats: stats.state.failures)
