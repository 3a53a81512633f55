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
import sys
from typing import Any

from fanout_common import MAX_CLIENTS, raise_fd_limit
from fanout_run import Run, run_rounds, troubles


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
        extra += troubles(r)
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

    targets = {"both": ["naive", "vibemuse"], "all": ["naive", "preencoded", "vibemuse"]}.get(
        args.target, [args.target])
    if args.scenario == "page" and targets != ["vibemuse"]:
        print("page scenario: the naive relay has no pages; running VibeMUSE only", file=sys.stderr)
        targets = ["vibemuse"]

    def describe(target: str) -> str:
        scenario = args.scenario if target == "vibemuse" else "room"
        return f"{target} {scenario}: {args.clients} clients, {args.rate:g} msg/s for {args.seconds:g} s"

    return run_rounds(args, targets, describe, lambda target, deadline: Run(target, args, deadline), print_table)


if __name__ == "__main__":
    sys.exit(main())
