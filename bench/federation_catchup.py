"""Federation catch-up: events queued for a server that was down, delivered when it returns.

Two real ``vibemuse serve`` processes on loopback, alpha.bench and beta.bench,
each knowing the other by ``federation_peers``. Before alpha starts, N signed
events addressed to a player of beta are stored in alpha's database with
their outbox rows (the project's own storage and ``op_enqueue``, in one
transaction each, as a page does; with alpha's own signing key). alpha starts
while beta is down: its sender finds beta unreachable and backs off. Then beta
starts, and the clock runs from the moment beta listens until alpha's outbox
for beta is empty, i.e. beta has answered for every event (each checked: the
request signature, then per event its signature, hash, id and origin).

Bob exists on beta and is offline, so beta stores each page once, holds it
for him and queues a signed ``held`` receipt back to alpha (in the same
transaction). Checked: beta recorded transactions covering every event
exactly once (every event id once among the answers it stored), holds N
pages for Bob, and alpha's outbox for beta is empty. Measured: the seconds to catch up, events a second,
both servers' CPU.

    .venv/bin/python bench/federation_catchup.py --events 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fanout_common import ROOT, VENV_BIN, cpu_seconds, free_port, stop_process  # noqa: E402

ALPHA, BETA = "alpha.bench", "beta.bench"


async def _queue_events(data_dir: Path, count: int) -> None:
    """Signed pages from alpha to @bob:beta.bench, stored with their outbox rows."""
    from vibemuse.config import Config
    from vibemuse.federation.server_keys import load_or_create_signing_keys
    from vibemuse.protocol.events import build_event
    from vibemuse.storage import Storage, create_database_engine, ensure_schema
    from vibemuse.storage.outbox_txns import op_enqueue

    config = Config(data_dir=str(data_dir), server_name=ALPHA)
    keyring = load_or_create_signing_keys(str(config.resolved_signing_key_path))
    engine = create_database_engine(config.resolved_database_url)
    ensure_schema(engine, auto_migrate=True)
    storage = Storage(engine, threads=1)
    now = int(time.time() * 1000)
    for number in range(count):
        event = build_event(event_type="vm.page", sender="@ann:alpha.bench", origin=ALPHA, origin_server_ts=now,
                            content={"kind": "page", "body": f"page {number}"}, recipients=["@bob:beta.bench"],
                            signing_key=keyring.current)
        await storage.append_events([event], transaction=None, now_ms=now, ops=[op_enqueue(event, [BETA], now)])
    storage.close()


async def _make_bob(data_dir: Path) -> None:
    """Bob, the player of beta the pages are for (offline: each page is held for him)."""
    from vibemuse.app import VibeMuseServer
    from vibemuse.config import Config
    from vibemuse.services.passwords import PasswordHasher

    server = await VibeMuseServer.create(Config(data_dir=str(data_dir), server_name=BETA, port=0),
                                         hasher=PasswordHasher(log_n=1))
    await server.context.accounts.register("Bob", "bench-catchup-pw")
    await server.shutdown()


class Server:
    def __init__(self, name: str, data_dir: Path, port: int, peers: dict[str, str]):
        self.name, self.data_dir, self.port = name, data_dir, port
        self.env = dict(os.environ, VIBEMUSE_LOG_LEVEL="warning", VIBEMUSE_FEDERATION_PEERS=json.dumps(peers),
                        VIBEMUSE_RATE_LIMITS=json.dumps({"federation_origin": [1_000_000, 1_000_000.0]}))
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [str(VENV_BIN / "vibemuse"), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
                   "--server-name", self.name, "--migrate"]
        log = (self.data_dir / "server.log").open("ab")
        self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT))
        until = time.time() + 60
        while time.time() < until:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited: " + (self.data_dir / "server.log").read_text()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"{self.name} did not listen within 60 s")

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        stop_process(self.process)


def _rows(db: Path, query: str) -> list[tuple]:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return connection.execute(query).fetchall()
    finally:
        connection.close()


def run(events: int, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="vm-catchup-") as tmp:
        alpha_dir, beta_dir = Path(tmp, "alpha"), Path(tmp, "beta")
        alpha_dir.mkdir()
        beta_dir.mkdir()
        started = time.perf_counter()
        asyncio.run(_queue_events(alpha_dir, events))
        asyncio.run(_make_bob(beta_dir))
        print(f"queued {events} signed events on alpha in {time.perf_counter() - started:.1f} s", flush=True)
        alpha_port, beta_port = free_port(), free_port()
        alpha = Server(ALPHA, alpha_dir, alpha_port, {BETA: f"http://127.0.0.1:{beta_port}"})
        beta = Server(BETA, beta_dir, beta_port, {ALPHA: f"http://127.0.0.1:{alpha_port}"})
        alpha_db, beta_db = alpha_dir / "vibemuse.db", beta_dir / "vibemuse.db"
        try:
            alpha.start()
            time.sleep(2.0)  # alpha tries beta, finds it down, backs off
            assert _rows(alpha_db, "SELECT COUNT(*) FROM federation_outbox")[0][0] == events
            beta.start()
            back = time.perf_counter()
            alpha_cpu, beta_cpu = alpha.cpu(), beta.cpu()
            left = events
            held = 0
            while time.perf_counter() - back < timeout:
                left = _rows(alpha_db, "SELECT COUNT(*) FROM federation_outbox")[0][0]
                if left == 0:
                    break
                time.sleep(0.05)
            caught_up = time.perf_counter() - back
            alpha_cpu, beta_cpu = alpha.cpu() - alpha_cpu, beta.cpu() - beta_cpu
            answers = [json.loads(row[0]) for row in _rows(beta_db, "SELECT answer_json FROM federation_transactions")]
            held = _rows(beta_db, "SELECT COUNT(*) FROM pending_deliveries")[0][0]
        finally:
            beta.stop()
            alpha.stop()
    seen = [event_id for answer in answers for event_id in answer["pdus"]]
    refused = sum(1 for answer in answers for result in answer["pdus"].values() if result)
    return {"events": events, "left_in_outbox": left, "catch_up_s": round(caught_up, 2),
            "events_per_s": round(events / caught_up) if caught_up else None, "transactions": len(answers),
            "answered_events": len(seen), "distinct_answered": len(set(seen)), "refused": refused,
            "held_for_bob": held,
            "alpha_cpu_s": round(alpha_cpu, 2), "beta_cpu_s": round(beta_cpu, 2),
            "load": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    args = parser.parse_args()
    result = run(args.events, args.timeout)
    print(json.dumps(result, indent=2))
    ok = (result["left_in_outbox"] == 0 and result["distinct_answered"] == args.events
          and result["answered_events"] == args.events and result["refused"] == 0
          and result["held_for_bob"] == args.events)
    print("OK: every event delivered once" if ok else "FAILED: see the figures above")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
