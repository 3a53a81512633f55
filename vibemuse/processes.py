"""The processes of one server, made one: what each tells the others through the bus.

``app.py`` builds every process the same way; with ``bus_url`` it calls
``share_across_processes`` once its services exist. From then on:

- a revoked token closes its sockets on every process (logout, password
  change), and a block reaches every process's in-memory list;
- who hears a channel (joins, leaves, kicks, bans, a server leaving) and
  where a user stands (moves) change on every process that holds a socket of
  theirs, at the place in the stream of the event that made it so;
- presence: each process tells the others of its users (``Directory``),
  and every ``INPUT_EVERY_SECONDS`` the last input of those who did something
  (idle times elsewhere are that exact), says it is alive every
  ``ALIVE_SECONDS``, greets newcomers with all it holds, and forgets a
  process silent for ``SILENT_AFTER_SECONDS``, telling its own sockets in the
  rooms concerned that those users went offline;
- rate limits and spam mutes hold for a user whatever process their sockets
  (or HTTP requests) reach: tokens taken are told to the others every few
  milliseconds, a mute at once;
- an admin's kick, ban or role change reaches the user's sessions on every
  process;
- the federation sender (one process, under a lease) is woken by the
  others when they queue events for another server, and told when another
  server contacted one of them.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import TYPE_CHECKING, Any

from vibemuse.protocol.errors import CloseCode
from vibemuse.realtime.bus import Delivery, room_topic
from vibemuse.realtime.directory import Directory, Sighting
from vibemuse.realtime.presence import OFFLINE, Presence
from vibemuse.services.operators import ROLE_CHANGED, SESSIONS_CLOSED
from vibemuse.realtime.redis_bus import (
    ALIVE, BLOCK, BYE, CONTACTED, HELD, HELLO, INPUT, MUTE, OUTBOX, PLACE, SEEN, TOKEN_REVOKED, TOOK, TUNE,
    RedisBus,
)

if TYPE_CHECKING:
    from vibemuse.context import ServerContext
    from vibemuse.federation.sender import FederationSender
    from vibemuse.services.remote_pages import RemotePages

ALIVE_SECONDS = 5.0
INPUT_EVERY_SECONDS = 1.0  # the last input of users who did something is told this often
DEBIT_EVERY_SECONDS = 0.02  # tokens taken are told to the others at most this late
SILENT_AFTER_SECONDS = 15.0  # three missed "alive"s: the process is gone


class Processes:
    def __init__(self, bus: RedisBus, context: "ServerContext", sender: "FederationSender",
                 remote_pages: "RemotePages"):
        self.bus = bus
        self._context = context
        self._sender = sender
        self.directory = Directory(int(SILENT_AFTER_SECONDS * 1000))
        self._alive: asyncio.Task[None] | None = None
        registry, presence = context.registry, context.presence
        subscriptions = presence.subscriptions

        context.accounts.on_token_revoked = lambda token_hash: bus.signal(TOKEN_REVOKED, {"tokenHash": token_hash})
        bus.on_signal(TOKEN_REVOKED, lambda data: registry.close_token(
            str(data["tokenHash"]), CloseCode.LOGGED_OUT, "logged out"))
        bus.on_resync = lambda: registry.close_all(CloseCode.RESUME, "resume")
        bus.on_lost = self._lost

        pages = context.pages
        pages.block_changed = lambda blocker, blocked, on: bus.signal(
            BLOCK, {"blocker": blocker, "blocked": blocked, "on": on})
        bus.on_signal(BLOCK, lambda data: pages.apply_block(data["blocker"], data["blocked"], bool(data["on"])))

        subscriptions.share = lambda channel_id, user_id, on, position: bus.signal(
            TUNE, {"channel": channel_id, "user": user_id, "on": on}, position)
        bus.on_signal(TUNE, lambda data: subscriptions.apply(data["channel"], data["user"], bool(data["on"])))
        presence.share_move = lambda user_id, room_id, position: bus.signal(
            PLACE, {"user": user_id, "room": room_id, "from": bus.instance}, position)
        bus.on_signal(PLACE, self._placed)

        presence.directory = self.directory
        presence.share = self._share
        presence.instance = bus.instance
        self._inputs_told = context.clock()
        pages.online = remote_pages.online = presence.online_anywhere
        for kind, listener in ((SEEN, self._seen), (ALIVE, self._heard), (HELLO, self._hello), (HELD, self._held),
                               (BYE, self._bye), (INPUT, self._inputs)):
            bus.on_signal(kind, listener)

        limiter, spam = context.guard.limiter, context.guard.spam
        limiter.on_take = self._took
        bus.on_signal(TOOK, self._debit)
        spam.on_mute = lambda user_id, until: bus.signal(MUTE, {"from": bus.instance, "user": user_id, "until": until})
        bus.on_signal(MUTE, lambda data: None if self._mine(data) else spam.apply_mute(data["user"], data["until"]))
        self._debits: Counter[tuple[str, str]] = Counter()

        bus.on_signal(OUTBOX, lambda data: sender.wake(data["destinations"]))
        bus.on_signal(CONTACTED, lambda data: asyncio.ensure_future(sender.contacted(data["server"])))
        context.contacted = lambda server: bus.signal(CONTACTED, {"server": server})
        context.bus_connected = lambda: bus.connected

        operators = context.operators
        if operators is not None:  # an admin's kick, ban or role change holds on every process
            operators.share = bus.signal
            operators.sessions_of = presence.sockets_anywhere
            bus.on_signal(SESSIONS_CLOSED, lambda data: operators.close_sessions(
                str(data["user"]), int(data["code"]), str(data["reason"])))
            bus.on_signal(ROLE_CHANGED, lambda data: operators.apply_role(str(data["user"]), str(data["role"])))

    def wake_sender(self, destinations: tuple[str, ...] | list[str]) -> None:
        """Events were queued for other servers: wake the process that sends (maybe this one)."""
        self.bus.signal(OUTBOX, {"destinations": list(destinations)})

    # -- running --------------------------------------------------------------------------------------

    def start(self) -> None:
        self.bus.signal(HELLO, {"from": self.bus.instance})
        self._alive = asyncio.get_running_loop().create_task(self._say_alive())

    async def stop(self) -> None:
        if self._alive is not None:
            self._alive.cancel()
            await asyncio.gather(self._alive, return_exceptions=True)
        self.bus.signal(BYE, {"from": self.bus.instance})
        await self.bus.stop()

    async def _say_alive(self) -> None:
        ticks = round(ALIVE_SECONDS / INPUT_EVERY_SECONDS)
        for tick in itertools.count(1):
            await asyncio.sleep(INPUT_EVERY_SECONDS)
            self._tell_inputs()
            if tick % ticks == 0:
                self.bus.signal(ALIVE, {"from": self.bus.instance})
                self._forget_silent()

    def _tell_inputs(self) -> None:
        """The last input of the users here who did something since the last time (idle times)."""
        now = self._context.clock()
        inputs = self._context.presence.inputs_since(self._inputs_told)
        self._inputs_told = now
        if inputs:
            self.bus.signal(INPUT, {"from": self.bus.instance, "input": inputs})

    def _forget_silent(self) -> None:
        """Processes gone without a word (kill -9): their users are offline, their rooms told."""
        self._offline(self.directory.expire(self._context.clock()))

    # -- rate limits ----------------------------------------------------------------------------------

    def _took(self, action: str, key: str) -> None:
        """A token taken here: told to the others with those of the next few milliseconds."""
        if not self._debits:
            asyncio.get_running_loop().call_later(DEBIT_EVERY_SECONDS, self._send_debits)
        self._debits[(action, key)] += 1

    def _send_debits(self) -> None:
        debits, self._debits = self._debits, Counter()
        self.bus.signal(TOOK, {"from": self.bus.instance,
                               "debits": [[action, key, count] for (action, key), count in debits.items()]})

    def _debit(self, data: dict[str, Any]) -> None:
        if not self._mine(data):
            for action, key, count in data["debits"]:
                self._context.guard.limiter.debit(str(action), str(key), int(count))

    # -- presence -------------------------------------------------------------------------------------

    def _share(self, user_id: str, sighting: Sighting | None) -> None:
        data: dict[str, Any] = {"from": self.bus.instance}
        if sighting is None:
            data["gone"] = user_id
        else:
            data["sighting"] = sighting.to_wire()
        self.bus.signal(SEEN, data)

    def _mine(self, data: dict[str, Any]) -> bool:
        return data.get("from") == self.bus.instance

    def _seen(self, data: dict[str, Any]) -> None:
        if self._mine(data):
            return
        now = self._context.clock()
        if "gone" in data:
            self.directory.gone(data["from"], str(data["gone"]), now)
        else:
            self.directory.seen(data["from"], Sighting.from_wire(data["sighting"]), now)

    def _heard(self, data: dict[str, Any]) -> None:
        if not self._mine(data) and self.directory.heard(data["from"], self._context.clock()):
            self._answer(data["from"])  # one we did not know (we started after its hello)

    def _inputs(self, data: dict[str, Any]) -> None:
        if not self._mine(data):
            self.directory.inputs(data["from"], {str(u): int(ms) for u, ms in data["input"].items()},
                                  self._context.clock())

    def _hello(self, data: dict[str, Any]) -> None:
        if not self._mine(data):
            self.directory.heard(data["from"], self._context.clock())
            self._answer(data["from"])

    def _answer(self, newcomer: str) -> None:
        sightings = [s.to_wire() for s in self._context.presence.sighting_of_all()]
        self.bus.signal(HELD, {"from": self.bus.instance, "to": newcomer, "sightings": sightings})

    def _held(self, data: dict[str, Any]) -> None:
        if data.get("to") == self.bus.instance:
            self.directory.load(data["from"], [Sighting.from_wire(s) for s in data["sightings"]],
                                self._context.clock())

    def _bye(self, data: dict[str, Any]) -> None:
        if not self._mine(data):
            self._offline(self.directory.left(data["from"]))

    def _placed(self, data: dict[str, Any]) -> None:
        """A user moved on another process: their sockets here (if any) hear the new room."""
        user_id = str(data["user"])
        if not self._mine(data) and self._context.registry.count_for(user_id) > 0:
            self._context.presence.subscriptions.place(user_id, str(data["room"]))

    def _lost(self, events: list[dict[str, Any]]) -> None:
        """Events whose frames never came (their process died between its commit and its
        publish): every socket here that should have had one resumes (4012) and gets it then."""
        registry, subscriptions = self._context.registry, self._context.presence.subscriptions
        users: set[str] = set()
        for event in events:
            scoped = False
            if event.get("room_id"):
                users.update(subscriptions.users_in(event["room_id"]))
                scoped = True
            if event.get("channel_id"):
                users.update(subscriptions.listeners(event["channel_id"]))
                scoped = True
            if event.get("recipients"):
                users.update(event["recipients"])
                users.add(event["sender"])  # their own other sockets show what they sent
                scoped = True
            if not scoped:  # announcements, and edits and deletions of them: everyone
                users.update(registry.online_user_ids())
        for user_id in users:
            for connection in list(registry.sockets_of(user_id)):
                connection.close(CloseCode.RESUME, "resume")

    def _offline(self, sightings: list[Sighting]) -> None:
        """Tell this process's sockets in their rooms that users of a stopped process went offline
        (each process tells its own: nothing goes through the bus, nobody hears it twice)."""
        presence, broadcaster = self._context.presence, self._context.broadcaster
        now = self._context.clock()
        for sighting in sightings:
            p = sighting.presence
            if sighting.room_id is None or presence.online_anywhere(p.user_id):
                continue  # still connected through another process
            if presence.count_in(sighting.room_id) > presence.room_limit:
                continue  # a crowded room hears no presence frames (protocol.md 14.8)
            gone = Presence(p.user_id, p.username, p.connected_since_ms, p.last_input_ms, OFFLINE)
            frame = broadcaster.frame("presence", gone.to_wire(now), from_user=p.user_id)
            presence.subscriptions.deliver(Delivery(room_topic(sighting.room_id), broadcaster.encode(frame)))
