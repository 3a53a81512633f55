"""Connections to servers found by discovery go to global addresses only
(vibemuse/federation/addresses.py): real resolution, real sockets, a real server's sender."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import tornado.netutil

from tests.conftest import FAST_HASHER
from tests.federation.test_two_servers import ALPHA, BETA, server_config
from tests.support.peer import Peer, until
from vibemuse.app import VibeMuseServer
from vibemuse.federation.sender import FederationSeams
from vibemuse.federation.addresses import PublicAddressResolver, is_public_address, peer_hosts
from vibemuse.protocol.events import build_event
from vibemuse.storage.outbox_txns import op_enqueue


@pytest.mark.parametrize("address, public", [
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.9", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("::1", False), ("fe80::1%eth0", False), ("fd00::1", False), ("::ffff:127.0.0.1", False),
    ("::ffff:10.0.0.1", False), ("2001:db8::1", False), ("not an address", False),
    ("8.8.8.8", True), ("1.1.1.1", True), ("2606:4700:4700::1111", True), ("::ffff:8.8.8.8", True),
])
def test_which_addresses_are_public(address, public):
    assert is_public_address(address) is public


def test_the_hosts_of_configured_peers_are_trusted():
    assert peer_hosts({"beta.test": "http://127.0.0.1:4202", "gamma.test": "https://Gamma.Example:8448/"}) == {
        "127.0.0.1", "gamma.example"}


@pytest.mark.gen_test(timeout=10)
async def test_the_resolver_drops_private_addresses_but_for_trusted_hosts():
    resolver = PublicAddressResolver(resolver=tornado.netutil.DefaultLoopResolver(), trusted={"127.0.0.2"})
    with pytest.raises(OSError, match="not public"):
        await resolver.resolve("127.0.0.1", 80)
    with pytest.raises(OSError, match="not public"):
        await resolver.resolve("localhost", 80)
    assert [address[0] for _, address in await resolver.resolve("127.0.0.2", 80)] == ["127.0.0.2"]
    assert [address[0] for _, address in await resolver.resolve("8.8.8.8", 53)] == ["8.8.8.8"]


async def _alpha_sending_to_a_discovered_peer(tmp_path, peer: Peer, **settings) -> VibeMuseServer:
    """alpha, which finds beta at the peer's loopback URL by discovery (not by federation_peers),
    with one page for beta queued."""
    config = dataclasses.replace(server_config(tmp_path, ALPHA, f"sqlite:///{tmp_path}/alpha.db", {}), **settings)
    alpha = await VibeMuseServer.create(config, hasher=FAST_HASHER,
                                        federation=FederationSeams(base_url_of=lambda name: peer.base_url))
    now = alpha.context.clock()
    page = build_event(event_type="vm.page", sender="@ann:alpha.test", origin=ALPHA, origin_server_ts=now,
                       content={"kind": "page", "body": "hi"}, recipients=["@bob:beta.test"],
                       signing_key=alpha.context.keyring.current)
    await alpha.context.storage.append_events([page], transaction=None, now_ms=now,
                                              ops=[op_enqueue(page, [BETA], now)])
    alpha.start_background_tasks()  # the sender starts and finds the page queued
    return alpha


@pytest.mark.gen_test(timeout=30)
async def test_a_sender_does_not_connect_to_a_discovered_server_on_a_private_address(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="vibemuse.federation.sender")
    peer = Peer().start()
    alpha = await _alpha_sending_to_a_discovered_peer(tmp_path, peer)
    try:
        await until(lambda: BETA in alpha.sender.queues and alpha.sender.queues[BETA].failures >= 1,
                    "the attempt failed")
        assert peer.received == []  # not one byte reached the loopback peer
        assert any("not public" in record.getMessage() for record in caplog.records)  # the reason, logged
        assert (await alpha.sender.outbox.queue_stats())[0].depth == 1  # still queued, not lost
    finally:
        await alpha.shutdown()
        await peer.stop()


@pytest.mark.gen_test(timeout=30)
async def test_with_federation_private_addresses_it_does(tmp_path):
    peer = Peer().start()
    alpha = await _alpha_sending_to_a_discovered_peer(tmp_path, peer, federation_private_addresses=True)
    try:
        await until(lambda: any(r.status == 200 for r in peer.received), "delivered")
        assert [pdu["sender"] for pdu in peer.received[0].body["pdus"]] == ["@ann:alpha.test"]
    finally:
        await alpha.shutdown()
        await peer.stop()
