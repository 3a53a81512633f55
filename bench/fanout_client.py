"""The benchmark's client side: a minimal RFC 6455 client on asyncio protocols
(no Tornado), run in worker processes that hold the listener and speaker
sockets and record when each frame arrives (see fanout.py)."""


from __future__ import annotations

import array
import base64
import json
import logging
import os
import signal
import struct
import time
from typing import Any

from fanout_common import FILLER, MARK, WARM, raise_fd_limit


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
            if self.upgraded and not self.owner.closing:  # dropped without a close frame: counted as 1006
                self.owner.closed_codes[1006] = self.owner.closed_codes.get(1006, 0) + 1
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
        self.closing = False  # the driver said "close": the sockets' ends are ours
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
            sock = live[i % len(live)]
            if sock.transport.is_closing():  # closed by the server (e.g. 4012): the next open one speaks
                live = [s for s in live if not s.transport.is_closing()]
                if not live:
                    return {"sent": i, "first_ns": first_ns, "last_ns": last_ns, "behind_ms": 0.0}
                sock = live[i % len(live)]
            sock.transport.write(client_frame(1, json.dumps(frame, separators=(",", ":")).encode()))
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
                self.closing = True
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
    logging.getLogger("asyncio").setLevel(logging.ERROR)  # not a line per write to a socket the server closed
    raise_fd_limit()
    asyncio.run(Worker(conn, spec).run())


def spawn_workers(specs: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """One client process per spec (``worker_main``); their processes and the driver's pipe ends."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    procs, pipes = [], []
    for spec in specs:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker_main, args=(child, spec), daemon=True)
        proc.start()
        child.close()
        procs.append(proc)
        pipes.append(parent)
    return procs, pipes


def ask_workers(pipes: list[Any], command: tuple[Any, ...], until: float) -> list[Any]:
    """Send ``command`` to every worker, then their answers; TimeoutError if one is late (``until``: time.time())."""
    for pipe in pipes:
        pipe.send(command)
    answers = []
    for pipe in pipes:
        left = until - time.time()
        if left <= 0 or not pipe.poll(left):
            raise TimeoutError(f"no answer to {command[0]!r} in time")
        answers.append(pipe.recv())
    return answers


# ---------------------------------------------------------------------------
# The driver.
# ---------------------------------------------------------------------------


def close_workers(procs: list[Any], pipes: list[Any], until: float) -> None:
    """Have the workers close their sockets and end; kill those that do not."""
    try:
        ask_workers(pipes, ("close",), until)
    except (TimeoutError, OSError, EOFError):
        pass
    for proc in procs:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
