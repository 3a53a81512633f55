"""Two real VibeMUSE servers on loopback, each knowing the other by ``federation_peers``:
alpha's outbox sender signs its transactions with alpha's key (through the seams
``app.py`` wires by default) and beta's receiver checks them, fetching alpha's key
document over HTTP. Nothing here is a stand-in: discovery, signing, the durable
outbox, the sender, the receiver and its stores are the servers' own.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.conftest import FAST_HASHER, count_rows
from vibemuse.app import VibeMuseServer
from vibemuse.config import DEFAULT_RATE_LIMITS, Config
from vibemuse.federation.receiver import FederationInbox
from vibemuse.protocol.events import build_event
from vibemuse.storage.outbox_txns import op_enqueue

ALPHA, BETA = "alpha.test", "beta.test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_config(tmp_path, name: str, database_url: str, peers: dict[str, str]) -> Config:
    return Config(server_name=name, port=0, data_dir=str(tmp_path / name), database_url=database_url,
                  database_threads=2, shutdown_grace_seconds=0.2, federation_peers=peers,
                  rate_limits={action: (1e9, 1e9) for action in DEFAULT_RATE_LIMITS})


class RecordingInbox(FederationInbox):
    def __init__(self):
        self.accepted: list[str] = []

    async def accept(self, event):
        self.accepted.append(event["event_id"])
        return None


async def queue_pages(alpha: VibeMuseServer, count: int) -> list[str]:
    """Signed pages from alpha to a player of beta, stored with their outbox rows in one
    transaction (as the page service will), then the sender woken."""
    ids = []
    for number in range(count):
        now = alpha.context.clock()
        event = build_event(event_type="vm.page", sender="@ann:alpha.test", origin=ALPHA, origin_server_ts=now,
                            content={"kind": "page", "body": f"page {number}"}, recipients=["@bob:beta.test"],
                            signing_key=alpha.context.keyring.current)
        await alpha.context.storage.append_events([event], transaction=None, now_ms=now,
                                                  ops=[op_enqueue(event, [BETA], now)])
        ids.append(event["event_id"])
    alpha.sender.wake([BETA])
    return ids


async def until(predicate, seconds: float = 15.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


@pytest.mark.gen_test(timeout=60)
async def test_pages_queued_while_beta_is_down_reach_it_in_order_once_signed_by_alpha(tmp_path, database_url):
    alpha_port, beta_port = free_port(), free_port()
    alpha = await VibeMuseServer.create(
        server_config(tmp_path, ALPHA, f"sqlite:///{tmp_path}/alpha.db", {BETA: f"http://127.0.0.1:{beta_port}"}),
        hasher=FAST_HASHER)
    alpha.listen(alpha_port, "127.0.0.1")
    beta = None
    try:
        early = await queue_pages(alpha, 3)  # beta is not up: the sender backs off, nothing is lost
        await asyncio.sleep(0.3)
        assert count_rows(alpha, "federation_outbox") == 3
        beta = await VibeMuseServer.create(
            server_config(tmp_path, BETA, database_url, {ALPHA: f"http://127.0.0.1:{alpha_port}"}),
            hasher=FAST_HASHER)
        inbox = beta.context.federation.inbox = RecordingInbox()
        beta.listen(beta_port, "127.0.0.1")
        late = await queue_pages(alpha, 2)
        assert await until(lambda: len(inbox.accepted) >= 5), inbox.accepted
        assert inbox.accepted == early + late  # in order, each once
        assert await until(lambda: count_rows(alpha, "federation_outbox") == 0)
        assert count_rows(beta, "federation_transactions") >= 1
        # beta said hello when it started (an empty signed transaction): alpha counts it as contact
        assert (await alpha.sender.outbox.state(BETA)).last_contact_ts is not None
        stats = {row.state.destination: row for row in await alpha.sender.outbox.queue_stats()}
        assert stats[BETA].depth == 0 and stats[BETA].state.delivered == 5 and stats[BETA].state.refused == 0
    finally:
        if beta is not None:
            await beta.shutdown()
        await alpha.shutdown()
