"""``Broadcaster``: make server frames and send them where they belong.

A frame is stamped (id, time, sender), encoded to JSON once, wrapped in a
WebSocket frame once, and handed to the bus as one ``Delivery``. Services
call ``to_room``, ``to_user`` and ``to_all``; none of them loops over sockets.
"""

from __future__ import annotations

from typing import Any

from vibemuse.clock import Clock
from vibemuse.protocol.frames import ServerFrame
from vibemuse.realtime.bus import ALL, Bus, Delivery, channel_topic, room_topic, user_topic
from vibemuse.realtime.ids import IdSource
from vibemuse.realtime.wire import encode_text_frame


class Broadcaster:
    def __init__(self, bus: Bus, *, server_name: str, clock: Clock, frame_ids: IdSource):
        self._bus = bus
        self.server_name = server_name
        self._clock = clock
        self._frame_ids = frame_ids

    def frame(self, frame_type: str, data: dict[str, Any], *, from_user: str | None = None, **routing: Any) -> ServerFrame:
        """A server frame stamped with a fresh id and the current time."""
        return ServerFrame(
            type=frame_type,
            data=data,
            message_id=self._frame_ids.next(),
            timestamp_ms=self._clock(),
            from_user=from_user or self.server_name,
            **routing,
        )

    @staticmethod
    def encode(frame: ServerFrame) -> bytes:
        return encode_text_frame(frame.encode().encode("utf-8"))

    def to_room(self, room_id: str, frame: ServerFrame, *, except_user: str | None = None) -> None:
        self._bus.publish(Delivery(room_topic(room_id), self.encode(frame), except_user, position=position_of(frame),
                                    frame_type=frame.type))

    def to_user(self, user_id: str, frame: ServerFrame) -> None:
        self._bus.publish(Delivery(user_topic(user_id), self.encode(frame), position=position_of(frame),
                                    frame_type=frame.type))

    def to_all(self, frame: ServerFrame) -> None:
        self._bus.publish(Delivery(ALL, self.encode(frame), position=position_of(frame), frame_type=frame.type))

    def to_channel(self, channel_id: str, frame: ServerFrame, *, except_users: frozenset[str] = frozenset()) -> None:
        self._bus.publish(Delivery(channel_topic(channel_id), self.encode(frame), except_users=except_users,
                                   position=position_of(frame), frame_type=frame.type))

    def to_users(self, user_ids: list[str], frame: ServerFrame) -> None:
        """One frame, encoded once, for each of several users (each at most once)."""
        encoded, position = self.encode(frame), position_of(frame)
        for user_id in dict.fromkeys(user_ids):
            self._bus.publish(Delivery(user_topic(user_id), encoded, position=position, frame_type=frame.type))


def position_of(frame: ServerFrame) -> int | None:
    """The stream position of the event a frame carries (None for frames without one)."""
    event = frame.data.get("event") if isinstance(frame.data, dict) else None
    return event.get("unsigned", {}).get("stream_position") if isinstance(event, dict) else None
