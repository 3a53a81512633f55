"""The MUSH command-line parser."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from vibemuse.protocol.commands import (
    ChannelJoin,
    ChannelLeave,
    ChannelList,
    ChannelSpeak,
    ChannelWho,
    Page,
    COMMAND_WORDS,
    PREFIXES,
    Emit,
    Home,
    Ooc,
    Pose,
    Say,
    Wall,
    Who,
    parse_command,
)
from vibemuse.protocol.errors import ErrorCode, ProtocolError


@pytest.mark.parametrize("line, command", [
    # say
    ('"hi', Say("hi")),
    ("say hi", Say("hi")),
    ('"  spaced  ', Say("  spaced  ")),
    ("say   hi there ", Say("hi there ")),
    ('""quoted"', Say('"quoted"')),
    ("say %xrred%xn", Say("%xrred%xn")),
    ("say line%rtwo", Say("line%rtwo")),
    # pose and semipose
    (":waves", Pose("waves", False)),
    ("pose waves", Pose("waves", False)),
    (";'s hat", Pose("'s hat", True)),
    ("semipose 's hat", Pose("'s hat", True)),
    ("::double", Pose(":double", False)),
    # ooc
    ("ooc hi", Ooc("hi", "say")),
    ('ooc "hi', Ooc("hi", "say")),
    ("ooc :waves", Ooc("waves", "pose")),
    ("ooc ;'s", Ooc("'s", "semipose")),
    ("ooc   :waves", Ooc("waves", "pose")),
    # emit and wall
    ("@emit The wind howls.", Emit("The wind howls.")),
    ("\\The wind howls.", Emit("The wind howls.")),
    ("\\\\backslash", Emit("\\backslash")),
    ("@wall Reboot in 5.", Wall("Reboot in 5.")),
    # who and home
    ("WHO", Who()),
    ("who", Who()),
    ("Who ali", Who()),
    ("home", Home()),
    ("HOME", Home()),
])
def test_commands(line, command):
    assert parse_command(line) == command


@pytest.mark.parametrize("line", ["SAY hi", "Say hi", "sAy hi"])
def test_command_word_is_case_insensitive(line):
    assert parse_command(line) == Say("hi")


def test_case_insensitive_for_every_word():
    assert parse_command("POSE waves") == Pose("waves")
    assert parse_command("SemiPose 's") == Pose("'s", True)
    assert parse_command("OOC :x") == Ooc("x", "pose")
    assert parse_command("@EMIT x") == Emit("x")
    assert parse_command("@Wall x") == Wall("x")


@pytest.mark.parametrize("line, command", [
    ('   "hi', Say("hi")),
    ("\t say hi", Say("hi")),
    ("\n:waves", Pose("waves")),
    ("  WHO", Who()),
])
def test_leading_whitespace_ignored(line, command):
    assert parse_command(line) == command


@pytest.mark.parametrize("line, command", [
    ("say", Say("")),
    ("say   ", Say("")),
    ('"', Say("")),
    ("pose", Pose("", False)),
    (":", Pose("", False)),
    ("semipose", Pose("", True)),
    (";", Pose("", True)),
    ("ooc", Ooc("", "say")),
    ("ooc :", Ooc("", "pose")),
    ("ooc ;", Ooc("", "semipose")),
    ('ooc "', Ooc("", "say")),
    ("@emit", Emit("")),
    ("\\", Emit("")),
    ("@wall", Wall("")),
])
def test_empty_argument_gives_empty_text(line, command):
    assert parse_command(line) == command


def test_word_then_newline_or_tab():
    assert parse_command("say\thi") == Say("hi")
    assert parse_command("say\nhi") == Say("hi")


@pytest.mark.parametrize("line, word", [
    ("sayhi", "sayhi"),
    ("posed", "posed"),
    ("@emitx y", "@emitx"),
    ("look", "look"),
    ("pager bob=hi", "pager"),
    ("@chat pub", "@chat"),
    ("@chat =hi", "@chat"),
    ("+", "+"),
    ("+ hi", "+"),
    ("addcom pub", "addcom"),
    ("@channel/join", "@channel/join"),
    ("say/noeval hi", "say/noeval"),
    ("", ""),
    ("   ", ""),
    ("x" * 100 + " tail", "x" * 32),
    ("sa\u200by hi", "say"),  # sanitized in the echo; the caller sanitizes lines first
    ("\u017fay hi", "\u017fay"),  # LATIN SMALL LONG S does not fold into "say"
    ("\uff33\uff21\uff39 hi", "\uff33\uff21\uff39"),  # FULLWIDTH "SAY" is not "say" either
])
def test_unknown_commands(line, word):
    with pytest.raises(ProtocolError) as caught:
        parse_command(line)
    error = caught.value
    assert error.code == ErrorCode.UNKNOWN_COMMAND
    assert error.message == 'Huh?  (Type "help" for help.)'
    assert error.details == {"command": word}


def test_commands_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Say("x").text = "y"  # type: ignore[misc]


def test_tables_are_read_only_and_complete():
    with pytest.raises(TypeError):
        COMMAND_WORDS["page"] = Say  # type: ignore[index]
    assert set(PREFIXES) == {'"', ":", ";", "\\", "+"}
    assert set(COMMAND_WORDS) == {
        "say", "pose", "semipose", "ooc", "@emit", "@wall", "who", "home", "page", "p", "@chat",
        "@channel/join", "@channel/leave", "@channel/list", "@channel/who", "addcom", "delcom", "comlist",
    }
    assert all(len(prefix) == 1 for prefix in PREFIXES)
    assert all(word == word.lower() for word in COMMAND_WORDS)


_line_alphabet = st.sampled_from(list('":;\\@ \t\nsayposemitwhocWHOSAY%x') + ["\u200b", "\x00", "\u00e9"])


@given(st.one_of(st.text(), st.text(_line_alphabet)))
@example("")
@example("ooc")
@example("\\")
def test_parse_command_raises_only_unknown_command(line):
    try:
        command = parse_command(line)
    except ProtocolError as error:
        assert error.code == ErrorCode.UNKNOWN_COMMAND
        assert len(error.details["command"]) <= 32
    else:
        assert isinstance(command, (Say, Pose, Ooc, Emit, Wall, Who, Home, Page, ChannelSpeak, ChannelJoin,
                                    ChannelLeave, ChannelList, ChannelWho))
        text = getattr(command, "text", "") or ""
        assert text in line


@given(st.text())
def test_say_round_trips(text):
    assert parse_command('"' + text) == Say(text)
    assert parse_command(":" + text) == Pose(text)


@pytest.mark.parametrize("line, command", [
    ("page bob=hi", Page(("bob",), "hi", "say")),
    ("p Bob, Carol=hi there", Page(("Bob", "Carol"), "hi there", "say")),
    ("page bob carol=:waves", Page(("bob", "carol"), "waves", "pose")),
    ("page bob=;'s hat", Page(("bob",), "'s hat", "semipose")),
    ('page bob="hi', Page(("bob",), "hi", "say")),
    ("page =hi", Page(None, "hi", "say")),
    ("page hi", Page(None, "hi", "say")),
    ("page :waves", Page(None, "waves", "pose")),
    ("page", Page(None, None)),
    ("PAGE   ", Page(None, None)),
    ("+pub hi", ChannelSpeak("hi", "say", alias="pub")),
    ("+Pub :waves", ChannelSpeak("waves", "pose", alias="pub")),
    ("+pub ;'s", ChannelSpeak("'s", "semipose", alias="pub")),
    ("@chat Public=hi", ChannelSpeak("hi", "say", channel="Public")),
    ("@channel/join Public", ChannelJoin("Public")),
    ("@channel/join Public=Pub", ChannelJoin("Public", "pub")),
    ("addcom pub=Public", ChannelJoin("Public", "pub")),
    ("@channel/leave Public", ChannelLeave(channel="Public")),
    ("delcom pub", ChannelLeave(alias="pub")),
    ("@channel/list", ChannelList()),
    ("comlist", ChannelList()),
    ("@channel/who Public", ChannelWho("Public")),
])
def test_page_and_channel_commands(line, command):
    assert parse_command(line) == command


@pytest.mark.parametrize("line, command", [
    ("say   hi", Say("hi")),  # after a word: all the white space goes
    ("say \t \thi", Say("hi")),
    ("+pub   hi", ChannelSpeak("hi", "say", alias="pub")),
    ('"  hi', Say("  hi")),  # after a prefix: nothing goes
    ("page bob=  hi", Page(("bob",), "  hi", "say")),  # nor after a page's =
])
def test_a_word_loses_all_the_white_space_after_it_a_prefix_none(line, command):
    """protocol.md section 14.2, in one sentence."""
    assert parse_command(line) == command
# ---------------------------------------------------------------- edges

@pytest.mark.parametrize("line, command", [
    # the first "=" splits names from text; later ones belong to the text
    ("page bob=1+1=2", Page(("bob",), "1+1=2", "say")),
    ("@chat Public=a=b", ChannelSpeak("a=b", "say", channel="Public")),
    ("@chat Public=:waves", ChannelSpeak("waves", "pose", channel="Public")),
    ("@chat Public=;'s hat", ChannelSpeak("'s hat", "semipose", channel="Public")),
    ("addcom pub=Pub=lic", ChannelJoin("Pub=lic", "pub")),
    # the first space ends the alias; spaces before the text are dropped, after it kept
    ("+pub hi there", ChannelSpeak("hi there", "say", alias="pub")),
    ("+pub   hi ", ChannelSpeak("hi ", "say", alias="pub")),
    ("ooc hi", Ooc("hi", "say")),
    ('ooc "hi', Ooc("hi", "say")),
    ("pose waves", Pose("waves", semipose=False)),
])
def test_separators_inside_the_text(line, command):
    assert parse_command(line) == command


@pytest.mark.parametrize("line, word", [
    ("@channel/leave", "@channel/leave"),
    ("@channel/leave   ", "@channel/leave"),
    ("delcom", "delcom"),
    ("delcom  ", "delcom"),
    ("@channel/who", "@channel/who"),
    ("@channel/who \t", "@channel/who"),
    ("@channel/join", "@channel/join"),
    ("addcom", "addcom"),
    ("addcom =Public", "addcom"),
    ("addcom pub=", "addcom"),
    ("addcom pub", "addcom"),
    ("@chat =hi", "@chat"),
    ("@chat Public", "@chat"),
])
def test_channel_commands_without_their_argument(line, word):
    with pytest.raises(ProtocolError) as info:
        parse_command(line)
    assert info.value.code == ErrorCode.UNKNOWN_COMMAND
    assert info.value.details == {"command": word}


@pytest.mark.parametrize("line", [None, b"say hi", 5])
def test_a_line_that_is_not_text_is_a_type_error_not_attribute_error(line):
    with pytest.raises(TypeError, match=f"^a command line must be a str, not {type(line).__name__}$"):
        parse_command(line)
