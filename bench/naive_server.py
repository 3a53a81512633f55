#!/usr/bin/env python3
"""The floor for bench/fanout.py: a bare Tornado broadcast server.

No authentication, no persistence, no signing, no JSON: every text message a
socket sends is relayed to every open socket (the sender's included), either

- ``naive`` (default): ``for s in sockets: s.write_message(message)``, the
  textbook Tornado broadcast (Tornado frames the message again for every
  socket and makes a Future and a Task per write), or
- ``--preencoded``: the WebSocket frame is built once per message and the
  same bytes are written to every socket's stream (what VibeMUSE's
  ``send_encoded`` does).

Serves ``ws://HOST:PORT/api/ws`` (any path works) until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import ClassVar

import tornado.iostream
import tornado.web
import tornado.websocket


def encode_text_frame(payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        header = bytes((0x81, length))
    elif length < 1 << 16:
        header = bytes((0x81, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + length.to_bytes(8, "big")
    return header + payload


class Relay(tornado.websocket.WebSocketHandler):
    sockets: ClassVar[set[Relay]] = set()
    preencoded = False

    def check_origin(self, origin: str) -> bool:
        return True

    def open(self, *args: object) -> None:
        self.set_nodelay(True)
        self.sockets.add(self)

    def on_close(self) -> None:
        self.sockets.discard(self)

    def on_message(self, message: str | bytes) -> None:
        if self.preencoded:
            payload = message.encode("utf-8") if isinstance(message, str) else message
            frame = encode_text_frame(payload)
            for socket in self.sockets:
                connection = socket.ws_connection
                if connection is None or connection.is_closing():
                    continue
                try:
                    connection.stream.write(frame)
                except tornado.iostream.StreamClosedError:
                    pass
        else:
            for socket in self.sockets:
                try:
                    socket.write_message(message)
                except tornado.websocket.WebSocketClosedError:
                    pass


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4290)
    parser.add_argument("--preencoded", action="store_true", help="encode each frame once, write the same bytes")
    args = parser.parse_args()
    Relay.preencoded = args.preencoded
    app = tornado.web.Application([(r"/.*", Relay)], websocket_max_message_size=64 * 1024)
    server = app.listen(args.port, args.host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"naive relay ({'preencoded' if args.preencoded else 'write_message'}) on ws://{args.host}:{args.port}",
          flush=True)
    await stop.wait()
    server.stop()
    for socket in list(Relay.sockets):
        socket.close(1001)
    await asyncio.sleep(0.2)


if __name__ == "__main__":
    asyncio.run(main())
