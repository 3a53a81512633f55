"""Sending events to other servers: one queue per destination, nothing lost.

Theory of operation
-------------------

An event bound for other servers never goes straight onto the network. The
service that makes it passes ``outbox_txns.op_enqueue(event, destinations)``
to ``EventWriter.store``, and the event and one outbox row per destination
commit in one database transaction. Once that transaction has committed the
``EventWriter`` wakes the ``DestinationQueue`` of each destination
(``FederationSender.wake``). So whatever a player was told is stored is also
queued; a crash anywhere after that costs at most a repeat.

Each destination has one ``DestinationQueue``, an asyncio task that sleeps
until it is woken or its retry time comes. Awake, it reads the oldest
``batch_size`` (≤ 50) rows for its destination and sends them as one
``PUT /federation/v1/send/{txnId}``. There is never more than one transaction
in flight to a destination: the task waits for the answer before it sends
the next batch (which it reads and encodes meanwhile: the oldest rows but
those in flight), and whatever was queued meanwhile goes in a later batch.
Within a destination events leave in the order they were queued.

The ``txnId`` is made from the batch itself (its first and last outbox ids
and a digest of its event ids), and a failed batch is kept in memory and
sent again unchanged: a retry carries the same ``txnId`` and body, and the
receiver, idempotent on (origin, txnId), answers a repeat with its first
answer. A batch re-read after a restart gets the same id if it holds the
same events and a new one if it does not; receivers also drop events whose
id they already hold, so delivery is at least once on the wire and exactly
once to players.

A 200 answer gives a result per event. Accepted and refused events alike are
then done: the backoff is reset, the next batch goes at once, and meanwhile
their rows are deleted in one write that also records the delivery lag (now
minus the oldest event's queue time); until it commits, those rows are left
out of the batches read (a delete that fails only means a repeat). A
refused event is final (it would be refused again); it is logged and counted
in the destination's figures, never retried.

A batch also stops short of ``max_body_bytes`` (262144, the default
``max_http_body_bytes`` of a receiver; at least one event). A 413 means the
destination takes less: the first half of the batch is sent instead and the
queue keeps that smaller size from then on; one event alone refused with 413
can never get through and is counted as refused (``payload_too_large``), so
a too-large event cannot block the queue behind it.

Anything else is a failure: a connection error or timeout, a 5xx or other
status, an unreadable answer, or an unknown address for the destination.
The queue then waits ``backoff_ms``: 1-2 s after the first failure, doubling
with each further one, jittered to between half and all of the step, capped
by ``federation_retry_max_seconds``. A 429 waits what its ``Retry-After``
says instead. The failure count and the next attempt are written to
``federation_destinations`` (the admin endpoint shows them). When the
destination contacts us (``FederationSender.contacted``) it is plainly up:
the backoff is dropped and the queue tries at once.

Unlike Synapse, which after a long outage sends a destination only the
newest events of each room, nothing here is skipped: after an outage of any
length the queue sends every row it holds, oldest first, 50 at a time, until
it is empty. At start-up ``FederationSender.start`` wakes a queue for every
destination with rows (keeping its failure count, so a flapping peer is not
hammered by restarts).

The seams (``app.py`` passes them in): ``base_url_of(name)`` (discovery;
``None`` when the name is unknown), ``authorize(method, uri, destination,
content)`` (the ``Authorization`` header value, the request signature of
spec/v1/federation.md; ``content`` is the body's canonical JSON, encoded
once for the signature and the wire), a Tornado ``AsyncHTTPClient``, a clock and a random
source for the jitter.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import json
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from vibemuse.clock import Clock
from vibemuse.protocol.canonical_json import encode_canonical_json
from vibemuse.storage.outbox import OutboxStore
from vibemuse.storage.outbox_txns import Delivery, QueuedEvent

log = logging.getLogger(__name__)

SEND_PATH = "/federation/v1/send/"
FIRST_RETRY_MS = 2_000
CONTACT_WRITE_INTERVAL_MS = 10_000  # how often a chatty peer's contact time is written
ANNOUNCE_WITHIN_MS = 7 * 24 * 3600 * 1000  # at start, say hello to the servers heard from or reached this recently

BaseUrlOf = Callable[[str], "str | None | Awaitable[str | None]"]
Authorize = Callable[[str, str, str, "dict[str, Any] | None"], "str | None"]


HOME_UNREACHABLE = "home_unreachable"  # the code counted for a channel message that waited too long
PAYLOAD_TOO_LARGE = "payload_too_large"  # the code counted for an event no transaction can carry
MAX_BODY_BYTES = 262_144  # the default max_http_body_bytes of a receiver (federation.md 2)
ENVELOPE_BYTES = 1024  # room for origin, origin_server_ts and the empty edus around the PDUs


@dataclass(frozen=True)
class SenderSettings:
    origin: str  # our server name
    batch_size: int = 50
    max_body_bytes: int = MAX_BODY_BYTES  # a transaction's body, unless the destination said less (413)
    retry_max_ms: int = 300_000
    request_timeout_seconds: float = 30.0


@dataclass(frozen=True)
class FederationSeams:
    """What the sender needs from the rest of the server (wired in ``app.py``)."""

    base_url_of: BaseUrlOf = field(default=lambda name: None)
    authorize: Authorize | None = None


@dataclass(frozen=True)
class Transaction:
    """One batch for one destination, sent unchanged until it is answered."""

    txn_id: str
    body: dict[str, Any]
    queued: tuple[QueuedEvent, ...]

    @functools.cached_property
    def encoded(self) -> bytes:
        """The body's canonical JSON: made once (while the batch before is in flight), sent and
        signed as it is, on every attempt."""
        return encode_canonical_json(self.body)


class RetryLater(Exception):
    """The destination did not take the transaction; ``retry_after_ms`` if it said when to come back."""

    def __init__(self, reason: str, retry_after_ms: int | None = None):
        super().__init__(reason)
        self.retry_after_ms = retry_after_ms


class TooLarge(RetryLater):
    """413: the destination takes smaller bodies than this transaction's."""


def make_transaction(origin: str, queued: list[QueuedEvent], now_ms: int,
                     max_body_bytes: int = MAX_BODY_BYTES) -> Transaction:
    """A transaction of the first events of ``queued`` whose body fits ``max_body_bytes``
    (at least one event, whatever its size)."""
    budget = max_body_bytes - ENVELOPE_BYTES
    taken = 1
    budget -= queued[0].size
    while taken < len(queued) and queued[taken].size + 1 <= budget:
        budget -= queued[taken].size + 1
        taken += 1
    queued = queued[:taken]
    digest = hashlib.sha256("\n".join(q.event["event_id"] for q in queued).encode()).hexdigest()[:16]
    txn_id = f"{queued[0].outbox_id}-{queued[-1].outbox_id}.{digest}"
    body = {"origin": origin, "origin_server_ts": now_ms, "pdus": [q.event for q in queued], "edus": []}
    return Transaction(txn_id, body, tuple(queued))


def backoff_ms(failures: int, cap_ms: int, rng: random.Random) -> int:
    """The wait after ``failures`` consecutive failures: 1-2 s, then doubling, jittered, at most ``cap_ms``."""
    step = min(cap_ms, FIRST_RETRY_MS * 2 ** min(failures - 1, 40))
    return max(1, int(step * rng.uniform(0.5, 1.0)))


def refusals_in(transaction: Transaction, answer: Any) -> tuple[tuple[str, str], ...]:
    """(event_id, code) of each event the destination refused, from a 200 answer's ``pdus``."""
    if not isinstance(answer, dict) or not isinstance(answer.get("pdus"), dict):
        raise RetryLater("answer without a pdus object")
    results = answer["pdus"]
    refused = []
    for queued in transaction.queued:
        result = results.get(queued.event["event_id"])
        if isinstance(result, dict) and isinstance(result.get("error"), dict):
            refused.append((queued.event["event_id"], str(result["error"].get("code", "unknown"))))
    return tuple(refused)


def retry_after_ms(value: str | None) -> int | None:
    """``Retry-After`` in whole seconds (the form VibeMUSE servers send); None if absent or a date."""
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip()) * 1000


class DestinationQueue:
    """Sends one destination's outbox, one transaction at a time (see the module docstring)."""

    def __init__(self, destination: str, sender: FederationSender):
        self.destination = destination
        self._sender = sender
        self._woken = asyncio.Event()
        self.failures = 0
        self.next_attempt_ts = 0
        self.transaction: Transaction | None = None  # the batch being sent or waiting to be sent again
        self.finishing: asyncio.Task[None] | None = None  # the write that deletes the batch last answered
        self._finishing_ids: frozenset[int] = frozenset()  # ... and its rows, left out of the next reads
        self.max_body_bytes = sender.settings.max_body_bytes  # lowered when the destination answers 413
        self.task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._woken.set()

    def contacted(self) -> None:
        self.failures = 0
        self.next_attempt_ts = 0
        self.wake()

    async def run(self) -> None:
        while True:
            await self._until_due()
            self._woken.clear()
            try:
                if self.transaction is None:
                    self.transaction = await self._sender.next_transaction(
                        self.destination, skip=self._finishing_ids, max_body_bytes=self.max_body_bytes)
                if self.transaction is None:
                    await self._woken.wait()
                    continue
                await self._attempt(self.transaction)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database, or a bug: never let the queue die
                log.exception("federation: sending to %s failed unexpectedly", self.destination)
                await self._fail(RetryLater("internal error"))

    async def _until_due(self) -> None:
        clock = self._sender.clock
        while (wait_ms := self.next_attempt_ts - clock()) > 0:
            self._woken.clear()
            try:  # not wait_for: on Python 3.11 it can swallow the cancel of a stopping sender
                async with asyncio.timeout(wait_ms / 1000):
                    await self._woken.wait()
            except TimeoutError:
                pass

    async def _attempt(self, transaction: Transaction) -> None:
        if await self._drop_too_old(transaction):
            return
        # The batch after this one is read while this one is in flight (it is sent only after
        # this one's answer): the oldest waiting events but those being sent now.
        sending = frozenset(queued.outbox_id for queued in transaction.queued) | self._finishing_ids
        upcoming = asyncio.ensure_future(self._sender.next_transaction(
            self.destination, skip=sending, max_body_bytes=self.max_body_bytes))
        try:
            try:
                answer = await self._sender.transmit(self.destination, transaction)
            except BaseException:
                upcoming.cancel()
                raise
        except TooLarge:
            await self._shrink(transaction)
            return
        except RetryLater as why:
            await self._fail(why)
            return
        self._finish(transaction, refusals_in(transaction, answer))
        try:
            self.transaction = await upcoming
        except Exception:  # it is read again at the top of the loop
            log.exception("federation: reading the next batch for %s failed", self.destination)
            self.transaction = None

    async def _drop_too_old(self, transaction: Transaction) -> bool:
        """Events that waited longer than their kind may (``too_old``: a channel message for an
        unreachable home) are dropped as refused ``home_unreachable``; the batch is made again
        without them."""
        too_old, now = self._sender.too_old, self._sender.clock()
        if too_old is None:
            return False
        stale = [q for q in transaction.queued if too_old(self.destination, q.event, q.enqueued_ts, now)]
        if not stale:
            return False
        await self._sender.outbox.mark_delivered(self.destination, Delivery(
            outbox_ids=tuple(q.outbox_id for q in stale), accepted=0,
            refusals=tuple((q.event["event_id"], HOME_UNREACHABLE) for q in stale),
            oldest_enqueued_ts=min(q.enqueued_ts for q in stale), now_ms=now))
        if self._sender.on_answered is not None:
            self._sender.on_answered(self.destination, tuple(q.event for q in stale),
                                     tuple((q.event["event_id"], HOME_UNREACHABLE) for q in stale))
        rest = [q for q in transaction.queued if q not in stale]
        self.transaction = make_transaction(self._sender.settings.origin, rest, now) if rest else None
        return True

    async def _shrink(self, transaction: Transaction) -> None:
        """413: send the first half of the batch (and everything after in batches that
        small); a single event too large for the destination is refused here, for good."""
        queued = list(transaction.queued)
        if len(queued) > 1:
            half = queued[:len(queued) // 2]
            self.max_body_bytes = ENVELOPE_BYTES + sum(event.size + 1 for event in half)
            self.transaction = make_transaction(self._sender.settings.origin, half, self._sender.clock())
            log.info("federation: %s takes smaller transactions; now at most %d bytes",
                     self.destination, self.max_body_bytes)
            return
        await self._done(transaction, ((queued[0].event["event_id"], PAYLOAD_TOO_LARGE),))
        self.transaction = None

    def _finish(self, transaction: Transaction, refusals: tuple[tuple[str, str], ...]) -> None:
        """The destination answered: the next batch goes at once, while its rows are deleted
        (one write after another, so the answers reach ``on_answered`` in order). A delete that
        fails only means the rows are sent again, which the destination drops."""
        self.failures = 0
        self.next_attempt_ts = 0
        ids = frozenset(queued.outbox_id for queued in transaction.queued)
        self._finishing_ids |= ids
        before = self.finishing

        async def delete() -> None:
            try:
                if before is not None:
                    await asyncio.gather(before, return_exceptions=True)
                await self._done(transaction, refusals)
            except Exception:
                log.exception("federation: forgetting what %s took failed; it is sent again", self.destination)
            finally:
                self._finishing_ids -= ids

        self.finishing = asyncio.get_running_loop().create_task(delete())

    async def _done(self, transaction: Transaction, refusals: tuple[tuple[str, str], ...]) -> None:
        """The destination answered for the batch: its rows go, the backoff is reset."""
        for event_id, code in refusals:
            log.warning("federation: %s refused event %s: %s (not retried)", self.destination, event_id, code)
        now = self._sender.clock()
        queued = transaction.queued
        await self._sender.outbox.mark_delivered(self.destination, Delivery(
            outbox_ids=tuple(q.outbox_id for q in queued), accepted=len(queued) - len(refusals), refusals=refusals,
            oldest_enqueued_ts=min(q.enqueued_ts for q in queued), now_ms=now))
        if self._sender.on_answered is not None:
            self._sender.on_answered(self.destination, tuple(q.event for q in queued), refusals)
        self.failures = 0
        self.next_attempt_ts = 0

    async def _fail(self, why: RetryLater) -> None:
        self.failures += 1
        delay = why.retry_after_ms
        if delay is None:
            delay = backoff_ms(self.failures, self._sender.settings.retry_max_ms, self._sender.rng)
        self.next_attempt_ts = self._sender.clock() + delay
        log.info("federation: %s: %s; attempt %d failed, next in %d ms",
                 self.destination, why, self.failures, delay)
        try:
            await self._sender.outbox.record_failure(self.destination, self.failures, self.next_attempt_ts)
        except Exception:  # only the figures are lost; the queue goes on backing off
            log.exception("federation: recording a failure for %s failed", self.destination)


class FederationSender:
    """All destination queues of one server; started and stopped with it."""

    def __init__(self, outbox: OutboxStore, *, settings: SenderSettings, seams: FederationSeams,
                 http: AsyncHTTPClient, clock: Clock, rng: random.Random | None = None):
        self.outbox = outbox
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()
        self._seams = seams
        self._http = http
        self.queues: dict[str, DestinationQueue] = {}
        # told (destination, events, refusals) when a destination has answered for a batch
        self.on_answered: Callable[[str, tuple[dict[str, Any], ...], tuple[tuple[str, str], ...]], None] | None = None
        # whether a queued event has waited too long to be worth sending (destination, event, enqueued, now)
        self.too_old: Callable[[str, dict[str, Any], int, int], bool] | None = None
        self._running = False
        self._contact_written: dict[str, int] = {}
        self._hellos: set[asyncio.Task[bool]] = set()

    async def start(self, announce_to: Iterable[str] = ()) -> None:
        """Resume every destination that has queued events, and tell ``announce_to`` (the
        servers we know) that we are back, so that what they queued for us comes now rather
        than at the end of their backoff (``hello``)."""
        self._running = True
        for name in await self.outbox.destinations_with_pending():
            state = await self.outbox.state(name)
            queue = self.queue(name)
            queue.failures = max(queue.failures, state.failures)
            queue.wake()
        recent = self.clock() - ANNOUNCE_WITHIN_MS
        known = {stats.state.destination for stats in await self.outbox.queue_stats()
                 if max(stats.state.last_contact_ts or 0, stats.state.last_success_ts or 0) >= recent}
        for name in sorted(known | set(announce_to)):
            self._hellos.add(asyncio.get_running_loop().create_task(self.hello(name)))

    async def hello(self, destination: str) -> bool:
        """An empty signed transaction: a receiver that had given up on us for a while treats
        any request from us as contact and sends what waits at once (federation.md 9)."""
        txn_id = f"hello.{self.clock()}.{self.rng.getrandbits(32):08x}"
        body = {"origin": self.settings.origin, "origin_server_ts": self.clock(), "pdus": [], "edus": []}
        try:
            await self.transmit(destination, Transaction(txn_id, body, ()))
            return True
        except RetryLater as why:
            log.info("federation: hello to %s: %s", destination, why)
            return False

    async def stop(self) -> None:
        await self.pause()
        self._http.close()

    async def pause(self) -> None:
        """Stop sending (another process of this server sends now); ``start`` sends again."""
        self._running = False
        tasks = [queue.task for queue in self.queues.values() if queue.task is not None] + list(self._hellos)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # the deletes of what was answered are let finish (cut short, they would only mean repeats)
        await asyncio.gather(*(queue.finishing for queue in self.queues.values() if queue.finishing is not None),
                             return_exceptions=True)
        for queue in self.queues.values():
            queue.task = None

    def queue(self, destination: str) -> DestinationQueue:
        queue = self.queues.get(destination)
        if queue is None:
            queue = self.queues[destination] = DestinationQueue(destination, self)
        if self._running and queue.task is None:
            queue.task = asyncio.get_running_loop().create_task(queue.run())
        return queue

    def wake(self, destinations: tuple[str, ...] | list[str]) -> None:
        """Something was queued for these destinations (called after the commit)."""
        for name in destinations:
            self.queue(name).wake()

    async def contacted(self, server_name: str) -> None:
        """``server_name`` just sent us a request: it is up, so its queue stops backing off."""
        queue = self.queues.get(server_name)
        backing_off = queue is not None and queue.failures > 0
        if queue is not None:
            queue.contacted()
        now = self.clock()
        if backing_off or now - self._contact_written.get(server_name, 0) >= CONTACT_WRITE_INTERVAL_MS:
            self._contact_written[server_name] = now
            await self.outbox.record_contact(server_name, now)

    async def next_transaction(self, destination: str, skip: frozenset[int] = frozenset(),
                               max_body_bytes: int = MAX_BODY_BYTES) -> Transaction | None:
        """The next batch for ``destination``: its oldest waiting events, leaving out ``skip``
        (the outbox ids of the batch in flight), as many as fit ``max_body_bytes``."""
        queued = await self.outbox.pending(destination, self.settings.batch_size + len(skip))
        queued = [event for event in queued if event.outbox_id not in skip][:self.settings.batch_size]
        if not queued:
            return None
        transaction = make_transaction(self.settings.origin, queued, self.clock(), max_body_bytes)
        transaction.encoded  # encoded now, while the batch before is in flight
        return transaction

    async def transmit(self, destination: str, transaction: Transaction) -> Any:
        """PUT the transaction; the decoded 200 answer, or ``RetryLater``."""
        base_url = self._seams.base_url_of(destination)
        if inspect.isawaitable(base_url):
            base_url = await base_url
        if not base_url:
            raise RetryLater("no known address")
        uri = urlsplit(base_url).path.rstrip("/") + SEND_PATH + transaction.txn_id
        headers = {"Content-Type": "application/json"}
        body = transaction.encoded  # the same bytes for the wire and the signature
        authorization = self._seams.authorize and self._seams.authorize("PUT", uri, destination, body)
        if authorization:
            headers["Authorization"] = authorization
        request = HTTPRequest(
            base_url.rstrip("/") + SEND_PATH + transaction.txn_id, method="PUT", headers=headers,
            body=body, request_timeout=self.settings.request_timeout_seconds,
            connect_timeout=self.settings.request_timeout_seconds)
        try:
            response = await self._http.fetch(request, raise_error=False)
        except Exception as error:  # refused, reset, timed out, TLS: all mean "not now"
            raise RetryLater(f"{type(error).__name__}: {error}") from None
        if response.code == 413:
            raise TooLarge("too large (413)")
        if response.code == 429:
            raise RetryLater("busy (429)", retry_after_ms(response.headers.get("Retry-After")))
        if response.code != 200:
            raise RetryLater(f"HTTP {response.code}")
        try:
            return json.loads(response.body)
        except ValueError:
            raise RetryLater("answer is not JSON") from None
