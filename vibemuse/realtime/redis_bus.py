"""``RedisBus``: the processes of one server share their deliveries and appends over Redis.

Theory of operation. With ``bus_url`` set, every process of a server
publishes, on one Redis pub/sub channel (``bus_channel``), what the others
must know, in the order it happened there:

- an **append** (``StreamOrder``'s ``Append``: the events a process stored,
  their positions, the position they follow), once per append, never per
  recipient;
- a **delivery**: a frame for a topic (a room, a user, a channel, everyone),
  encoded once, with the users to skip and the position of its event;
- a **signal**: a small named record for the services (a socket to close
  everywhere, an outbox to wake), handed to the listeners of its kind.

What a process publishes it also hands to itself at once (through the same
``StreamOrder``), and ignores when it comes back. An append is published
after the frames that carry its events (they are sent in the same step of
the event loop, the append at the end of it), so a process that takes an
append has its frames already, held, and releases them in stream order. What comes from the others
goes through the ``StreamOrder``, which delivers frames in stream order
and fills a missing append from the database (``_gap_watch``); the frames of such an append never come, so the
sockets that should have had them are told to resume (``on_lost``).

Every record carries the wall-clock time it was queued (``ts``); the
receiving process reports its age (``observe_lag``: the bus lag metric, which
includes the time a record waited while Redis was away; across machines it
also includes the difference of their clocks).

One connection publishes, in order (Redis keeps the order of one
connection's commands); a second one subscribes. If Redis cannot be reached,
records wait (a bounded queue) and are sent when it is back; if the
subscription broke, what was published meanwhile cannot be told again:
every socket of this process, which may have missed frames, is closed with
4012 (``RESUME``), so that its client reconnects and resumes (protocol.md
5.7), and the stream is caught up from the database at once
(``_catch_up``), so that the appends that follow join on without a gap.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import time
from collections import deque
from typing import Any, Awaitable, Callable

import redis.asyncio as redis
from redis.exceptions import RedisError

from vibemuse.realtime.bus import Delivery
from vibemuse.realtime.stream import Append, StreamOrder

log = logging.getLogger(__name__)

MAX_QUEUED = 100_000  # records kept while Redis is away; past it the oldest deliveries go (sockets resume)
# How long an append waits for its predecessor before that is read from the database and the sockets
# that should have had its frames resume. An append is only lost if its process died between its commit
# and its publish; but an overloaded process publishes late (0.5 s was seen at 10 speakers on a 2-core
# machine): waiting too little makes whole rooms reconnect exactly when the server is busiest.
GAP_WAIT_MS = 2000
RECONNECT_SECONDS = (0.1, 5.0)  # first and longest wait between attempts

# Signals (``signal``/``on_signal``) between the processes of a server
RESYNC = "resync"  # frames were lost on the way: every socket resumes
TOKEN_REVOKED = "token_revoked"  # {"tokenHash"}: close the sockets of a revoked token, wherever they are
OUTBOX = "outbox"  # {"destinations"}: events were queued for these servers (the sending process wakes)
CONTACTED = "contacted"  # {"server"}: that server sent us a request, so it is up
BLOCK = "block"  # {"blocker", "blocked", "on"}: a block set or lifted (each process keeps the list in memory)
TUNE = "tune"  # {"channel", "user" (None: every listener), "on"}: who hears a channel (at its event's position)
PLACE = "place"  # {"user", "room"}: a user moved (their sockets on every process hear the new room)
SEEN = "seen"  # {"sighting"} or {"gone": user id}: a user's presence on the sending process (``Directory``)
ALIVE = "alive"  # {}: the sending process is alive (every few seconds)
INPUT = "input"  # {"input": {user id: last input ms}}: users of the sending process who did something lately
HELLO = "hello"  # {}: a process started: the others answer with ``HELD``
HELD = "held"  # {"to", "sightings"}: everyone online on the sending process, for a newcomer
BYE = "bye"  # {}: the sending process is stopping: its users are offline there
TOOK = "took"  # {"debits": [[action, key, count]]}: rate-limit tokens taken on the sending process
MUTE = "mute"  # {"user", "until"}: a spam mute (0: lifted) decided on the sending process

RECORD_KINDS = {"d": "delivery", "a": "append", "s": "signal"}  # as the bus lag metric names them

GapReader = Callable[[int, int], Awaitable[list[Append]]]  # (after, up to) -> the appends, from the database
HeadReader = Callable[[], Awaitable[int]]  # the newest committed position, from the database


def new_instance_name() -> str:
    """A name for this process, unique among the processes of a server."""
    return f"{socket.gethostname()}/{secrets.token_hex(4)}"


class RedisBus:
    def __init__(self, url: str, channel: str, *, instance: str, clock: Callable[[], int]):
        self.url = url
        self.channel = channel
        self.instance = instance
        self._clock = clock
        self._order: StreamOrder | None = None
        self._local: Callable[[Delivery], None] | None = None
        self._signals: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self._queue: deque[bytes] = deque()
        self._queued = asyncio.Event()
        self._dropped = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._read_gap: GapReader | None = None
        self._read_head: HeadReader | None = None
        self.on_resync: Callable[[], None] = lambda: None  # the subscription broke: close sockets to resume
        # events read from the database because their frames never came: their sockets must resume
        self.on_lost: Callable[[list[dict[str, Any]]], None] = lambda events: None
        self.connected = False  # whether both connections are up (for /ready)
        # told the age of each record from another process, in seconds, and its kind (metrics)
        self.observe_lag: Callable[[str, float], None] | None = None
        self.on_signal(RESYNC, self._resync)

    # -- wiring ---------------------------------------------------------------------------------

    def attach(self, deliver: Callable[[Delivery], None]) -> None:
        self._local = deliver

    def attach_stream(self, order: StreamOrder, read_gap: GapReader, read_head: HeadReader | None = None) -> None:
        self._order = order
        self._read_gap = read_gap
        self._read_head = read_head

    def on_signal(self, kind: str, listener: Callable[[dict[str, Any]], None]) -> None:
        self._signals.setdefault(kind, []).append(listener)

    def _resync(self, _: dict[str, Any]) -> None:
        self._resume_everything()

    def _resume_everything(self) -> None:
        """Frames may have been missed: every socket here resumes (``on_resync``), and the stream
        is caught up from the database at once (``_catch_up``), so that the next append through the
        bus follows on, instead of waiting out the gap watch, which would close the sockets that
        have just resumed a second time."""
        self.on_resync()
        task = asyncio.get_running_loop().create_task(self._catch_up())
        self._tasks.append(task)
        task.add_done_callback(lambda done: done in self._tasks and self._tasks.remove(done))

    async def _catch_up(self) -> None:
        order = self._order
        if order is None or self._read_gap is None or self._read_head is None:
            return
        try:
            head = await self._read_head()
            if head <= order.released:
                return
            found = await self._read_gap(order.released, head)
            now = order.released  # appends may have come through the bus meanwhile: only what follows
            rows = [(p, e) for append in found for p, e in zip(append.positions, append.events) if p > now]
            if rows:
                order.fill([Append(now, tuple(p for p, _ in rows), tuple(e for _, e in rows))], self._clock())
        except Exception:  # the database is away: the gap watch fills it later
            log.exception("bus: cannot catch the stream up after a resync")

    # -- publishing ----------------------------------------------------------------------------------

    def publish(self, delivery: Delivery) -> None:
        self._hand_on(delivery)
        header = {"k": "d", "i": self.instance, "t": delivery.topic, "p": delivery.position}
        if delivery.except_user:
            header["x"] = delivery.except_user
        if delivery.except_users:
            header["xs"] = sorted(delivery.except_users)
        self._send(header, delivery.frame)

    def appended(self, append: Append) -> None:
        """This process stored events: hand them on here, in order, and tell the others — once
        the frames that carry them are out (the services send them as soon as the append
        returns, without waiting), so that every process has an append's frames in hand
        when it takes the append, and releases them before any later one's."""
        asyncio.get_running_loop().call_soon(self._after_frames, append)

    def _after_frames(self, append: Append) -> None:
        if self._order is not None:
            self._order.appended(append, self._clock())
        body = json.dumps(list(append.events), separators=(",", ":")).encode("utf-8")
        self._send({"k": "a", "i": self.instance, "a": append.after, "p": list(append.positions)}, body)

    def signal(self, kind: str, data: dict[str, Any], position: int | None = None) -> None:
        """Tell every process of the server, this one included; with the ``position`` of the event
        that caused it, each acts on it at that place in the stream (``StreamOrder.act``)."""
        self._at(position, kind, data)
        self._send({"k": "s", "i": self.instance, "s": kind, "p": position}, json.dumps(data).encode("utf-8"))

    def _at(self, position: int | None, kind: str, data: dict[str, Any]) -> None:
        if position is not None and self._order is not None:
            self._order.act(position, lambda: self._on_signal(kind, data))
        else:
            self._on_signal(kind, data)

    def _send(self, header: dict[str, Any], body: bytes) -> None:
        header["ts"] = round(time.time(), 6)
        if len(self._queue) >= MAX_QUEUED:
            self._queue.popleft()
            self._dropped += 1
        self._queue.append(json.dumps(header, separators=(",", ":")).encode("utf-8") + b"\n" + body)
        self._queued.set()

    # -- running ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (waiting until the subscription is up), then keep both connections going."""
        subscribed = asyncio.get_running_loop().create_future()
        self._tasks = [asyncio.create_task(self._subscriber(subscribed)), asyncio.create_task(self._publisher()),
                       asyncio.create_task(self._gap_watch())]
        await subscribed

    async def stop(self, flush_seconds: float = 2.0) -> None:
        """Send what is queued (for up to ``flush_seconds``), then disconnect."""
        deadline = asyncio.get_running_loop().time() + flush_seconds
        while self._queue and self.connected and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _publisher(self) -> None:
        wait = RECONNECT_SECONDS[0]
        client: redis.Redis | None = None
        while True:
            await self._queued.wait()
            try:
                if client is None:
                    client = redis.Redis.from_url(self.url)
                while self._queue:
                    batch = [self._queue[index] for index in range(min(len(self._queue), 256))]
                    pipe = client.pipeline(transaction=False)
                    for record in batch:
                        pipe.publish(self.channel, record)
                    await pipe.execute()
                    for _ in batch:
                        self._queue.popleft()
                self._queued.clear()
                wait = RECONNECT_SECONDS[0]
                if self._dropped:  # the others missed some of our frames: all sockets resume
                    log.warning("bus: %d records dropped while Redis was away; sockets resume", self._dropped)
                    self._dropped = 0
                    self.signal(RESYNC, {"from": self.instance})
            except (RedisError, OSError) as error:
                log.warning("bus: cannot publish to %s (%s); retrying in %.1f s", self.url, error, wait)
                if client is not None:
                    await client.aclose()
                client = None
                await asyncio.sleep(wait)
                wait = min(wait * 2, RECONNECT_SECONDS[1])

    async def _subscriber(self, subscribed: asyncio.Future[None]) -> None:
        wait, broken = RECONNECT_SECONDS[0], False
        while True:
            client = redis.Redis.from_url(self.url)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.connected = True
                if not subscribed.done():
                    subscribed.set_result(None)
                if broken:  # what was published meanwhile is lost to us: every socket here resumes
                    log.warning("bus: subscription to %s back; sockets here resume", self.channel)
                    self._resume_everything()
                    broken = False
                wait = RECONNECT_SECONDS[0]
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._received(message["data"])
            except (RedisError, OSError) as error:
                self.connected, broken = False, True
                log.warning("bus: subscription to %s lost (%s); retrying in %.1f s", self.channel, error, wait)
            finally:
                await pubsub.aclose()
                await client.aclose()
            await asyncio.sleep(wait)
            wait = min(wait * 2, RECONNECT_SECONDS[1])

    async def _gap_watch(self) -> None:
        """Fill from the database an append that waited too long for its predecessor."""
        while True:
            await asyncio.sleep(GAP_WAIT_MS / 5000)
            order = self._order
            if order is None or self._read_gap is None or order.stalled_since is None:
                continue
            if self._clock() - order.stalled_since < GAP_WAIT_MS or order.gap is None:
                continue
            after, upto = order.gap
            try:
                found = await self._read_gap(after, upto)
            except Exception:  # the database is away: try again at the next round
                log.exception("bus: cannot read positions %d-%d", after + 1, upto)
                continue
            log.warning("bus: positions %d-%d never came through the bus; read from the database", after + 1, upto)
            # the sockets that should have had them close first: the frames held behind the gap must
            # not reach them, or they would resume from after what they never got
            self.on_lost([event for append in found for event in append.events])
            order.fill(found, self._clock())

    # -- receiving -------------------------------------------------------------------------------------

    def _received(self, record: bytes) -> None:
        head, _, body = record.partition(b"\n")
        try:
            header = json.loads(head)
        except ValueError:
            log.warning("bus: a record that is not ours on %s", self.channel)
            return
        if header.get("i") == self.instance:
            return  # our own, handed on when published
        kind = header.get("k")
        if self.observe_lag is not None and "ts" in header:
            self.observe_lag(RECORD_KINDS.get(kind, "other"), max(0.0, time.time() - header["ts"]))
        if kind == "d":
            self._hand_on(Delivery(header["t"], body, header.get("x"), frozenset(header.get("xs", ())),
                                   header.get("p")))
        elif kind == "a" and self._order is not None:
            self._order.appended(Append(header["a"], tuple(header["p"]), tuple(json.loads(body))), self._clock())
        elif kind == "s":
            self._at(header.get("p"), header["s"], json.loads(body))

    def _hand_on(self, delivery: Delivery) -> None:
        if self._order is not None:
            self._order.deliver(delivery)
        elif self._local is not None:
            self._local(delivery)

    def _on_signal(self, kind: str, data: dict[str, Any]) -> None:
        for listener in self._signals.get(kind, ()):
            listener(data)
