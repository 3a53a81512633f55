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
======================================  ====================================

A command with nothing after it gets the empty text (``say`` is
``Say("")``); refusing that (``empty_text``) is the service's job, through
:func:`vibemuse.protocol.markup.check_text`. Anything else raises
``ProtocolError(UNKNOWN_COMMAND)`` with the (sanitized, at most 32
characters) first word in ``details["command"]``. Nothing else is ever raised.
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
    "COMMAND_WORDS", "PREFIXES", "Command", "Emit", "Home", "Ooc", "OocStyle", "Pose", "Say",
    "Wall", "Who", "parse_command",
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


Command: TypeAlias = Say | Pose | Ooc | Emit | Wall | Who | Home
CommandParser: TypeAlias = Callable[[str], Command]


def _pose(argument: str) -> Command:
    return Pose(argument, semipose=False)


def _semipose(argument: str) -> Command:
    return Pose(argument, semipose=True)


_OOC_STYLES: dict[str, OocStyle] = {'"': "say", ":": "pose", ";": "semipose"}


def _ooc(argument: str) -> Command:
    style = _OOC_STYLES.get(argument[:1])
    if style is None:
        return Ooc(argument, "say")
    return Ooc(argument[1:], style)


def _who(argument: str) -> Command:
    return Who()


def _home(argument: str) -> Command:
    return Home()


PREFIXES: Mapping[str, CommandParser] = MappingProxyType({
    '"': Say,
    ":": _pose,
    ";": _semipose,
    "\\": Emit,
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
})

_FIRST_WORD = re.compile(r"\S*")


def parse_command(line: str) -> Command:
    """Read one command line; raise ProtocolError(UNKNOWN_COMMAND) if it is none."""
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
