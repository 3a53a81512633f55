"""Screenshots of the web client's main views, for the README: ``python tools/screenshots.py [OUT_DIR]``.

It starts a real server (a fresh database in a temporary folder), fills it
with a small scene — players talking in the Town Square, a page
conversation, a channel — by protocol clients, opens the web client in
headless Chromium (Debian's ``chromium`` and ``chromium-driver``) and writes
PNGs to ``docs/`` (or OUT_DIR). Run it again after changing the client, and
commit the PNGs: they are made from the code, so they stay true.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.browser import Player, open_browser  # noqa: E402
from tests.support.client import PASSWORD  # noqa: E402
from tests.support.live import Bot, Served  # noqa: E402
from tests.support.spec import SpecValidator  # noqa: E402
from vibemuse.config import Config  # noqa: E402
from vibemuse.services.passwords import PasswordHasher  # noqa: E402

SHOTS = ("webclient-login.png", "webclient-room.png", "webclient-pages.png", "webclient-channel.png",
         "webclient-phone-dark.png")


class Cast:
    """The other players of the scene: protocol sockets on the server's loop."""

    def __init__(self, served: Served):
        self.served, self.spec, self.bots = served, SpecValidator(), {}

    def join(self, name: str) -> None:
        self.bots[name] = Bot(self.served, self.served.register(name), self.spec).connect()

    def do(self, name: str, frame_type: str, data: dict[str, Any]) -> None:
        self.bots[name].do(frame_type, data)

    def say(self, name: str, line: str) -> None:
        self.bots[name].command(line)

    def typing(self, name: str) -> None:
        self.served.live.run(self.bots[name].socket.send_frame("typing", {"typing": True}))

    def close(self) -> None:
        for bot in self.bots.values():
            bot.close()


def shoot(player: Player, path: Path) -> None:
    """A screenshot without the blinking caret (the same scene makes the same picture)."""
    player.driver.execute_script("for (const field of document.querySelectorAll('input'))"
                                 " field.style.caretColor = 'transparent';")
    player.screenshot(str(path))


def scene(served: Served, out: Path) -> None:
    cast = Cast(served)
    browser = open_browser(1280, 760)
    phone = open_browser(390, 760, dark=True)
    try:
        alice = Player(browser, served.base_url).open()
        alice.until(lambda: alice.find("#login-username").is_displayed(), "the login form")
        alice.find("#login-username").send_keys("Alice")
        shoot(alice, out / "webclient-login.png")
        alice.find("#login-username").clear()
        alice.sign_in("Alice", PASSWORD)
        for name in ("Bob", "Mira", "Wizard"):
            cast.join(name)
        cast.do("Mira", "set_presence", {"status": "away", "message": "Making tea."})
        cast.say("Bob", '"Evening, all! Anyone up for %xh%xcgame night%xn?')
        cast.say("Mira", ":straightens a row of books.")
        alice.type('"Count me in. What are we playing?')
        cast.say("Bob", ";'s lantern flickers %xyamber%xn in the draught.")
        cast.say("Wizard", "ooc Back in five, brb.")
        alice.type("WHO")
        alice.wait_line("players are connected.")
        cast.say("Mira", "page alice=Save me a seat by the fire?")
        cast.say("Bob", "page alice=Bring the dice, please.")
        cast.typing("Bob")
        alice.until(lambda: alice.find("#typing-line").text == "Bob is typing…", "Bob typing")
        shoot(alice, out / "webclient-room.png")

        mira = "page:@mira:localhost"
        alice.show(mira)
        alice.wait_line("Mira pages: Save me a seat by the fire?", mira)
        alice.type("Of course: the big armchair.")
        alice.type(":waves.")
        alice.until(lambda: len(alice.texts(f'ol[data-log="{mira}"] .receipt')) == 2, "the receipts")
        cast.say("Mira", "page alice=:grins.")
        alice.wait_line("From afar, Mira grins.", mira)
        shoot(alice, out / "webclient-pages.png")

        alice.find("#channel-join-name").send_keys("Public")
        alice.find("#channel-join-form button").click()
        channel = "channel:#public:localhost"
        alice.until(lambda: not alice.find(f'ol[data-log="{channel}"]').get_attribute("hidden"), "the channel")
        cast.say("Bob", "addcom pub=Public")
        cast.say("Bob", "+pub Who has the rules for Dragon Poker?")
        alice.type("I do, page me.")
        cast.say("Bob", "+pub :bows.")
        alice.wait_line("<Public> Bob bows.", channel)
        shoot(alice, out / "webclient-channel.png")

        on_phone = Player(phone, served.base_url).open()
        on_phone.sign_in("Alice", PASSWORD, register=False)
        on_phone.wait_line("Mira straightens a row of books.")
        shoot(on_phone, out / "webclient-phone-dark.png")
    finally:
        cast.close()
        browser.quit()
        phone.quit()


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "docs"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        config = Config(server_name="localhost", port=0, data_dir=data, recent_messages_on_join=20,
                        max_connections_per_user=5)
        served = Served(config, PasswordHasher(log_n=12))
        try:
            scene(served, out)
        finally:
            served.stop()
    for name in SHOTS:
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
