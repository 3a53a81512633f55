"""Driving the web client in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``).

``open_browser`` starts one Chromium through Selenium: each is its own
browser context (profile, storage, cookies), so two of them are two players.
``Player`` speaks to the page as a person would — it fills forms, types
lines and presses keys — and waits for what should appear with
``WebDriverWait`` (never a fixed sleep). Used by ``tests/browser`` and
``tools/screenshots.py``.
"""

from __future__ import annotations

import os
import shutil
from typing import Callable, TypeVar

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = os.environ.get("VIBEMUSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("VIBEMUSE_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_SECONDS = 15

T = TypeVar("T")


def browser_available() -> bool:
    return os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)


def open_browser(width: int = 1280, height: int = 800, dark: bool = False) -> WebDriver:
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking",
                     "--force-device-scale-factor=1", f"--window-size={width},{height}",
                     f"--blink-settings=preferredColorScheme={0 if dark else 1}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    if width < 500:  # narrower than a desktop window may be: a phone's screen
        phone_screen(driver, width, height)
    return driver


def phone_screen(driver: WebDriver, width: int = 390, height: int = 760) -> None:
    """Make the page's viewport a phone's (touch, mobile) until the driver quits."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})


class Player:
    """One person at one browser."""

    def __init__(self, driver: WebDriver, base_url: str):
        self.driver = driver
        self.base_url = base_url

    # -- waiting -------------------------------------------------------------

    def until(self, condition: Callable[[], T], message: str = "", timeout: float = WAIT_SECONDS) -> T:
        def attempt(_driver: WebDriver) -> T | bool:
            try:
                return condition()
            except StaleElementReferenceException:  # the page redrew it: look again
                return False
        return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(attempt, message)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    # -- the page --------------------------------------------------------------

    def open(self) -> "Player":
        self.driver.get(self.base_url + "/")
        return self

    def sign_in(self, username: str, password: str, register: bool = True) -> "Player":
        self.until(lambda: self.find("#login-username").is_displayed(), "the login form")
        for field, value in (("#login-username", username), ("#login-password", password)):
            self.find(field).clear()
            self.find(field).send_keys(value)
        self.find("#register-button" if register else "#login-button").click()
        self.wait_online()
        return self

    def status(self) -> str:
        return self.find("#status").get_attribute("data-state") or ""

    def wait_online(self) -> None:
        self.until(lambda: self.status() == "online" and self.find_all("#roster .member"), "online with a roster")

    def type(self, line: str, enter: bool = True) -> None:
        field = self.find("#input")
        field.send_keys(line)
        if enter:
            field.send_keys(Keys.ENTER)

    def press(self, *keys: str) -> None:
        self.find("#input").send_keys(*keys)

    def show(self, view: str) -> None:
        """Open a view from the sidebar: "room", "page:<ids>" or "channel:<id>"."""
        self.driver.execute_script(
            "document.querySelector(`[data-view=\"${arguments[0]}\"]`).click()", view)
        self.until(lambda: not self.find(f'ol[data-log="{view}"]').get_attribute("hidden"), f"the view {view}")

    def lines(self, log: str = "room") -> list[str]:
        """The text of every line of one scrollback, in order."""
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll(`ol[data-log=\"${arguments[0]}\"] > li .text`),"
            " (n) => n.textContent)", log)

    def texts(self, css: str) -> list[str]:
        """The textContent of every element matching ``css`` (shown or not)."""
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]), (n) => n.textContent)", css)

    def wait_line(self, text: str, log: str = "room") -> str:
        try:
            return self.until(lambda: next((line for line in self.lines(log) if text in line), None))
        except TimeoutException:  # say what the log held when the wait ended
            raise TimeoutException(f"a line with {text!r} in {log}: {self.lines(log)}") from None

    def logs(self) -> list[str]:
        return [ol.get_attribute("data-log") or "" for ol in self.find_all("ol[data-log]")]

    def page_log(self, partner_id: str) -> str:
        return f"page:{partner_id}"

    def network(self, online: bool) -> None:
        """Take the page off the network, or put it back (Chromium's emulation: the page sees offline)."""
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": not online, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})

    def screenshot(self, path: str) -> None:
        self.driver.save_screenshot(path)

    def refusals(self) -> list[str]:
        """Error lines the page shows: the server refused one of its frames (none expected)."""
        return self.texts("#logs .line.error")

    def console_errors(self) -> list[str]:
        return [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]
