"""Fixtures of the browser tests: a live server on its own thread, Chromium drivers, bots.

The server is a real ``VibeMuseServer`` on a loop of its own (``Served``),
so Selenium can block the test thread while the server keeps serving; it
can be stopped and started again on the same port and database. A second
player may be a plain protocol client (``Bot``): quicker than a second
browser, and its frames are checked against spec/.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import pytest

from tests.conftest import FAST_HASHER
from tests.support.browser import Player, browser_available, open_browser
from tests.support.live import Bot, Served

if not browser_available():  # .ci/run installs them; elsewhere: apt-get install chromium chromium-driver
    if os.environ.get("VIBEMUSE_REQUIRE_BROWSER") == "1":
        raise RuntimeError("the browser tests need Debian's chromium and chromium-driver (VIBEMUSE_REQUIRE_BROWSER=1)")
    pytest.skip("the browser tests need Debian's chromium and chromium-driver", allow_module_level=True)


@pytest.fixture
def served(config) -> Iterator[Served]:
    served = Served(config, FAST_HASHER)
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
        player = Player(driver, served.base_url)
        player.network(online=True)
        return player.open()

    yield make
    for driver in handed:  # leave them blank for the next test (each test's server has its own port)
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.get("about:blank")
        driver.get_log("browser")
