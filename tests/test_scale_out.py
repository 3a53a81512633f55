"""One server as several processes (README, "Scale-out"): real ``vibemuse serve`` processes
on one PostgreSQL schema and one Redis bus, players on real WebSockets to different ones.

Two processes on two ports (so that the test knows which socket is on which), then
``--workers`` on one port: the supervisor, a worker killed and started again, and the
settings it refuses."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import REDIS_URL
from vibemuse.config import DEFAULT_RATE_LIMITS
from vibemuse.storage import Storage, create_database_engine
from tests.federation.test_two_servers import free_port
from tests.support.client import Api, WsClient, acked, refused_handshake
from tests.support.processes import VIBEMUSE, ServerProcess
from tests.test_resume import last_position

NAME = "scale.test"


class Processes:
    """``count`` processes of one server (one name, data folder, database and bus)."""

    def __init__(self, tmp_path, database_url: str, bus: dict[str, str], spec, count: int = 2,
                 settings: dict[str, str] | None = None):
        self.spec = spec
        self.processes = [ServerProcess(NAME, tmp_path / "data", free_port(), database_url=database_url, peers={},
                                        settings={**bus, "federation": "false", **(settings or {})})
                          for _ in range(count)]

    async def __aenter__(self) -> "Processes":
        for process in self.processes:  # one at a time: the first makes the schema and the key
            await process.start()
        return self

    async def __aexit__(self, *exc) -> None:
        for process in self.processes:
            process.stop()

    def api(self, index: int) -> Api:
        return Api(self.processes[index].base_url, self.spec)

    async def player(self, index: int, name: str) -> tuple[dict, WsClient]:
        session = await self.api(index).register(name)
        return session, await WsClient.logged_in(self.processes[index].ws_url, self.spec, session["accessToken"])


async def resumed(server: Processes, index: int, session: dict, since: int) -> tuple[WsClient, list[str]]:
    """A socket resuming from ``since`` on a process, and the bodies of the messages it replayed."""
    socket = await WsClient.open(server.processes[index].ws_url + f"?since={since}", server.spec,
                                 token=session["accessToken"])
    replayed = []
    while (frame := await socket.receive(timeout=15))["type"] != "resumed":
        if frame["type"] == "message":
            replayed.append(frame["data"]["event"]["content"]["body"])
    return socket, replayed


async def texts(socket: WsClient, count: int, frame_type: str = "message") -> list[tuple[int, str]]:
    """(position, body) of the next ``count`` frames of ``frame_type``."""
    found = []
    for _ in range(count):
        event = (await socket.receive_type(frame_type, timeout=15))["data"]["event"]
        found.append((event["unsigned"]["stream_position"], event["content"]["body"]))
    return found


@pytest.mark.gen_test(timeout=180)
async def test_players_on_two_processes_talk_in_one_order(tmp_path, postgres_url, bus, spec):
    async with Processes(tmp_path, postgres_url, bus, spec) as server:
        (_, ann), (_, bob) = await server.player(0, "ann"), await server.player(1, "bob")
        (_, cat), (_, dan) = await server.player(1, "cat"), await server.player(0, "dan")
        await acked(ann, "say", {"text": "hello from process one"})
        assert [body for _, body in await texts(bob, 1)] == ["hello from process one"]
        await acked(bob, "say", {"text": "and back from two"})
        assert [body for _, body in await texts(ann, 2)] == ["hello from process one", "and back from two"]

        async def talk(socket: WsClient, who: str) -> None:
            for n in range(15):
                await socket.send_frame("say", {"text": f"{who} {n}"})
        await asyncio.gather(talk(ann, "ann"), talk(bob, "bob"))  # two writers at once, on two processes
        for socket in (ann, bob):
            for _ in range(15):
                await socket.receive_type("ack", timeout=15)
        heard = {name: await texts(socket, 32) for name, socket in (("cat", cat), ("dan", dan))}
        for name, got in heard.items():
            positions = [position for position, _ in got]
            assert positions == sorted(positions) and len(set(positions)) == 32, name  # in order, once each
        assert heard["cat"] == heard["dan"]  # the same stream on both processes
        assert sorted(body for _, body in heard["cat"][2:]) == sorted(
            f"{who} {n}" for who in ("ann", "bob") for n in range(15))

        # ephemeral frames cross too: ann's typing on process zero reaches bob on process one
        await ann.send_frame("typing", {"typing": True})
        typing = await bob.receive_type("typing", timeout=15)
        assert (typing["data"]["userId"], typing["data"]["typing"]) == ("@ann:scale.test", True)
        # and a page's receipt: eve, offline, connects to process one; ann hears it on process zero
        eve = await server.api(1).register("eve")
        ack = await acked(ann, "page", {"to": ["eve"], "text": "when you are back"})
        assert ack["data"]["offline"] == ["@eve:scale.test"]
        eve_socket = await WsClient.logged_in(server.processes[1].ws_url, spec, eve["accessToken"])
        assert [body for _, body in await texts(eve_socket, 1)] == ["when you are back"]
        receipt = await ann.receive_type("page_receipt", timeout=15)
        assert receipt["data"]["event"]["content"]["relates_to"] == ack["data"]["eventId"]



@pytest.mark.gen_test(timeout=180)
async def test_channels_logout_and_resume_reach_across_processes(tmp_path, postgres_url, bus, spec):
    async with Processes(tmp_path, postgres_url, bus, spec) as server:
        ann_session, ann = await server.player(0, "ann")
        bob_session, bob = await server.player(1, "bob")
        status, _ = await server.api(0).call("POST", "/api/communication/channels", {"name": "Public"},
                                             token=ann_session["accessToken"])
        assert status == 201
        await acked(bob, "join_channel", {"channelId": "public"})
        await acked(ann, "channel", {"channelId": "public", "text": "on the line"})
        assert [body for _, body in await texts(bob, 1, "channel_message")] == ["on the line"]

        # bob resumes on process zero from before what ann said on it
        since = last_position(bob)
        await acked(ann, "say", {"text": "while bob moves"})
        again, replayed = await resumed(server, 0, bob_session, since)
        assert "while bob moves" in replayed

        # a block set on process one holds on process zero at once
        await acked(bob, "block", {"user": "ann", "blocked": True})
        refused_page = await ann.send_frame("page", {"to": ["bob"], "text": "let me in"})
        error = await ann.receive_type("error", timeout=15)
        assert error["data"]["inReplyTo"] == refused_page and error["data"]["code"] == "not_accepting_pages"

        # logging out on process zero closes bob's sockets on both processes
        status, _ = await server.api(0).call("POST", "/api/auth/logout", token=bob_session["accessToken"])
        assert status in (200, 204)
        for socket in (bob, again):
            code, _ = await socket.closed(timeout=15)
            assert code == 4003


def test_workers_share_one_port_and_a_killed_one_comes_back(tmp_path, postgres_url, bus):
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("VIBEMUSE_")}
    env.update({"VIBEMUSE_DATABASE_URL": postgres_url, "VIBEMUSE_BUS_URL": bus["bus_url"],
                "VIBEMUSE_BUS_CHANNEL": bus["bus_channel"], "VIBEMUSE_FEDERATION": "false"})
    log_path = tmp_path / "workers.log"
    command = [VIBEMUSE, "serve", "--workers", "2", "--port", str(port), "--data-dir", str(tmp_path / "data"),
               "--server-name", NAME, "--migrate"]
    with log_path.open("wb") as log:
        parent = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        workers = _wait_for(lambda: _worker_pids(log_path, 2), "two workers started", log_path)
        _wait_for(lambda: _answers(port), "the port answers", log_path)
        os.kill(workers[0], signal.SIGKILL)
        _wait_for(lambda: _answers(port), "the other worker serves on", log_path)  # the killed one's queue resets
        _wait_for(lambda: len(_worker_pids(log_path, 3) or []) == 3, "the killed worker started again", log_path)
        _wait_for(lambda: _answers(port), "the port answers", log_path)
        parent.send_signal(signal.SIGHUP)  # rotated keys: passed to the workers, nobody stops
        _wait_for(lambda: "signing key now" in log_path.read_text(errors="replace"), "a worker reloaded", log_path)
        time.sleep(0.5)
        assert parent.poll() is None and _answers(port)
        assert "(signal 1)" not in log_path.read_text(errors="replace")  # no worker died of the SIGHUP
    finally:
        parent.send_signal(signal.SIGTERM)
        code = parent.wait(timeout=30)
    assert code == 0
    assert all(not _alive(pid) for pid in _worker_pids(log_path, 3))  # the workers ended with the parent


@pytest.mark.parametrize("settings, message", [
    ({"VIBEMUSE_WORKERS": "2"}, "several processes need a bus"),
    ({"VIBEMUSE_BUS_URL": REDIS_URL}, "not SQLite"),
])
def test_settings_that_cannot_work_are_refused(tmp_path, settings, message):
    env = {key: value for key, value in os.environ.items() if not key.startswith("VIBEMUSE_")}
    result = subprocess.run([VIBEMUSE, "serve", "--data-dir", str(tmp_path), "--port", str(free_port())],
                            env={**env, **settings}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and message in result.stderr


def _worker_pids(log_path, count: int) -> list[int] | None:
    pids = [int(line.rsplit("pid ", 1)[1].rstrip(")\n")) for line in log_path.read_text(errors="replace").splitlines()
            if "started (pid" in line]
    return pids if len(pids) >= count else None


def _answers(port: int) -> bool:
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/versions", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(condition, what: str, log_path, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}\n{log_path.read_text(errors='replace')[-3000:]}")


@pytest.mark.gen_test(timeout=240)
async def test_presence_rosters_who_and_pages_cover_every_process(tmp_path, postgres_url, bus, spec):
    async with Processes(tmp_path, postgres_url, bus, spec) as server:
        ann_session, ann = await server.player(0, "ann")
        _, bob = await server.player(1, "bob")  # bob arrives after ann, through the other process
        assert "@ann:scale.test" in [m["userId"] for m in bob.roster["data"]["members"]]
        who = await acked_frame(bob, "who")
        assert {"@ann:scale.test", "@bob:scale.test"} <= {u["userId"] for u in who["data"]["users"]}

        # a page to a player connected to the other process is delivered now, not held
        ack = await acked(ann, "page", {"to": ["bob"], "text": "psst"})
        assert ack["data"].get("offline", []) == []
        assert [body for _, body in await texts(bob, 1)] == ["psst"]

        # carol's socket is on process one; she joins a channel over HTTP on process zero and hears it
        carol_session, carol = await server.player(1, "carol")
        status, _ = await server.api(0).call("POST", "/api/communication/channels", {"name": "Public"},
                                             token=ann_session["accessToken"])
        status, _ = await server.api(0).call("POST", "/api/communication/channels", {"name": "Public"},
                                             token=carol_session["accessToken"])
        assert status == 200
        await acked(ann, "channel", {"channelId": "public", "text": "carol, you there?"})
        assert [body for _, body in await texts(carol, 1, "channel_message")] == ["carol, you there?"]
        # kicked on process zero: her sockets on process one hear the kick, then nothing more
        await acked(ann, "channel_moderate", {"channelId": "public", "action": "kick", "user": "carol"})
        while (await carol.receive_type("channel_notice", timeout=15))["data"]["event"]["content"].get(
                "membership") != "kick":
            pass
        await acked(ann, "channel", {"channelId": "public", "text": "gone?"})
        assert [f for f in await carol.quiet(0.5) if f["type"] == "channel_message"] == []

        # process one killed: its players go offline for process zero within the silence limit
        server.processes[1].kill()
        deadline = asyncio.get_running_loop().time() + 40
        while True:
            who = await acked_frame(ann, "who")
            if "@bob:scale.test" not in {u["userId"] for u in who["data"]["users"]}:
                break
            assert asyncio.get_running_loop().time() < deadline, "bob still listed after process one died"
            await asyncio.sleep(1)
        offline = [f for f in ann.received if f["type"] == "presence" and f["data"]["userId"] == "@bob:scale.test"
                   and f["data"]["status"] == "offline"]
        assert offline  # ann, in bob's room, was told


async def acked_frame(socket: WsClient, frame_type: str) -> dict:
    """Send a query frame and return its answer (a frame of the same type)."""
    await socket.send_frame(frame_type, {})
    return await socket.receive_type(frame_type, timeout=15)


@pytest.mark.gen_test(timeout=180)
async def test_a_user_has_one_allowance_and_one_mute_whatever_process_they_reach(tmp_path, postgres_url, bus, spec):
    limits = {action: [1e9, 1e9] for action in DEFAULT_RATE_LIMITS}
    limits["speech"] = [4, 0.01]  # four says, then one a hundred seconds
    settings = {"rate_limits": json.dumps(limits), "spam_repeat_count": "2"}
    async with Processes(tmp_path, postgres_url, bus, spec, settings=settings) as server:
        session, here = await server.player(0, "ann")
        there = await WsClient.logged_in(server.processes[1].ws_url, spec, session["accessToken"])
        for n in range(4):
            await acked(here, "say", {"text": f"line {n}"})
        await asyncio.sleep(0.3)  # the tokens taken on process zero reach process one
        message_id = await there.send_frame("say", {"text": "one more, elsewhere"})
        error = await there.receive_type("error", timeout=15)
        assert (error["data"]["inReplyTo"], error["data"]["code"]) == (message_id, "rate_limited")

    async with Processes(tmp_path / "second", postgres_url, {**bus, "bus_channel": bus["bus_channel"] + ".2"},
                         spec, settings={"spam_repeat_count": "2"}) as server:
        session, here = await server.player(0, "bob")
        there = await WsClient.logged_in(server.processes[1].ws_url, spec, session["accessToken"])
        refusal = None
        for _ in range(6):  # the same line again and again: a warning, then a mute
            await here.send_frame("say", {"text": "buy gold"})
            answer = await _answer(here)
            if answer["type"] == "error" and answer["data"]["code"] == "muted":
                refusal = answer
                break
        assert refusal is not None  # muted on process zero
        await asyncio.sleep(0.3)
        await there.send_frame("say", {"text": "something else entirely"})
        answer = await _answer(there)
        assert answer["type"] == "error" and answer["data"]["code"] == "muted"  # and on process one


async def _answer(socket: WsClient) -> dict:
    """The next ack or error."""
    while True:
        frame = await socket.receive(timeout=15)
        assert frame is not None
        if frame["type"] in ("ack", "error"):
            return frame


@pytest.mark.gen_test(timeout=180)
async def test_the_per_user_socket_cap_counts_every_process_and_ready_checks_the_bus(
        tmp_path, postgres_url, bus, spec):
    async with Processes(tmp_path, postgres_url, bus, spec, settings={"max_connections_per_user": "2"}) as server:
        session, first = await server.player(0, "ann")
        second = await WsClient.logged_in(server.processes[1].ws_url, spec, session["accessToken"])
        await asyncio.sleep(0.3)  # process zero hears of the socket on process one
        status, body = await refused_handshake(server.processes[0].ws_url, spec, token=session["accessToken"])
        assert (status, body["error"]["code"]) == (429, "too_many_connections")  # two already, one on each
        second.close()
        await asyncio.sleep(0.3)  # one fewer on process one: there is room again on process zero
        fourth = await WsClient.logged_in(server.processes[0].ws_url, spec, session["accessToken"])
        assert fourth.welcome["type"] == "welcome"

        status, ready = await server.api(1).call("GET", "/ready", schema="health")
        assert status == 200 and ready["checks"] == {"database": "ok", "bus": "ok"}


async def made_admin(database_url: str, user_id: str) -> None:
    storage = Storage(create_database_engine(database_url, pool_size=1), threads=1)
    try:
        await storage.set_role(user_id, "admin")
    finally:
        storage.close()


async def until(condition, what: str, timeout: float = 30.0):
    """Ask ``condition`` (a coroutine function) again and again until it answers something true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await condition()):
        assert asyncio.get_running_loop().time() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.1)
    return result


@pytest.mark.gen_test(timeout=180)
async def test_an_admins_kick_and_role_change_reach_every_process(tmp_path, postgres_url, bus, spec):
    async with Processes(tmp_path, postgres_url, bus, spec) as server:
        root_session, _ = await server.player(0, "root")
        await made_admin(postgres_url, root_session["user"]["id"])
        mira_session, mira = await server.player(1, "mira")  # her socket is on process one
        refusal = await mira.send_frame("wall", {"text": "hear ye"})
        assert (await mira.receive_type("error", timeout=15))["data"]["inReplyTo"] == refusal  # a player may not
        path = "/api/admin/users/%40mira%3Ascale.test"
        status, _ = await server.api(0).call("PUT", path + "/role", {"role": "admin"},
                                             token=root_session["accessToken"])
        assert status == 200
        await asyncio.sleep(0.3)
        await acked(mira, "wall", {"text": "hear ye"})  # her socket on process one acts as an admin now
        status, kicked = await server.api(0).call("POST", path + "/kick", {"reason": "cool off"},
                                                  token=root_session["accessToken"])
        assert status == 200
        code, reason = await mira.closed(timeout=15)
        assert (code, reason) == (4010, "cool off")


@pytest.mark.gen_test(timeout=180)
async def test_admin_online_lists_the_users_of_every_process_with_their_idle_times(tmp_path, postgres_url, bus,
                                                                                   spec):
    from tests.test_operating_processes import admin

    async with Processes(tmp_path, postgres_url, bus, spec) as server:
        root_session, root = await server.player(0, "root")
        await made_admin(postgres_url, root_session["user"]["id"])
        _, mira = await server.player(1, "mira")  # her socket is on process one
        mira_socket = mira.welcome["data"]["connectionId"]

        async def listing(index: int) -> dict[str, dict]:
            status, body = await server.api(index).call("GET", "/api/admin/sessions",
                                                        token=root_session["accessToken"], schema="sessions")
            assert status == 200 and body["total"] == len(body["users"])
            return {user["id"]: user for user in body["users"]}

        async def both_listed() -> dict[str, dict] | None:
            users = await listing(0)
            return users if {"@root:scale.test", "@mira:scale.test"} <= set(users) else None
        here = await until(both_listed, "process zero lists mira, whose socket is on process one")
        there = await listing(1)
        mira_here, mira_there = here["@mira:scale.test"], there["@mira:scale.test"]
        assert mira_here["sockets"] == mira_there["sockets"]  # the same socket, seen from both processes
        [socket] = mira_here["sockets"]
        assert (socket["connectionId"], socket["transport"], socket["address"]) == (mira_socket, "websocket",
                                                                                   "127.0.0.1")
        assert socket["process"] != here["@root:scale.test"]["sockets"][0]["process"]  # one process each
        assert mira_here["location"] == mira.roster["roomId"] and mira_here["status"] == "online"

        # her idle time, seen from process zero, follows her input on process one
        async def idle_for_a_while() -> bool:
            return (await listing(0))["@mira:scale.test"]["idleMs"] >= 3000
        await until(idle_for_a_while, "mira idle for 3 s as process zero sees her")
        await acked(mira, "say", {"text": "still here"})

        async def back() -> bool:
            return (await listing(0))["@mira:scale.test"]["idleMs"] < 3000
        await until(back, "process zero learns of mira's input on process one", timeout=20)

        online = await admin("--url", server.processes[0].base_url, "--token", root_session["accessToken"], "online")
        assert online.returncode == 0, online.stderr
        assert "2 online" in online.stdout
        assert f"websocket {mira_socket} from 127.0.0.1 on {socket['process']}" in online.stdout
