"""alpha killed with kill -9 while it pages beta: nothing acked is lost, nothing comes twice.

alpha.test and beta.test are real ``vibemuse serve`` processes on loopback
(``tests/support/processes.py``), each with its own data folder and database
(alpha on ``database_url``, beta on a second database of the same engine:
a SQLite file, or a PostgreSQL schema of its own). Alice, on a real WebSocket
to alpha, sends a burst of pages to bob@beta.test without waiting for the
acks; after some acks alpha is killed with SIGKILL, with pages still being
stored, queued and sent (transactions of 5 events, so some are on the wire).
alpha is started again on the same folder and database. Then:

- every page Alice saw acked, and indeed every page alpha had stored, reaches
  Bob exactly once, in the order Alice sent it;
- beta stores exactly the pages Bob got, and alpha's outbox ends empty;
- a later page (the sentinel) arrives after all of them, so "nothing twice"
  is a statement about order, not about how long the test waited.

The second test kills alpha while beta is down too (every acked page only
queued), and Bob, offline until everything reached beta, gets them all from
his pending deliveries when he connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from tests.federation.test_two_servers import ALPHA, BETA, free_port
from tests.support.client import Api, WsClient
from tests.support.processes import ServerProcess
from tests.support.spec import SpecValidator
from vibemuse.storage import create_database_engine

SENTINEL = "sentinel"
SETTINGS = {"federation_batch_size": 5, "federation_retry_max_seconds": 2}


class Side:
    """One server process, its database (read by the test) and its API."""

    def __init__(self, process: ServerProcess, database_url: str, spec: SpecValidator):
        self.process = process
        self.engine = create_database_engine(database_url, pool_size=1)
        self.api = Api(process.base_url, spec)
        self.spec = spec

    def scalar(self, sql: str) -> Any:
        with self.engine.connect() as connection:
            return connection.exec_driver_sql(sql).scalar_one()

    def page_ids(self) -> list[str]:
        with self.engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT event_id FROM events WHERE event_type = 'vm.page' ORDER BY stream_position").all()
        return [row[0] for row in rows]

    async def connect(self, session: dict[str, Any]) -> WsClient:
        return await WsClient.logged_in(self.process.ws_url, self.spec, session["accessToken"])


@contextlib.asynccontextmanager
async def alpha_and_beta(tmp_path, alpha_database: str, beta_database: str):
    ports = {ALPHA: free_port(), BETA: free_port()}
    spec = SpecValidator()
    processes = {name: ServerProcess(name, tmp_path / name, ports[name], settings=SETTINGS,
                                     database_url=alpha_database if name == ALPHA else beta_database,
                                     peers={other: f"http://127.0.0.1:{port}" for other, port in ports.items()
                                            if other != name})
                 for name in ports}
    sides: list[Side] = []
    try:
        await asyncio.gather(*(process.start() for process in processes.values()))
        sides = [Side(processes[ALPHA], alpha_database, spec), Side(processes[BETA], beta_database, spec)]
        yield sides
    finally:
        for process in processes.values():
            process.kill()
        for side in sides:
            side.engine.dispose()


async def eventually(condition, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.05)


async def burst_then_kill(socket: WsClient, alpha: ServerProcess, count: int, kill_after: int) -> list[str]:
    """Send ``count`` pages to Bob at once, kill alpha after ``kill_after`` acks; the ids Alice saw acked."""
    numbers = {}
    for number in range(count):
        numbers[await socket.send_frame("page", {"to": ["bob@beta.test"], "text": f"page {number}"})] = number
    acked: list[tuple[int, str]] = []
    while (frame := await socket.receive(timeout=15)) is not None:
        if frame["type"] == "ack":
            acked.append((numbers[frame["data"]["inReplyTo"]], frame["data"]["eventId"]))
            if len(acked) == kill_after:
                alpha.kill()
        assert frame["type"] != "error", frame
    assert len(acked) >= kill_after and [number for number, _ in acked] == sorted(number for number, _ in acked)
    return [event_id for _, event_id in acked]


async def messages_until_sentinel(socket: WsClient) -> list[dict[str, Any]]:
    """Every page Bob gets up to and including the sentinel."""
    pages = []
    while not pages or pages[-1]["content"]["body"] != SENTINEL:
        pages.append((await socket.receive_type("message", timeout=30))["data"]["event"])
    return pages


async def send_sentinel(alpha: Side, alice: dict[str, Any]) -> WsClient:
    socket = await alpha.connect(alice)
    await socket.send_frame("page", {"to": ["bob@beta.test"], "text": SENTINEL})
    return socket


def assert_delivered_once_in_order(got: list[dict[str, Any]], stored_on_alpha: list[str], acked: list[str]) -> None:
    """Bob got each page alpha stored once, in the order sent, then the sentinel."""
    ids = [event["event_id"] for event in got]
    assert len(ids) == len(set(ids)), "a page came twice"
    assert set(acked) <= set(stored_on_alpha), "an acked page is not stored on alpha"
    assert ids == stored_on_alpha, "lost, extra or out of order"
    numbers = [int(event["content"]["body"].split()[1]) for event in got[:-1]]
    assert numbers == list(range(len(numbers)))  # the order Alice sent them in, none missing


@pytest.mark.gen_test(timeout=120)
async def test_alpha_killed_while_paging_loses_nothing_acked_and_repeats_nothing(
        tmp_path, database_url, other_database_url):
    async with alpha_and_beta(tmp_path, database_url, other_database_url) as (alpha, beta):
        alice = await alpha.api.register("alice")
        bob_socket = await beta.connect(await beta.api.register("bob"))
        acked = await burst_then_kill(await alpha.connect(alice), alpha.process, count=60, kill_after=15)

        await alpha.process.start()  # the same folder, database and port
        await eventually(lambda: alpha.scalar("SELECT COUNT(*) FROM federation_outbox") == 0, "alpha's outbox sent")
        await send_sentinel(alpha, alice)
        got = await messages_until_sentinel(bob_socket)

        assert_delivered_once_in_order(got, alpha.page_ids(), acked)
        assert beta.page_ids() == alpha.page_ids()  # beta stored each once, and nothing else
        assert beta.scalar("SELECT COUNT(*) FROM pending_deliveries") == 0  # all went live
        # Bob's receipts, those queued on beta while alpha was dead included: one per page, on alpha
        await eventually(lambda: beta.scalar("SELECT COUNT(*) FROM federation_outbox") == 0, "beta's outbox sent")
        assert alpha.scalar("SELECT COUNT(*) FROM events WHERE event_type = 'vm.receipt'") == len(got)


@pytest.mark.gen_test(timeout=120)
async def test_alpha_killed_while_beta_is_down_sends_everything_once_when_both_are_back(
        tmp_path, database_url, other_database_url):
    async with alpha_and_beta(tmp_path, database_url, other_database_url) as (alpha, beta):
        alice, bob = await alpha.api.register("alice"), await beta.api.register("bob")
        beta.process.stop()
        acked = await burst_then_kill(await alpha.connect(alice), alpha.process, count=30, kill_after=20)
        assert beta.page_ids() == []  # beta was down: every page was only queued

        await beta.process.start()
        await alpha.process.start()
        await eventually(lambda: alpha.scalar("SELECT COUNT(*) FROM federation_outbox") == 0, "alpha's outbox sent")
        assert beta.scalar("SELECT COUNT(*) FROM pending_deliveries") == len(alpha.page_ids())  # held for Bob
        bob_socket = await beta.connect(bob)  # his pages wait for him
        await send_sentinel(alpha, alice)
        got = await messages_until_sentinel(bob_socket)

        assert_delivered_once_in_order(got, alpha.page_ids(), acked)
        assert beta.page_ids() == alpha.page_ids()
        assert [frame for frame in await bob_socket.quiet(0.3) if frame["type"] == "message"] == []
