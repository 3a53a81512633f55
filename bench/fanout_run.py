"""One target of the fan-out benchmark: its server process (``SERVER_WRAPPER``),
accounts, client processes and figures (see fanout.py)."""


from __future__ import annotations

import argparse
import array
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from fanout_client import ask_workers, close_workers, spawn_workers
from fanout_common import (
    HERE, PASSWORD, ROOT, VENV_BIN, cpu_seconds, free_port, lifted_limits, percentile, rss_kib, source_tree)



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




def run_rounds(args: argparse.Namespace, items: list[Any], describe: Callable[[Any], str],
               make_run: Callable[[Any, float], "Run"], show: Callable[[list[dict[str, Any]]], None]) -> int:
    """``args.repeat`` rounds of one ``make_run(item, deadline)`` per item, all within ``args.timeout`` seconds;
    prints the results (``show``, or one JSON object per run with ``args.json``); 1 if a copy was lost."""
    deadline = time.time() + args.timeout

    def out_of_time(signum: int, frame: Any) -> None:
        raise TimeoutError(f"hard timeout of {args.timeout} s reached")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(int(args.timeout) + 1)
    results = []
    try:
        for round_ in range(args.repeat):
            for item in items:
                print(f"[{time.strftime('%H:%M:%S')}] {describe(item)} (round {round_ + 1}, load average "
                      f"{os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
                run = make_run(item, deadline)
                try:
                    result = run.execute()
                finally:
                    run.cleanup()
                result.update(round=round_ + 1, tree=source_tree())
                results.append(result)
                if args.json:
                    print(json.dumps(result), flush=True)
                time.sleep(1.0)
    finally:
        signal.alarm(0)
    if not args.json:
        show(results)
    return 1 if any(r["lost"] for r in results) else 0


def troubles(r: dict[str, Any]) -> list[str]:
    """What went wrong in a run's result, in words (nothing when all went well)."""
    found = []
    if r["connect_failed"]:
        found.append(f"{r['connect_failed']} connects failed: {r.get('connect_failures')}")
    if r["closed"]:
        found.append(f"closed by server: {r['closed']}")
    if r["speaker_behind_ms"] > 50:
        found.append(f"speaker fell {r['speaker_behind_ms']} ms behind schedule")
    if r["verify_failures"] or r.get("errors"):
        found.append(f"verify failures {r['verify_failures']} errors {r.get('errors')}")
    return found


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

    def server_cpu(self) -> float:
        """CPU seconds of the server so far (a subclass sums several processes)."""
        return cpu_seconds(self.server_pid)

    def server_rss(self) -> int:
        return rss_kib(self.server_pid)

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
        self.procs, self.pipes = spawn_workers(shares)

    def ask(self, pipes: list[Any], *command: Any, timeout: float = 600) -> list[Any]:
        try:
            return ask_workers(pipes, command, min(time.time() + timeout, self.deadline))
        except TimeoutError as late:
            raise TimeoutError(f"{self.target}: {late}") from None

    def client_cpu(self) -> float:
        return sum(cpu_seconds(proc.pid) for proc in self.procs if proc.is_alive())

    def stop_clients(self) -> None:
        close_workers(self.procs, self.pipes, time.time() + 10)

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
            rss_before = self.server_rss()
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
            rss_after = self.server_rss()
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
            cpu0, client0, t0 = self.server_cpu(), self.client_cpu(), time.perf_counter()
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
            cpu1, client1, t1 = self.server_cpu(), self.client_cpu(), time.perf_counter()
            wall1 = time.time()
            finished = self.ask(self.pipes, "finish", sent)
            if profiler is not None:
                profiler.wait(timeout=60)
            result["rss_end_kib"] = self.server_rss()
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
        # first measured send to the last copy received: what the server sustained
        span = (max(p["recv_last_ns"] for p in finished) - spoken["first_ns"]) / 1e9 if spoken["first_ns"] else 0
        if page:
            echo = array.array("q")
            for part in finished:
                echo.frombytes(part["echo_lat"])
            echo = array.array("q", sorted(echo))
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
            "closed": {str(code): sum(p["closed"].get(code, 0) for p in finished)
                       for code in sorted({code for p in finished for code in p["closed"]})},
            "lat_ms": {name: round(percentile(lat, q) / 1000, 1)
                       for name, q in (("p50", .5), ("p90", .9), ("p99", .99), ("max", 1.0))},
            # per message: first copy's latency (the server's work before the fan-out loop) and the
            # time from the first copy to the last (the fan-out itself, as the clients saw it)
            "first_copy_ms": {name: round(percentile(first, q) / 1000, 1) for name, q in (("p50", .5), ("p99", .99))},
            "spread_ms": {name: round(percentile(spread, q) / 1000, 1) for name, q in (("p50", .5), ("p99", .99))},
            "window_s": round(window, 2),
            "copies_per_s": round(delivered / span) if span > 0 else None,
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


