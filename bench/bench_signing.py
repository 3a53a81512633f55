#!/usr/bin/env python
"""Signing-path throughput on one core: build_event and verify_event.

Usage: python bench/bench_signing.py [--seconds N]

A realistic "say" event in a room is built (shape check, canonical JSON,
content hash, redaction, event id, Ed25519 signature) and verified (shape,
redaction, signature, id, content hash) as many times as fit in N seconds
each. Prints a table and one JSON line (for scripts).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vibemuse.protocol.events import build_event, verify_event  # noqa: E402
from vibemuse.protocol.signing import generate_signing_key  # noqa: E402

SERVER = "muse.example.org"
KEY = generate_signing_key("1_bnch", bytes(range(32)))
SAY = {
    "kind": "say",
    "body": "Well met, traveller! The tavern's fire is warm and the ale is cold; "
            "pull up a stool and tell us what news you bring from the northern road.",
    "format": "plain",
}


def build() -> dict:
    return build_event(
        event_type="vm.room.message", sender=f"@alice:{SERVER}", origin=SERVER,
        origin_server_ts=1_767_225_600_000, content=SAY,
        room_id=f"!Xq3fK9aB2LmN7pQr:{SERVER}", signing_key=KEY,
    )


def measure(operation: Callable[[], object], seconds: float) -> tuple[int, float]:
    """Run ``operation`` in batches until ``seconds`` pass; return (count, elapsed)."""
    for _ in range(200):  # warm up
        operation()
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(500):
            operation()
        count += 500
        now = time.perf_counter()
        if now >= deadline:
            return count, now - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()
    event = build()
    keys = {SERVER: {KEY.key_id: KEY.verify_key}}
    assert not verify_event(event, keys).redacted_only
    size = len(json.dumps(event, separators=(",", ":")).encode())
    results = {}
    for name, operation in (("sign", build), ("verify", lambda: verify_event(event, keys))):
        count, elapsed = measure(operation, args.seconds)
        results[name] = (count / elapsed, elapsed / count * 1e6)
    print(f"event: vm.room.message 'say', {size} bytes; python {platform.python_version()}, "
          f"{os.cpu_count()} cpus, 1 core used")
    print(f"{'operation':<10}{'per second':>14}{'us each':>10}")
    for name, (rate, micros) in results.items():
        print(f"{name:<10}{rate:>14,.0f}{micros:>10.1f}")
    print(json.dumps({
        "bench": "signing", "event_bytes": size, "seconds": args.seconds,
        "signs_per_s": round(results["sign"][0]), "verifies_per_s": round(results["verify"][0]),
        "python": platform.python_version(), "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
