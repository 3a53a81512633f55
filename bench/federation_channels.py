"""Channels shared across servers: two-hop latency, and a replica's catch-up (issue 12).

Three real ``vibemuse serve`` processes on loopback, alpha.bench, beta.bench
and gamma.bench, each with the others in ``federation_peers`` and
``federation_private_addresses`` on; SQLite, ``log_level = warning``, and the
abuse limits raised (every client comes from 127.0.0.1; the checks still run).

**Two hops** (``--part hops``). ``--members`` accounts (a third on each
server) are registered over the HTTP API. A player of alpha creates the
public channel ``#public:alpha.bench``; every member connects a WebSocket
and sends ``join_channel`` (the members of beta and gamma join through
alpha: spec/v1/federation.md 10.2). The client side is bench/fanout_client.py
(a minimal RFC 6455 client on asyncio; one process per server's listeners,
one for the speaker). One member of beta, the speaker, sends ``--rate``
channel messages a second for ``--seconds`` (after one second of warm-up),
without waiting for acks; each text carries its send time. The path of a
message: beta signs it and queues it for alpha in its outbox (10.3), and its
sender PUTs it to alpha in a signed transaction; alpha judges, stores and
stamps it, queues it for beta and gamma in the same database transaction and
fans it out to its own members; its sender relays it; beta and gamma check
the event and the stamp, store it and fan it out (10.4).
Measured per server: the latency from the speaker's send to each member's
receipt (gamma: the two hops the issue asks about; alpha: one hop; beta: two
hops back to the speaker's own server), p50/p90/p99/max, copies lost and
duplicated; the speaker's acks (they wait for alpha's answer); each server
process's CPU over the window. ``--speakers K`` has K members of beta take
turns (one socket each), same total rate: a socket's frames are handled one
at a time and a remote channel's ``ack`` waits for the home (protocol.md 5.4,
16), so one socket sends at most one message per round trip to the home.

**Catch-up** (``--part catchup``). alpha and beta only. Ann (alpha) creates
the channel, Bob (beta) joins it; beta stops. Then ``--events`` messages of
Ann's are made on alpha: with ``--seed storage`` (the default) alpha stops and
they are stored by the project's own code as its channel service stores them
(signed, stamped and queued for beta: ``chain_txns.op_sequence``, 100 per
transaction), then alpha starts again and finds beta down; with ``--seed
send`` Ann sends them over her WebSocket (the real path, ~5 ms of alpha's CPU
each; 200 unacked at a time). beta starts; the clock runs from the moment it listens until its copy's
head is alpha's head. Checked afterwards: beta's chain is 1..head without a
gap, every stamp's ``prev`` is the chain of the one before it, every event
id and chain equals alpha's, and the messages are Ann's, each once and in
the order she sent them. Measured: seconds, events a second, both servers'
CPU.

    .venv/bin/python bench/federation_channels.py                    # both parts, as in bench/README.md
    .venv/bin/python bench/federation_channels.py --part hops --members 300 --rate 20 --seconds 10
    .venv/bin/python bench/federation_channels.py --part hops --speakers 10 --series
    .venv/bin/python bench/federation_channels.py --part catchup --events 10000 --seed send
    .venv/bin/python bench/federation_channels.py --part catchup --profile /tmp/prof   # py-spy, collapsed stacks

Loopback only; every part bounded (``--timeout``, ``--drain-timeout``, ``--catchup-timeout``).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fanout_client import ask_workers, close_workers, spawn_workers  # noqa: E402
from fanout_common import (cpu_seconds, free_port, lifted_limits, percentile, raise_fd_limit,  # noqa: E402
                           source_tree)
from federation_catchup import Server  # noqa: E402
from federation_pages import connect, register  # noqa: E402

ALPHA, BETA, GAMMA = "alpha.bench", "beta.bench", "gamma.bench"
CHANNEL = f"#public:{ALPHA}"
PASSWORD = "bench-channels-pw"
SEND_WINDOW = 200  # catch-up: channel messages in flight (sent, not yet acked) at once


# -- servers ---------------------------------------------------------------------------------------

class Cluster:
    """Real servers on loopback, each with the others as federation peers."""

    def __init__(self, root: Path, names: tuple[str, ...], sockets: int, log_level: str = "warning"):
        ports = {name: free_port() for name in names}
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        self.servers: dict[str, Server] = {}
        for name, port in ports.items():
            data_dir = root / name.split(".")[0]
            data_dir.mkdir()
            server = Server(name, data_dir, port, {other: url for other, url in self.urls.items() if other != name})
            server.env.update(lifted_limits(sockets + 10), VIBEMUSE_FEDERATION_PRIVATE_ADDRESSES="true",
                              VIBEMUSE_LOG_LEVEL=log_level)
            self.servers[name] = server

    def db(self, name: str) -> Path:
        return self.servers[name].data_dir / "vibemuse.db"

    def cpu(self) -> dict[str, float]:
        return {name: server.cpu() for name, server in self.servers.items()}

    def stop(self, logs: str | None = None) -> None:
        for name, server in self.servers.items():
            server.stop()
            if logs:
                Path(logs).mkdir(parents=True, exist_ok=True)
                shutil.copy(server.data_dir / "server.log", Path(logs) / f"{name.split('.')[0]}.log")


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class Profiles:
    """``--profile PREFIX``: py-spy on chosen servers for one phase, written as collapsed stacks to
    ``PREFIX-<phase>-<server>.txt``: the thread holding the GIL (Python's own work), or with
    ``threads`` every thread that is not idle (also SQLite's C code and system calls, GIL released)."""

    def __init__(self, prefix: str | None, threads: bool = False):
        self.prefix, self.running = prefix, []
        self.mode = ["--threads"] if threads else ["--gil"]
        self.py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if prefix and not self.py_spy:
            raise SystemExit("--profile needs py-spy (.venv/bin/pip install py-spy)")

    def start(self, phase: str, servers: dict[str, Server], settle: float = 1.0) -> None:
        for name, server in servers.items() if self.prefix else ():
            path = f"{self.prefix}-{phase}-{name.split('.')[0]}.txt"
            self.running.append(subprocess.Popen(
                [self.py_spy, "record", "--pid", str(server.process.pid), "--rate", "200", *self.mode, "--nonblocking",
                 "--format", "raw", "-o", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if self.running:
            time.sleep(settle)  # let them attach

    def stop(self) -> None:
        for process in self.running:
            process.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
        for process in self.running:
            process.wait(timeout=60)
        self.running = []


def rows(db: Path, query: str, *params: Any) -> list[tuple]:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return connection.execute(query, params).fetchall()
    finally:
        connection.close()


def post(url: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", **({"Authorization": "Bearer " + token} if token else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def ms(values: array.array) -> dict[str, float]:
    """p50/p90/p99/max of sorted µs values, in ms."""
    return {name: round(percentile(values, q) / 1000, 1) for name, q in (("p50", .5), ("p90", .9), ("p99", .99),
                                                                         ("max", 1.0))}


# -- part 1: two hops ---------------------------------------------------------------------------

def register_members(cluster: Cluster, members: int) -> dict[str, list[str]]:
    """Accounts over the HTTP API (scrypt each, as for any player): member names -> tokens per server."""
    names = {server: [f"{server[0].upper()}{index:04d}" for index in range(members // 3)]
             for server in cluster.urls}

    def one(item: tuple[str, str]) -> str:
        server, name = item
        return post(cluster.urls[server] + "/api/auth/register", {"username": name, "password": PASSWORD})[
            "accessToken"]

    with ThreadPoolExecutor(6) as pool:
        return {server: list(pool.map(one, [(server, name) for name in names[server]])) for server in names}


class Clients:
    """The client processes (bench/fanout_client.py workers) and the questions the driver asks them."""

    def __init__(self, shares: list[dict[str, Any]], deadline: float):
        self.deadline = deadline
        self.procs, self.pipes = spawn_workers(shares)

    def ask(self, pipes: list[Any], *command: Any) -> list[Any]:
        return ask_workers(pipes, command, self.deadline)

    def received(self, key: str) -> int:
        return sum(answer[key] for answer in self.ask(self.pipes, "stats"))

    def wait_for(self, key: str, expected: int, timeout: float) -> None:
        until = time.time() + timeout
        while time.time() < until and self.received(key) < expected:
            time.sleep(0.05)

    def cpu(self) -> float:
        return sum(cpu_seconds(proc.pid) for proc in self.procs if proc.is_alive())

    def close(self) -> None:
        close_workers(self.procs, self.pipes, min(self.deadline, time.time() + 10))


def share(cluster: Cluster, server: str, role: str, tokens: list[str], args: argparse.Namespace,
          deadline: float) -> dict[str, Any]:
    """One client process's orders: its sockets on ``server``, each joining the channel once in."""
    port = int(cluster.urls[server].rsplit(":", 1)[1])
    join = json.dumps({"type": "join_channel", "messageId": "jc", "data": {"channelId": CHANNEL}})
    return {"role": role, "target": "vibemuse", "host": "127.0.0.1", "port": port, "path": "/api/ws",
            "tokens": tokens, "subprotocol": "vibemuse.v1", "ready_markers": ['"type":"welcome"', '"type":"roster"'],
            "after": [[[join, '"inReplyTo":"jc"']] for _ in tokens], "body_path": ["data", "event", "content", "body"],
            "concurrency": args.join_concurrency, "connect_timeout": 120.0, "deadline": deadline,
            "verify_every": 97, "speak_type": "channel", "channel_id": CHANNEL}


def two_hops(args: argparse.Namespace) -> dict[str, Any]:
    deadline = time.time() + args.timeout
    result: dict[str, Any] = {"part": "hops", "members": args.members, "speakers": args.speakers, "rate": args.rate,
                              "seconds": args.seconds}
    with tempfile.TemporaryDirectory(prefix="vm-fedchannels-") as tmp:
        cluster = Cluster(Path(tmp), (ALPHA, BETA, GAMMA), args.members, args.log_level)
        clients = None
        try:
            for server in cluster.servers.values():
                server.start()
            started = time.perf_counter()
            tokens = register_members(cluster, args.members)
            result["register_s"] = round(time.perf_counter() - started, 1)
            created = post(cluster.urls[ALPHA] + "/api/communication/channels", {"name": "Public"}, tokens[ALPHA][0])
            assert created["channel"]["id"] == CHANNEL, created
            shares = [share(cluster, ALPHA, "listen", tokens[ALPHA], args, deadline),
                      share(cluster, BETA, "listen", tokens[BETA][args.speakers:], args, deadline),
                      share(cluster, GAMMA, "listen", tokens[GAMMA], args, deadline),
                      share(cluster, BETA, "speak", tokens[BETA][:args.speakers], args, deadline)]
            clients = Clients(shares, deadline)
            result.update(join_all(cluster, clients))
            result.update(measure(cluster, clients, args, Profiles(args.profile, args.profile_threads)))
        finally:
            if clients is not None:
                clients.close()
            cluster.stop(args.logs)
    return result


def join_all(cluster: Cluster, clients: Clients) -> dict[str, Any]:
    """Connect every socket and join the channel; check alpha (the home) holds every member."""
    started = time.perf_counter()
    connected = clients.ask(clients.pipes, "connect")
    joined_s = time.perf_counter() - started
    failures = [failure for answer in connected for failure in answer["failures"]]
    members = rows(cluster.db(ALPHA), "SELECT COUNT(*) FROM channel_members WHERE channel_id = ?", CHANNEL)[0][0]
    time.sleep(2.0)  # the last joins' relays and notices settle
    return {"connect_and_join_s": round(joined_s, 1), "sockets": sum(answer["ok"] for answer in connected),
            "connect_failures": failures[:3], "members_at_home": members}


def latency_lines(finished: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """Per client process (alpha's members, beta's, gamma's, the speakers): latency figures, and
    each message's first copy in ms."""
    lines, series = {}, {}
    for label, part in zip(("alpha (1 hop)", "beta (2 hops, back)", "gamma (2 hops)", "speakers' own copies"),
                           finished):
        lat = array.array("q")
        lat.frombytes(part["lat"])
        lat = array.array("q", sorted(lat))
        lines[label] = {"sockets": part["sockets"], "copies": len(lat), "lost": part["missing"],
                        "duplicated": part["duplicates"], **ms(lat)}
        first = array.array("q")
        first.frombytes(part["first"])
        series[label.split(" ")[0]] = [round(value / 1000) for value in first]
    return lines, series


def measure(cluster: Cluster, clients: Clients, args: argparse.Namespace, profiles: Profiles) -> dict[str, Any]:
    sockets = args.members - args.members % 3
    speaker = clients.pipes[-1:]
    warm = clients.ask(speaker, "speak", "warm", args.rate, 1.0, 0)[0]["sent"]
    warm_started = time.perf_counter()
    clients.wait_for("warm", warm * sockets, 60)
    warm_s = time.perf_counter() - warm_started
    warm_copies = clients.received("warm")
    time.sleep(0.5)
    sent = round(args.rate * args.seconds)
    clients.ask(clients.pipes, "measure", sent + 1)
    profiles.start("hops", cluster.servers)
    cpu0, client0, t0 = cluster.cpu(), clients.cpu(), time.perf_counter()
    spoken = clients.ask(speaker, "speak", "measure", args.rate, args.seconds, 0)[0]
    clients.wait_for("received", sent * sockets, args.drain_timeout)
    cpu1, client1, window = cluster.cpu(), clients.cpu(), time.perf_counter() - t0
    profiles.stop()
    finished = clients.ask(clients.pipes, "finish", sent)
    lines, series = latency_lines(finished)
    ack = array.array("q")
    ack.frombytes(finished[-1]["ack_lat"])
    return {"warm_copies": f"{warm_copies} of {warm * sockets} in {warm_s:.1f} s",
            "first_copy_ms": series if args.series else None,
            "messages": sent, "speaker_behind_ms": round(spoken["behind_ms"], 1), "latency_ms": lines,
            "ack_ms": ms(array.array("q", sorted(ack))), "errors": finished[-1]["errors"][:3],
            "verified": sum(part["verified"] for part in finished),
            "verify_failures": [f for part in finished for f in part["verify_failures"]][:3],
            "window_s": round(window, 2),
            "cpu_s": {name.split(".")[0]: round(cpu1[name] - cpu0[name], 2) for name in cpu0},
            "cpu_pct": {name.split(".")[0]: round(100 * (cpu1[name] - cpu0[name]) / window) for name in cpu0},
            "clients_cpu_pct": round(100 * (client1 - client0) / window)}


# -- part 2: a replica's catch-up ------------------------------------------------------------------

async def call(socket, frame_type: str, data: dict[str, Any], message_id: str) -> dict[str, Any]:
    """Send a frame and read up to its answer (an ack or an error)."""
    await socket.write_message(json.dumps({"type": frame_type, "messageId": message_id, "data": data}))
    while True:
        frame = json.loads(await socket.read_message())
        if frame["type"] in ("ack", "error") and frame["data"].get("inReplyTo") == message_id:
            return frame


async def send_messages(socket, count: int) -> dict[str, Any]:
    """``count`` channel messages, at most SEND_WINDOW unanswered at a time; acks and errors counted."""
    answered, errors = 0, []

    async def read() -> None:
        nonlocal answered
        while answered < count:
            message = await socket.read_message()
            if message is None:
                raise SystemExit("alpha closed Ann's socket")
            frame = json.loads(message)
            if frame["type"] in ("ack", "error") and str(frame["data"].get("inReplyTo", "")).startswith("c."):
                answered += 1
                if frame["type"] == "error":
                    errors.append(frame)

    reader = asyncio.ensure_future(read())
    started = time.perf_counter()
    for number in range(count):
        while number - answered >= SEND_WINDOW and not reader.done():
            await asyncio.sleep(0.002)
        await socket.write_message(json.dumps({"type": "channel", "messageId": f"c.{number}",
                                               "data": {"channelId": CHANNEL, "text": f"catchup {number}"}}))
    await asyncio.wait_for(reader, 300)
    return {"send_s": round(time.perf_counter() - started, 1), "send_errors": [e["data"] for e in errors[:3]]}


async def seed(data_dir: Path, count: int, batch: int = 100) -> None:
    """Ann's messages stored on alpha (stopped) by the project's own code, as its channel service
    stores them (signed, stamped, queued for beta: ``op_sequence``), ``batch`` per transaction."""
    from vibemuse.config import Config
    from vibemuse.federation.server_keys import load_or_create_signing_keys
    from vibemuse.protocol import content as compose
    from vibemuse.protocol.events import build_event
    from vibemuse.storage import Storage, create_database_engine, ensure_schema
    from vibemuse.storage.chain_txns import op_sequence

    config = Config(data_dir=str(data_dir), server_name=ALPHA)
    key = load_or_create_signing_keys(str(config.resolved_signing_key_path)).current
    engine = create_database_engine(config.resolved_database_url)
    ensure_schema(engine, auto_migrate=True)
    storage = Storage(engine, threads=1)
    now = int(time.time() * 1000)
    for start in range(0, count, batch):
        events = [build_event(event_type="vm.channel.message", sender=f"@ann:{ALPHA}", origin=ALPHA,
                              origin_server_ts=now + number, signing_key=key, channel_id=CHANNEL,
                              content=compose.channel_message("Public", "Ann", f"catchup {number}",
                                                              config.max_text_length))
                  for number in range(start, min(count, start + batch))]
        await storage.append_events(events, transaction=None, now_ms=now,
                                    ops=[op_sequence(CHANNEL, ALPHA, key, events, now)])
    storage.close()


async def prepare(cluster: Cluster, events: int, how: str, profiles: Profiles) -> dict[str, Any]:
    """Ann creates the channel, Bob (beta) joins; beta stops; Ann's ``events`` messages are sent
    over her WebSocket (``how = "send"``) or stored on alpha by its own storage code (``"storage"``)."""
    alpha, beta = cluster.urls[ALPHA], cluster.urls[BETA]
    ann_token, bob_token = await register(alpha, "Ann"), await register(beta, "Bob")
    post(alpha + "/api/communication/channels", {"name": "Public"}, ann_token)
    ann, bob = await connect(alpha, ann_token), await connect(beta, bob_token)
    say("Ann and Bob connected")
    joined = await call(bob, "join_channel", {"channelId": CHANNEL}, "join")
    assert joined["type"] == "ack", joined
    bob.close()
    cluster.servers[BETA].stop()
    if how == "storage":
        ann.close()
        alpha = cluster.servers[ALPHA]
        alpha.stop()
        started = time.perf_counter()
        await seed(alpha.data_dir, events)
        seeded = {"seed_s": round(time.perf_counter() - started, 1)}
        alpha.start()
        time.sleep(2.0)  # alpha tries beta, finds it down, backs off
        return seeded
    say(f"Bob joined, beta stopped; Ann sends {events} messages")
    profiles.start("send", {ALPHA: cluster.servers[ALPHA]})
    cpu = cluster.servers[ALPHA].cpu()
    sent = await send_messages(ann, events)
    profiles.stop()
    sent["send_alpha_cpu_s"] = round(cluster.servers[ALPHA].cpu() - cpu, 2)
    ann.close()
    return sent


def chain_of_copy(db: Path) -> list[tuple[int, str, str, str]]:
    return rows(db, "SELECT seq, event_id, chain, stamp_json FROM channel_chain WHERE channel_id = ? ORDER BY seq",
                CHANNEL)


def check_copy(cluster: Cluster, events: int) -> dict[str, Any]:
    """beta's copy against alpha's order: gap-free, linked, the same ids and chains; Ann's texts once, in order."""
    from vibemuse.protocol.channel_chain import chain_of

    home, copy = chain_of_copy(cluster.db(ALPHA)), chain_of_copy(cluster.db(BETA))
    linked = all(seq == index + 1 for index, (seq, *_rest) in enumerate(copy))
    previous = ""
    for _, _, chain, stamp_json in copy:
        stamp = json.loads(stamp_json)
        linked = linked and stamp["prev"] == previous and chain_of(stamp) == chain
        previous = chain
    texts = [json.loads(row[0])["content"].get("body") for row in rows(
        cluster.db(BETA), "SELECT e.event_json FROM channel_chain c JOIN events e ON e.event_id = c.event_id "
        "WHERE c.channel_id = ? AND e.event_type = 'vm.channel.message' ORDER BY c.seq", CHANNEL)]
    return {"home_head": len(home), "copy_head": len(copy), "copy_linked": linked,
            "same_as_home": [row[:3] for row in copy] == [row[:3] for row in home],
            "messages_in_order": texts == [f"catchup {number}" for number in range(events)]}


def catch_up(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"part": "catchup", "events": args.events, "made_by": args.seed}
    with tempfile.TemporaryDirectory(prefix="vm-fedchannels-") as tmp:
        cluster = Cluster(Path(tmp), (ALPHA, BETA), 10, args.log_level)
        profiles = Profiles(args.profile, args.profile_threads)
        try:
            for server in cluster.servers.values():
                server.start()
            result.update(asyncio.run(prepare(cluster, args.events, args.seed, profiles)))
            head = rows(cluster.db(ALPHA), "SELECT last_seq FROM channels WHERE channel_id = ?", CHANNEL)[0][0]
            result["queued_for_beta"] = rows(cluster.db(ALPHA), "SELECT COUNT(*) FROM federation_outbox "
                                             "WHERE destination = ?", BETA)[0][0]
            beta = cluster.servers[BETA]
            beta.start()
            back, cpu0, held = time.perf_counter(), cluster.cpu(), 0
            profiles.start("catchup", cluster.servers, settle=0.0)
            while time.perf_counter() - back < args.catchup_timeout:
                held = rows(cluster.db(BETA), "SELECT last_seq FROM channels WHERE channel_id = ?", CHANNEL)[0][0]
                if held >= head:
                    break
                time.sleep(0.02)
            seconds, cpu1 = time.perf_counter() - back, cluster.cpu()
            profiles.stop()
            behind = head - result["events"]  # what beta held before: the channel's creation and Bob's join
            result.update({"caught_up_s": round(seconds, 2), "events_per_s": round(args.events / seconds),
                           "cpu_s": {name.split(".")[0]: round(cpu1[name] - cpu0[name], 2) for name in cpu0},
                           "held_before": behind, "held_after": held})
            result.update(check_copy(cluster, args.events))
        finally:
            cluster.stop(args.logs)
    return result


# -- the command ---------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("hops", "catchup", "both"), default="both")
    parser.add_argument("--members", type=int, default=300, help="channel members, a third on each server")
    parser.add_argument("--rate", type=float, default=20.0, help="channel messages a second from the speaker")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds of speaking")
    parser.add_argument("--speakers", type=int, default=1,
                        help="members of beta who take turns sending the --rate messages (one socket each)")
    parser.add_argument("--events", type=int, default=10_000, help="events the replica is behind")
    parser.add_argument("--seed", choices=("storage", "send"), default="storage",
                        help="catch-up: the events stored on alpha by its storage code, or sent by Ann")
    parser.add_argument("--join-concurrency", type=int, default=10, help="sockets joining at once per process")
    parser.add_argument("--drain-timeout", type=float, default=30.0)
    parser.add_argument("--catchup-timeout", type=float, default=60.0)
    parser.add_argument("--series", action="store_true", help="hops: per server and message, the first copy's latency")
    parser.add_argument("--log-level", default="warning", help="the servers' log_level")
    parser.add_argument("--logs", metavar="DIR", help="keep the servers' logs there")
    parser.add_argument("--profile", metavar="PREFIX", help="py-spy --gil on the servers, collapsed stacks")
    parser.add_argument("--profile-threads", action="store_true", help="every busy thread, not only the GIL's")
    parser.add_argument("--timeout", type=float, default=170.0, help="hard bound of the two-hop part, seconds")
    args = parser.parse_args()
    if not (3 <= args.members <= 3000 and 0 < args.rate <= 200 and 0 < args.seconds <= 60
            and 1 <= args.events <= 50_000 and 1 <= args.speakers <= args.members // 3):
        parser.error("bounds: 3 <= members <= 3000, rate <= 200, seconds <= 60, events <= 50,000, "
                     "speakers <= members / 3")
    raise_fd_limit()
    results = []
    for part, run in (("hops", two_hops), ("catchup", catch_up)):
        if args.part in (part, "both"):
            started = (time.strftime("%H:%M:%S", time.gmtime()), round(os.getloadavg()[0], 2))
            result = run(args)
            result.update(utc=f"{time.strftime('%Y-%m-%d', time.gmtime())} {started[0]}-"
                              f"{time.strftime('%H:%M:%S', time.gmtime())}",
                          load=f"{started[1]} at the start, {round(os.getloadavg()[0], 2)} at the end",
                          tree=source_tree())
            print(json.dumps(result, indent=2), flush=True)
            results.append(result)
    print("OK" if all(ok(result) for result in results) else "FAILED: see the figures above")
    sys.exit(0 if all(ok(result) for result in results) else 1)


def ok(result: dict[str, Any]) -> bool:
    if result["part"] == "hops":
        return (result["members_at_home"] == result["members"] - result["members"] % 3
                and all(line["lost"] == 0 and line["duplicated"] == 0 for line in result["latency_ms"].values()))
    return (result["held_after"] >= result["home_head"] and result["copy_linked"] and result["same_as_home"]
            and result["messages_in_order"])


if __name__ == "__main__":
    main()
