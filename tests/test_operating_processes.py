"""Operating a real ``vibemuse serve`` process: JSON logs, multiprocess metrics, ``vibemuse admin``.

The server runs as an operator runs it (settings in ``VIBEMUSE_*``), and the
admin commands run as separate processes against it, as an operator types them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import AsyncHTTPClient

from tests.support.client import PASSWORD, Api, WsClient, acked
from tests.support.processes import VIBEMUSE, ServerProcess
from tests.test_cli import free_port


async def started(tmp_path: Path, **settings) -> ServerProcess:
    server = ServerProcess("ops.localhost", tmp_path / "data", free_port(),
                           database_url=f"sqlite:///{tmp_path}/vibemuse.db", peers={}, settings=settings)
    await server.start()
    return server


async def admin(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return await asyncio.to_thread(subprocess.run, [VIBEMUSE, "admin", *args], input=stdin, capture_output=True,
                                   text=True, timeout=60)


@pytest.mark.gen_test(timeout=90)
async def test_json_logs_carry_the_connection_and_request_ids_and_metrics_add_up_in_a_folder(tmp_path, spec):
    metrics_dir = tmp_path / "metrics"
    server = await started(tmp_path, log_format="json", metrics_dir=str(metrics_dir))
    try:
        api = Api(server.base_url, spec)
        alice = await api.register("Alice")
        socket = await WsClient.logged_in(server.ws_url, spec, alice["accessToken"])
        connection_id = socket.of_type("welcome")[0]["data"]["connectionId"]
        await acked(socket, "say", {"text": "Hello, logs."})
        response = await AsyncHTTPClient().fetch(server.base_url + "/metrics")
        request_id = response.headers.get("X-Request-Id") or ""
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(response.body.decode()) for s in family.samples}
        socket.close()
    finally:
        server.stop()
    assert samples[("vibemuse_frames_received_total", (("type", "say"),))] == 1
    assert samples[("vibemuse_sockets_open", (("transport", "websocket"),))] == 1
    assert list(metrics_dir.glob("*.db")), "multiprocess mode writes its figures to the folder"

    lines = [line for line in server.log_tail(10**6).splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "message"} <= set(record) for record in records)
    mine = [record for record in records if record.get("connectionId") == connection_id]
    assert any(record["logger"] == "tornado.access" and record.get("path") == "/api/ws" for record in mine), mine
    scraped = [record for record in records if record.get("requestId") == request_id]
    assert request_id.startswith("r") and scraped and scraped[0]["path"] == "/metrics"
    assert scraped[0]["status"] == 200 and scraped[0]["method"] == "GET" and "durationMs" in scraped[0]


@pytest.mark.gen_test(timeout=120)
async def test_the_admin_commands_act_on_the_running_server(tmp_path, spec):
    data = tmp_path / "data"
    server = await started(tmp_path)  # its first start writes data/vibemuse.toml: where it listens
    try:
        made = await asyncio.to_thread(subprocess.run, [
            VIBEMUSE, "user", "create", "root", "--admin", "--data-dir", str(data), "--database-url",
            f"sqlite:///{tmp_path}/vibemuse.db", "--server-name", "ops.localhost"],
            input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        api = Api(server.base_url, spec)
        status, root = await api.call("POST", "/api/auth/login", {"username": "root", "password": PASSWORD})
        assert status == 200
        alice = await api.register("Alice")
        socket = await WsClient.logged_in(server.ws_url, spec, alice["accessToken"])
        connection_id = socket.of_type("welcome")[0]["data"]["connectionId"]
        as_root = ["--url", server.base_url, "--token", root["accessToken"]]

        online = await admin(*as_root, "online")
        assert online.returncode == 0, online.stderr
        assert "1 online" in online.stdout and "@alice:ops.localhost" in online.stdout
        assert f"websocket {connection_id} from 127.0.0.1" in online.stdout

        room = await admin(*as_root, "room", "town square")
        assert room.returncode == 0 and "Town Square" in room.stdout and "Alice (@alice:ops.localhost)" in room.stdout

        role = await admin(*as_root, "role", "alice", "builder")
        assert role.returncode == 0 and "@alice:ops.localhost is now builder (1 open session(s))" in role.stdout

        kick = await admin(*as_root, "kick", "alice", "--reason", "cool off")
        assert kick.returncode == 0 and "1 session(s) closed" in kick.stdout
        assert await socket.closed() == (4010, "cool off")

        ban = await admin(*as_root, "--json", "ban", "@alice:ops.localhost", "--reason", "spam")
        assert ban.returncode == 0 and json.loads(ban.stdout)["banned"] is True
        status, body = await api.call("POST", "/api/auth/login", {"username": "alice", "password": PASSWORD})
        assert status == 403 and body["error"]["code"] == "account_banned"
        unban = await admin(*as_root, "unban", "alice")
        assert unban.returncode == 0 and "is not banned" in unban.stdout
        status, _ = await api.call("POST", "/api/auth/login", {"username": "alice", "password": PASSWORD})
        assert status == 200

        # The server's own configuration says where it is; a wrong token is the server's refusal.
        wrong = await admin("--data-dir", str(data), "--token", "vmt_" + "x" * 40, "online")
        assert wrong.returncode == 1 and "(invalid_token)" in wrong.stderr
        nobody = await admin(*as_root, "kick", "nobody")
        assert nobody.returncode == 1 and "(unknown_user)" in nobody.stderr
    finally:
        server.stop()
    gone = await admin("--url", server.base_url, "--token", root["accessToken"], "online")
    assert gone.returncode == 1 and "cannot reach the server" in gone.stderr
