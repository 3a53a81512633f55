"""Which sockets get which deliveries: rooms, users, everyone.

Each online user stands in exactly one room; all of their sockets are
subscribed to that room. A move re-subscribes every socket of the user at
once. ``deliver`` is what the bus calls: it looks up the sockets of the
delivery's topic and queues the same frame bytes on each, with no await and no
per-recipient encoding.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

from vibemuse.realtime.bus import ALL, Delivery
from vibemuse.realtime.connections import ConnectionRegistry


class Subscriptions:
    def __init__(self, registry: ConnectionRegistry, *,
                 on_delivered: Callable[[str, int, float], None] | None = None):
        """``on_delivered(frame_type, copies, seconds)``: told once per delivery (metrics)."""
        self._registry = registry
        self._on_delivered = on_delivered
        self._location: dict[str, str] = {}  # online user -> room
        self._room_users: dict[str, set[str]] = {}  # room -> online users there
        self._channel_users: dict[str, set[str]] = {}  # channel -> online members
        self._user_channels: dict[str, set[str]] = {}  # online user -> their channels
        # Several processes: a change of who hears a channel is told to every process
        # (``tune``, ``drop_channel``), each applying it to its own sockets; set by app.py.
        self.share: Callable[[str, str | None, bool, int | None], None] | None = None

    # -- locations of online users ---------------------------------------

    def location_of(self, user_id: str) -> str | None:
        return self._location.get(user_id)

    def users_in(self, room_id: str) -> list[str]:
        return sorted(self._room_users.get(room_id, ()))

    def count_in(self, room_id: str) -> int:
        """How many online users stand in the room."""
        return len(self._room_users.get(room_id, ()))

    def place(self, user_id: str, room_id: str) -> str | None:
        """Put an online user in a room; returns the room they were in."""
        previous = self._location.get(user_id)
        if previous == room_id:
            return previous
        if previous is not None:
            self._leave(user_id, previous)
        self._location[user_id] = room_id
        self._room_users.setdefault(room_id, set()).add(user_id)
        return previous

    def forget(self, user_id: str) -> None:
        """The user's last socket closed."""
        room_id = self._location.pop(user_id, None)
        if room_id is not None:
            self._leave(user_id, room_id)
        for channel_id in self._user_channels.pop(user_id, set()):
            self._off_channel(user_id, channel_id)

    # -- channel memberships of online users --------------------------------

    def tune_in(self, user_id: str, channel_id: str) -> None:
        """An online user is a member of a channel: their sockets get its messages."""
        self._user_channels.setdefault(user_id, set()).add(channel_id)
        self._channel_users.setdefault(channel_id, set()).add(user_id)

    def tune_out(self, user_id: str, channel_id: str) -> None:
        channels = self._user_channels.get(user_id)
        if channels is not None:
            channels.discard(channel_id)
        self._off_channel(user_id, channel_id)

    def tune(self, user_id: str | None, channel_id: str, on: bool, position: int | None = None) -> None:
        """Tune the user's sockets (None: every listener's) in or out of a channel, wherever they
        are; with several processes at ``position``, the place in the stream of the event that
        made it so (its own notice still reaches them, nothing later does)."""
        if self.share is not None:
            self.share(channel_id, user_id, on, position)  # it comes back here too (``apply``)
        else:
            self.apply(channel_id, user_id, on)

    def apply(self, channel_id: str, user_id: str | None, on: bool) -> None:
        """A change of who hears a channel, for the sockets of this process (``user_id`` None: all)."""
        if user_id is None:
            for listener in self.listeners(channel_id):
                self.tune_out(listener, channel_id)
        elif not on:
            self.tune_out(user_id, channel_id)
        elif self._registry.count_for(user_id) > 0:
            self.tune_in(user_id, channel_id)

    def channels_of(self, user_id: str) -> set[str]:
        return set(self._user_channels.get(user_id, ()))

    def listeners(self, channel_id: str) -> list[str]:
        return sorted(self._channel_users.get(channel_id, ()))

    def _off_channel(self, user_id: str, channel_id: str) -> None:
        users = self._channel_users.get(channel_id)
        if users is not None:
            users.discard(user_id)
            if not users:
                del self._channel_users[channel_id]

    def _leave(self, user_id: str, room_id: str) -> None:
        users = self._room_users.get(room_id)
        if users is not None:
            users.discard(user_id)
            if not users:
                del self._room_users[room_id]

    # -- delivery ----------------------------------------------------------

    def _topic_users(self, topic: str) -> Iterable[str]:
        if topic == ALL:
            return self._registry.online_user_ids()
        kind, _, name = topic.partition(":")
        if kind == "room":
            return self._room_users.get(name, ())
        if kind == "user":
            return (name,)
        if kind == "channel":
            return self._channel_users.get(name, ())
        raise ValueError(f"unknown topic {topic!r}")

    def deliver(self, delivery: Delivery) -> int:
        """Queue the delivery's frame on every socket it is for; returns how many.

        The hot loop of fan-out: no encoding, no awaits, one queue call per socket.
        """
        started = time.perf_counter()
        frame, skip, skip_all, position = delivery.frame, delivery.except_user, delivery.except_users, delivery.position
        sockets_of = self._registry.sockets_of
        count = 0
        for user_id in self._topic_users(delivery.topic):
            if user_id == skip or (skip_all and user_id in skip_all):
                continue
            for connection in sockets_of(user_id):
                connection.send_encoded(frame, position)
                count += 1
        if self._on_delivered is not None:
            self._on_delivered(delivery.frame_type, count, time.perf_counter() - started)
        return count
