"""``AnswerOrder``: a socket's answers go out in the order of the frames they answer.

Protocol.md 5.4: the server handles a socket's frames one at a time and
answers them in order. One kind of frame may finish later than the frames
after it: a message (or leave, moderation, settings change) for a channel
homed on another server, whose ``ack`` waits for that server's answer
(federation.md 10.3). Its socket goes on handling the next frames meanwhile,
so one player can talk faster than one round trip to the home per line; their
answers wait here, behind the one still open, and go out the moment it closes.

Each frame gets a ``Slot`` when it arrives; its answers go into it; it closes
when the frame is fully answered. The answers of the oldest open slot go out
at once, those of later slots when every slot before them has closed. A
socket whose frames never wait has one slot open at a time, and sends every
answer as it comes, as before.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Slot(Generic[T]):
    __slots__ = ("answers", "closed")

    def __init__(self) -> None:
        self.answers: list[T] = []
        self.closed = False


class AnswerOrder(Generic[T]):
    def __init__(self, send: Callable[[T], None]):
        self._send = send
        self._open: deque[Slot[T]] = deque()

    def open(self) -> Slot[T]:
        """A frame arrived: its place in the order."""
        slot: Slot[T] = Slot()
        self._open.append(slot)
        return slot

    def answer(self, slot: Slot[T], answer: T) -> None:
        slot.answers.append(answer)
        self._flush()

    def close(self, slot: Slot[T]) -> None:
        """The frame is answered in full."""
        slot.closed = True
        self._flush()

    @property
    def waiting(self) -> int:
        """How many frames are not fully answered yet."""
        return len(self._open)

    def _flush(self) -> None:
        while self._open:
            head = self._open[0]
            for answer in head.answers:
                self._send(answer)
            head.answers.clear()
            if not head.closed:
                return
            self._open.popleft()
