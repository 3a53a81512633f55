"""What the metrics cost on the hot paths (bench/README.md, "Metrics cost").

Times, in one process, a fan-out of one delivery to N registered sockets
(whose send does nothing, so the loop itself is what is timed) without and
with the metrics hook, and the metric calls one client frame makes (received,
its ack queued, its latency observed). Bounded: a fixed number of rounds.

    .venv/bin/python bench/metrics_cost.py [--sockets 1000] [--rounds 3000]
"""

from __future__ import annotations

import argparse
import statistics
import time

from vibemuse.metrics import ServerMetrics
from vibemuse.realtime.bus import Delivery
from vibemuse.realtime.connections import ConnectionRegistry
from vibemuse.realtime.subscriptions import Subscriptions


class _Socket:
    def __init__(self, number: int):
        self.connection_id, self.user_id = f"c{number}", f"u{number}"

    def send_encoded(self, frame: bytes, position: int | None = None) -> None:
        pass


def fanout_us(sockets: int, rounds: int, metrics: ServerMetrics | None) -> float:
    registry = ConnectionRegistry()
    subscriptions = Subscriptions(registry, on_delivered=metrics.delivered if metrics else None)
    for number in range(sockets):
        socket = _Socket(number)
        registry.add(socket)  # type: ignore[arg-type]
        subscriptions.place(socket.user_id, "hall")
    delivery = Delivery("room:hall", b"x" * 100, frame_type="message")
    started = time.perf_counter()
    for _ in range(rounds):
        subscriptions.deliver(delivery)
    return (time.perf_counter() - started) / rounds * 1e6


def frame_us(rounds: int, metrics: ServerMetrics) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        read = time.perf_counter()
        metrics.frame_received("say")
        metrics.frames_queued("ack")
        metrics.frame_answered("say", read)
    return (time.perf_counter() - started) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3000)
    args = parser.parse_args()
    metrics = ServerMetrics()
    plain, counted, frames = [], [], []
    for _ in range(5):  # interleaved, the median of five: the cores are shared
        plain.append(fanout_us(args.sockets, args.rounds, None))
        counted.append(fanout_us(args.sockets, args.rounds, metrics))
        frames.append(frame_us(args.rounds * 20, metrics))
    print(f"fan-out to {args.sockets} sockets: {statistics.median(plain):.1f} us without metrics, "
          f"{statistics.median(counted):.1f} us with (median of 5)")
    print(f"metric calls of one client frame: {statistics.median(frames):.2f} us")


if __name__ == "__main__":
    main()
