"""Connect storms: many players arriving in one room at the same moment.

Scenario A ("connect"): N distinct accounts (one socket each) connect at once
to the default room. Measured: time from the start until every socket has
its roster (and p50/p99 per socket), the server's CPU seconds and the bytes
sent to the clients until the server falls quiet. With ``--compare`` the same
run is made first with presence announced to the whole room whatever its
size (``presence_room_limit`` set past N: the behaviour before crowded rooms
existed), so the ratio comes from one run on the same machine.

Scenario B ("resume"): M accounts that have missed some announcements
reconnect at once with ``?since=`` just after the server restarted, while
announcements keep coming. Each socket must get every event after its
``since`` exactly once and in order (replay, then live, no ``resume_gap``);
measured: time until every socket has its ``resumed``, server CPU, bytes.

Accounts are made before the server starts, by the project's own
``AccountService`` over the same database, with scrypt at its cheapest
(``PasswordHasher(log_n=1)``: the passwords are never used, the benchmark
authenticates with the access tokens it got). Creating them through the HTTP
API would cost a real scrypt each.

    .venv/bin/python bench/connect_storm.py --scenario connect --clients 1000 --compare
    .venv/bin/python bench/connect_storm.py --scenario resume --clients 10000 --procs 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fanout_common import ROOT, VENV_BIN, cpu_seconds, free_port, lifted_limits, raise_fd_limit, stop_process  # noqa: E402
from connect_storm_client import worker  # noqa: E402

SERVER_NAME = "bench.localhost"


async def _make_accounts(data_dir: Path, count: int, database_url: str = "") -> list[str]:
    """``count`` players and one admin (the herald, last): their access tokens (``database_url``: empty for
    SQLite in ``data_dir``)."""
    from vibemuse.app import VibeMuseServer
    from vibemuse.config import Config
    from vibemuse.services.passwords import PasswordHasher

    server = await VibeMuseServer.create(Config(data_dir=str(data_dir), server_name=SERVER_NAME,
                                                database_url=database_url),
                                         hasher=PasswordHasher(log_n=1))
    accounts = server.context.accounts
    tokens: list[str] = []
    for first in range(0, count, 200):
        names = [f"P{index:05d}" for index in range(first, min(count, first + 200))]
        batch = [accounts.register(name, "bench-storm-pw") for name in names]
        tokens += [session.access_token for session in await asyncio.gather(*batch)]
    herald = await accounts.register("Herald", "bench-storm-pw")
    await server.context.storage.set_role(herald.user.user_id, "admin")
    await server.shutdown()
    return tokens + [herald.access_token]


def make_accounts(data_dir: Path, count: int, database_url: str = "") -> tuple[list[str], str]:
    cache = data_dir / "bench-tokens.json"
    if cache.exists():
        tokens = json.loads(cache.read_text())
    else:
        started = time.perf_counter()
        tokens = asyncio.run(_make_accounts(data_dir, count, database_url))
        cache.write_text(json.dumps(tokens))
        print(f"made {count} accounts + herald in {time.perf_counter() - started:.1f} s", flush=True)
    return tokens[:-1], tokens[-1]


class Server:
    def __init__(self, data_dir: Path, sockets: int, presence_room_limit: int | None, tree: str | None = None):
        self.data_dir, self.port = data_dir, free_port()
        self.env = dict(os.environ, VIBEMUSE_LOG_LEVEL="warning", VIBEMUSE_MAX_CONNECTIONS_PER_USER="3")
        self.env.update(lifted_limits(sockets + 10))
        if tree:  # another version of the server (e.g. `git archive <rev> vibemuse | tar -x -C DIR`)
            self.env["PYTHONPATH"] = str(Path(tree).resolve())
        if presence_room_limit is not None:
            self.env["VIBEMUSE_PRESENCE_ROOM_LIMIT"] = str(presence_room_limit)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [str(VENV_BIN / "vibemuse"), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
                   "--server-name", SERVER_NAME]
        log = (self.data_dir / "server.log").open("ab")
        self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT))
        until = time.time() + 60
        while time.time() < until:
            if self.process.poll() is not None:
                raise SystemExit("server exited: " + (self.data_dir / "server.log").read_text()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("server did not listen within 60 s")

    profile_file: str | None = None

    def profile(self, seconds: float) -> subprocess.Popen:
        """py-spy on the server during the storm (--profile), as collapsed stacks."""
        command = [str(VENV_BIN / "py-spy"), "record", "--pid", str(self.process.pid), "--duration", str(int(seconds)),
                   "--rate", "200", "--nonblocking", "--format", "raw", "-o", self.profile_file]
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        stop_process(self.process)

    def announce(self, token: str, text: str) -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/announcements",
                                         data=json.dumps({"text": text}).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": "Bearer " + token})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())["streamPosition"]


def run_clients(server: Server, accounts: list[tuple[str, int | None]], procs: int, listen_for: float,
                final_file: str | None, during: Any = None) -> tuple[list[dict[str, Any]], float, float]:
    """Fork the client processes, start them all at one moment; their summaries, the server's
    CPU seconds over the storm, and the wall time until the last client finished."""
    context = multiprocessing.get_context("fork")
    start_at = time.time() + 1.5
    pipes, children = [], []
    for index in range(procs):
        parent, child = context.Pipe(duplex=False)
        share = accounts[index::procs]
        process = context.Process(target=worker, args=(child, "127.0.0.1", server.port, share, start_at, listen_for,
                                                       final_file))
        process.start()
        pipes.append(parent)
        children.append(process)
    profiler = server.profile(listen_for) if server.profile_file else None
    time.sleep(max(0.0, start_at - time.time()))
    cpu_before = server.cpu()
    if during is not None:
        during()
    results: list[dict[str, Any]] = []
    for pipe in pipes:
        results += pipe.recv()
    elapsed = time.time() - start_at
    cpu = server.cpu() - cpu_before
    for process in children:
        process.join(timeout=30)
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)  # py-spy writes what it has
        profiler.wait(timeout=60)
    return results, cpu, elapsed


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(fraction * len(ordered) + 0.999) - 1))] if ordered else float("nan")


def connect_figures(results: list[dict[str, Any]], cpu: float) -> dict[str, Any]:
    rosters = [r["roster_at"] for r in results if r["roster_at"] is not None]
    failures = [r["failure"] for r in results if r["roster_at"] is None]
    bad_order = [r["order"] for r in results if r["order"][:2] != ["welcome", "roster"]]
    return {"sockets": len(results), "all_rosters_s": round(max(rosters), 3) if rosters else None,
            "roster_p50_s": round(percentile(rosters, 0.5), 3), "roster_p99_s": round(percentile(rosters, 0.99), 3),
            "server_cpu_s": round(cpu, 2), "bytes_to_clients_mb": round(sum(r["bytes"] for r in results) / 1e6, 1),
            "frames_to_clients": sum(r["frames"] for r in results), "without_roster": len(failures),
            "failures": sorted(set(map(str, failures)))[:3], "order_not_welcome_roster": len(bad_order)}


def scenario_connect(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    tokens, _ = make_accounts(data_dir, args.clients)
    modes = [("baseline_tree", None, args.baseline_tree)] if args.baseline_tree else []
    modes += [("announce_every_arrival", 10 ** 7, None)] if args.compare else []
    modes.append(("crowded_room_limit", args.presence_room_limit, None))
    figures: dict[str, Any] = {}
    for name, limit, tree in modes:
        server = Server(data_dir, args.clients, limit, tree)
        server.start()
        try:
            accounts = [(token, None) for token in tokens[:args.clients]]
            results, cpu, elapsed = run_clients(server, accounts, args.procs, args.timeout, None)
        finally:
            server.stop()
        figures[name] = dict(connect_figures(results, cpu), presence_room_limit=limit, until_quiet_s=round(elapsed, 2))
        if args.dump:
            Path(f"{args.dump}.{name}.json").write_text(json.dumps(results))
        print(name, json.dumps(figures[name]), flush=True)
    for name in ("baseline_tree", "announce_every_arrival"):
        if name in figures:
            figures[f"ratios_{name}_over_this"] = ratios(figures[name], figures["crowded_room_limit"],
                                                         ("all_rosters_s", "server_cpu_s", "bytes_to_clients_mb"))
    return figures


def ratios(old: dict[str, Any], new: dict[str, Any], keys: tuple[str, ...]) -> dict[str, float]:
    return {key: round(old[key] / new[key], 1) for key in keys if new.get(key) and old.get(key)}


def resume_figures(results: list[dict[str, Any]], made: list[int], cpu: float) -> dict[str, Any]:
    """Each socket must have got every event made after its ``since``, once each, in order."""
    def exact(r: dict[str, Any]) -> bool:
        return r["ending"] == "resumed" and r["positions"] == [p for p in made if p > r["since"]]

    resumed = [r["resumed_at"] for r in results if r["ending"] == "resumed"]
    problems = [{"ending": r["ending"], "failure": r["failure"], "since": r["since"], "positions": r["positions"][:12]}
                for r in results if not exact(r)]
    return {"sockets": len(results), "events_made": len(made),
            "all_resumed_s": round(max(resumed), 3) if resumed else None,
            "resumed_p50_s": round(percentile(resumed, 0.5), 3), "resumed_p99_s": round(percentile(resumed, 0.99), 3),
            "gap_free_exactly_once_in_order": sum(map(exact, results)), "resume_gap": sum(r["ending"] == "resume_gap" for r in results),
            "problems": problems[:3], "server_cpu_s": round(cpu, 2),
            "bytes_to_clients_mb": round(sum(r["bytes"] for r in results) / 1e6, 1)}


def scenario_resume(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    if args.baseline_tree:
        figures["baseline_tree"] = resume_run(args, data_dir, args.baseline_tree)
        print("baseline_tree", json.dumps(figures["baseline_tree"]), flush=True)
    figures["this_tree"] = resume_run(args, data_dir, None)
    if args.baseline_tree:
        figures["ratios_baseline_over_this"] = ratios(figures["baseline_tree"], figures["this_tree"],
                                                      ("all_resumed_s", "server_cpu_s", "bytes_to_clients_mb"))
    return figures


def resume_run(args: argparse.Namespace, data_dir: Path, tree: str | None) -> dict[str, Any]:
    tokens, herald = make_accounts(data_dir, args.clients)
    server = Server(data_dir, args.clients, args.presence_room_limit if tree is None else None, tree)
    server.start()
    positions = [server.announce(herald, f"missed {index}") for index in range(args.missed)]
    since = positions[0] - 1
    server.stop()  # a restart: every client reconnects at once
    server.start()
    final_file = str(data_dir / "final-position")
    Path(final_file).write_text("0")

    def live_announcements() -> None:
        def herald_speaks() -> None:
            for index in range(args.live):
                positions.append(server.announce(herald, f"live {index}"))
                time.sleep(args.live_every)
            Path(final_file).write_text(str(positions[-1]))
        threading.Thread(target=herald_speaks, daemon=True).start()

    try:
        # clients stopped at different points: since spreads over the last --since-spread positions
        accounts = [(token, since + index % args.since_spread) for index, token in enumerate(tokens[:args.clients])]
        results, cpu, _ = run_clients(server, accounts, args.procs, args.timeout, final_file, live_announcements)
    finally:
        server.stop()
    return dict(resume_figures(results, positions, cpu), since=f"{since}..{since + args.since_spread - 1}",
                missed=args.missed, live=args.live)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=("connect", "resume"), default="connect")
    parser.add_argument("--clients", type=int, default=1000, help="sockets, one account each")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--compare", action="store_true", help="connect: also run announcing every arrival")
    parser.add_argument("--presence-room-limit", type=int, default=None, help="default: the server's")
    parser.add_argument("--missed", type=int, default=5, help="resume: announcements made while away")
    parser.add_argument("--since-spread", type=int, default=1,
                        help="resume: sockets' since spread over this many positions (at most --missed)")
    parser.add_argument("--live", type=int, default=10, help="resume: announcements during the storm")
    parser.add_argument("--live-every", type=float, default=1.0, help="resume: seconds between them")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a client process waits at most")
    parser.add_argument("--data-dir", help="reuse accounts made by an earlier run (default: a fresh temp dir)")
    parser.add_argument("--baseline-tree", help="also run, first, the server found in this folder (see Server)")
    parser.add_argument("--dump", help="write every socket's summary to DUMP.<mode>.json")
    parser.add_argument("--profile", help="write py-spy's collapsed stacks of the (last) server here")
    args = parser.parse_args()
    Server.profile_file = str(Path(args.profile).resolve()) if args.profile else None
    raise_fd_limit()
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="connect-storm-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    run = scenario_connect if args.scenario == "connect" else scenario_resume
    figures = run(args, data_dir)
    figures["load_before"] = [round(x, 2) for x in load]
    figures["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
