"""Fixtures of the browser tests: a live server on its own thread, Chromium drivers, a bot.

The server is a real ``VibeMuseServer`` on a loop of its own (``LiveServer``),
so Selenium can block the test thread while the server keeps serving; it
can be stopped and started again on the same port and database
(``restart``). A second player may be a plain protocol client (``Bot``):
quicker than a second browser, and its frames are checked against spec/.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import pytest

from tests.conftest import FAST_HASHER
from tests.support.browser import Player, browser_available, open_browser
from tests.support.client import PASSWORD, WsClient, acked
from tests.support.live import LiveServer
from tests.support.spec import SpecValidator

if not browser_available():  # .ci/run installs them; elsewhere: apt-get install chromium chromium-driver
    if os.environ.get("VIBEMUSE_REQUIRE_BROWSER") == "1":
        raise RuntimeError("the browser tests need Debian's chromium and chromium-driver (VIBEMUSE_REQUIRE_BROWSER=1)")
    pytest.skip("the browser tests need Debian's chromium and chromium-driver", allow_module_level=True)


class Served:
    """The server under test, restartable on the same port and database."""

    def __init__(self, config: Any):
        self.config = config
        self.live = LiveServer(config, hasher=FAST_HASHER).start()
        self.port = self.live.port

    @property
    def base_url(self) -> str:
        return self.live.base_url

    def stop(self) -> None:
        self.live.stop()

    def start(self) -> None:
        self.live = LiveServer(self.config, hasher=FAST_HASHER, port=self.port).start()

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


@pytest.fixture
def served(config) -> Iterator[Served]:
    served = Served(config)
    yield served
    served.stop()


@pytest.fixture
def bot(served, spec):
    bots: list[Bot] = []

    def make(username: str) -> Bot:
        made = Bot(served, served.register(username), spec).connect()
        bots.append(made)
        return made

    yield make
    for made in bots:
        made.close()


@pytest.fixture(scope="session")
def _drivers() -> Iterator[list[Any]]:
    """Browsers are slow to start: a session keeps two and hands out clean ones."""
    drivers: list[Any] = []
    yield drivers
    for driver in drivers:
        driver.quit()


@pytest.fixture
def browser(served, _drivers):
    """Players in browsers of their own (each a separate context: storage, cookies)."""
    handed: list[Any] = []

    def make() -> Player:
        if len(handed) >= len(_drivers):
            _drivers.append(open_browser())
        driver = _drivers[len(handed)]
        handed.append(driver)
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        return Player(driver, served.base_url).open()

    yield make
    for driver in handed:  # leave them blank for the next test (each test's server has its own port)
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.get("about:blank")
        driver.get_log("browser")
