"""A server on its own event loop in a background thread, for synchronous tests.

Hypothesis drives plain functions, and schemathesis runs as a separate
process: both need a server that keeps serving while the test thread blocks
on a socket. ``LiveServer`` starts a real ``VibeMuseServer`` (``listen(0)``
on 127.0.0.1) on a fresh asyncio loop in a daemon thread; ``run`` executes a
coroutine there and waits for its result; ``stop`` shuts the server down
gracefully and joins the thread. ``Served`` is one that can be stopped and
started again on the same port and database; ``Bot`` a player on a protocol
socket run on the server's loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import Future
from typing import Any, Awaitable, Callable, TypeVar

from tests.support.client import PASSWORD, WsClient, acked
from tests.support.spec import SpecValidator
from vibemuse.app import VibeMuseServer
from vibemuse.config import Config

T = TypeVar("T")


class LiveServer:
    def __init__(self, config: Config, *, clock: Callable[[], int] | None = None, hasher: Any = None,
                 port: int = 0):
        self.config = config
        self.clock = clock
        self.hasher = hasher
        self.loop = asyncio.new_event_loop()
        self.server: VibeMuseServer | None = None
        self.port = port  # 0: any free port (a restarted server passes the port it had)
        self._thread = threading.Thread(target=self._serve, name="live-vibemuse", daemon=True)
        self._started: Future[None] = Future()

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> "LiveServer":
        self._thread.start()
        self._started.result(timeout=30)
        return self

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._create())
        except BaseException as error:  # noqa: BLE001 - handed to the starting thread
            self._started.set_exception(error)
            return
        self._started.set_result(None)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    async def _create(self) -> None:
        options: dict[str, Any] = {}
        if self.clock is not None:
            options["clock"] = self.clock
        if self.hasher is not None:
            options["hasher"] = self.hasher
        self.server = await VibeMuseServer.create(self.config, **options)
        self.port = self.server.listen(self.port, "127.0.0.1")

    def stop(self) -> None:
        if self.server is not None and self._thread.is_alive():
            try:
                self.run(self.server.shutdown(), timeout=30)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(timeout=30)

    def __enter__(self) -> "LiveServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- helpers -------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.loop.is_running()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, coroutine: Awaitable[T], timeout: float = 30) -> T:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)  # type: ignore[arg-type]

    def http(self, method: str, path: str, body: Any = None, token: str | None = None,
             timeout: float = 10) -> tuple[int, Any]:
        """One blocking JSON request: (status, decoded body or None)."""
        data = json.dumps(body).encode() if body is not None else (b"" if method in ("POST", "PUT") else None)
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw, status = response.read(), response.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        return status, (json.loads(raw) if raw else None)

    def count(self, table: str) -> int:
        assert self.server is not None
        with self.server.context.storage.engine.connect() as connection:
            return connection.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one()


class Served:
    """The server under test, restartable on the same port and database."""

    def __init__(self, config: Config, hasher: Any = None):
        self.config, self.hasher = config, hasher
        self.live = LiveServer(config, hasher=hasher).start()
        self.port = self.live.port

    @property
    def base_url(self) -> str:
        return self.live.base_url

    def stop(self) -> None:
        self.live.stop()

    def start(self) -> None:
        self.live = LiveServer(self.config, hasher=self.hasher, port=self.port).start()

    def register(self, username: str) -> dict[str, Any]:
        status, session = self.live.http("POST", "/api/auth/register", {"username": username, "password": PASSWORD})
        assert status == 201, session
        return session


class Bot:
    """A player without a browser: one protocol socket, run on the server's loop."""

    def __init__(self, served: Served, session: dict[str, Any], spec: SpecValidator):
        self.served, self.session, self.spec = served, session, spec
        self.socket: WsClient | None = None

    def connect(self) -> "Bot":
        url = self.served.base_url.replace("http://", "ws://") + "/api/ws"
        self.socket = self.served.live.run(WsClient.logged_in(url, self.spec, self.session["accessToken"]))
        return self

    def do(self, frame_type: str, data: dict[str, Any]) -> dict[str, Any]:
        """Send a frame and wait for its ack."""
        assert self.socket is not None
        return self.served.live.run(acked(self.socket, frame_type, data))

    def command(self, line: str) -> dict[str, Any]:
        return self.do("command", {"line": line})

    def close(self) -> None:
        if self.socket is not None and self.served.live.alive:
            self.served.live.loop.call_soon_threadsafe(self.socket.close)
        self.socket = None
