"""The message bus: how a delivery reaches the sockets that should get it.

A ``Delivery`` names a topic (``room:<id>``, ``user:<id>``,
``channel:<id>`` or ``all``), the encoded frame, and optionally users whose
sockets must not get it. The bus is
one small seam: the in-process bus below hands deliveries straight to this
process's sockets; a later cross-process bus (Redis pub/sub) publishes the
same records so every worker process delivers to its own sockets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol


@dataclass(frozen=True)
class Delivery:
    topic: str
    frame: bytes  # a complete WebSocket frame (see wire.encode_text_frame)
    except_user: str | None = None
    except_users: frozenset[str] = frozenset()  # e.g. those who block the sender
    position: int | None = None  # the stream position of the event the frame carries, if any
    frame_type: str = ""  # the server frame's type (for the metrics)


def room_topic(room_id: str) -> str:
    return "room:" + room_id


def user_topic(user_id: str) -> str:
    return "user:" + user_id


def channel_topic(channel_id: str) -> str:
    return "channel:" + channel_id


ALL = "all"


class Bus(Protocol):
    def publish(self, delivery: Delivery) -> None: ...

    def attach(self, deliver: Callable[[Delivery], None]) -> None: ...


class InProcessBus:
    """Deliveries go straight to the local sockets, synchronously."""

    def __init__(self) -> None:
        self._deliver: Callable[[Delivery], None] | None = None

    def attach(self, deliver: Callable[[Delivery], None]) -> None:
        self._deliver = deliver

    def publish(self, delivery: Delivery) -> None:
        if self._deliver is not None:
            self._deliver(delivery)
