"""Resuming: what a reconnecting user missed since the last position they saw.

Theory of operation. A client that reconnects says ``since``: the highest
stream position it has seen. The server finds every event after it that the
user was entitled to see *at the time*, and sends them in stream order before
anything live (the socket holds live frames meanwhile, then drops those the
replay already carried — no gap and no duplicate at the seam).

Nothing from before the account existed is replayed: a ``since`` below the
position the account was made at (``created_position``) counts as that
position. From there, entitlement is reconstructed from the user's own
membership events:

- rooms: the room they stood in at ``since`` (the room of their first
  departure after it, or where they stand now), then each room they arrived
  in; a room's events count while they stood there (connected or not: the
  character was there);
- channels: membership at ``since`` (now, undone by the changes after it),
  then each join, leave, kick or ban that concerns them, in order — a member
  sees their own removal;
- pages and receipts addressed to them or sent by them, and announcements;

and of those, only what the visibility rule (``vibemuse.protocol.visibility``)
lets them see at the time: on a ``joined`` channel, no edit or deletion of a
message from before their latest join then.

If there are more than ``max_events`` such events, or ``since`` is older
than the oldest event kept, the server does not replay: it says so
(``resume_gap``) and the client reads the history endpoints instead.

Where it can, the replay is picked in memory from the events that followed
``since`` in all scopes, read once for everyone resuming from there
(``services.tails``); the same selection as the per-user queries
(``storage.sync_txns``), which serve when the tail would be too long.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Any

from vibemuse.clock import Clock
from vibemuse.protocol.visibility import Floor, Viewer, about, channel_floor, may_see, target_of
from vibemuse.services.tails import Tails
from vibemuse.storage import Storage

from vibemuse.storage.records import UserRecord
from vibemuse.storage.sync_txns import ResumePoint, SessionStart

LEAVING = ("leave", "kick", "ban")


@dataclass(frozen=True)
class Replay:
    events: list[dict[str, Any]]
    upto: int  # the newest position the replay covers
    gap: str | None = None  # "too_old" | "too_many": no replay was made


class SyncService:
    def __init__(self, storage: Storage, *, max_events: int, clock: Clock):
        self._storage = storage
        self._max_events = max_events
        self.tails = Tails(storage, max_events=max_events, clock=clock)

    async def start(self, user_id: str) -> SessionStart:
        """What a starting socket needs from storage but its roster and replay, in one read."""
        return await self._storage.session_start(user_id)

    async def replay(self, user: UserRecord, location: str, since: int, channels_now: set[str]) -> Replay:
        user_id = user.user_id
        since = max(since, user.created_position)  # nothing from before the account existed
        tail = await self.tails.get(since)
        if tail is not None:  # picked, in memory, from what followed since for everyone
            point = ResumePoint(tail.latest, tail.oldest, [e for e in tail.events if _is_move(e, user_id)],
                                [e for e in tail.events if _is_channel_change(e, user_id)])
        else:
            point = await self._storage.resume_point(user_id, since)
        if since >= point.latest:
            return Replay([], point.latest)
        if point.oldest and since < point.oldest - 1:
            return Replay([], point.latest, gap="too_old")
        start_room = _room_at(point.moves, location)
        start_channels = _channels_at(point.channel_changes, channels_now)
        rooms = {start_room} | {move["room_id"] for move in point.moves}
        channels = start_channels | {change["channel_id"] for change in point.channel_changes}
        if tail is not None:
            candidates = list(islice(_candidates(tail.events, user_id, rooms, channels), self._max_events + 1))
        else:
            candidates = await self._storage.events_since(user_id, since, sorted(rooms), sorted(channels),
                                                          self._max_events + 1)
        if len(candidates) > self._max_events:
            return Replay([], point.latest, gap="too_many")
        viewing = await self._viewing(user, since, start_channels, channels)
        target_ids = [target_of(event) for event in candidates if target_of(event)]
        targets = await self._storage.events_by_id(target_ids) if target_ids else {}
        visible = list(_entitled(candidates, viewing, start_room, targets))
        return Replay(visible, max([point.latest, *(e["unsigned"]["stream_position"] for e in visible)]))

    async def _viewing(self, user: UserRecord, since: int, start: set[str], channels: set[str]) -> "_Viewing":
        """The user as a viewer at ``since``: their role, each channel's history visibility, and
        their floors then (from their latest join at or before ``since``)."""
        settings = {}
        for channel_id in channels:
            channel = await self._storage.get_channel(channel_id)
            settings[channel_id] = channel.history_visibility if channel else "shared"
        joined = [channel_id for channel_id in start if settings[channel_id] == "joined"]
        joins = await self._storage.channel_joins_until(user.user_id, since) if joined else {}
        floors = {channel_id: channel_floor(settings[channel_id], *joins.get(channel_id, (None, None)))
                  for channel_id in start}
        return _Viewing(user.user_id, user.role == "admin", settings, floors)


@dataclass
class _Viewing:
    """The user as a viewer over time: floors follow their joins (``join``) and removals (``leave``)."""

    user_id: str
    admin: bool
    settings: dict[str, str]  # channel id -> history visibility
    floors: dict[str, Floor]  # the channels they are on, with their floors

    def join(self, event: dict[str, Any]) -> None:
        self.floors[event["channel_id"]] = channel_floor(
            self.settings.get(event["channel_id"], "shared"), event["unsigned"]["stream_position"],
            event["origin_server_ts"])

    def leave(self, channel_id: str) -> None:
        self.floors.pop(channel_id, None)

    def viewer(self, room: str) -> Viewer:
        return Viewer(self.user_id, admin=self.admin, room_id=room, channels=self.floors)


def _is_move(event: dict[str, Any], user_id: str) -> bool:
    """The user's own arrival or departure (``moves_since_txn`` in memory)."""
    return event["type"] == "vm.room.member" and event["sender"] == user_id


def _is_channel_change(event: dict[str, Any], user_id: str) -> bool:
    """A channel membership event about the user (``channel_changes_since_txn`` in memory)."""
    return event["type"] == "vm.channel.member" and user_id in about(event)


def _candidates(events: list[dict[str, Any]], user_id: str, rooms: set[str], channels: set[str]):
    """``events_since_txn`` in memory: events of those rooms and channels, addressed to the
    user, pages and receipts the user sent, and announcements."""
    for event in events:
        kind = event["type"]
        if (event.get("room_id") in rooms or event.get("channel_id") in channels or kind == "vm.system"
                or (event["sender"] == user_id and kind in ("vm.page", "vm.receipt")) or user_id in about(event)):
            yield event


def _room_at(moves: list[dict[str, Any]], location: str) -> str:
    """Where the user stood at ``since``: the room of the first departure after it."""
    for move in moves:
        if move["content"]["membership"] == "leave":
            return move["room_id"]
    return location


def _channels_at(changes: list[dict[str, Any]], now: set[str]) -> set[str]:
    """Channels the user was on at ``since``: today's, with the changes since undone."""
    at_since = set(now)
    first: dict[str, dict[str, Any]] = {}
    for change in changes:
        first.setdefault(change["channel_id"], change)
    for channel_id, change in first.items():
        membership = change["content"]["membership"]
        if membership == "join":
            at_since.discard(channel_id)
        elif membership in LEAVING:
            at_since.add(channel_id)
    return at_since


def _entitled(events: list[dict[str, Any]], viewing: _Viewing, room: str, targets: dict[str, dict[str, Any]]):
    """Walk the events in order, following the user's moves and memberships: an event of the room
    they stood in or of a channel they were on (pages, receipts and announcements were selected
    for them already) is replayed if the visibility rule lets them see it."""
    user_id = viewing.user_id
    for event in events:
        kind = event["type"]
        if kind == "vm.room.member" and event["sender"] == user_id:
            if event["content"]["membership"] == "join":
                room = event["room_id"]
            yield event  # both their departure and their arrival
            continue
        if kind == "vm.channel.member" and event["content"].get("target") == user_id:
            membership = event["content"]["membership"]
            if membership == "join":
                viewing.join(event)
            yield event
            if membership in LEAVING:
                viewing.leave(event["channel_id"])
            continue
        if "room_id" in event:
            present = event["room_id"] == room
        else:
            present = "channel_id" not in event or event["channel_id"] in viewing.floors
        if present and may_see(viewing.viewer(room), event, targets.get(target_of(event) or "")):
            yield event
