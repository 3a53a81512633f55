"""The ``vibemuse`` command, run as a real process."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


from tests.support.client import PASSWORD, WsClient
from vibemuse.storage.schema import head_revision

VIBEMUSE = str(Path(sys.executable).parent / "vibemuse")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def vibemuse(*args: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([VIBEMUSE, *args], input=stdin, capture_output=True, text=True, timeout=timeout)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


class ServerProcess:
    def __init__(self, data_dir: Path, server_name: str, *extra: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [VIBEMUSE, "serve", "--port", str(self.port), "--data-dir", str(data_dir),
             "--server-name", server_name, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                get_json(self.base + "/api/versions")
                return
            except OSError:
                if self.process.poll() is not None:
                    raise AssertionError(f"server exited: {self.process.stdout.read()}")
                time.sleep(0.1)
        raise AssertionError("server did not start")

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=30)
        return self.process.returncode, output


def test_help_reads_well():
    result = vibemuse("--help")
    assert result.returncode == 0
    for word in ("serve", "migrate", "user", "keys", "VIBEMUSE_", "vibemuse.toml"):
        assert word in result.stdout
    serve = vibemuse("serve", "--help")
    for flag in ("--port", "--host", "--data-dir", "--server-name", "--database-url", "--config", "--migrate"):
        assert flag in serve.stdout


def test_bad_configuration_is_reported_with_exit_code_2(tmp_path):
    result = vibemuse("serve", "--data-dir", str(tmp_path), "--server-name", "not a name!")
    assert result.returncode == 2 and "server_name" in result.stderr


def test_migrate_then_create_an_admin(tmp_path, database_url):
    result = vibemuse("migrate", "--data-dir", str(tmp_path), "--database-url", database_url)
    assert result.returncode == 0 and f"empty -> {head_revision()}" in result.stdout, result.stderr
    result = vibemuse("user", "create", "Wizard", "--admin", "--data-dir", str(tmp_path),
                      "--database-url", database_url, "--server-name", "muse.test", stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert "created admin @wizard:muse.test" in result.stdout
    again = vibemuse("user", "create", "wizard", "--data-dir", str(tmp_path), "--database-url", database_url,
                     "--server-name", "muse.test", stdin=PASSWORD + "\n")
    assert again.returncode == 1 and "username_taken" in again.stderr
    weak = vibemuse("user", "create", "Apprentice", "--data-dir", str(tmp_path), "--database-url", database_url,
                    stdin="123\n")
    assert weak.returncode == 1 and "weak_password" in weak.stderr


def test_keys_rotate_keeps_the_old_key_published(tmp_path):
    from vibemuse.federation.server_keys import load_signing_keys

    result = vibemuse("keys", "rotate", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    ring = load_signing_keys(str(tmp_path / "signing.key"))
    assert ring.current.version.startswith("2_") and len(ring.old_verify_keys) == 1
    assert "signing key rotated: ed25519:1_" in result.stdout
    assert vibemuse("keys", "rotate", "--data-dir", str(tmp_path)).returncode == 0
    ring = load_signing_keys(str(tmp_path / "signing.key"))
    assert ring.current.version.startswith("3_") and len(ring.old_verify_keys) == 2


def test_serve_refuses_an_out_of_date_schema(tmp_path):
    assert vibemuse("migrate", "--data-dir", str(tmp_path)).returncode == 0
    import sqlite3

    with sqlite3.connect(tmp_path / "vibemuse.db") as db:
        db.execute("DELETE FROM alembic_version")
    result = vibemuse("serve", "--data-dir", str(tmp_path), "--port", str(free_port()), timeout=30)
    assert result.returncode == 3
    assert "vibemuse migrate" in result.stderr


def test_two_servers_side_by_side_and_graceful_shutdown(tmp_path, spec):
    first = ServerProcess(tmp_path / "one", "one.localhost")
    second = ServerProcess(tmp_path / "two", "two.localhost")
    try:
        assert get_json(first.base + "/api/versions")["server"]["name"] == "one.localhost"
        assert get_json(second.base + "/api/versions")["server"]["name"] == "two.localhost"
        session = post_json(first.base + "/api/auth/register", {"username": "Alice", "password": PASSWORD})
        assert session["user"]["id"] == "@alice:one.localhost"
        for name in ("one", "two"):
            assert (tmp_path / name / "vibemuse.toml").exists()
            assert (tmp_path / name / "vibemuse.db").exists()
            assert (tmp_path / name / "signing.key").stat().st_mode & 0o777 == 0o600
        keys = [get_json(server.base + "/federation/v1/keys") for server in (first, second)]
        assert [body["server_name"] for body in keys] == ["one.localhost", "two.localhost"]
        assert keys[0]["verify_keys"] != keys[1]["verify_keys"]

        async def connect_then_stop() -> int | None:
            client = await WsClient.logged_in(
                first.base.replace("http://", "ws://") + "/api/ws", spec, session["accessToken"]
            )
            first.process.send_signal(signal.SIGTERM)
            code, _ = await client.closed(timeout=20)
            return code

        assert asyncio.run(connect_then_stop()) == 1001
        assert first.process.wait(timeout=30) == 0
    finally:
        for server in (first, second):
            if server.process.poll() is None:
                server.stop()
    code, output = second.stop()
    assert code == 0 and "shut down" in output
