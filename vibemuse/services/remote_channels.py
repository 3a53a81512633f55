"""The member's side of channels shared across servers (spec/v1/federation.md section 10).

Theory of operation
-------------------
A channel homed on another server is ordered there; this server keeps a
**copy** of it for its players on it (``services/shared_channels.py``
tells the whole story; ``services/channel_home.py`` is the other side).

- **join**: a signed ``POST /federation/v1/channels/{id}/join`` carrying the
  join event this server made and signed for its player; the home decides
  (exists, private and not invited, banned), stores and stamps the join, and
  answers with the channel's settings, members and latest events, which
  become (or bring up to date) the copy; then the player is tuned in.
- **speaking and leaving**: the event is made and signed here, queued for
  the home in the outbox (so an outage of the home loses nothing) and the
  ack waits for the home's answer (``SUBMIT_WAIT_SECONDS``): accepted, the
  ack names the event, which arrives a moment later relayed and stamped;
  refused, the player gets the home's code. If the home does not answer in
  time, the ack says the event is queued; it reaches the channel in order
  when the home is back.
- **relays**: an event the home relays (its stamp already checked by the
  receiver) is stored if it is the next one, with what it changes
  (membership, settings), and sent to the players here; one already held is
  a no-op; one after a gap is refused ``out_of_order`` and the copy catches
  up with ``GET /federation/v1/channels/{id}/events?after=<seq>``.

Everything of one channel on this server happens under one lock
(``ChannelsHere.lock``, shared with the home's side), so relays, catch-ups
and joins never interleave.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote, urlencode

from vibemuse.clock import Clock
from vibemuse.federation.client import FederationClient, Unreachable
from vibemuse.protocol import content as compose
from vibemuse.protocol.channel_chain import STAMP_KEY, StampError, chain_of, check_successor
from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.federation_units import PduRefusal
from vibemuse.protocol.ids import parse_channel_id
from vibemuse.services.accounts import Principal
from vibemuse.services.shared_channels import (
    MEMBER, MESSAGE, SETTINGS, ChannelsHere, home_of, record_of, server_of, state_of, targets, unstamped)
from vibemuse.storage import Receipt, Storage, TransactionKey
from vibemuse.storage import chain_txns
from vibemuse.storage import channel_txns as ops
from vibemuse.storage.channel_txns import ChannelRecord, MemberRecord

log = logging.getLogger(__name__)

SUBMIT_WAIT_SECONDS = 2.0  # how long an ack waits for the home's answer before it says "queued"
BACKFILL_PAGE = 100

# Set by the WebSocket handler while it handles a frame: the answer to a member's event for a
# channel homed elsewhere may come after the frames that follow it (protocol.md 5.4).
ANSWER_LATER: contextvars.ContextVar[bool] = contextvars.ContextVar("answer_later", default=False)


@dataclass(frozen=True)
class Answering:
    """A member's event queued for its channel's home, whose answer (the receipt, or the home's
    refusal as ProtocolError) ``answer`` will give."""

    answer: "asyncio.Future[Receipt]"


Checker = Callable[[dict[str, Any], dict[str, Any]], Any]  # (event, stamp) -> awaitable PduRefusal | None


class RemoteChannels:
    """The member's side: the players here on channels homed elsewhere, and the copies kept
    of those channels."""

    def __init__(self, storage: Storage, here: ChannelsHere, *, client: FederationClient | None, clock: Clock,
                 check_stamped: Checker | None = None, wake: Callable[[tuple[str, ...]], None] | None = None,
                 queue_seconds: int = 600):
        self._storage = storage
        self._here = here
        self._client = client
        self._events = here.events
        self._broadcaster = here.broadcaster
        self._subscriptions = here.subscriptions
        self._server_name = here.server_name
        self._clock = clock
        self.check_stamped = check_stamped  # the receiver's check of a stamped event (set by app.py)
        self._wake = wake
        self._waiters: dict[str, asyncio.Future[str | None]] = {}
        self._catching_up: dict[str, asyncio.Task[None]] = {}
        self.queue_ms = queue_seconds * 1000  # how long a member's event waits for an unreachable home

    @property
    def reachable(self) -> bool:
        """Whether channels of other servers can be joined (federation is on)."""
        return self._client is not None

    def is_remote(self, channel_id: str) -> bool:
        return self._here.is_remote(channel_id)

    async def join(self, principal: Principal, channel_id: str, alias: str | None, title: str | None) -> Receipt:
        """Join a channel homed on another server."""
        home = home_of(channel_id)
        held = await self._storage.get_channel(channel_id)
        member = await self._storage.get_membership(channel_id, principal.user_id) if held else None
        if member is not None:  # already in: only alias and title change, as on a channel of ours
            changes = {key: value for key, value in (("alias", alias), ("title", title)) if value is not None}
            if changes:
                await self._events.store([], None, ops=[ops.op_update_member(channel_id, principal.user_id,
                                                                             **changes)])
            return Receipt(None, None)
        # Ask first (as Matrix's make_join): the home says no early, and gives the name to show.
        preview = await self._ask_home(
            home, "GET", f"/federation/v1/channels/{quote(channel_id)}/join?user={quote(principal.user_id)}")
        name = str(preview.get("name") or (held.name if held else channel_id[1:].split(":", 1)[0]))
        event = self._events.make(MEMBER, principal.user_id, {
            "membership": "join", "target": principal.user_id, "target_name": principal.user.username,
            "speaker": principal.user.username,
            "rendered": compose.channel_notice(name, f"{principal.user.username} has joined this channel."),
        }, channel_id=channel_id)
        answer = await self._ask_home(home, "POST", f"/federation/v1/channels/{quote(channel_id)}/join",
                                      {"event": event})
        async with self._here.lock(channel_id):
            positions, stored = await self._adopt(channel_id, answer, principal.user_id, alias, title,
                                                  event["event_id"])
        self._subscriptions.tune(principal.user_id, channel_id, True, max(positions, default=None))
        joined_at = None
        for item, position in zip(stored, positions):
            if item["event_id"] == event["event_id"]:
                joined_at = position
                self._here.deliver(item, position, also=[principal.user_id])
        return Receipt(event["event_id"], joined_at)

    async def submit(self, principal: Principal, message_id: str, kind: str, event: dict[str, Any]
                     ) -> Receipt | Answering:
        """Send a member's event (a message, a leave) to the channel's home; the ack waits for its
        answer — or, where the caller can answer later (``ANSWER_LATER``: a WebSocket frame), the
        event is queued now and ``Answering`` carries the wait, so the socket's next frames need
        not wait for this one's round trip to the home."""
        home = home_of(event["channel_id"])
        request = TransactionKey(principal.user_id, kind, message_id)
        receipt = await self._storage.queue_for_home(event, home, request, self._clock())
        if receipt.duplicate:
            return receipt
        waiter = self._waiters[event["event_id"]] = asyncio.get_running_loop().create_future()
        if self._wake is not None:
            self._wake((home,))
        answer = self._answer(receipt, waiter, event["event_id"], home)
        if ANSWER_LATER.get():
            return Answering(asyncio.ensure_future(answer))
        return await answer

    async def _answer(self, receipt: Receipt, waiter: asyncio.Future[str | None], event_id: str,
                      home: str) -> Receipt:
        try:
            refusal = await asyncio.wait_for(asyncio.shield(waiter), SUBMIT_WAIT_SECONDS)
        except asyncio.TimeoutError:
            return receipt  # queued: it reaches the channel, in order, when the home answers
        finally:
            self._waiters.pop(event_id, None)
        if refusal is not None:
            code, _, message = refusal.partition(" ")
            raise ProtocolError(_known(code), message or f"{home} refused it ({code}).")
        return receipt

    def answered(self, destination: str, events: tuple[dict[str, Any], ...],
                 refusals: tuple[tuple[str, str], ...]) -> None:
        """The outbox sender heard ``destination``'s answer for these events (a refusal: its code).
        A refused event of a player here whose ack has gone already: they get an ``error``."""
        refused = dict(refusals)
        for event in events:
            event_id, code = event["event_id"], refused.get(event["event_id"])
            waiter = self._waiters.get(event_id)
            if waiter is not None and not waiter.done():
                waiter.set_result(None if code is None else f"{code} {destination} refused it ({code}).")
            elif code is not None and "channel_id" in event and server_of(event["sender"]) == self._server_name:
                asyncio.get_running_loop().create_task(self._tell_refused(event, destination, code))

    async def _tell_refused(self, event: dict[str, Any], home: str, code: str) -> None:
        request = await self._storage.request_of(event["sender"], event["event_id"])
        data: dict[str, Any] = {"code": _known(code).value, "message": (
            f"{home} did not take your {_what(event)} on {event['channel_id']}" + (
                f": it could not be reached within {self.queue_ms // 1000} seconds." if code == "home_unreachable"
                else f" ({code})."))}
        if request is not None:
            data["inReplyTo"] = request
        self._broadcaster.to_user(event["sender"], self._broadcaster.frame("error", data, to_user=event["sender"]))

    def too_old(self, destination: str, event: dict[str, Any], enqueued_ts: int, now_ms: int) -> bool:
        """A member's event queued for its channel's home that has waited past ``queue_ms``."""
        channel_id = event.get("channel_id")
        return (isinstance(channel_id, str) and STAMP_KEY not in (event.get("unsigned") or {})
                and parse_channel_id(channel_id) is not None and home_of(channel_id) == destination
                and now_ms - enqueued_ts > self.queue_ms)

    async def directory_of(self, server: str, search: str | None, after: str | None, limit: int
                           ) -> tuple[list[ChannelRecord], str | None]:
        """The public channels of another server, asked of it (10.7)."""
        query = urlencode([(key, value) for key, value in (("q", search), ("after", after), ("limit", limit))
                           if value is not None])
        answer = await self._ask_home(server, "GET", f"/federation/v1/channels?{query}")
        try:
            found = [record_of(str(entry["channel_id"]), entry) for entry in answer["channels"]]
            next_cursor = answer.get("next")
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(ErrorCode.HOME_UNREACHABLE, f"{server}'s answer is malformed: {exc}") from None
        mine = [channel for channel in found if channel.visibility == "public"
                and parse_channel_id(channel.channel_id) is not None and home_of(channel.channel_id) == server]
        return mine[:limit], next_cursor if isinstance(next_cursor, str) else None

    async def leave_as_server(self, principal: Principal, channel_id: str) -> Receipt:
        """Every player of this server leaves a channel homed elsewhere (an admin's decision, 10.6)."""
        channel = await self._storage.get_channel(channel_id) if self.is_remote(channel_id) else None
        if channel is None:
            raise ProtocolError(ErrorCode.UNKNOWN_CHANNEL, f"This server takes no part in {channel_id!r}.",
                                details={"channel": channel_id[:64]})
        members = await self._storage.channel_members(channel_id)
        if not any(server_of(member.user_id) == self._server_name for member in members):
            raise ProtocolError(ErrorCode.NOT_A_MEMBER, f"No player of {self._server_name} is on {channel.name}.")
        line = compose.server_membership_line("leave", principal.user.username, self._server_name, None)
        event = self._events.make(MEMBER, principal.user_id, {
            "membership": "leave", "target_server": self._server_name, "speaker": principal.user.username,
            "rendered": compose.channel_notice(channel.name, line)}, channel_id=channel_id)
        return await self.submit(principal, secrets.token_urlsafe(12), "server_leave", event)

    async def _ask_home(self, home: str, method: str, path: str, content: Any = None) -> dict[str, Any]:
        if self._client is None:
            raise ProtocolError(ErrorCode.HOME_UNREACHABLE, f"{home} cannot be reached: federation is off.")
        try:
            status, body = await self._client.request(home, method, path, content)
        except Unreachable as why:
            raise ProtocolError(ErrorCode.HOME_UNREACHABLE, f"{home} cannot be reached: {why}") from None
        if status != 200:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            code = _known(str(error.get("code", "")))
            raise ProtocolError(code, str(error.get("message") or f"{home} refused it."),
                                details=error.get("details") if code == ErrorCode.BANNED else None)
        if not isinstance(body, dict):
            raise ProtocolError(ErrorCode.HOME_UNREACHABLE, f"{home} gave an answer that is not an object.")
        return body

    async def _adopt(self, channel_id: str, answer: dict[str, Any], user_id: str, alias: str | None,
                     title: str | None, join_id: str) -> tuple[list[int], list[dict[str, Any]]]:
        """Make (or bring up to date) the copy from a join's answer; the stored events and positions."""
        try:
            info, members = answer["channel"], answer["members"]
            items = [(entry["event"], entry["stamp"]) for entry in answer["events"]]
            record = record_of(channel_id, info)
            roster = [MemberRecord(channel_id, str(m["user_id"]), str(m["role"]), None, m.get("title"),
                                   m.get("muted_until"), int(m.get("joined_ts", 0))) for m in members]
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(ErrorCode.HOME_UNREACHABLE, f"The home's answer is malformed: {exc}") from None
        for event, stamp in items:
            refusal = await self._check(event, stamp)
            if refusal is not None:
                raise ProtocolError(ErrorCode.HOME_UNREACHABLE, f"The home's answer has a bad event: {refusal.message}")
        held = await self._storage.channel_head(channel_id)
        fresh = _following(items, held)
        if join_id not in {event["event_id"] for event, _ in items}:
            raise ProtocolError(ErrorCode.HOME_UNREACHABLE, "The home's answer does not hold the join.")
        state = [chain_txns.op_keep_replica(record, roster, self._server_name),
                 ops.op_update_member(channel_id, user_id, alias=alias, title=title),
                 chain_txns.op_keep_stamps(channel_id, [stamp for _, stamp in fresh])]
        if any(event["event_id"] == join_id for event, _ in fresh):
            state.append(ops.op_set_joined_position(channel_id, user_id, join_id))
        stored = [unstamped(event) for event, _ in fresh]
        _, positions = await self._events.store(stored, None, ops=state)
        last_kept = fresh[-1][1]["seq"] if fresh else (held[0] if held else 0)
        if items and items[-1][1]["seq"] > last_kept:  # the answer did not join up with the copy
            self.catch_up_soon(channel_id)
        return positions, stored

    async def _check(self, event: Any, stamp: Any) -> PduRefusal | None:
        if self.check_stamped is None:
            return PduRefusal(ErrorCode.INVALID_STAMP.value, "no checker")
        return await self.check_stamped(event, stamp)

    # -- relays from the home -------------------------------------------------------------------

    async def receive_relays(self, channel_id: str, items: list[tuple[dict[str, Any], dict[str, Any]]]
                             ) -> list[PduRefusal | None]:
        """Events of a channel homed elsewhere, relayed by its home in order (stamps checked)."""
        async with self._here.lock(channel_id):
            results, stored = await self._keep(channel_id, items)
        if any(result is not None for result in results):
            self.catch_up_soon(channel_id)
        return results

    async def _keep(self, channel_id: str, items: list[tuple[dict[str, Any], dict[str, Any]]]
                    ) -> tuple[list[PduRefusal | None], list[dict[str, Any]]]:
        held = await self._storage.channel_head(channel_id)
        if held is None:
            gap = PduRefusal(ErrorCode.OUT_OF_ORDER.value, f"{channel_id} is not held here (yet)")
            return [gap] * len(items), []
        seq, head = held
        channel = await self._storage.get_channel(channel_id)
        results: list[PduRefusal | None] = []
        fresh: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for event, stamp in items:
            try:
                if check_successor(stamp, seq, head):
                    fresh.append((event, stamp))
                    seq, head = stamp["seq"], chain_of(stamp)
                results.append(None)
            except StampError as exc:
                results.extend([PduRefusal(ErrorCode.OUT_OF_ORDER.value, str(exc))] * (len(items) - len(results)))
                break
        if not fresh or channel is None:
            return results, []
        stored = [unstamped(event) for event, _ in fresh]
        state: list[Any] = [chain_txns.op_keep_stamps(channel_id, [stamp for _, stamp in fresh])]
        for event in stored:
            state.extend(state_of(channel, event, self._clock()))
        _, positions = await self._events.store(stored, None, ops=state)
        for event, position in zip(stored, positions):
            self._effects(event, position)
            self._here.deliver(event, position, also=targets(event))
        return results, stored

    def catch_up_soon(self, channel_id: str) -> None:
        """Fetch what the copy misses from the home, once at a time per channel."""
        running = self._catching_up.get(channel_id)
        if running is None or running.done():
            self._catching_up[channel_id] = asyncio.get_running_loop().create_task(self.catch_up(channel_id))

    async def catch_up(self, channel_id: str) -> int:
        """Everything after the copy's last event, from the home, page by page; how many were new."""
        await asyncio.sleep(0)
        total = 0
        try:
            while True:
                held = await self._storage.channel_head(channel_id)
                if held is None:
                    return total
                answer = await self._ask_home(home_of(channel_id), "GET", (
                    f"/federation/v1/channels/{quote(channel_id)}/events?after={held[0]}&limit={BACKFILL_PAGE}"))
                items = [(entry["event"], entry["stamp"]) for entry in answer.get("events", [])]
                for event, stamp in items:
                    if await self._check(event, stamp) is not None:
                        log.warning("catch-up of %s: a bad event from its home; stopping", channel_id)
                        return total
                async with self._here.lock(channel_id):
                    _, stored = await self._keep(channel_id, items)
                total += len(stored)
                if len(items) < BACKFILL_PAGE or not stored:
                    return total
        except ProtocolError as why:
            log.info("catch-up of %s: %s", channel_id, why)
            return total

    # -- what an event does here ------------------------------------------------------------------

    def _effects(self, event: dict[str, Any], position: int) -> None:
        """Tune a player of this server in as their relayed join says."""
        content = event.get("content", {})
        if event["type"] != MEMBER or not isinstance(content.get("target"), str):
            return
        target = content["target"]
        if server_of(target) == self._server_name and content.get("membership") == "join":
            self._subscriptions.tune(target, event["channel_id"], True, position)


def _following(items: list[tuple[dict[str, Any], dict[str, Any]]], held: tuple[int, str] | None
               ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The items a copy at ``held`` keeps: all (a new copy), or those that follow its head, in order."""
    if held is None:
        kept, seq, head = [], None, None
        for event, stamp in items:
            if seq is not None and (stamp["seq"] != seq + 1 or stamp["prev"] != head):
                break  # keep one unbroken run
            kept.append((event, stamp))
            seq, head = stamp["seq"], chain_of(stamp)
        return kept
    seq, head = held
    kept = []
    for event, stamp in items:
        try:
            if check_successor(stamp, seq, head):
                kept.append((event, stamp))
                seq, head = stamp["seq"], chain_of(stamp)
        except StampError:
            break
    return kept




def _what(event: dict[str, Any]) -> str:
    if event["type"] == MESSAGE:
        return "message"
    if event["type"] == SETTINGS:
        return "change"
    return str(event.get("content", {}).get("membership", "request"))


def _known(code: str) -> ErrorCode:
    """The home's error code, if it is one of ours; else ``forbidden``."""
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.FORBIDDEN
