r"""The MUSH command line: what a player typed, read into a command record.

Theory of operation. Leading whitespace is ignored. If the line starts with
one of the :data:`PREFIXES` characters, that character picks the command and
everything after it, verbatim, is the command's argument (``"hi`` says "hi",
``:  waves`` poses "  waves"). Otherwise the first word — up to the first
whitespace, matched case-insensitively against :data:`COMMAND_WORDS` — picks
the command, and the rest of the line, without the whitespace that separates
it from the word, is the argument. A word must be followed by whitespace or
the end of the line: ``sayhi`` is not ``say``. Prefixes win over words.

======================================  ====================================
``"hi``, ``say hi``                     ``Say("hi")``
``:waves``, ``pose waves``              ``Pose("waves", semipose=False)``
``;'s hat``, ``semipose 's hat``        ``Pose("'s hat", semipose=True)``
``ooc hi``, ``ooc "hi``                 ``Ooc("hi", "say")``
``ooc :waves``                          ``Ooc("waves", "pose")``
``ooc ;'s hat``                         ``Ooc("'s hat", "semipose")``
``\hi`` (one backslash), ``@emit hi``   ``Emit("hi")``
``@wall hi``                            ``Wall("hi")``
``who``, ``WHO``                        ``Who()`` (any argument is ignored)
``home``                                ``Home()`` (any argument is ignored)
``page bob=hi``, ``p bob carol=hi``     ``Page(("bob", "carol"), "hi", "say")``
``page bob=:waves``, ``page bob=;'s``   ``Page(("bob",), "waves", "pose")`` …
``page =hi``, ``page hi``               ``Page(None, "hi")`` (to whoever was paged last)
``page``                                ``Page(None, None)`` (whom did I page last?)
``+pub hi``, ``+pub :waves``            ``ChannelSpeak("hi", alias="pub")`` …
``@chat Public=hi``                     ``ChannelSpeak("hi", channel="Public")``
``@channel/join Public[=pub]``          ``ChannelJoin("Public", "pub")``
``addcom pub=Public``                   ``ChannelJoin("Public", "pub")``
``@channel/leave Public``, ``delcom pub``  ``ChannelLeave(...)``
``@channel/list``, ``comlist``          ``ChannelList()``
``@channel/who Public``                 ``ChannelWho("Public")``
======================================  ====================================

A command with nothing after it gets the empty text (``say`` is
``Say("")``); refusing that (``empty_text``) is the service's job, through
:func:`vibemuse.protocol.markup.check_text`. Anything else raises
``ProtocolError(UNKNOWN_COMMAND)`` with the (sanitized, at most 32
characters) first word in ``details["command"]``. Nothing else is ever raised
(but ``TypeError`` for a line that is not a ``str``: a caller's bug).
Sanitize the line before parsing it, so that an invisible character cannot
hide a command word.

Adding a command (pages, channels, ...) is one frozen dataclass for its
record, one parser function ``(argument: str) -> Command`` and one entry in
:data:`COMMAND_WORDS` (``"page": _page``, ``"p": _page``) or in
:data:`PREFIXES` (``"+": _channel_alias``, which gets ``pub hi`` for
``+pub hi``). Add the record to the :data:`Command` union too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, TypeAlias

from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.markup import sanitize_text

__all__ = [
    "COMMAND_WORDS", "PREFIXES", "ChannelJoin", "ChannelLeave", "ChannelList", "ChannelSpeak", "ChannelWho",
    "Command", "Emit", "Home", "Ooc", "OocStyle", "Page", "Pose", "Say", "Wall", "Who", "parse_command",
]

OocStyle: TypeAlias = Literal["say", "pose", "semipose"]
MAX_ECHOED_WORD = 32


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class Pose:
    text: str
    semipose: bool = False


@dataclass(frozen=True)
class Ooc:
    text: str
    style: OocStyle = "say"


@dataclass(frozen=True)
class Emit:
    text: str


@dataclass(frozen=True)
class Wall:
    text: str


@dataclass(frozen=True)
class Who:
    pass


@dataclass(frozen=True)
class Home:
    pass


@dataclass(frozen=True)
class Page:
    """``page bob carol=text``. ``recipients`` None means whoever was paged last;
    ``text`` None (a bare ``page``) asks whom that was."""

    recipients: tuple[str, ...] | None
    text: str | None
    style: OocStyle = "say"


@dataclass(frozen=True)
class ChannelSpeak:
    """``+pub hi`` (``alias``) or ``@chat Public=hi`` (``channel``): one of the two is set."""

    text: str
    style: OocStyle = "say"
    alias: str | None = None
    channel: str | None = None


@dataclass(frozen=True)
class ChannelJoin:
    channel: str
    alias: str | None = None


@dataclass(frozen=True)
class ChannelLeave:
    channel: str | None = None
    alias: str | None = None


@dataclass(frozen=True)
class ChannelList:
    pass


@dataclass(frozen=True)
class ChannelWho:
    channel: str


Command: TypeAlias = (
    Say | Pose | Ooc | Emit | Wall | Who | Home | Page | ChannelSpeak | ChannelJoin | ChannelLeave | ChannelList
    | ChannelWho
)
CommandParser: TypeAlias = Callable[[str], Command]


def _pose(argument: str) -> Command:
    return Pose(argument)


def _semipose(argument: str) -> Command:
    return Pose(argument, semipose=True)


_OOC_STYLES: dict[str, OocStyle] = {'"': "say", ":": "pose", ";": "semipose"}


def _styled(text: str) -> tuple[str, OocStyle]:
    """A message that may be a pose: ``:waves`` and ``;'s hat`` as in the room
    (a leading ``"`` is dropped: ``"hi`` says "hi")."""
    style = _OOC_STYLES.get(text[:1])
    if style is None:
        return text, "say"
    return text[1:], style


def _ooc(argument: str) -> Command:
    text, style = _styled(argument)
    return Ooc(text, style)


_NAME_LIST = re.compile(r"[\s,]+")


def _page(argument: str) -> Command:
    """``page`` / ``page bob=hi`` / ``page bob carol=:waves`` / ``page =hi`` / ``page hi``."""
    if not argument.strip():
        return Page(None, None)
    names, equals, text = argument.partition("=")
    if not equals:
        text, style = _styled(argument)
        return Page(None, text, style)
    recipients = tuple(name for name in _NAME_LIST.split(names.strip()) if name)
    text, style = _styled(text)
    return Page(recipients or None, text, style)


def _channel_alias(argument: str) -> Command:
    """``+pub hi``: the word right after ``+`` is one of the user's channel aliases."""
    alias, _, text = argument.partition(" ")
    if not alias:
        raise _unknown_command("+")
    text, style = _styled(text.lstrip())
    return ChannelSpeak(text, style, alias=alias.lower())


def _chat(argument: str) -> Command:
    """``@chat Public=hi``."""
    channel, equals, text = argument.partition("=")
    if not equals or not channel.strip():
        raise _unknown_command("@chat")
    text, style = _styled(text)
    return ChannelSpeak(text, style, channel=channel.strip())


def _channel_join(argument: str) -> Command:
    """``@channel/join Public`` or ``@channel/join Public=pub`` (with an alias)."""
    channel, _, alias = argument.partition("=")
    if not channel.strip():
        raise _unknown_command("@channel/join")
    return ChannelJoin(channel.strip(), alias.strip().lower() or None)


def _addcom(argument: str) -> Command:
    """TinyMUX's ``addcom pub=Public``: an alias for a channel, joining it."""
    alias, equals, channel = argument.partition("=")
    if not equals or not alias.strip() or not channel.strip():
        raise _unknown_command("addcom")
    return ChannelJoin(channel.strip(), alias.strip().lower())


def _channel_leave(argument: str) -> Command:
    if not argument.strip():
        raise _unknown_command("@channel/leave")
    return ChannelLeave(channel=argument.strip())


def _delcom(argument: str) -> Command:
    if not argument.strip():
        raise _unknown_command("delcom")
    return ChannelLeave(alias=argument.strip().lower())


def _channel_list(argument: str) -> Command:
    return ChannelList()


def _channel_who(argument: str) -> Command:
    if not argument.strip():
        raise _unknown_command("@channel/who")
    return ChannelWho(argument.strip())


def _who(argument: str) -> Command:
    return Who()


def _home(argument: str) -> Command:
    return Home()


PREFIXES: Mapping[str, CommandParser] = MappingProxyType({
    '"': Say,
    ":": _pose,
    ";": _semipose,
    "\\": Emit,
    "+": _channel_alias,
})

COMMAND_WORDS: Mapping[str, CommandParser] = MappingProxyType({
    "say": Say,
    "pose": _pose,
    "semipose": _semipose,
    "ooc": _ooc,
    "@emit": Emit,
    "@wall": Wall,
    "who": _who,
    "home": _home,
    "page": _page,
    "p": _page,
    "@chat": _chat,
    "@channel/join": _channel_join,
    "@channel/leave": _channel_leave,
    "@channel/list": _channel_list,
    "@channel/who": _channel_who,
    "addcom": _addcom,
    "delcom": _delcom,
    "comlist": _channel_list,
})

_FIRST_WORD = re.compile(r"\S*")


def parse_command(line: str) -> Command:
    """Read one command line; raise ProtocolError(UNKNOWN_COMMAND) if it is none."""
    if not isinstance(line, str):
        raise TypeError(f"a command line must be a str, not {type(line).__name__}")
    line = line.lstrip()
    by_prefix = PREFIXES.get(line[:1])
    if by_prefix is not None:
        return by_prefix(line[1:])
    word = _FIRST_WORD.match(line).group()
    by_word = COMMAND_WORDS.get(word.lower()) if word.isascii() else None
    if by_word is None:
        raise _unknown_command(word)
    return by_word(line[len(word):].lstrip())


def _unknown_command(word: str) -> ProtocolError:
    return ProtocolError(
        ErrorCode.UNKNOWN_COMMAND,
        'Huh?  (Type "help" for help.)',
        details={"command": sanitize_text(word)[:MAX_ECHOED_WORD]},
    )
