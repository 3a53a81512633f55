#!/usr/bin/env python3
"""Fan-out benchmark: N WebSocket listeners in one room, speakers at R msg/s.

For each target server (VibeMUSE, and the bare Tornado relay of
bench/naive_server.py as the floor) this script:

1. starts the server as a subprocess on 127.0.0.1 (VibeMUSE with a fresh
   temporary data directory, SQLite, default settings except
   ``max_connections_per_user``, ``log_level = warning`` and the abuse limits,
   which would refuse a load test from one address: see ``lifted_limits``);
2. for VibeMUSE, registers the accounts over HTTP (``--per-user`` sockets per
   listener account, one account per speaker);
3. reads the server's RSS, opens the N listener sockets from ``--workers``
   client processes (plus the speaker sockets from one speaker process),
   waits until each is in the room (VibeMUSE: ``welcome`` and ``roster``
   received; the relay: upgraded), reads RSS again;
4. warms up (one second of messages, not counted), then reads the server's
   CPU time, has the speakers send R ``say`` frames per second for D seconds
   (no waiting for acks), waits until every socket has every message (or a
   drain timeout), and reads the CPU time again;
5. prints connect time, delivery latency percentiles (the speaker's send time
   ``time.time_ns()`` is in the message text; each receiving socket records
   ``time.time_ns()`` when its read returns the frame), messages lost (by
   sequence number, per socket), server CPU, server CPU per delivered copy,
   server RSS per connection, and the client processes' CPU.

Every receiving socket counts as a listener, the speakers' own sockets
included (both servers send every message to the sender as well): copies =
messages x (clients + speakers).

The client is a minimal RFC 6455 client on asyncio protocols (no Tornado on
the client side), so that the client processes, which share the machine's
cores with the server, spend as little CPU as possible per frame.

Examples::

    .venv/bin/python bench/fanout.py                          # 1000 x 20 msg/s, both
    .venv/bin/python bench/fanout.py --clients 5000 --rate 5 --target vibemuse
    .venv/bin/python bench/fanout.py --target all --json      # + the pre-encoded relay

Everything runs against 127.0.0.1 only, is bounded in clients (<= 20000),
rate, duration and overall time (``--timeout``), and stops by itself.
"""

from __future__ import annotations

import argparse
import array
import base64
import json
import math
import multiprocessing as mp
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_BIN = ROOT / ".venv" / "bin"

MAX_CLIENTS = 20000
MARK = b"fanout "  # measured messages: "fanout <seq> <send time_ns> ..."
WARM = b"warmup "  # warm-up messages, not counted
FILLER = "the quick brown fox jumps over the lazy dog"
PASSWORD = "bench-fanout-pw-7"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Runs `vibemuse serve` with an optional probe (--gc-log: every garbage collection's
# generation and pause, and each heartbeat's duration, appended to a file) and optional
# experiments (--experiment), patched in at start so that vibemuse/ itself stays unchanged:
#   gc-freeze    gc.collect(); gc.freeze() once the server listens
#   direct-send  the per-socket write (_write(), or send_encoded() in older trees) calls
#                socket.send() itself while the socket's Tornado write buffer is empty, and
#                queues on the IOStream only what the kernel did not take (no Future, no
#                copy, no callback per copy)
SERVER_WRAPPER = r"""
import gc, os, sys, time
path = os.environ.get("FANOUT_GC_LOG")
if path:
    out = open(path, "a", buffering=1)
    started = [0.0]
    def probe(phase, info):
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pause = 1000 * (time.perf_counter() - started[0])
            out.write(f"{time.time():.3f} {info['generation']} {pause:.2f} {info['collected']}\n")
    gc.callbacks.append(probe)
    import vibemuse.realtime.heartbeat as heartbeat  # and time each heartbeat (it pings every socket at once)
    beat = heartbeat.Heartbeat.beat
    def timed_beat(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return beat(self, *args, **kwargs)
        finally:
            out.write(f"{time.time():.3f} heartbeat {1000 * (time.perf_counter() - started):.2f} 0\n")
    heartbeat.Heartbeat.beat = timed_beat
experiments = os.environ.get("FANOUT_EXPERIMENTS", "").split(",")
if "direct-send" in experiments:
    import tornado.iostream
    from vibemuse.handlers import websocket
    # the method that writes one frame to the stream: _write() in newer trees, else send_encoded()
    name = "_write" if hasattr(websocket.ClientSocketHandler, "_write") else "send_encoded"
    queue_on_stream = getattr(websocket.ClientSocketHandler, name)
    def write_direct(self, frame, *rest):
        connection = self.ws_connection
        if self._overflowed or connection is None or connection.is_closing():
            return
        stream = connection.stream
        if type(stream) is tornado.iostream.IOStream and not stream.writing() and not stream.closed():
            try:
                sent = stream.socket.send(frame)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # IOStream.write below meets the error and closes the stream
            if sent == len(frame):
                return
            frame = frame[sent:]
        queue_on_stream(self, frame, *rest)
    setattr(websocket.ClientSocketHandler, name, write_direct)
if "gc-freeze" in experiments:
    import vibemuse.app
    listen = vibemuse.app.VibeMuseServer.listen
    def listen_then_freeze(self, *args, **kwargs):
        port = listen(self, *args, **kwargs)
        gc.collect()
        gc.freeze()
        return port
    vibemuse.app.VibeMuseServer.listen = listen_then_freeze
path = os.environ.get("FANOUT_MEM_TRACE")
if path:
    import signal, tracemalloc
    tracemalloc.start(8)
    snapshots = []
    def snapshot(signum, frame):
        snapshots.append(tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)]))
        if len(snapshots) == 2:
            with open(path, "w") as out:
                by_file = snapshots[1].compare_to(snapshots[0], "filename")
                out.write(f"total {sum(stat.size_diff for stat in by_file)} bytes\n")
                for stat in by_file[:15]:
                    out.write(f"{stat.size_diff} {stat.count_diff} {stat.traceback[0].filename}\n")
                for stat in snapshots[1].compare_to(snapshots[0], "lineno")[:30]:
                    out.write(f"{stat.size_diff} {stat.count_diff} {stat.traceback[0]}\n")
                for stat in snapshots[1].compare_to(snapshots[0], "traceback")[:25]:
                    out.write(f"{stat.size_diff} {stat.count_diff}\n")
                    for line in stat.traceback.format()[-8:]:
                        out.write("    " + line + "\n")
    signal.signal(signal.SIGUSR1, snapshot)
from vibemuse.cli import main
sys.exit(main())
"""


# ---------------------------------------------------------------------------
# The client side: minimal WebSocket client on asyncio protocols.
# ---------------------------------------------------------------------------


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 5.3)."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    if n:
        keys = (key * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "little") ^ int.from_bytes(keys, "little")).to_bytes(n, "little")
    else:
        masked = b""
    return header + key + masked


def handshake_request(host: str, port: int, path: str, token: str | None, subprotocol: str | None) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocol:
        lines.append("Sec-WebSocket-Protocol: " + subprotocol)
    if token:
        lines.append("Authorization: Bearer " + token)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Sock:
    """One client socket (an asyncio Protocol, duck-typed)."""

    __slots__ = (
        "buf",
        "close_code",
        "connected_at",
        "failure",
        "owner",
        "pending",
        "ready",
        "request",
        "seen",
        "started",
        "after",
        "index",
        "transport",
        "upgraded",
    )

    def __init__(self, owner: Worker, request: bytes, ready_markers: tuple[bytes, ...]):
        self.owner = owner
        self.request = request
        self.transport: Any = None
        self.buf = b""
        self.upgraded = False
        self.pending = set(ready_markers)  # frames still to see before the socket counts as joined
        self.ready: Any = None  # a Future, set by the worker
        self.seen = bytearray(0)  # seen[seq] = 1 once measured message seq arrived
        self.close_code: int | None = None
        self.started = 0.0
        self.connected_at = 0.0
        self.failure: str | None = None
        self.after: list[tuple[bytes, bytes]] | None = None  # (frame, ack marker) to send once joined
        self.index = -1  # page scenario: this socket's user number

    # asyncio.Protocol
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.close_code is None:
            self.close_code = 1006
        self._fail("connection lost" + (f": {exc}" if exc else ""))

    def eof_received(self) -> bool:
        return False

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass

    def _fail(self, why: str) -> None:
        if self.ready is not None and not self.ready.done():
            self.failure = why
            self.ready.set_result(False)

    def _joined(self) -> None:
        if self.ready is not None and not self.ready.done():
            self.connected_at = time.perf_counter()
            self.ready.set_result(True)

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        buf = self.buf + data if self.buf else data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            status = buf[: buf.find(b"\r\n")]
            if b" 101 " not in status:
                self.buf = b""
                self._fail("handshake refused: " + buf[: min(end, 300)].decode("latin-1").replace("\r\n", " | ")
                           + " " + buf[end + 4: end + 200].decode("latin-1"))
                self.transport.close()
                return
            self.upgraded = True
            buf = buf[end + 4:]
            if not self.pending:
                self._joined()
        pos, n = 0, len(buf)
        owner = self.owner
        while n - pos >= 2:
            b1 = buf[pos + 1] & 0x7F
            if b1 < 126:
                hl, ln = 2, b1
            elif b1 == 126:
                if n - pos < 4:
                    break
                hl, ln = 4, (buf[pos + 2] << 8) | buf[pos + 3]
            else:
                if n - pos < 10:
                    break
                hl, ln = 10, int.from_bytes(buf[pos + 2: pos + 10], "big")
            end = pos + hl + ln
            if end > n:
                break
            opcode = buf[pos] & 0x0F
            if opcode == 1:
                owner.on_text(self, buf, pos + hl, end, now)
            elif opcode == 9:  # ping: answer with a pong (the heartbeat)
                self.transport.write(client_frame(0xA, buf[pos + hl: end]))
            elif opcode == 8:
                self.close_code = int.from_bytes(buf[pos + hl: pos + hl + 2], "big") if ln >= 2 else 1005
                owner.closed_codes[self.close_code] = owner.closed_codes.get(self.close_code, 0) + 1
                self._fail(f"closed by the server with {self.close_code}")
                self.transport.write(client_frame(0x8, buf[pos + hl: pos + hl + 2]))
                self.transport.close()
            pos = end
        self.buf = buf[pos:] if pos < n else b""


class Worker:
    """One client process: a share of the listener sockets, or the speakers."""

    def __init__(self, conn: Any, spec: dict[str, Any]):
        self.conn = conn
        self.spec = spec
        self.socks: list[Sock] = []
        self.measuring = False
        self.lat = array.array("q")  # delivery latency, µs
        self.first = array.array("q")
        self.last = array.array("q")
        self.received = 0
        self.duplicates = 0
        self.warm = 0
        self.closed_codes: dict[int, int] = {}
        self.verify_every = spec["verify_every"]
        self.verified = 0
        self.verify_failures: list[str] = []
        self.body_path = spec["body_path"]
        # speakers only
        self.send_ns: dict[int, int] = {}
        self.ack_lat = array.array("q")
        self.errors: list[str] = []
        # page scenario: page i goes from user i % page_users to its partner (user number ^ 1)
        self.page_users = spec.get("page_users", 0)
        self.echo_lat = array.array("q")  # the sender's own copy of each page, µs
        self.recv_last_ns = 0

    # -- frames in ------------------------------------------------------------

    def on_text(self, sock: Sock, buf: bytes, start: int, end: int, now: int) -> None:
        i = buf.find(MARK, start, end)
        if i >= 0:
            if not self.measuring:
                return
            j = buf.find(b" ", i + 7, end)
            k = buf.find(b" ", j + 1, end)
            seq = int(buf[i + 7: j])
            sent = int(buf[j + 1: k])
            seen = sock.seen
            if seq < len(seen):
                if seen[seq]:
                    self.duplicates += 1
                    return
                seen[seq] = 1
            us = (now - sent) // 1000
            self.received += 1
            if now > self.recv_last_ns:
                self.recv_last_ns = now
            if self.page_users and seq % self.page_users == sock.index:
                self.echo_lat.append(us)  # the sender's own copy: not a delivery latency
                return
            self.lat.append(us)
            if seq < len(seen):
                self.last[seq] = max(self.last[seq], us)
                self.first[seq] = min(self.first[seq], us)
            if self.verify_every and self.received % self.verify_every == 1:
                self._verify(buf[start:end], seq, sent)
            return
        if buf.find(WARM, start, end) >= 0:
            self.warm += 1
            return
        if sock.pending:
            for marker in list(sock.pending):
                if buf.find(marker, start, end) >= 0:
                    sock.pending.discard(marker)
            if not sock.pending and sock.upgraded:
                if sock.after:  # setup frames (join_room, join_channel): wait for their acks too
                    frames, sock.after = sock.after, None
                    for payload, marker in frames:
                        sock.pending.add(marker)
                        sock.transport.write(client_frame(1, payload))
                else:
                    sock._joined()
            elif buf.find(b'"type":"error"', start, end) >= 0 and buf.find(b'"inReplyTo":"j', start, end) >= 0:
                sock._fail("setup frame refused: " + buf[start:min(end, start + 300)].decode("utf-8", "replace"))
        if self.spec["role"] in ("speak", "page"):
            frame = buf[start:end]
            if b'"type":"ack"' in frame:
                at = frame.find(b'"inReplyTo":"m.')
                if at >= 0:
                    seq = int(frame[at + 15: frame.find(b'"', at + 15)])
                    sent = self.send_ns.pop(seq, None)
                    if sent is not None:
                        self.ack_lat.append((now - sent) // 1000)
            elif b'"type":"error"' in frame and len(self.errors) < 5:
                self.errors.append(frame[:400].decode("utf-8", "replace"))

    def _verify(self, payload: bytes, seq: int, sent: int) -> None:
        """Now and then, parse the whole frame and read the text where a real client would."""
        try:
            value: Any = json.loads(payload)
            for key in self.body_path:
                value = value[key]
            ok = isinstance(value, str) and value.startswith(f"fanout {seq} {sent} ")
            if ok and self.page_users:
                frame = json.loads(payload)
                ok = frame["type"] == "message" and frame["data"]["event"]["type"] == "vm.page"
                value = value if ok else f"{frame['type']} / {frame['data'].get('event', {}).get('type')}"
        except (ValueError, KeyError, TypeError) as error:
            ok, value = False, repr(error)
        self.verified += 1
        if not ok and len(self.verify_failures) < 3:
            self.verify_failures.append(str(value)[:200])

    # -- commands from the driver ---------------------------------------------

    async def connect_all(self) -> dict[str, Any]:
        import asyncio

        loop = asyncio.get_running_loop()
        spec = self.spec
        gate = asyncio.Semaphore(spec["concurrency"])
        markers = tuple(m.encode() for m in spec["ready_markers"])

        after = spec.get("after") or [None] * len(spec["tokens"])
        indices = spec.get("indices") or [-1] * len(spec["tokens"])

        async def one(token: str | None, setup: list[list[str]] | None, index: int) -> Sock:
            async with gate:
                sock = Sock(self, handshake_request(spec["host"], spec["port"], spec["path"], token,
                                                    spec["subprotocol"]), markers)
                if setup:
                    sock.after = [(payload.encode(), marker.encode()) for payload, marker in setup]
                sock.index = index
                sock.ready = loop.create_future()
                sock.started = time.perf_counter()
                self.socks.append(sock)
                try:
                    await loop.create_connection(lambda: sock, spec["host"], spec["port"])
                    await asyncio.wait_for(sock.ready, spec["connect_timeout"])
                except (TimeoutError, OSError) as error:
                    sock._fail(f"{type(error).__name__}: {error}")
                return sock

        started = time.perf_counter()
        socks = await asyncio.gather(*(one(token, setup, index)
                                       for token, setup, index in zip(spec["tokens"], after, indices)))
        elapsed = time.perf_counter() - started
        ok = [s for s in socks if s.ready.result()]
        failures = [s.failure for s in socks if not s.ready.result()]
        each = sorted(s.connected_at - s.started for s in ok)
        return {"ok": len(ok), "failed": len(failures), "failures": failures[:3], "seconds": elapsed,
                "handshake_p50_ms": 1000 * each[len(each) // 2] if each else None,
                "handshake_max_ms": 1000 * each[-1] if each else None}

    async def speak(self, kind: str, rate: float, seconds: float, start_seq: int) -> dict[str, Any]:
        import asyncio

        loop = asyncio.get_running_loop()
        live = [s for s in self.socks if s.ready.done() and s.ready.result()]
        total = round(rate * seconds)
        naive = self.spec["target"] != "vibemuse"
        t0 = loop.time() + 0.01
        first_ns = last_ns = 0
        for i in range(total):
            delay = t0 + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            seq = start_seq + i
            sent = time.time_ns()
            word = "fanout" if kind == "measure" else "warmup"
            text = f"{word} {seq} {sent} {FILLER}"
            prefix = "m" if kind == "measure" else "w"
            if self.spec.get("speak_type", "say") == "channel":
                frame = {"type": "channel", "messageId": f"{prefix}.{seq}",
                         "data": {"channelId": self.spec["channel_id"], "text": text}}
            else:
                frame = {"type": "say", "messageId": f"{prefix}.{seq}", "data": {"text": text}}
            if kind == "measure" and not naive:
                self.send_ns[seq] = sent
            live[i % len(live)].transport.write(client_frame(1, json.dumps(frame, separators=(",", ":")).encode()))
            first_ns = first_ns or sent
            last_ns = sent
        return {"sent": total, "first_ns": first_ns, "last_ns": last_ns,
                "behind_ms": 1000 * max(0.0, loop.time() - (t0 + (total - 1) / rate))}

    async def page(self, kind: str, rate: float, seconds: float, start_at: float) -> dict[str, Any]:
        """Page scenario: every worker sends the pages of its own users on one shared schedule."""
        import asyncio

        loop = asyncio.get_running_loop()
        users, names = self.page_users, self.spec["page_names"]
        mine = {s.index: s for s in self.socks if s.ready.done() and s.ready.result()}
        total = round(rate * seconds)
        t0 = loop.time() + max(0.0, start_at - time.time())
        first_ns = last_ns = sent_here = 0
        last_i = -1
        word, prefix = ("fanout", "m") if kind == "measure" else ("warmup", "w")
        for i in range(total):
            sock = mine.get(i % users)
            if sock is None:
                continue
            delay = t0 + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.time_ns()
            frame = {"type": "page", "messageId": f"{prefix}.{i}",
                     "data": {"to": [names[(i % users) ^ 1]], "text": f"{word} {i} {sent} {FILLER}"}}
            if kind == "measure":
                self.send_ns[i] = sent
            sock.transport.write(client_frame(1, json.dumps(frame, separators=(",", ":")).encode()))
            first_ns = first_ns or sent
            last_ns, last_i = sent, i
            sent_here += 1
        behind = 1000 * max(0.0, loop.time() - (t0 + last_i / rate)) if last_i >= 0 else 0.0
        return {"sent": total, "sent_here": sent_here, "first_ns": first_ns, "last_ns": last_ns,
                "behind_ms": behind}

    def measure(self, capacity: int) -> None:
        for sock in self.socks:
            sock.seen = bytearray(capacity)
        self.lat = array.array("q")
        self.first = array.array("q", [1 << 62]) * capacity  # per message: earliest copy, µs
        self.last = array.array("q", [0]) * capacity  # per message: latest copy, µs
        self.received = self.duplicates = 0
        self.measuring = True

    def finish(self, sent: int) -> dict[str, Any]:
        self.measuring = False
        missing = sockets_missing = echo_missing = 0
        live = 0
        users = self.page_users
        for sock in self.socks:
            if not sock.upgraded:
                continue
            live += 1
            if users:  # pages from the partner, and this user's own pages (the echo)
                seen = sock.seen
                lacking = sum(1 for i in range((sock.index ^ 1) % users, sent, users) if not seen[i])
                echo_missing += sum(1 for i in range(sock.index, sent, users) if not seen[i])
                missing += lacking
                sockets_missing += lacking > 0
                continue
            got = sum(sock.seen[:sent])
            if got < sent:
                missing += sent - got
                sockets_missing += 1
        return {"lat": self.lat.tobytes(), "first": self.first[:sent].tobytes(), "last": self.last[:sent].tobytes(),
                "received": self.received, "duplicates": self.duplicates,
                "missing": missing, "sockets_missing": sockets_missing, "sockets": live,
                "closed": dict(self.closed_codes), "ack_lat": self.ack_lat.tobytes(), "errors": self.errors,
                "verified": self.verified, "verify_failures": self.verify_failures,
                "echo_missing": echo_missing, "echo_lat": self.echo_lat.tobytes(),
                "recv_last_ns": self.recv_last_ns}

    def stats(self) -> dict[str, Any]:
        return {"received": self.received, "warm": self.warm, "closed": sum(self.closed_codes.values())}

    async def run(self) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        loop.call_later(self.spec["deadline"] - time.time(), os._exit, 3)  # never outlive the driver's budget
        commands: asyncio.Queue = asyncio.Queue()

        def readable() -> None:
            try:
                commands.put_nowait(self.conn.recv())
            except (EOFError, OSError):
                os._exit(4)  # the driver is gone

        loop.add_reader(self.conn.fileno(), readable)
        while True:
            command, *args = await commands.get()
            if command == "connect":
                self.conn.send(await self.connect_all())
            elif command == "speak":
                self.conn.send(await self.speak(*args))
            elif command == "page":
                self.conn.send(await self.page(*args))
            elif command == "measure":
                self.measure(*args)
                self.conn.send("ok")
            elif command == "stats":
                self.conn.send(self.stats())
            elif command == "finish":
                self.conn.send(self.finish(*args))
            elif command == "close":
                for sock in self.socks:
                    if sock.transport is not None and not sock.transport.is_closing():
                        if sock.upgraded:
                            sock.transport.write(client_frame(0x8, struct.pack("!H", 1000)))
                        sock.transport.close()
                await asyncio.sleep(0.2)
                self.conn.send("closed")
                return


def worker_main(conn: Any, spec: dict[str, Any]) -> None:
    import asyncio

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver cleans up
    raise_fd_limit()
    asyncio.run(Worker(conn, spec).run())


# ---------------------------------------------------------------------------
# The driver.
# ---------------------------------------------------------------------------


def source_tree() -> str:
    """The commit under test, and whether vibemuse/ differs from it."""
    try:
        def git(*words: str) -> str:
            done = subprocess.run(["git", *words], cwd=ROOT, capture_output=True, text=True, check=False, timeout=10)
            return done.stdout.strip()

        head, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "vibemuse")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" + uncommitted changes in vibemuse/" if dirty else "")


def lifted_limits(sockets: int) -> dict[str, str]:
    """Environment that lifts VibeMUSE's abuse limits for a load test from one address.

    Every client of the benchmark comes from 127.0.0.1 and one speaker says 20
    messages a second, so the per-address connection cap, the rate limits
    (registrations, handshakes, speech ...) and the flood rules would refuse
    the benchmark itself. The checks still run on every frame; only their
    thresholds are raised. Settings this tree does not have are left out.
    """
    try:
        from vibemuse import config
    except Exception:  # noqa: BLE001 - an unimportable tree fails later, with its own message
        return {}
    env: dict[str, str] = {}
    settings = set(getattr(config, "SETTINGS", ()))
    if "max_connections_per_address" in settings:
        env["VIBEMUSE_MAX_CONNECTIONS_PER_ADDRESS"] = str(sockets + 100)
    if "rate_limits" in settings:
        actions = getattr(config, "DEFAULT_RATE_LIMITS", {})
        env["VIBEMUSE_RATE_LIMITS"] = json.dumps({action: [1e6, 1e6] for action in actions})
    for name in ("spam_flood_count", "spam_repeat_count", "spam_disconnect_after"):
        if name in settings:
            env["VIBEMUSE_" + name.upper()] = "1000000"
    return env


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), seconds."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(sorted_values: array.array, fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, math.ceil(fraction * len(sorted_values)) - 1)]


class Run:
    """One target: its server process, accounts, client processes and figures."""

    def __init__(self, target: str, args: argparse.Namespace, deadline: float):
        self.target = target
        self.args = args
        self.deadline = deadline
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix=f"fanout-{target}-"))
        self.server: subprocess.Popen | None = None
        self.procs: list[Any] = []
        self.pipes: list[Any] = []
        self.log = self.tmp / "server.log"
        self.gc_log = self.tmp / "gc.log"
        # the naive relay knows rooms only: it always runs the room scenario
        self.scenario = args.scenario if target == "vibemuse" else "room"
        self.speakers = 0 if self.scenario == "page" else args.speakers
        self.per_user = args.per_user or (100 if self.scenario == "room" else 1)
        self.setup: dict[str, Any] = {}

    # -- server ---------------------------------------------------------------

    def start_server(self) -> None:
        env = dict(os.environ)
        if self.target == "vibemuse":
            env["VIBEMUSE_MAX_CONNECTIONS_PER_USER"] = str(self.per_user)
            env.update(lifted_limits(self.sockets() + self.speakers))
            env.setdefault("VIBEMUSE_LOG_LEVEL", self.args.server_log_level)
            if self.scenario == "channel":
                # the speaker makes the rooms, so it must be a builder: create it with the server's own CLI
                started = time.perf_counter()
                for index in range(self.speakers):
                    subprocess.run([str(VENV_BIN / "vibemuse"), "user", "create", f"Speaker{index}", "--admin",
                                    "--data-dir", str(self.tmp / "data"), "--server-name", "bench.localhost"],
                                   input=PASSWORD + "\n", text=True, env=env, check=True, capture_output=True,
                                   timeout=120, cwd=str(ROOT))
                self.setup["admin_create_s"] = round(time.perf_counter() - started, 2)
            command = [str(VENV_BIN / "vibemuse"), "serve", "--port", str(self.port),
                       "--data-dir", str(self.tmp / "data"), "--server-name", "bench.localhost"]
            if self.args.gc_log or self.args.experiment or self.args.mem_trace:
                command[:1] = [str(VENV_BIN / "python"), "-c", SERVER_WRAPPER]
                if self.args.gc_log:
                    env["FANOUT_GC_LOG"] = str(self.gc_log)
                env["FANOUT_EXPERIMENTS"] = ",".join(self.args.experiment)
                if self.args.mem_trace:
                    env["FANOUT_MEM_TRACE"] = str(Path(self.args.mem_trace).resolve())
        else:
            command = [str(VENV_BIN / "python"), str(HERE / "naive_server.py"), "--port", str(self.port)]
            if self.target == "preencoded":
                command.append("--preencoded")
        self.server = subprocess.Popen(command, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
                                       cwd=str(ROOT))
        until = time.time() + 60
        while time.time() < until:
            if self.server.poll() is not None:
                raise SystemExit(f"{self.target} server exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"{self.target} server did not listen within 60 s")
        self.server_pid = self.server.pid

    def stop_server(self) -> None:
        if self.server is None or self.server.poll() is not None:
            return
        try:
            os.kill(self.server_pid, signal.SIGTERM)
            self.server.wait(timeout=10)
        except (subprocess.TimeoutExpired, ProcessLookupError, AttributeError):
            self.server.kill()
            self.server.wait(timeout=5)

    def mem_snapshot(self) -> None:
        """--mem-trace: have the server take a tracemalloc snapshot (the second one writes the diff)."""
        if self.args.mem_trace and self.target == "vibemuse":
            report = Path(self.args.mem_trace)
            first = not hasattr(self, "_mem_snapshots")
            self._mem_snapshots = True
            if first and report.exists():
                report.unlink()
            os.kill(self.server_pid, signal.SIGUSR1)
            until = time.time() + (5 if first else 300)
            while time.time() < until and not (not first and report.exists()):
                time.sleep(0.5)

    def start_profiler(self, phase: str) -> subprocess.Popen | None:
        """py-spy on the server for the measured window or the connecting (VibeMUSE only)."""
        if not self.args.profile or self.target != "vibemuse" or phase != self.args.profile_phase:
            return None
        py_spy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
        if not py_spy:
            raise SystemExit("--profile needs py-spy (.venv/bin/pip install py-spy)")
        command = [py_spy, "record", "--pid", str(self.server_pid), "--duration",
                   str(math.ceil(self.args.seconds if phase == "measure" else self.args.connect_timeout)),
                   "--rate", "250", "--nonblocking", "--threads", "--format", self.args.profile_format,
                   "-o", str(Path(self.args.profile).resolve())]
        profiler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # let it attach
        return profiler

    # -- accounts -------------------------------------------------------------

    def register(self, username: str) -> str:
        body = json.dumps({"username": username, "password": PASSWORD}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/auth/register", data=body,
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())["accessToken"]

    def login(self, username: str) -> str:
        return self.post("/api/auth/login", {"username": username, "password": PASSWORD})["accessToken"]

    def post(self, path: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(),
                                         headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def sockets(self) -> int:
        """Listener sockets: --clients, or two per pair in the page scenario."""
        return 2 * self.args.pairs if self.scenario == "page" else self.args.clients

    def page_names(self) -> list[str]:
        return [f"P{index:05d}" for index in range(2 * self.args.pairs)]

    def accounts(self) -> tuple[list[str | None], list[str | None]]:
        """Tokens for the listener sockets (several sockets per account) and the speakers."""
        clients, per_user = self.sockets(), self.per_user
        if self.target != "vibemuse":
            return [None] * clients, [None] * self.speakers
        users = math.ceil(clients / per_user)
        prefix = "P" if self.scenario == "page" else "L"
        names = [f"{prefix}{index:05d}" for index in range(users)]
        if self.scenario == "room":
            names += [f"Speaker{index}" for index in range(self.speakers)]
        with ThreadPoolExecutor(self.args.register_threads) as pool:
            tokens = list(pool.map(self.register, names))
        if self.scenario == "channel":  # the speakers exist already (admins, made with the CLI)
            tokens += [self.login(f"Speaker{index}") for index in range(self.speakers)]
        listeners = [tokens[index // per_user] for index in range(clients)]
        return listeners, tokens[users:]

    def setup_channel(self, speaker: str) -> list[list[list[str]]]:
        """Channel scenario: the speaker makes the channel and the rooms; each listener's setup frames."""
        channel = self.post("/api/communication/channels", {"name": "Bench"}, speaker)["channel"]
        rooms = [self.post("/api/rooms", {"name": f"Bench room {index}"}, speaker)["id"]
                 for index in range(self.args.rooms)]
        self.setup.update({"channel": channel["id"], "rooms": len(rooms)})
        frames = []
        for index in range(self.sockets()):
            join_room = {"type": "join_room", "messageId": "jr", "data": {"roomId": rooms[index % len(rooms)]}}
            join_channel = {"type": "join_channel", "messageId": "jc", "data": {"channelId": self.args.channel_id}}
            frames.append([[json.dumps(join_room), '"inReplyTo":"jr"'],
                           [json.dumps(join_channel), '"inReplyTo":"jc"']])
        return frames

    # -- client processes -----------------------------------------------------

    def spec(self, role: str, tokens: list[str | None]) -> dict[str, Any]:
        vibemuse = self.target == "vibemuse"
        return {
            "role": role, "target": self.target, "host": "127.0.0.1", "port": self.port, "path": "/api/ws",
            "tokens": tokens, "subprotocol": "vibemuse.v1" if vibemuse else None,
            "ready_markers": ['"type":"welcome"', '"type":"roster"'] if vibemuse else [],
            "body_path": ["data", "event", "content", "body"] if vibemuse else ["data", "text"],
            "concurrency": self.args.connect_concurrency, "connect_timeout": self.args.connect_timeout,
            "deadline": self.deadline, "verify_every": self.args.verify_every,
            "speak_type": "channel" if self.scenario == "channel" else "say", "channel_id": self.args.channel_id,
        }

    def start_clients(self, listeners: list[str | None], speakers: list[str | None],
                      after: list[Any] | None = None) -> None:
        ctx = mp.get_context("spawn")
        k = self.args.workers
        shares = []
        for index in range(k):
            spec = self.spec("page" if self.scenario == "page" else "listen", listeners[index::k])
            if after:
                spec["after"] = after[index::k]
            if self.scenario == "page":
                spec["indices"] = list(range(len(listeners)))[index::k]
                spec["page_users"] = len(listeners)
                spec["page_names"] = self.page_names()
            shares.append(spec)
        if self.speakers:
            shares.append(self.spec("speak", speakers))
        for spec in shares:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child, spec), daemon=True)
            proc.start()
            child.close()
            self.procs.append(proc)
            self.pipes.append(parent)

    def ask(self, pipes: list[Any], *command: Any, timeout: float = 600) -> list[Any]:
        for pipe in pipes:
            pipe.send(command)
        answers = []
        for pipe in pipes:
            left = min(timeout, self.deadline - time.time())
            if left <= 0 or not pipe.poll(left):
                raise TimeoutError(f"{self.target}: no answer to {command[0]!r} in time")
            answers.append(pipe.recv())
        return answers

    def client_cpu(self) -> float:
        return sum(cpu_seconds(proc.pid) for proc in self.procs if proc.is_alive())

    def stop_clients(self) -> None:
        try:
            self.ask(self.pipes, "close", timeout=10)
        except (TimeoutError, OSError, EOFError):
            pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()

    # -- the run ----------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        args = self.args
        page = self.scenario == "page"
        clients = self.sockets()
        receivers = clients + self.speakers
        label = self.target
        if self.target == "vibemuse" and args.experiment:
            label += "+" + "+".join(args.experiment)
        if self.scenario != "room":
            label += " " + self.scenario
        result: dict[str, Any] = {"target": label, "scenario": self.scenario, "clients": clients,
                                  "speakers": self.speakers, "rate": args.rate, "seconds": args.seconds}
        try:
            self.start_server()
            started = time.perf_counter()
            listeners, speakers = self.accounts()
            after = None
            if self.scenario == "channel":
                after = self.setup_channel(speakers[0])
            if self.target == "vibemuse":
                result["accounts"] = {"listener_accounts": math.ceil(clients / self.per_user),
                                      "sockets_per_account": self.per_user,
                                      "register_s": round(time.perf_counter() - started, 2), **self.setup}
            self.start_clients(listeners, speakers, after)
            time.sleep(1.0)  # let the client processes start and the server settle
            rss_before = rss_kib(self.server_pid)
            self.mem_snapshot()

            profiler = self.start_profiler("connect")
            started = time.perf_counter()
            connected = self.ask(self.pipes, "connect")
            result["connect_s"] = round(time.perf_counter() - started, 3)
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
                profiler.wait(timeout=60)
            result["connected"] = sum(c["ok"] for c in connected)
            result["connect_failed"] = sum(c["failed"] for c in connected)
            result["handshake_max_ms"] = round(max(c["handshake_max_ms"] or 0 for c in connected), 1)
            failures = [f for c in connected for f in c["failures"]]
            if failures:
                result["connect_failures"] = failures[:3]
            time.sleep(2.0)
            rss_after = rss_kib(self.server_pid)
            self.mem_snapshot()
            result["rss_before_kib"], result["rss_after_kib"] = rss_before, rss_after
            result["kib_per_conn"] = round((rss_after - rss_before) / max(1, result["connected"]), 2)
            if result["connected"] < receivers:
                print(f"  {self.target}: only {result['connected']} of {receivers} sockets connected",
                      file=sys.stderr)

            speaker = self.pipes if page else self.pipes[-1:]
            if not page and connected[-1]["ok"] < self.speakers:
                raise SystemExit(f"{self.target}: the speakers could not connect: {connected[-1]['failures']} "
                                 f"(server log: {self.log}, use --keep)")
            # warm-up: one second of messages, not counted; wait until every socket has them
            if page:  # each page reaches the partner and the sender's own socket
                warm_sent = self.ask(speaker, "page", "warm", args.rate, 1.0, time.time() + 0.3)[0]["sent"]
                warm_copies = 2 * warm_sent
            else:
                warm_sent = self.ask(speaker, "speak", "warm", args.rate, 1.0, 0)[0]["sent"]
                warm_copies = warm_sent * result["connected"]
            live = result["connected"]
            until = time.time() + args.drain_timeout
            while time.time() < until:
                if sum(s["warm"] for s in self.ask(self.pipes, "stats")) >= warm_copies:
                    break
                time.sleep(0.1)
            time.sleep(0.5)

            capacity = int(args.rate * args.seconds) + 1
            self.ask(self.pipes, "measure", capacity)
            profiler = self.start_profiler("measure")
            cpu0, client0, t0 = cpu_seconds(self.server_pid), self.client_cpu(), time.perf_counter()
            wall0 = time.time()
            if page:
                parts = self.ask(speaker, "page", "measure", args.rate, args.seconds, time.time() + 0.3)
                spoken = {"sent": parts[0]["sent"], "behind_ms": max(p["behind_ms"] for p in parts),
                          "first_ns": min(p["first_ns"] for p in parts if p["first_ns"])}
                sent = spoken["sent"]
                expected = 2 * sent
            else:
                spoken = self.ask(speaker, "speak", "measure", args.rate, args.seconds, 0)[0]
                sent = spoken["sent"]
                expected = sent * live
            until = time.time() + args.drain_timeout
            while time.time() < until:
                got = sum(s["received"] for s in self.ask(self.pipes, "stats"))
                if got >= expected:
                    break
                time.sleep(0.05)
            cpu1, client1, t1 = cpu_seconds(self.server_pid), self.client_cpu(), time.perf_counter()
            wall1 = time.time()
            finished = self.ask(self.pipes, "finish", sent)
            if profiler is not None:
                profiler.wait(timeout=60)
            result["rss_end_kib"] = rss_kib(self.server_pid)
        finally:
            if self.procs:
                self.stop_clients()
            self.stop_server()

        lat = array.array("q")
        for part in finished:
            lat.frombytes(part["lat"])
        lat = array.array("q", sorted(lat))
        first = [1 << 62] * sent
        last = [0] * sent
        for part in finished:
            for seq, value in enumerate(array.array("q", part["first"])):
                first[seq] = min(first[seq], value)
            for seq, value in enumerate(array.array("q", part["last"])):
                last[seq] = max(last[seq], value)
        if args.series:
            with open(args.series, "a") as handle:
                for seq, (a, b) in enumerate(zip(first, last)):
                    handle.write(f"{self.target}\t{seq}\t{seq / args.rate:.3f}\t{a / 1000:.1f}\t{b / 1000:.1f}\n")
        spread = array.array("q", sorted(b - a for a, b in zip(first, last) if b))
        first = array.array("q", sorted(a for a, b in zip(first, last) if b))
        ack = array.array("q")
        for part in (finished if page else finished[-1:]):
            ack.frombytes(part["ack_lat"])
        ack = array.array("q", sorted(ack))
        window = t1 - t0
        server_cpu = cpu1 - cpu0
        delivered = sum(p["received"] for p in finished)
        copies = 2 * sent if page else sent * receivers
        if page:
            echo = array.array("q")
            for part in finished:
                echo.frombytes(part["echo_lat"])
            echo = array.array("q", sorted(echo))
            span = (max(p["recv_last_ns"] for p in finished) - spoken["first_ns"]) / 1e9
            result.update({
                "pages": sent,
                "echo_lost": sum(p["echo_missing"] for p in finished),
                "echo_ms": {name: round(percentile(echo, q) / 1000, 1)
                            for name, q in (("p50", .5), ("p99", .99), ("max", 1.0))},
                "pages_per_s": round(sent / span, 1) if span > 0 else None,
                "us_per_page": round(1e6 * (cpu1 - cpu0) / sent, 1) if sent else None,
            })
        result.update({
            "messages": sent,
            "speaker_behind_ms": round(spoken["behind_ms"], 1),
            "deliveries": delivered,
            "lost": sum(p["missing"] for p in finished) if page else copies - delivered,
            "sockets_missing": sum(p["sockets_missing"] for p in finished),
            "duplicates": sum(p["duplicates"] for p in finished),
            "closed": {str(code): n for p in finished for code, n in p["closed"].items()},
            "lat_ms": {name: round(percentile(lat, q) / 1000, 1)
                       for name, q in (("p50", .5), ("p90", .9), ("p99", .99), ("max", 1.0))},
            # per message: first copy's latency (the server's work before the fan-out loop) and the
            # time from the first copy to the last (the fan-out itself, as the clients saw it)
            "first_copy_ms": {name: round(percentile(first, q) / 1000, 1) for name, q in (("p50", .5), ("p99", .99))},
            "spread_ms": {name: round(percentile(spread, q) / 1000, 1) for name, q in (("p50", .5), ("p99", .99))},
            "window_s": round(window, 2),
            "server_cpu_s": round(server_cpu, 2),
            "server_cpu_pct": round(100 * server_cpu / window, 1),
            "us_per_copy": round(1e6 * server_cpu / copies, 1) if copies else None,
            "client_cpu_pct": round(100 * (client1 - client0) / window, 1),
            "verified": sum(p["verified"] for p in finished),
            "verify_failures": [f for p in finished for f in p["verify_failures"]][:3],
        })
        if self.args.gc_log and self.gc_log.exists():
            pauses: dict[str, list[float]] = {}
            for line in self.gc_log.read_text().splitlines():
                at, generation, pause, _ = line.split()
                if wall0 <= float(at) <= wall1:
                    pauses.setdefault(generation, []).append(float(pause))
            result["gc_in_window"] = {
                g if g == "heartbeat" else f"gen{g}": {"count": len(p), "total_ms": round(sum(p), 1),
                                                       "max_ms": round(max(p), 1)}
                for g, p in sorted(pauses.items())}
        if self.target == "vibemuse":
            result["ack_ms"] = {name: round(percentile(ack, q) / 1000, 1)
                                for name, q in (("p50", .5), ("p99", .99), ("max", 1.0))}
            errors = [e for p in finished for e in p["errors"]]
            if errors:
                result["errors"] = errors[:3]
        return result

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
        if self.server is not None and self.server.poll() is None:
            self.server.kill()
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print(f"  kept {self.tmp}", file=sys.stderr)


def print_table(results: list[dict[str, Any]]) -> None:
    width = max(11, *(len(r["target"]) + 1 for r in results))
    print()
    print(f"{'target':<{width}}{'clients':>8}{'msg/s':>7}{'connect s':>10}{'p50 ms':>8}{'p90':>7}{'p99':>7}"
          f"{'max':>8}{'lost':>6}{'srv CPU':>9}{'µs/copy':>9}{'KiB/conn':>9}{'clients CPU':>12}")
    for r in results:
        lat = r["lat_ms"]
        print(f"{r['target']:<{width}}{r['clients']:>8}{r['rate']:>7g}{r['connect_s']:>10.2f}{lat['p50']:>8.1f}"
              f"{lat['p90']:>7.1f}{lat['p99']:>7.1f}{lat['max']:>8.1f}{r['lost']:>6}"
              f"{r['server_cpu_pct']:>8.0f}%{r['us_per_copy']:>9.1f}{r['kib_per_conn']:>9.1f}"
              f"{r['client_cpu_pct']:>11.0f}%")
    naive = next((r for r in results if r["target"] == "naive"), None)
    ours = next((r for r in results if r["target"].startswith("vibemuse")), None)
    if naive and ours:
        def ratio(key: str, sub: str | None = None) -> str:
            a, b = (ours[key][sub], naive[key][sub]) if sub else (ours[key], naive[key])
            return f"{a / b:.2f}x" if b else "n/a"
        print(f"vibemuse / naive: p99 {ratio('lat_ms', 'p99')}, µs per copy {ratio('us_per_copy')}, "
              f"KiB per connection {ratio('kib_per_conn')}, connect time {ratio('connect_s')}")
        if ours.get("scenario") == "channel":
            print("  (the naive relay has no channels: its figures are the room scenario of the same run, "
                  "same clients and rate)")
    for r in results:
        extra = []
        if "ack_ms" in r:
            extra.append(f"ack p50/p99/max {r['ack_ms']['p50']}/{r['ack_ms']['p99']}/{r['ack_ms']['max']} ms")
        if "accounts" in r:
            a = r["accounts"]
            extra.append(f"{a['listener_accounts']} listener accounts x {a['sockets_per_account']} sockets "
                         f"(registered in {a['register_s']} s)")
            if "channel" in a:
                extra.append(f"channel {a['channel']} over {a['rooms']} rooms, admin speaker made by the CLI in "
                             f"{a['admin_create_s']} s")
        if "pages" in r:
            extra.append(f"{r['pages']} pages, {r['pages_per_s']} pages/s sustained (first send to last copy), "
                         f"{r['us_per_page']} µs server CPU per page, sender's own copy p50/p99/max "
                         f"{r['echo_ms']['p50']}/{r['echo_ms']['p99']}/{r['echo_ms']['max']} ms, "
                         f"own copies lost {r['echo_lost']} (lost column: partner copies)")
        extra.append(f"per message: first copy p50/p99 {r['first_copy_ms']['p50']}/{r['first_copy_ms']['p99']} ms, "
                     f"first-to-last copy p50/p99 {r['spread_ms']['p50']}/{r['spread_ms']['p99']} ms")
        extra.append(f"{r['messages']} msgs, {r['deliveries']} copies in {r['window_s']} s, "
                     f"server CPU {r['server_cpu_s']} s, RSS {r['rss_before_kib']}->{r['rss_after_kib']}"
                     f"->{r['rss_end_kib']} KiB")
        if r.get("gc_in_window"):
            extra.append("GC in window: " + ", ".join(f"{g} x{v['count']} total {v['total_ms']} ms max {v['max_ms']} ms"
                                                      for g, v in r["gc_in_window"].items()))
        if r["connect_failed"]:
            extra.append(f"{r['connect_failed']} connects failed: {r.get('connect_failures')}")
        if r["closed"]:
            extra.append(f"closed by server: {r['closed']}")
        if r["speaker_behind_ms"] > 50:
            extra.append(f"speaker fell {r['speaker_behind_ms']} ms behind schedule")
        if r["verify_failures"] or r.get("errors"):
            extra.append(f"verify failures {r['verify_failures']} errors {r.get('errors')}")
        print(f"  {r['target']}: " + "; ".join(extra))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="See bench/README.md for recorded figures.")
    parser.add_argument("--clients", type=int, default=1000, help="listener sockets (default 1000, at most 20000)")
    parser.add_argument("--scenario", choices=["room", "channel", "page"], default="room",
                        help="room: everyone in one room (default); channel: the listeners are members of one "
                             "channel and spread over --rooms rooms, the speaker sends channel messages; page: "
                             "--pairs pairs of users page each other (VibeMUSE only)")
    parser.add_argument("--rooms", type=int, default=10, help="channel scenario: rooms to spread over (default 10)")
    parser.add_argument("--channel-id", default="bench", help="channel scenario: channelId in the frames")
    parser.add_argument("--pairs", type=int, default=500, help="page scenario: pairs of users (default 500)")
    parser.add_argument("--rate", type=float, default=None,
                        help="messages per second, all speakers (default 20); page scenario: pages per second "
                             "over all pairs (default 200)")
    parser.add_argument("--seconds", type=float, default=10, help="measured sending time (default 10)")
    parser.add_argument("--speakers", type=int, default=1, help="speaker sockets, round-robin (default 1)")
    parser.add_argument("--workers", type=int, default=3, help="listener client processes (default 3)")
    parser.add_argument("--target", choices=["vibemuse", "naive", "preencoded", "both", "all"], default="both",
                        help="both = naive then vibemuse; all = naive, preencoded, vibemuse")
    parser.add_argument("--repeat", type=int, default=1, help="run the targets this many times, interleaved")
    parser.add_argument("--per-user", type=int, default=None,
                        help="listener sockets per VibeMUSE account (sets max_connections_per_user; default 100, "
                             "1 in the channel and page scenarios)")
    parser.add_argument("--register-threads", type=int, default=None, help="default 4, 8 for channel and page")
    parser.add_argument("--connect-concurrency", type=int, default=50, help="handshakes in flight per process")
    parser.add_argument("--connect-timeout", type=float, default=120)
    parser.add_argument("--drain-timeout", type=float, default=20,
                        help="seconds to wait for the last copies after sending ends")
    parser.add_argument("--verify-every", type=int, default=500,
                        help="fully parse every n-th received frame and check the text (0: never)")
    parser.add_argument("--server-log-level", default="warning", help="VibeMUSE log level (default warning)")
    parser.add_argument("--timeout", type=float, default=900, help="hard limit for the whole run, seconds")
    parser.add_argument("--profile", metavar="FILE",
                        help="py-spy record the VibeMUSE server during the measured window, write FILE")
    parser.add_argument("--profile-phase", choices=["measure", "connect"], default="measure")
    parser.add_argument("--profile-format", default="speedscope", choices=["speedscope", "flamegraph", "raw"])
    parser.add_argument("--series", metavar="FILE",
                        help="append per message: target, seq, send offset s, first and last copy latency ms")
    parser.add_argument("--gc-log", action="store_true",
                        help="log the VibeMUSE server's garbage collections and heartbeats; report those in the window")
    parser.add_argument("--experiment", action="append", default=[], choices=["gc-freeze", "direct-send"],
                        help="patch the VibeMUSE server at start (see SERVER_WRAPPER); repeatable")
    parser.add_argument("--mem-trace", metavar="FILE",
                        help="tracemalloc the VibeMUSE server; write the top growth from connecting to FILE "
                             "(slows the server: not for timing)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folders and server logs")
    parser.add_argument("--json", action="store_true", help="print one JSON object per target")
    args = parser.parse_args(argv)
    if args.rate is None:
        args.rate = 200 if args.scenario == "page" else 20
    if args.register_threads is None:
        args.register_threads = 4 if args.scenario == "room" else 8
    if args.scenario == "page":
        args.clients = 2 * args.pairs
        if not 1 <= args.pairs <= MAX_CLIENTS // 2:
            parser.error(f"--pairs must be 1..{MAX_CLIENTS // 2}")
    if not 1 <= args.rooms <= 100:
        parser.error("--rooms 1..100")
    if not 1 <= args.clients <= MAX_CLIENTS:
        parser.error(f"--clients must be 1..{MAX_CLIENTS}")
    if not 0 < args.rate <= 1000 or not 0 < args.seconds <= 300 or args.repeat > 10:
        parser.error("--rate 0..1000, --seconds 0..300, --repeat <= 10")
    if not 1 <= args.workers <= 16 or not 1 <= args.speakers <= 100 or not 1 <= (args.per_user or 1) <= 1000:
        parser.error("--workers 1..16, --speakers 1..100, --per-user 1..1000")
    fds = raise_fd_limit()
    need = args.clients + args.speakers + 200
    if need > fds:
        parser.error(f"{need} sockets need more file descriptors than the limit {fds}")

    deadline = time.time() + args.timeout

    def out_of_time(signum: int, frame: Any) -> None:
        raise TimeoutError(f"hard timeout of {args.timeout} s reached")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(int(args.timeout) + 1)
    targets = {"both": ["naive", "vibemuse"], "all": ["naive", "preencoded", "vibemuse"]}.get(
        args.target, [args.target])
    if args.scenario == "page" and targets != ["vibemuse"]:
        print("page scenario: the naive relay has no pages; running VibeMUSE only", file=sys.stderr)
        targets = ["vibemuse"]
    results = []
    try:
        for round_ in range(args.repeat):
            for target in targets:
                scenario = args.scenario if target == "vibemuse" else "room"
                print(f"[{time.strftime('%H:%M:%S')}] {target} {scenario}: {args.clients} clients, {args.rate:g} "
                      f"msg/s for {args.seconds:g} s (round {round_ + 1})", file=sys.stderr, flush=True)
                run = Run(target, args, deadline)
                try:
                    result = run.execute()
                finally:
                    run.cleanup()
                result["round"] = round_ + 1
                result["tree"] = source_tree()
                results.append(result)
                if args.json:
                    print(json.dumps(result), flush=True)
                time.sleep(1.0)
    finally:
        signal.alarm(0)
    if not args.json:
        print_table(results)
    lost = sum(r["lost"] for r in results)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
