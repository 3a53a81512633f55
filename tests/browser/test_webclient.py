"""The web client in a real headless Chromium, against a real server.

Two players talk (say, pose, page) from two browsers; typing shows and
clears; hostile texts stay text; a reload and a server restart lose and
double nothing. Every wait is for a condition on the page (WebDriverWait).
"""

from __future__ import annotations

import dataclasses

from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.keys import Keys

from tests.support.client import PASSWORD

HOSTILE = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'


def no_dialog(player) -> bool:
    try:
        player.driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def page_log_of(player, partner_id: str) -> str:
    return f"page:{partner_id}"


def unread_of(player, view: str) -> str:
    badge = player.find(f'[data-view="{view}"] .unread')
    return "" if badge.get_attribute("hidden") is not None else badge.get_attribute("textContent")


def test_two_players_see_each_others_say_pose_and_page(browser, served):
    alice = browser().sign_in("Alice", PASSWORD)
    bob = browser().sign_in("Bob", PASSWORD)
    alice.until(lambda: "Bob" in alice.find("#roster").text, "Bob in Alice's roster")
    alice.type('"Hello, Bob!')
    bob.wait_line('Alice says, "Hello, Bob!"')
    alice.wait_line('You say, "Hello, Bob!"')
    bob.type(":waves back.")
    alice.wait_line("Bob waves back.")

    alice.type("page bob=Coffee later?")
    bob_view = page_log_of(bob, "@alice:test.localhost")
    bob.until(lambda: unread_of(bob, bob_view) == "1", "an unread page for Bob")
    bob.show(bob_view)
    bob.wait_line("Alice pages: Coffee later?", bob_view)
    assert unread_of(bob, bob_view) == ""
    alice_view = page_log_of(alice, "@bob:test.localhost")
    alice.wait_line("You paged Bob with 'Coffee later?'.", alice_view)
    alice.until(lambda: alice.texts(f'ol[data-log="{alice_view}"] .receipt') == ["delivered"], "the receipt")

    bob.type("Sure, at eight.")  # in a conversation the line is a page to its partner
    alice.until(lambda: unread_of(alice, alice_view) == "1", "an unread reply for Alice")
    alice.wait_line("Bob pages: Sure, at eight.", alice_view)
    assert alice.console_errors() == [] and bob.console_errors() == []
    assert alice.refusals() == [] and bob.refusals() == []


def test_typing_shows_and_clears(browser, bot):
    alice = browser().sign_in("Alice", PASSWORD)
    bob = browser().sign_in("Bob", PASSWORD)
    alice.until(lambda: "Bob" in alice.find("#roster").text, "Bob in Alice's roster")
    bob.type("I am writi", enter=False)
    alice.until(lambda: alice.find("#typing-line").text == "Bob is typing…", "Bob typing")
    assert alice.find('#roster [data-user-id="@bob:test.localhost"] .member-typing').text == "typing…"
    bob.press(Keys.ESCAPE)  # clears the line: typing false
    alice.until(lambda: alice.find("#typing-line").text == "", "Bob's indicator gone")
    bob.type("\"again", enter=False)
    alice.until(lambda: alice.find("#typing-line").text == "Bob is typing…", "Bob typing again")
    bob.press(Keys.ENTER)  # speaking ends it without a typing frame
    alice.wait_line('Bob says, "again"')
    alice.until(lambda: alice.find("#typing-line").text == "", "ended by the message")
    assert not alice.find_all("#roster .member-typing")
    assert bob.refusals() == [] and bob.console_errors() == []


def test_hostile_texts_render_as_text(browser, bot):
    alice = browser().sign_in("Alice", PASSWORD)
    mallory = bot("Mallory")
    mallory.command(f'"{HOSTILE}')
    mallory.command(":paints %xrred%xn and %x<#00ff00>green%xn and %xhbold%xn")
    mallory.command('"abc\u202edef\u2066ghi')
    mallory.command(f"page alice={HOSTILE}")
    alice.wait_line(f'Mallory says, "{HOSTILE}"')
    alice.wait_line("Mallory paints red and green and bold")
    alice.wait_line('Mallory says, "abcdefghi"')  # bidi overrides and isolates are gone (14.4)
    page_view = "page:@mallory:test.localhost"
    alice.show(page_view)
    alice.wait_line(f"Mallory pages: {HOSTILE}", page_view)
    assert alice.find_all("#logs img") == [] and alice.find_all("#logs script") == []
    assert alice.driver.title != "pwned" and no_dialog(alice)
    assert alice.texts("#logs .fg-red") == ["red"]
    green = alice.driver.execute_script(
        "return Array.from(document.querySelectorAll('#logs span'))"
        ".filter((n) => n.style.color === 'rgb(0, 255, 0)').map((n) => n.textContent)")
    assert green == ["green"]
    assert alice.texts("#logs .m-bold") == ["bold"]
    assert alice.console_errors() == []


def test_a_reload_resumes_without_duplicates(browser, bot):
    alice = browser().sign_in("Alice", PASSWORD)
    bob = bot("Bob")
    for n in range(3):
        bob.command(f'"before {n}')
    bob.command("page alice=a page before")
    alice.wait_line('Bob says, "before 2"')
    alice.driver.refresh()
    alice.wait_online()
    bob.command('"after the reload')
    bob.command("page alice=a page after")
    alice.wait_line('Bob says, "after the reload"')
    page_view = "page:@bob:test.localhost"
    alice.show(page_view)
    alice.wait_line("Bob pages: a page after", page_view)
    room = [line for line in alice.lines("room") if line.startswith("Bob says")]
    assert room == [f'Bob says, "before {n}"' for n in range(3)] + ['Bob says, "after the reload"']
    assert alice.lines(page_view) == ["Bob pages: a page before", "Bob pages: a page after"]


def test_a_server_restart_under_the_page_loses_nothing(browser, bot, served):
    alice = browser().sign_in("Alice", PASSWORD)
    bob = bot("Bob")
    bob.command('"before the restart')
    alice.wait_line('Bob says, "before the restart"')
    bob.close()
    served.stop()
    alice.until(lambda: alice.status() == "reconnecting" and alice.find("#status").text == "Reconnecting…",
                "the reconnecting indicator")
    alice.network(online=False)  # off the network until Carol has spoken: what she says is surely missed live
    served.start()
    bob = bot("Carol")
    bob.command('"while you were away')
    bob.command("page alice=did you miss me?")
    alice.network(online=True)
    alice.wait_online()
    alice.wait_line('Carol says, "while you were away"')
    page_view = "page:@carol:test.localhost"
    alice.until(lambda: unread_of(alice, page_view) == "1", "the page that waited")
    alice.show(page_view)
    alice.wait_line("Carol pages: did you miss me?", page_view)
    bob.command('"and after')
    alice.wait_line('Carol says, "and after"')
    said = [line for line in alice.lines("room") if " says, " in line]
    assert said == ['Bob says, "before the restart"', 'Carol says, "while you were away"', 'Carol says, "and after"']


def test_after_missing_too_much_the_client_reads_the_histories(browser, bot, served):
    alice = browser().sign_in("Alice", PASSWORD)
    bob = bot("Bob")
    bob.command('"before the gap')
    alice.wait_line('Bob says, "before the gap"')
    bob.close()
    served.stop()
    alice.until(lambda: alice.status() == "reconnecting", "the reconnecting indicator")
    alice.network(online=False)
    served.config = dataclasses.replace(served.config, resume_max_events=3, recent_messages_on_join=2)
    served.start()
    carol = bot("Carol")
    for n in range(6):  # more than resume_max_events: the server sends resume_gap, not a replay
        carol.command(f'"missed {n}')
    alice.network(online=True)
    alice.wait_online()
    alice.wait_line("You were away too long to catch up here: the latest history is shown.")
    for n in range(6):
        alice.wait_line(f'Carol says, "missed {n}"')
    said = [line for line in alice.lines("room") if " says, " in line]
    assert said == ['Bob says, "before the gap"'] + [f'Carol says, "missed {n}"' for n in range(6)]
