"""What waits to be sent on one socket whose client reads slower than we write.

Theory of operation. A socket's frames normally go straight to the kernel
(``ClientSocketHandler._write``). When the kernel does not take a whole frame,
the rest of it — and every frame after it — waits here, in order, until the
client reads. Only one chunk at a time is handed to Tornado's IOStream (the
*in-flight* bytes: the rest of a frame the kernel took part of, or whole
frames joined up to ``CHUNK_BYTES``); later frames stay whole in ``frames``.

That split is what lets a slow consumer see its close code: when the waiting
bytes would pass the socket's bound, everything in ``frames`` is dropped —
never handed out, so no frame is cut — and the 4008 close frame goes right
after the in-flight chunk, which completes the frame on the wire. A client
that stopped reading and reads again gets at most what the kernel and one
chunk held, then the close.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from tornado.iostream import IOStream, StreamClosedError

CHUNK_BYTES = 16 * 1024  # at most this much (or one frame) handed to the IOStream at once


class Backlog:
    __slots__ = ("stream", "bound", "frames", "waiting", "in_flight")

    def __init__(self, stream: IOStream, bound: int):
        self.stream = stream
        self.bound = bound  # in-flight plus waiting bytes may not pass this
        self.frames: deque[bytes] = deque()
        self.waiting = 0  # bytes in ``frames``
        self.in_flight = 0  # bytes handed to the IOStream, not yet all taken by the kernel

    @property
    def busy(self) -> bool:
        """True while anything waits: later frames must queue behind it to keep their order."""
        return self.in_flight > 0

    def hand_over(self, data: bytes) -> None:
        """Give ``data`` (whole frames, or the rest of one) to the IOStream now."""
        self.in_flight = len(data)
        self.stream.write(data).add_done_callback(self._written)

    def add(self, frame: bytes) -> bool:
        """Queue a frame behind the in-flight bytes; False (nothing queued) past the bound."""
        if self.in_flight + self.waiting + len(frame) > self.bound:
            return False
        self.frames.append(frame)
        self.waiting += len(frame)
        return True

    def drop(self) -> None:
        """Forget every frame not handed out yet (the in-flight chunk still completes)."""
        self.frames.clear()
        self.waiting = 0

    def _written(self, future: Any) -> None:
        self.in_flight = 0
        if future.cancelled() or future.exception() is not None:  # the connection is gone
            self.drop()
            return
        if not self.frames:
            return
        chunk = [self.frames.popleft()]
        size = len(chunk[0])
        while self.frames and size + len(self.frames[0]) <= CHUNK_BYTES:
            size += len(self.frames[0])
            chunk.append(self.frames.popleft())
        self.waiting -= size
        try:
            self.hand_over(chunk[0] if len(chunk) == 1 else b"".join(chunk))
        except StreamClosedError:
            self.drop()
