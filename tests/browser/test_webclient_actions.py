"""The web client's other controls, in a real Chromium: channels (join, talk, mute,
history scroll-back, leave), editing and deleting one's own messages, reporting
others', the command history on the arrow keys, and a phone-sized screen."""

from __future__ import annotations

from selenium.webdriver.common.keys import Keys

from tests.support.browser import phone_screen
from tests.support.client import PASSWORD
from tests.support.live import Bot

CHANNEL = "channel:#public:test.localhost"


def unread_of(player, view: str) -> str:
    badge = player.find(f'[data-view="{view}"] .unread')
    return "" if badge.get_attribute("hidden") is not None else badge.get_attribute("textContent")


def own_line(player, log: str, text: str):
    return player.until(lambda: next(
        (line for line in player.find_all(f'ol[data-log="{log}"] > li') if text in line.text), None), text)


def test_channels_join_talk_mute_scroll_back_and_leave(browser, bot, served):
    bob = bot("Bob")
    status, _ = served.live.http("POST", "/api/communication/channels", {"name": "Public"},
                                 token=bob.session["accessToken"])
    assert status == 201
    for n in range(55):
        bob.command(f"+public old news {n}")
    alice = browser().sign_in("Alice", PASSWORD)
    alice.find("#channel-join-name").send_keys("public", Keys.ENTER)
    alice.until(lambda: not alice.find(f'ol[data-log="{CHANNEL}"]').get_attribute("hidden"), "the channel view")
    alice.wait_line("<Public> Alice has joined this channel.", CHANNEL)
    alice.wait_line('<Public> Bob says, "old news 54"', CHANNEL)  # the history shown on opening the view
    assert not any("old news 0" in line for line in alice.lines(CHANNEL))  # the latest 50 only
    alice.find("#older-button").click()
    alice.wait_line('<Public> Bob says, "old news 0"', CHANNEL)
    alice.until(lambda: alice.find("#older-button").get_attribute("disabled") is not None, "nothing older")
    news = [line for line in alice.lines(CHANNEL) if "old news" in line]
    assert news == [f'<Public> Bob says, "old news {n}"' for n in range(55)]

    alice.type("Hello, channel.")  # in a channel's view a line goes to the channel
    alice.wait_line('<Public> Alice says, "Hello, channel."', CHANNEL)
    alice.show("room")
    bob.command("+public are you there?")
    alice.until(lambda: unread_of(alice, CHANNEL) == "1", "an unread channel line")
    alice.show(CHANNEL)
    alice.wait_line('<Public> Bob says, "are you there?"', CHANNEL)
    alice.find("#mute-button").click()
    alice.until(lambda: alice.find("#mute-button").get_attribute("aria-pressed") == "true", "muted")
    alice.show("room")
    bob.command("+public muted now")
    bob.command('"in the room')
    alice.wait_line('Bob says, "in the room"')
    assert unread_of(alice, CHANNEL) == ""  # a muted channel counts nothing
    assert any("muted now" in line for line in alice.lines(CHANNEL))  # but keeps its lines

    alice.show(CHANNEL)
    alice.find("#leave-button").click()
    alice.until(lambda: not alice.find_all(f'[data-view="{CHANNEL}"]'), "the channel gone from the list")
    alice.until(lambda: alice.find("#view-title").text == "Town Square", "back in the room")
    assert alice.refusals() == [] and alice.console_errors() == []


def test_edit_and_delete_own_messages_report_others_by_keyboard(browser, bot, served):
    alice = browser().sign_in("Alice", PASSWORD)
    bob = bot("Bob")
    bob.command('"buy cheap gold')
    alice.type('"I has a typo')
    line = own_line(alice, "room", 'You say, "I has a typo"')
    alice.driver.execute_script("arguments[0].querySelector('.actions-toggle').focus()", line)
    alice.driver.switch_to.active_element.send_keys(Keys.ENTER)  # opens the actions, focus on Edit
    alice.driver.switch_to.active_element.send_keys(Keys.ENTER)  # Edit: a field with the text
    field = alice.driver.switch_to.active_element
    assert field.get_attribute("value") == "I has a typo"
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("I have no typo", Keys.ENTER)
    alice.wait_line('You say, "I have no typo"')
    assert own_line(alice, "room", "I have no typo").find_element("css selector", ".edited").text == "(edited)"
    edited = served.live.run(bob.socket.receive_type("message_edited"))
    assert edited["data"]["event"]["content"]["new_content"]["body"] == "I have no typo"

    alice.type('"delete me')
    line = own_line(alice, "room", 'You say, "delete me"')
    line.find_element("css selector", ".actions-toggle").click()
    alice.find('[data-action="delete"]').click()
    alice.find('[data-action="confirm-delete"]').click()
    alice.until(lambda: "(message deleted)" in alice.lines("room") and
                not any("delete me" in text for text in alice.lines("room")), "the deletion")
    assert served.live.run(bob.socket.receive_type("message_deleted"))["data"]["event"]["type"] == "vm.redaction"

    line = own_line(alice, "room", 'Bob says, "buy cheap gold"')
    line.find_element("css selector", ".actions-toggle").click()
    assert [b.text for b in line.find_elements("css selector", ".actions button")] == ["Report"]
    alice.find('[data-action="report"]').click()
    alice.driver.switch_to.active_element.send_keys("spam", Keys.ENTER)
    alice.wait_line("Reported: the moderators will look at it.")
    assert served.live.count("reports") == 1
    assert alice.refusals() == [] and alice.console_errors() == []


def test_up_arrow_recalls_the_command_history(browser):
    alice = browser().sign_in("Alice", PASSWORD)
    alice.type('"one')
    alice.type(":two")
    alice.wait_line("Alice two")
    field = alice.find("#input")
    for key, expected in ((Keys.ARROW_UP, ":two"), (Keys.ARROW_UP, '"one'), (Keys.ARROW_UP, '"one'),
                          (Keys.ARROW_DOWN, ":two"), (Keys.ARROW_DOWN, "")):
        field.send_keys(key)
        assert field.get_attribute("value") == expected
    alice.type("WHO")
    alice.wait_line("1 player is connected.")
    alice.type("dance")  # a refusal shows as an error line
    alice.until(lambda: alice.refusals() == ['Huh?  (Type "help" for help.)'], "the refusal")


def test_a_phone_sized_screen_gets_one_column_and_a_menu(browser, bot):
    alice = browser()
    phone_screen(alice.driver, 390, 760)
    alice.driver.refresh()
    alice.sign_in("Alice", PASSWORD)
    bot("Bob").command("page alice=on your phone?")
    assert not alice.find("#sidebar").is_displayed()
    alice.until(lambda: alice.find("#nav-toggle").text == "Menu (1)", "the unread count on the menu")
    assert alice.driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    alice.find("#nav-toggle").click()
    alice.until(lambda: alice.find("#sidebar").is_displayed(), "the sidebar")
    alice.find('[data-view="page:@bob:test.localhost"]').click()
    alice.wait_line("Bob pages: on your phone?", "page:@bob:test.localhost")
    assert not alice.find("#sidebar").is_displayed()


def test_a_page_to_an_offline_player_waits_then_shows_delivered(browser, served, spec):
    alice = browser().sign_in("Alice", PASSWORD)
    bob = Bot(served, served.register("Bob"), spec)  # has an account, is not connected
    alice.type("page bob=Are you there?")
    view = "page:@bob:test.localhost"
    alice.until(lambda: alice.texts(f'ol[data-log="{view}"] .receipt') == ["waiting for them to connect"],
                "the page waiting")
    bob.connect()
    try:
        alice.until(lambda: alice.texts(f'ol[data-log="{view}"] .receipt') == ["delivered"], "the delivery receipt")
    finally:
        bob.close()


def test_log_out_revokes_the_token_and_logging_in_again_restores_the_pages(browser, bot, served):
    alice = browser().sign_in("Alice", PASSWORD)
    bot("Bob").command("page alice=see you later")
    view = "page:@bob:test.localhost"
    alice.until(lambda: unread_of(alice, view) == "1", "the page")
    token = alice.driver.execute_script("return JSON.parse(localStorage.getItem('vibemuse.session')).accessToken")
    alice.find("#logout-button").click()
    alice.until(lambda: alice.find("#login-username").is_displayed(), "the login form")
    assert served.live.http("GET", "/api/users/me", token=token)[0] == 401
    alice.sign_in("Alice", PASSWORD, register=False)
    alice.show(view)
    alice.wait_line("Bob pages: see you later", view)  # from the page history
    assert alice.lines(view) == ["Bob pages: see you later"]
