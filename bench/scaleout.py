#!/usr/bin/env python3
"""Scale-out benchmark: one VibeMUSE server as 1, 2 or 3 processes (issue 13).

The fan-out benchmark's runs (``fanout_run.Run``: a room, one speaker sending
R ``say`` frames a second, N listener sockets in the client processes of
``fanout_client``, latency of every copy, server and client CPU), with the
server run as several processes of one server, as README "Scale-out" says:

- one PostgreSQL schema per run (in ``--pg-url``'s database, made before the
  run and dropped after) and, unless the layout has no bus, Redis at
  ``--redis-url`` with a ``bus_channel`` of the run's own;
- one account per socket, made before the server starts with the project's
  own ``AccountService`` and the cheapest scrypt (``connect_storm``'s
  ``_make_accounts``; the sockets authenticate with access tokens); the abuse
  limits lifted (``lifted_limits``), the spam rules' windows 1 s;
- the layouts (``LAYOUTS``): ``vibemuse serve`` alone (no bus: the one-process
  floor), ``vibemuse serve`` with the bus, ``vibemuse serve --workers N``
  (N processes on one port, ``SO_REUSEPORT``: the kernel picks each socket's
  process), and two ``vibemuse serve`` processes on two ports with the same
  settings and bus (what the README offers for several machines), so that the
  speaker's socket is on one process and every listener on the other.

Server CPU is the sum of every process's utime + stime (``/proc``) over the
measured window; per process too, and the busiest process's CPU per message
(``ms/msg``: its share of one message's fan-out on a core of its own). Copies/s is what was delivered from the
first measured send to the last copy received. Client CPU is printed, since
the load generator shares the machine's cores with the server.

Parts (``--part``), each a list of layouts run back to back, ``--repeat``
times interleaved:

- ``load``: 1000 listeners x 20 msg/s x 10 s for 1 process without bus, 1 with
  bus, 2 and 3 workers: CPU per copy, and the bus's cost per copy against one
  process without it;
- ``capacity``: the same layouts offered more than they can take (1000 x 150
  msg/s x 4 s, from 10 speaker sockets: one socket's frames are handled one
  at a time): copies/s sustained;
- ``cross``: two processes on two ports, 1000 x 20 msg/s: speaker and
  listeners on the same process, then the speaker on the other process (every
  copy crosses the bus);
- ``big``: 10,000 sockets x 2 msg/s x 10 s, 1 process without bus, 2 and 3
  workers.

Examples::

    .venv/bin/python bench/scaleout.py --part load --repeat 2
    .venv/bin/python bench/scaleout.py --part cross --repeat 2
    .venv/bin/python bench/scaleout.py --part big --processes 1,3 --json

Everything is on 127.0.0.1, bounded in sockets (<= 20000), rate, time
(``--timeout``) and runs, and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from connect_storm import SERVER_NAME, _make_accounts
from fanout_common import (MAX_CLIENTS, ROOT, VENV_BIN, cpu_seconds, free_port, lifted_limits, raise_fd_limit,
                           rss_kib, stop_process)
from fanout_run import Run, run_rounds, troubles

PG_URL = os.environ.get("VIBEMUSE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Layout:
    name: str
    processes: int
    bus: bool = True
    ports: bool = False  # one ``vibemuse serve`` per port (else one port: ``--workers N``)
    speaker_on: int = 0  # ports layouts: the process the speaker's socket goes to
    listeners_on: int = 0  # ports layouts: the process every listener goes to


ONE_NO_BUS = Layout("1 process, no bus", 1, bus=False)
SCALE = [ONE_NO_BUS, Layout("1 process + bus", 1), Layout("--workers 2", 2), Layout("--workers 3", 3)]
LAYOUTS = {
    "load": SCALE,
    "capacity": SCALE,
    "cross": [Layout("2 ports: speaker with the listeners", 2, ports=True, speaker_on=1, listeners_on=1),
              Layout("2 ports: speaker on A, listeners on B", 2, ports=True, speaker_on=0, listeners_on=1)],
    "big": [ONE_NO_BUS, Layout("--workers 2", 2), Layout("--workers 3", 3)],
}
# clients, msg/s, seconds, drain timeout, speakers
LOADS = {"load": (1000, 20, 10, 20, 1), "capacity": (1000, 150, 4, 90, 10), "cross": (1000, 20, 10, 20, 1),
         "big": (10000, 2, 10, 60, 1)}


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(word) for word in handle.read().split()]
    except OSError:
        return []


def listening(port: int) -> int:
    """Listening TCP sockets on ``port`` (one per process with ``SO_REUSEPORT``)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    count += fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port
        except OSError:
            pass
    return count


def socket_fds(pid: int) -> int:
    try:
        return sum(os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:") for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class PostgresSchema:
    """A schema of its own in ``url``'s database for one run; ``drop`` removes it."""

    def __init__(self, url: str, prefix: str):
        from vibemuse.storage import create_database_engine

        self.name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
        self.admin = create_database_engine(url, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {self.name}")
        self.url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{self.name}"

    def drop(self) -> None:
        if self.admin is None:
            return
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")
        self.admin.dispose()
        self.admin = None


class ScaleRun(Run):
    """A fan-out run against one server made of ``layout.processes`` processes."""

    def __init__(self, layout: Layout, args: argparse.Namespace, deadline: float):
        super().__init__("vibemuse", args, deadline)
        self.layout = layout
        self.ports = [self.port]
        while layout.ports and len(self.ports) < layout.processes:
            port = free_port()
            self.ports += [port] if port not in self.ports else []
        self.servers: list[subprocess.Popen] = []
        self.schema: PostgresSchema | None = None
        self.tokens: list[str] = []
        self.cpu_marks: list[dict[int, float]] = []
        self.sockets_per_process: list[int] = []

    # -- the server's processes -----------------------------------------------------

    def start_server(self) -> None:
        args, layout = self.args, self.layout
        self.schema = PostgresSchema(args.pg_url, "bench_scaleout")
        data = self.tmp / "data"
        started = time.perf_counter()
        self.tokens = asyncio.run(_make_accounts(data, self.sockets() + self.speakers, self.schema.url))[:-1]
        self.setup["accounts_made_s"] = round(time.perf_counter() - started, 1)
        env = dict(os.environ, VIBEMUSE_DATABASE_URL=self.schema.url, VIBEMUSE_FEDERATION="false",
                   VIBEMUSE_MAX_CONNECTIONS_PER_USER="2", VIBEMUSE_LOG_LEVEL=args.server_log_level)
        env.update(lifted_limits(self.sockets() + self.speakers))
        # the spam rules scan the speaker's messages of the last window on each message: with the thresholds
        # lifted, a 60 s window at 150 msg/s is 9,000 entries a message (a user that fast is muted long before)
        env.update(VIBEMUSE_SPAM_FLOOD_WINDOW_SECONDS="1", VIBEMUSE_SPAM_REPEAT_WINDOW_SECONDS="1")
        if layout.bus:
            env.update(VIBEMUSE_BUS_URL=args.redis_url, VIBEMUSE_BUS_CHANNEL="bench-scaleout:" + secrets.token_hex(6))
        workers = [] if layout.ports or layout.processes == 1 else ["--workers", str(layout.processes)]
        for port in self.ports:
            command = [str(VENV_BIN / "vibemuse"), "serve", "--port", str(port), "--data-dir", str(data),
                       "--server-name", SERVER_NAME, *workers]
            with self.log.open("ab") as log:
                self.servers.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                     cwd=str(ROOT)))
            # one at a time: all listening before the next starts (the first makes the default room)
            each = 1 if layout.ports else layout.processes
            until = time.time() + 60
            while listening(port) < each:
                if self.servers[-1].poll() is not None or time.time() > until:
                    raise SystemExit(f"{layout.name}: the server did not listen on {port} with {each} "
                                     f"process(es): {self.log.read_text()[-2000:]}")
                time.sleep(0.1)
        self.server = self.servers[0]
        self.server_pid = self.server.pid
        self.setup["processes"] = self.pids()

    def pids(self) -> list[int]:
        """The processes serving: each server's workers, or the server itself."""
        return [pid for server in self.servers for pid in (children(server.pid) or [server.pid])]

    def server_cpu(self) -> float:
        mark = {}
        for pid in self.pids() + [server.pid for server in self.servers if children(server.pid)]:
            try:
                mark[pid] = cpu_seconds(pid)
            except OSError:
                mark[pid] = 0.0
        self.cpu_marks.append(mark)
        return sum(mark.values())

    def server_rss(self) -> int:
        return sum(rss_kib(pid) for pid in self.pids())

    def stop_server(self) -> None:
        for server in self.servers:
            stop_process(server)
        if self.schema is not None:
            self.schema.drop()

    def cleanup(self) -> None:
        for server in self.servers:
            if server.poll() is None:
                server.kill()
                server.wait(timeout=10)
        if self.schema is not None:
            self.schema.drop()
        super().cleanup()

    # -- accounts and clients ---------------------------------------------------------

    def accounts(self) -> tuple[list[str | None], list[str | None]]:
        clients = self.sockets()
        return list(self.tokens[:clients]), list(self.tokens[clients:clients + self.speakers])

    def spec(self, role: str, tokens: list[str | None]) -> dict[str, Any]:
        spec = super().spec(role, tokens)
        if self.layout.ports:
            spec["port"] = self.ports[self.layout.speaker_on if role == "speak" else self.layout.listeners_on]
        return spec

    def ask(self, pipes: list[Any], *command: Any, timeout: float = 600) -> list[Any]:
        answers = super().ask(pipes, *command, timeout=timeout)
        if command[0] == "connect":  # where the kernel (or the layout) put the sockets
            time.sleep(1.0)
            self.sockets_per_process = [socket_fds(pid) for pid in self.pids()]
        return answers

    def execute(self) -> dict[str, Any]:
        load_before = os.getloadavg()
        result = super().execute()
        first, last = self.cpu_marks[-2], self.cpu_marks[-1]
        window = result["window_s"]
        result.update({
            "part": self.args.part, "layout": self.layout.name, "processes": self.layout.processes, "bus": self.layout.bus,
            "topology": "ports" if self.layout.ports else "one port" if self.layout.processes == 1 else "workers",
            "cpu_pct_per_process": [round(100 * (last.get(pid, 0) - first.get(pid, 0)) / window, 1)
                                    for pid in self.setup["processes"]],
            "sockets_per_process": self.sockets_per_process,
            "load_avg": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        })
        return result


def busiest_ms(r: dict[str, Any]) -> float:
    """CPU milliseconds per message of the busiest process: how long its share of one message's fan-out
    takes on a core of its own (on a shared machine the wall time is longer)."""
    return 10 * max(r["cpu_pct_per_process"]) * r["window_s"] / r["messages"] if r["messages"] else 0.0


def print_table(results: list[dict[str, Any]]) -> None:
    print()
    print(f"{'layout':<40}{'clients':>8}{'msg/s':>6}{'p50 ms':>8}{'p90':>7}{'p99':>7}{'max':>8}{'lost':>6}"
          f"{'copies/s':>9}{'srv CPU':>8}{'µs/copy':>8}{'ms/msg':>7}{'clients':>8}  CPU per process, sockets   load")
    for r in results:
        lat = r["lat_ms"]
        print(f"{r['layout']:<40}{r['clients']:>8}{r['rate']:>6g}{lat['p50']:>8.1f}{lat['p90']:>7.1f}{lat['p99']:>7.1f}"
              f"{lat['max']:>8.1f}{r['lost']:>6}{r['copies_per_s'] or 0:>9}{r['server_cpu_pct']:>7.0f}%"
              f"{r['us_per_copy']:>8.1f}{busiest_ms(r):>7.1f}{r['client_cpu_pct']:>7.0f}%  "
              f"{'/'.join(f'{c:.0f}%' for c in r['cpu_pct_per_process'])}, "
              f"{'/'.join(str(s) for s in r['sockets_per_process'])}   {r['load_avg'][0]}-{r['load_avg'][1]}")
    for round_ in sorted({r["round"] for r in results}):
        rows = [r for r in results if r["round"] == round_]
        base = rows[0]
        ratios = [f"{r['layout']}: µs/copy x{r['us_per_copy'] / base['us_per_copy']:.2f} "
                  f"({r['us_per_copy'] - base['us_per_copy']:+.1f} µs; "
                  f"{1000 * (r['server_cpu_s'] / r['messages'] - base['server_cpu_s'] / base['messages']):+.2f} "
                  f"ms CPU per message), copies/s "
                  f"x{(r['copies_per_s'] or 0) / (base['copies_per_s'] or 1):.2f}, p99 "
                  f"x{r['lat_ms']['p99'] / base['lat_ms']['p99']:.2f}" for r in rows[1:]]
        if ratios:
            print(f"round {round_}, against {base['layout']!r}: " + "; ".join(ratios))
    for r in results:
        notes = [f"ack p50/p99 {r['ack_ms']['p50']}/{r['ack_ms']['p99']} ms",
                 f"first copy p50/p99 {r['first_copy_ms']['p50']}/{r['first_copy_ms']['p99']} ms",
                 f"first-to-last p50/p99 {r['spread_ms']['p50']}/{r['spread_ms']['p99']} ms",
                 f"{r['messages']} msgs, {r['deliveries']} copies, window {r['window_s']} s, connect {r['connect_s']} s"]
        print(f"  {r['layout']} (round {r['round']}): " + "; ".join(notes + troubles(r)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="See bench/README.md, 'Scale-out', for recorded figures.")
    parser.add_argument("--part", choices=sorted(LAYOUTS), default="load")
    parser.add_argument("--processes", default="1,2,3",
                        help="load, capacity, big: which process counts to run (default 1,2,3)")
    parser.add_argument("--clients", type=int, help="listener sockets (default: the part's)")
    parser.add_argument("--rate", type=float, help="messages per second (default: the part's)")
    parser.add_argument("--seconds", type=float, help="measured sending time (default: the part's)")
    parser.add_argument("--drain-timeout", type=float, help="seconds to wait for the last copies")
    parser.add_argument("--speakers", type=int, help="speaker sockets (one account each), taking turns "
                                                    "(default: the part's; several lift the one-at-a-time "
                                                    "handling of one socket's frames)")
    parser.add_argument("--repeat", type=int, default=1, help="run the layouts this many times, interleaved")
    parser.add_argument("--client-procs", type=int, default=3, help="listener client processes (default 3)")
    parser.add_argument("--connect-timeout", type=float, default=300)
    parser.add_argument("--connect-concurrency", type=int, default=50, help="handshakes in flight per client process")
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL database to make the runs' schemas in")
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument("--server-log-level", default="warning")
    parser.add_argument("--timeout", type=float, default=1800, help="hard limit for the whole invocation, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the data folders and server logs")
    parser.add_argument("--json", action="store_true", help="print one JSON object per run")
    parser.add_argument("--table", metavar="FILE", nargs="+", help="run nothing: print the table of the JSON lines "
                                                                  "of earlier runs (--json output)")
    args = parser.parse_args(argv)
    if args.table:
        print_table([json.loads(line) for name in args.table for line in open(name) if line.startswith("{")])
        return 0
    clients, rate, seconds, drain, speakers = LOADS[args.part]
    args.speakers = args.speakers or speakers
    args.clients = args.clients or clients
    args.rate = args.rate or rate
    args.seconds = args.seconds or seconds
    args.drain_timeout = args.drain_timeout or drain
    counts = {int(word) for word in args.processes.split(",")}
    layouts = [layout for layout in LAYOUTS[args.part] if layout.ports or layout.processes in counts]
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 < args.rate <= 1000 or not 0 < args.seconds <= 120:
        parser.error(f"--clients 1..{MAX_CLIENTS}, --rate 0..1000, --seconds 0..120")
    if not 1 <= args.repeat <= 5 or not 1 <= args.client_procs <= 16 or not 1 <= args.speakers <= 100 or not layouts:
        parser.error("--repeat 1..5, --client-procs 1..16, --speakers 1..100, and at least one layout")
    # what fanout_run.Run reads: the room scenario, one account per socket, no probes
    vars(args).update(scenario="room", rooms=1, channel_id="bench", pairs=0, workers=args.client_procs,
                      per_user=1, register_threads=1, verify_every=500, profile=None, profile_phase="measure",
                      profile_format="raw", series=None, gc_log=False, experiment=[], mem_trace=None)
    fds = raise_fd_limit()
    if args.clients + 300 > fds:
        parser.error(f"{args.clients} sockets need more file descriptors than the limit {fds}")

    def describe(layout: Layout) -> str:
        return f"{layout.name}: {args.clients} clients, {args.rate:g} msg/s for {args.seconds:g} s"

    return run_rounds(args, layouts, describe, lambda layout, deadline: ScaleRun(layout, args, deadline), print_table)


if __name__ == "__main__":
    sys.exit(main())
