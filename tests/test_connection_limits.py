"""The server-wide connection cap and the edge of the file-descriptor limit
(protocol.md 18.3): past ``max_connections`` a connection gets 503
``server_full``; out of descriptors the server refuses promptly instead of
hanging new connections, does not flood its log, and serves again once
descriptors are free."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from tests.conftest import FAST_HASHER
from tests.support.client import WsClient
from tests.support.security import MEMORY_ONLY
from vibemuse.admission import LOG_PERIOD_SECONDS, RefusalLog, connection_ceiling, effective_max_connections
from vibemuse.app import VibeMuseServer

ROOT = Path(__file__).resolve().parents[1]


def test_the_cap_stays_below_the_descriptor_limit():
    assert connection_ceiling(1024) == 1024 - 102
    assert connection_ceiling(100) == 36  # at least 64 descriptors are kept for the rest
    assert connection_ceiling(10) == 1
    assert effective_max_connections(0, 1024) == 922  # 0: from the limit
    assert effective_max_connections(500, 1024) == 500
    assert effective_max_connections(5000, 1024) == 922  # never above what the descriptors allow


def test_refusals_are_logged_at_most_once_per_period(caplog):
    now = [0.0]
    refusals = RefusalLog(clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="vibemuse.admission"):
        for _ in range(1000):
            refusals.refused("full")
        now[0] += LOG_PERIOD_SECONDS
        refusals.refused("full")
    assert [record.getMessage() for record in caplog.records] == [
        "refusing connections: full (1 refused since the last report)",
        "refusing connections: full (1000 refused since the last report)",
    ]


async def full_refusal(port: int, path: str = "/api/versions") -> tuple[int, dict, dict]:
    response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}{path}", raise_error=False)
    return response.code, response.headers, json.loads(response.body)


@MEMORY_ONLY
@pytest.mark.gen_test(timeout=30)
async def test_connections_past_max_connections_get_503_server_full(config, clock, spec):
    server = await VibeMuseServer.create(dataclasses.replace(config, max_connections=3), clock=clock,
                                         hasher=FAST_HASHER)
    port = server.listen(0, "127.0.0.1")
    ws_url = f"ws://127.0.0.1:{port}/api/ws"
    try:
        sockets = [await WsClient.open(ws_url, spec) for _ in range(3)]
        status, headers, body = await full_refusal(port)
        spec.check_body("error", body)
        assert (status, body["error"]["code"]) == (503, "server_full")
        assert headers["Cache-Control"] == "no-store" and int(headers["Retry-After"]) > 0
        with pytest.raises(HTTPClientError) as refused:
            await WsClient.open(ws_url, spec)
        assert refused.value.code == 503
        assert json.loads(refused.value.response.body)["error"]["code"] == "server_full"
        sockets.pop().close()
        for _ in range(100):  # the server lets the closed socket go
            if server.context.registry.held_sockets < 3:
                break
            await asyncio.sleep(0.02)
        sockets.append(await WsClient.open(ws_url, spec))  # a place is free again
        for socket_ in sockets:
            socket_.close()
    finally:
        await server.shutdown()


# -- the edge of the descriptor limit, for real -------------------------------------------------


def ask(port: int, timeout: float = 5.0) -> str:
    """Send GET /api/versions on a fresh connection: 'served', 'refused' (503 or closed at once)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(b"GET /api/versions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        try:
            answer = connection.recv(64)
        except ConnectionResetError:
            return "refused"
    if answer.startswith(b"HTTP/1.1 200"):
        return "served"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 503"), answer
    return "refused"


@pytest.fixture
def fd_limited_server(tmp_path):
    launcher = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fdlimit_server", str(tmp_path), "12"], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        port, _limit = map(int, launcher.stdout.readline().split())
        yield launcher, port
    finally:
        launcher.kill()
        launcher.wait(timeout=10)


def test_out_of_descriptors_new_connections_are_refused_not_hung(fd_limited_server):
    launcher, port = fd_limited_server
    # Idle connections take the server's last descriptors (they wait for a request).
    hogs = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(30)]
    try:
        outcomes = [ask(port) for _ in range(40)]  # would time out (socket.timeout) if they hung
        assert outcomes.count("refused") >= 30, outcomes
    finally:
        for hog in hogs:
            hog.close()
    served = "refused"
    deadline = time.monotonic() + 20
    while served != "served" and time.monotonic() < deadline:  # the descriptors come back
        time.sleep(0.1)
        served = ask(port)
    assert served == "served"
    assert launcher.poll() is None  # alive
    launcher.kill()
    log = launcher.stderr.read()
    # a handful of lines, not one (or a traceback) per refusal or per turn of the loop
    assert len(log.splitlines()) <= 10, log[-3000:]
    assert "out of file descriptors" in log
