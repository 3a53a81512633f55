"""Page latency across servers: a player on alpha pages a player on beta.

Two real ``vibemuse serve`` processes on loopback (alpha.bench, beta.bench,
each in the other's ``federation_peers``). Ann registers on alpha and Bob on
beta over HTTP; both connect a WebSocket. Ann sends ``--rate`` pages a second
for ``--seconds`` to ``bob@beta.bench``, each carrying its send time; Bob's
socket notes when each arrives. The path of every page: Ann's frame, alpha
signs and stores the event and queues it for beta in one transaction, acks;
alpha's sender PUTs a signed transaction; beta checks the request and the
event, stores it, delivers it to Bob's socket and queues a signed receipt back.

Measured: latency from Ann's send to Bob's frame (p50, p90, p99, max), pages
lost or doubled, Ann's acks and the `delivered` receipts she got back, and
both servers' CPU.

    .venv/bin/python bench/federation_pages.py --rate 50 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fanout_common import free_port  # noqa: E402
from federation_catchup import ALPHA, BETA, Server  # noqa: E402


async def register(base: str, name: str) -> str:
    request = HTTPRequest(base + "/api/auth/register", method="POST", headers={"Content-Type": "application/json"},
                          body=json.dumps({"username": name, "password": "bench-pages-pw"}))
    response = await AsyncHTTPClient().fetch(request)
    return json.loads(response.body)["accessToken"]


async def connect(base: str, token: str):
    request = HTTPRequest(base.replace("http://", "ws://") + "/api/ws", headers={"Authorization": "Bearer " + token})
    socket = await websocket_connect(request, subprotocols=["vibemuse.v1"])
    while True:  # up to the roster: the session has started
        frame = json.loads(await socket.read_message())
        if frame["type"] == "roster":
            return socket


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(fraction * len(values)))] if values else float("nan")


async def drive(alpha: str, beta: str, rate: float, seconds: float) -> dict:
    ann, bob = await connect(alpha, await register(alpha, "Ann")), await connect(beta, await register(beta, "Bob"))
    total = int(rate * seconds)
    arrived: dict[int, float] = {}
    doubled = 0
    acks = receipts = 0

    async def bob_reads() -> None:
        nonlocal doubled
        while len(arrived) < total:
            message = await bob.read_message()
            if message is None:
                return
            frame = json.loads(message)
            if frame["type"] == "message" and frame["data"]["event"]["type"] == "vm.page":
                number, sent = frame["data"]["event"]["content"]["body"].split()[:2]
                if int(number) in arrived:
                    doubled += 1
                arrived[int(number)] = time.perf_counter() - float(sent)

    async def ann_reads() -> None:
        nonlocal acks, receipts
        while acks < total or receipts < total:
            message = await ann.read_message()
            if message is None:
                return
            frame = json.loads(message)
            if frame["type"] == "ack":
                acks += 1
            elif frame["type"] == "page_receipt" and frame["data"]["event"]["content"]["kind"] == "delivered":
                receipts += 1

    readers = [asyncio.ensure_future(bob_reads()), asyncio.ensure_future(ann_reads())]
    start = time.perf_counter()
    for number in range(total):
        await asyncio.sleep(max(0.0, start + number / rate - time.perf_counter()))
        frame = {"type": "page", "messageId": f"p{number}",
                 "data": {"to": [f"bob@{BETA}"], "text": f"{number} {time.perf_counter()!r}"}}
        await ann.write_message(json.dumps(frame))
    try:
        await asyncio.wait_for(asyncio.gather(*readers), timeout=30)
    except asyncio.TimeoutError:
        pass
    latencies = sorted(arrived.values())
    ann.close()
    bob.close()
    ms = [round(1000 * x, 1) for x in (percentile(latencies, 0.5), percentile(latencies, 0.9),
                                       percentile(latencies, 0.99), latencies[-1] if latencies else float("nan"))]
    return {"pages": total, "rate": rate, "arrived": len(arrived), "lost": total - len(arrived), "doubled": doubled,
            "p50_ms": ms[0], "p90_ms": ms[1], "p99_ms": ms[2], "max_ms": ms[3], "acks": acks,
            "delivered_receipts": receipts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="pages a second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vm-fedpages-") as tmp:
        alpha_dir, beta_dir = Path(tmp, "alpha"), Path(tmp, "beta")
        alpha_dir.mkdir()
        beta_dir.mkdir()
        alpha_port, beta_port = free_port(), free_port()
        alpha = Server(ALPHA, alpha_dir, alpha_port, {BETA: f"http://127.0.0.1:{beta_port}"})
        beta = Server(BETA, beta_dir, beta_port, {ALPHA: f"http://127.0.0.1:{alpha_port}"})
        limits = {"speech": [1e9, 1e9], "page": [1e9, 1e9], "federation_origin": [1e9, 1e9]}
        for server in (alpha, beta):
            server.env["VIBEMUSE_RATE_LIMITS"] = json.dumps(limits)
            server.env["VIBEMUSE_SPAM_FLOOD_COUNT"] = "1000000"
            server.env["VIBEMUSE_SPAM_REPEAT_COUNT"] = "1000000"
        try:
            beta.start()
            alpha.start()
            cpu = alpha.cpu(), beta.cpu()
            result = asyncio.run(drive(f"http://127.0.0.1:{alpha_port}", f"http://127.0.0.1:{beta_port}",
                                       args.rate, args.seconds))
            result["alpha_cpu_s"] = round(alpha.cpu() - cpu[0], 2)
            result["beta_cpu_s"] = round(beta.cpu() - cpu[1], 2)
        finally:
            alpha.stop()
            beta.stop()
    result["load"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))
    ok = result["lost"] == 0 and result["doubled"] == 0
    print("OK" if ok else "FAILED: pages lost or doubled")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
