"""``vibemuse serve`` as a real process, for tests that kill a server and start it again.

A ``ServerProcess`` has a fixed loopback port and data folder, so that it can
be killed (SIGKILL: no shutdown, no flush, sockets dropped by the kernel) and
started again on the same folder, database and port, where its peers (named
in ``federation_peers``) still look for it. Settings go in through the
``VIBEMUSE_*`` environment, as an operator would set them; inherited
``VIBEMUSE_*`` variables are dropped so that the test decides them all. The
server's log is ``<data folder>/server.log``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from vibemuse.config import DEFAULT_RATE_LIMITS

VIBEMUSE = str(Path(sys.executable).parent / "vibemuse")

# One test client pages fast from one address: the abuse limits would refuse the test itself.
LIFTED_LIMITS = {
    "VIBEMUSE_RATE_LIMITS": json.dumps({action: [1e9, 1e9] for action in DEFAULT_RATE_LIMITS}),
    "VIBEMUSE_SPAM_FLOOD_COUNT": "1000000",
    "VIBEMUSE_SPAM_REPEAT_COUNT": "1000000",
}


class ServerProcess:
    def __init__(self, name: str, data_dir: Path, port: int, *, database_url: str, peers: dict[str, str],
                 settings: dict[str, Any] | None = None):
        self.name, self.data_dir, self.port = name, data_dir, port
        env = {key: value for key, value in os.environ.items() if not key.startswith("VIBEMUSE_")}
        env.update(LIFTED_LIMITS, VIBEMUSE_DATABASE_URL=database_url, VIBEMUSE_FEDERATION_PEERS=json.dumps(peers),
                   VIBEMUSE_LOG_LEVEL="info")
        env.update({"VIBEMUSE_" + key.upper(): str(value) for key, value in (settings or {}).items()})
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/ws"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it accepts connections (it exits: an AssertionError with its log)."""
        assert not self.running, f"{self.name} is already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [VIBEMUSE, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
                   "--server-name", self.name, "--migrate"]
        with (self.data_dir / "server.log").open("ab") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}: {self.log_tail()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} did not listen within {timeout} s: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL (kill -9): the server gets no chance to finish anything."""
        if self.running:
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM (a graceful shutdown); SIGKILL if it has not ended within ``grace`` seconds."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, characters: int = 3000) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-characters:] if path.exists() else ""
