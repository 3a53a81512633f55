"""Several processes of one server when things go wrong: a retry on another process, and a
Redis of the test's own (so that stopping it disturbs nobody else) killed and started again."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest

from tests.federation.test_two_servers import free_port
from tests.support.client import WsClient, acked
from tests.test_scale_out import Processes, texts
from tests.test_resume import last_position


class OwnRedis:
    """A redis-server on a free loopback port, for one test."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = tmp_path / "redis"
        self.dir.mkdir()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        import redis
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=1).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path, bus):  # ``bus``: Redis is there to be used (else skipped or, in CI, failed)
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (.ci/run installs it)")
    redis = OwnRedis(tmp_path)
    redis.start()
    yield redis
    redis.kill()


@pytest.mark.gen_test(timeout=180)
async def test_a_retry_on_another_process_gets_the_first_ack(tmp_path, postgres_url, bus, spec):
    async with Processes(tmp_path, postgres_url, bus, spec) as server:
        session, first = await server.player(0, "ann")
        second = await WsClient.logged_in(server.processes[1].ws_url, spec, session["accessToken"])
        await first.send_frame("say", {"text": "once"}, messageId="retry.1")
        original = await first.receive_type("ack", timeout=15)
        await second.send_frame("say", {"text": "once"}, messageId="retry.1")  # the client's retry, elsewhere
        again = await second.receive_type("ack", timeout=15)
        assert again["data"]["duplicate"] is True
        assert again["data"]["eventId"] == original["data"]["eventId"]
        assert again["data"]["streamPosition"] == original["data"]["streamPosition"]


@pytest.mark.gen_test(timeout=240)
async def test_redis_killed_and_back_sockets_resume_and_nothing_is_lost(tmp_path, postgres_url, own_redis, spec):
    bus = {"bus_url": own_redis.url, "bus_channel": "vmtest:own"}
    async with Processes(tmp_path, postgres_url, bus, spec) as server:
        ann_session, ann = await server.player(0, "ann")
        bob_session, bob = await server.player(1, "bob")
        await acked(ann, "say", {"text": "before"})
        assert [body for _, body in await texts(bob, 1)] == ["before"]
        since = last_position(bob)

        own_redis.kill()
        await acked(ann, "say", {"text": "while redis is away"})  # stored and acked: the database is up
        await asyncio.sleep(1)
        own_redis.start()
        # bob's process lost its subscription: it may have missed frames, so bob's socket is told to resume
        code, _ = await bob.closed(timeout=60)
        assert code == 4010
        again = await WsClient.open(server.processes[1].ws_url + f"?since={since}", spec,
                                    token=bob_session["accessToken"])
        replayed = []
        while True:
            frame = await again.receive(timeout=15)
            if frame["type"] == "resumed":
                break
            if frame["type"] == "message":
                replayed.append(frame["data"]["event"]["content"]["body"])
        assert replayed == ["while redis is away"]  # what he missed, once
        assert (await ann.closed(timeout=60))[0] == 4010  # so did ann's (her process lost it too)
        ann = await WsClient.logged_in(server.processes[0].ws_url, spec, ann_session["accessToken"])
        await asyncio.sleep(1)  # the publishers are back too
        await acked(ann, "say", {"text": "and after"})
        assert [body for _, body in await texts(again, 1)] == ["and after"]
