"""``GET /metrics`` of a server of several processes (README, "Running it in production"): two
real ``vibemuse serve`` processes sharing one metrics folder, scraped as Prometheus scrapes them,
after players on both did what each metric counts."""

from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import AsyncHTTPClient

from tests.support.client import WsClient, acked
from tests.support.rawws import RawWebSocket
from tests.test_operations import scrape, value
from tests.test_scale_out import Processes, texts, until
from vibemuse.config import DEFAULT_RATE_LIMITS

EVERY_METRIC = (  # the families issue 13 asks for (protocol.md 20.2)
    "vibemuse_sockets_open", "vibemuse_users_online", "vibemuse_frames_received", "vibemuse_frames_sent",
    "vibemuse_fanout_copies", "vibemuse_fanout_seconds", "vibemuse_ack_latency_seconds",
    "vibemuse_database_seconds", "vibemuse_bus_lag_seconds", "vibemuse_outbound_queue_bytes",
    "vibemuse_slow_consumer_closes", "vibemuse_refusals", "vibemuse_federation_queue_depth",
    "vibemuse_federation_oldest_pending_seconds", "vibemuse_federation_delivery_lag_seconds",
    "vibemuse_federation_consecutive_failures",
)


async def families(base_url: str) -> set[str]:
    """The names of the metric families /metrics declares (with samples or not yet)."""
    response = await AsyncHTTPClient().fetch(base_url + "/metrics")
    return {family.name for family in text_string_to_metric_families(response.body.decode())}


@pytest.mark.gen_test(timeout=240)
async def test_the_metrics_of_two_processes_add_up_and_count_a_user_once(tmp_path, postgres_url, bus, spec):
    limits = {action: [1e9, 1e9] for action in DEFAULT_RATE_LIMITS}
    limits["queries"] = [2, 0.001]  # two WHOs, then one in a quarter of an hour
    settings = {"metrics_dir": str(tmp_path / "metrics"), "federation": "true", "rate_limits": json.dumps(limits),
                "spam_repeat_count": "2", "outbound_queue_bytes": str(16 * 1024)}
    async with Processes(tmp_path, postgres_url, bus, spec, settings=settings) as server:
        zero, one = server.processes[0].base_url, server.processes[1].base_url
        ann_session, ann = await server.player(0, "ann")
        ann_too = await WsClient.logged_in(server.processes[1].ws_url, spec, ann_session["accessToken"])
        bob_session, bob = await server.player(1, "bob")

        async def settled(name: str, expected: float, **labels):
            async def check():
                samples = await scrape(zero)
                return samples if value(samples, name, **labels) == expected else None
            return await until(check, f"{name}{labels} == {expected} on process zero")

        # ann has sockets on both processes: one user, counted once; three sockets in all
        await settled("vibemuse_sockets_open", 3, transport="websocket")
        samples = await settled("vibemuse_users_online", 2)
        assert value(await scrape(one), "vibemuse_users_online") == 2  # the same figure from either process

        await acked(ann, "say", {"text": "across the bus"})  # stored on zero, fanned out on one as well
        assert [body for _, body in await texts(bob, 1)] == ["across the bus"]
        assert [body for _, body in await texts(ann_too, 1)] == ["across the bus"]
        await acked(ann, "page", {"to": ["@cat:elsewhere.invalid"], "text": "anyone?"})  # waits in the outbox
        for _ in range(3):  # the third WHO is one too many
            await bob.send_frame("who", {})
        assert (await bob.receive_type("error", timeout=15))["data"]["code"] == "rate_limited"
        muted = False
        for _ in range(6):  # the same line again and again: a warning, then a mute
            await bob.send_frame("say", {"text": "buy gold"})
            while (answer := await bob.receive(timeout=15))["type"] not in ("ack", "error"):
                pass
            if answer["type"] == "error" and answer["data"]["code"] == "muted":
                muted = True
                break
        assert muted

        # a reader on process one that stops reading, while ann talks on process zero
        sleeper_session = await server.api(1).register("sleeper")
        sleeper = await asyncio.to_thread(
            RawWebSocket, "127.0.0.1", server.processes[1].port,
            headers={"Authorization": f"Bearer {sleeper_session['accessToken']}"}, receive_buffer=4096)
        closes = 0.0
        for n in range(3000):
            await acked(ann, "say", {"text": f"{n} " + "x" * 1000})
            if n % 25 == 24 and (closes := value(await scrape(zero), "vibemuse_slow_consumer_closes_total")):
                break
        sleeper.close()
        assert closes == 1  # closed with 4008 on process one, counted in the shared folder

        samples = await settled("vibemuse_federation_queue_depth", 1, destination="elsewhere.invalid")
        assert value(samples, "vibemuse_frames_received_total", type="say") >= 2  # both processes' frames
        assert value(samples, "vibemuse_frames_received_total", type="who") == 3
        assert value(samples, "vibemuse_frames_sent_total", type="message") >= 3
        assert value(samples, "vibemuse_fanout_copies_total") >= 3
        assert value(samples, "vibemuse_fanout_seconds_count") >= 1
        assert value(samples, "vibemuse_ack_latency_seconds_count", type="say") >= 1
        assert value(samples, "vibemuse_database_seconds_count", access="write") >= 1
        assert value(samples, "vibemuse_bus_lag_seconds_count", kind="delivery") >= 1  # one's receipts of zero's
        assert value(samples, "vibemuse_bus_lag_seconds_count", kind="signal") >= 1
        assert value(samples, "vibemuse_refusals_total", code="rate_limited") == 1
        assert value(samples, "vibemuse_refusals_total", code="muted") >= 1
        assert ("vibemuse_outbound_queue_bytes", ()) in samples
        assert value(samples, "vibemuse_federation_oldest_pending_seconds", destination="elsewhere.invalid") >= 0
        assert ("vibemuse_federation_consecutive_failures", (("destination", "elsewhere.invalid"),)) in samples
        assert set(EVERY_METRIC) <= await families(zero)

        # ann's socket on process one goes: she is still online, through process zero
        ann_too.close()
        await settled("vibemuse_sockets_open", 2, transport="websocket")
        assert value(await scrape(zero), "vibemuse_users_online") == 2
        bob.close()
        await settled("vibemuse_users_online", 1)
