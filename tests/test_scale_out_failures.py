"""Several processes of one server when things go wrong: a retry on another process, a Redis
of the test's own (so that stopping it disturbs nobody else) killed and started again, and
PostgreSQL cut off behind a proxy and restored."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest
from sqlalchemy.engine import make_url
from tornado.httpclient import AsyncHTTPClient

from tests.federation.test_two_servers import free_port
from tests.support.client import PASSWORD, WsClient, acked, refused_handshake
from tests.support.tcp_proxy import TcpProxy
from tests.test_scale_out import Processes, resumed, texts
from tests.test_resume import last_position
from vibemuse.protocol import content as compose
from vibemuse.protocol.events import build_event
from vibemuse.protocol.signing import generate_signing_key
from vibemuse.storage import Storage, create_database_engine


async def talking(server: Processes) -> tuple[tuple[dict, WsClient], tuple[dict, WsClient], int]:
    """Ann on process zero, Bob on process one, one line between them; and where Bob stands."""
    ann_session, ann = await server.player(0, "ann")
    bob_session, bob = await server.player(1, "bob")
    await acked(ann, "say", {"text": "before"})
    assert [body for _, body in await texts(bob, 1)] == ["before"]
    return (ann_session, ann), (bob_session, bob), last_position(bob)


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
        (ann_session, ann), (bob_session, bob), since = await talking(server)

        own_redis.kill()
        await acked(ann, "say", {"text": "while redis is away"})  # stored and acked: the database is up
        await asyncio.sleep(1)
        own_redis.start()
        # bob's process lost its subscription: it may have missed frames, so bob's socket is told to resume
        code, _ = await bob.closed(timeout=60)
        assert code == 4012
        again, replayed = await resumed(server, 1, bob_session, since)
        assert replayed == ["while redis is away"]  # what he missed, once
        assert (await ann.closed(timeout=60))[0] == 4012  # so did ann's (her process lost it too)
        ann = await WsClient.logged_in(server.processes[0].ws_url, spec, ann_session["accessToken"])
        await asyncio.sleep(1)  # the publishers are back too
        await acked(ann, "say", {"text": "and after"})
        assert [body for _, body in await texts(again, 1)] == ["and after"]


class Resuming:
    """A client as the spec asks one to be (protocol.md 5.6, 5.7): when its socket closes it
    reconnects (here: to process zero) with ``since`` and sends again, with the same
    ``messageId``, what was not acked. ``messages`` is every message it got, live or replayed."""

    def __init__(self, server: Processes, session: dict, socket: WsClient):
        self.server, self.session, self.socket = server, session, socket
        self.messages: list[tuple[int, str]] = []
        self.last = last_position(socket)

    async def _frame(self) -> dict | None:
        frame = await self.socket.receive(timeout=30)
        if frame is not None and frame["type"] == "message":
            position = frame["data"]["event"]["unsigned"]["stream_position"]
            self.messages.append((position, frame["data"]["event"]["content"]["body"]))
            self.last = max(self.last, position)
        return frame

    async def reopen(self) -> None:
        self.socket = await WsClient.open(self.server.processes[0].ws_url + f"?since={self.last}",
                                          self.server.spec, token=self.session["accessToken"])
        while (frame := await self._frame()) is not None and frame["type"] not in ("resumed", "resume_gap"):
            pass
        assert frame is not None and frame["type"] == "resumed", frame

    async def say(self, message_id: str, text: str) -> str:
        """Send until acked (again after each reconnection); the event id of the ack."""
        while True:
            try:
                await self.socket.send_frame("say", {"text": text}, messageId=message_id)
            except Exception:  # the socket is gone already
                await self.reopen()
                continue
            while (frame := await self._frame()) is not None:
                if frame["type"] == "ack" and frame["data"]["inReplyTo"] == message_id:
                    return frame["data"]["eventId"]
            await self.reopen()

    async def read_until(self, count: int) -> None:
        while len(self.messages) < count:
            if await self._frame() is None:
                await self.reopen()


@pytest.mark.gen_test(timeout=240)
async def test_a_process_killed_under_load_loses_nothing_acked_and_doubles_nothing(tmp_path, postgres_url, bus, spec):
    async with Processes(tmp_path, postgres_url, bus, spec) as server:
        lou_session, lou_socket = await server.player(0, "lou")  # listens on the process that stays
        sam_session, sam_socket = await server.player(1, "sam")  # talks through the one that dies
        lou, sam = Resuming(server, lou_session, lou_socket), Resuming(server, sam_session, sam_socket)
        total = 40
        for n in range(13):
            await sam.say(f"sam.{n}", f"line {n}")
        for n in (13, 14):  # sent, the ack never read: stored or not, as the kill falls
            await sam.socket.send_frame("say", {"text": f"line {n}"}, messageId=f"sam.{n}")
        server.processes[1].kill()  # kill -9 with frames in flight
        for n in range(13, total):  # sam's client goes on through process zero, 13 and 14 again
            await sam.say(f"sam.{n}", f"line {n}")
        await lou.read_until(total)
        await lou.socket.quiet(0.7)
        bodies = [body for _, body in lou.messages]
        positions = [position for position, _ in lou.messages]
        assert sorted(bodies, key=lambda b: int(b.split()[1])) == [f"line {n}" for n in range(total)]
        assert len(bodies) == total and positions == sorted(positions)  # once each, in order, live or resumed


@pytest.mark.gen_test(timeout=180)
async def test_an_append_lost_on_the_bus_is_read_from_the_database_and_its_sockets_resume(
        tmp_path, postgres_url, bus, spec):
    async with Processes(tmp_path, postgres_url, bus, spec) as server:
        (ann_session, ann), (bob_session, bob), since = await talking(server)
        room = bob.roster["roomId"]
        # a say stored by a process that died between its commit and its publish: no frame ever comes
        storage = Storage(create_database_engine(postgres_url, pool_size=1), threads=1)
        try:
            lost = build_event(event_type="vm.room.message", sender="@ann:scale.test", origin="scale.test",
                               origin_server_ts=1, room_id=room,
                               content=compose.room_message("say", "ann", "lost on the way", 4000),
                               signing_key=generate_signing_key("x1"))
            await storage.append_events([lost], transaction=None, now_ms=1)
        finally:
            storage.close()
        await acked(ann, "say", {"text": "after the gap"})
        # both processes find the gap in the chain, read it from the database, and the sockets of
        # the room are told to resume
        assert (await bob.closed(timeout=30))[0] == 4012
        # closed before any frame after the gap reached him: resuming from the last position he saw
        # (as the spec tells a client to) he gets the lost line too
        assert last_position(bob) == since
        again, replayed = await resumed(server, 1, bob_session, last_position(bob))
        assert replayed == ["lost on the way", "after the gap"]
        assert [f for f in await again.quiet(0.7) if f["type"] == "message"] == []  # and not again, live


@pytest.mark.gen_test(timeout=240)
async def test_postgresql_away_requests_get_unavailable_and_the_server_recovers_by_itself(
        tmp_path, postgres_url, bus, spec):
    """PostgreSQL behind a proxy that the test cuts (the machine's own PostgreSQL is never touched):
    HTTP, the handshake and a frame are refused with 503 ``unavailable`` meanwhile, open sockets stay
    open, and once it is back the processes serve again with nothing acked lost or doubled."""
    url = make_url(postgres_url)
    proxy = await TcpProxy(url.host or "127.0.0.1", url.port or 5432).restore()
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        async with Processes(tmp_path, through, bus, spec) as server:
            (ann_session, ann), (bob_session, bob), since = await talking(server)
            await acked(ann, "say", {"text": "acked before the cut"})

            await proxy.cut()
            status, body = await server.api(1).call("GET", "/api/rooms", token=bob_session["accessToken"])
            assert (status, body["error"]["code"]) == (503, "unavailable")
            assert body["error"]["details"] == {"failing": ["database"]}
            answer = await AsyncHTTPClient().fetch(server.processes[0].base_url + "/api/rooms", raise_error=False,
                                                   headers={"Authorization": "Bearer " + ann_session["accessToken"]})
            assert answer.code == 503 and int(answer.headers["Retry-After"]) >= 1
            status, body = await refused_handshake(server.processes[1].ws_url, spec, token=ann_session["accessToken"])
            assert (status, body["error"]["code"]) == (503, "unavailable")  # a token cannot be checked
            status, body = await server.api(0).call("POST", "/api/auth/login", {"username": "ann", "password": PASSWORD})
            assert (status, body["error"]["code"]) == (503, "unavailable")  # not a wrong password
            await ann.send_frame("say", {"text": "said while the database is away"}, messageId="away.1")
            error = await ann.receive_type("error", timeout=30)
            assert (error["data"]["inReplyTo"], error["data"]["code"]) == ("away.1", "unavailable")
            status, body = await server.api(0).call("GET", "/ready")
            assert (status, body["error"]["code"]) == (503, "not_ready")

            await proxy.restore()
            # the sockets stayed open; the client sends its refused frame again, with its messageId
            await ann.send_frame("say", {"text": "said while the database is away"}, messageId="away.1")
            ack = await ann.receive_type("ack", timeout=30)
            assert ack["data"]["inReplyTo"] == "away.1" and ack["data"]["duplicate"] is False
            assert [body for _, body in await texts(bob, 2)] == ["acked before the cut",
                                                                 "said while the database is away"]
            status, _ = await server.api(1).call("GET", "/api/rooms", token=bob_session["accessToken"])
            assert status == 200
            again, replayed = await resumed(server, 1, bob_session, since)  # a new socket, from before the cut
            assert replayed == ["acked before the cut", "said while the database is away"]  # once each
    finally:
        await proxy.cut()
