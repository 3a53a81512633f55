"""The telnet byte stream (RFC 854, 855): bytes in, events out; text in, bytes out.

Theory of operation. :class:`TelnetReader` is a state machine fed whatever
the socket read; it hands back events in the order they arrived:

- :class:`Line`: one input line, its bytes as the client sent them without the
  line ending. A line ends at CR LF, CR NUL, a lone CR or a lone LF (MUD clients
  send all of these); NUL bytes are dropped; BS and DEL erase the character
  before them (a client in character mode), as the telnet EC command does, and
  EL erases the line so far.
- :class:`LineTooLong`: a line passed ``max_line_bytes``; its bytes up to the
  next line end are thrown away, and this event stands for the whole line.
- :class:`Negotiation`: ``IAC WILL/WONT/DO/DONT <option>``.
- :class:`Subnegotiation`: ``IAC SB <option> ... IAC SE`` with ``IAC IAC``
  undone. One longer than ``MAX_SUBNEGOTIATION_BYTES`` is dropped whole.
- :class:`Command`: any other two-byte command (``AYT``, ``IP``, ``NOP``...).

Telnet commands may arrive in the middle of a line; they never end it and
their bytes never enter it. Nothing here decodes text: a line is bytes, and
deciding what its bytes mean (UTF-8) is the caller's job.

:func:`encode_text` goes the other way: a text to send, with every newline
made CR LF (NVT) and every 0xFF byte doubled so it cannot be read as IAC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

# Commands (RFC 854)
SE, NOP, DM, BRK, IP, AO, AYT, EC, EL, GA, SB = 240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250
WILL, WONT, DO, DONT, IAC = 251, 252, 253, 254, 255
EOR_COMMAND = 239
# Options
ECHO, SGA, TIMING_MARK, TTYPE, EOR, NAWS, CHARSET, MSSP, MCCP2, GMCP = 1, 3, 6, 24, 25, 31, 42, 70, 86, 201
# Subnegotiation verbs of TTYPE (RFC 1091)
TTYPE_IS, TTYPE_SEND = 0, 1

# Subnegotiation markers of MSSP (the MUD Server Status Protocol)
MSSP_VAR, MSSP_VAL = 1, 2

MAX_SUBNEGOTIATION_BYTES = 1024
CR, LF, NUL, BS, DEL = 13, 10, 0, 8, 127
VERBS = frozenset({WILL, WONT, DO, DONT})


@dataclass(frozen=True)
class Line:
    data: bytes


@dataclass(frozen=True)
class LineTooLong:
    limit: int


@dataclass(frozen=True)
class Negotiation:
    verb: int
    option: int


@dataclass(frozen=True)
class Subnegotiation:
    option: int
    payload: bytes


@dataclass(frozen=True)
class Command:
    code: int


Event: TypeAlias = Line | LineTooLong | Negotiation | Subnegotiation | Command

# Reader states
_DATA, _CR, _IAC, _VERB, _SB, _SB_IAC = range(6)


class TelnetReader:
    """Incremental reader of a telnet stream; see the module's theory of operation."""

    def __init__(self, max_line_bytes: int):
        self.max_line_bytes = max_line_bytes
        self._state = _DATA
        self._line = bytearray()
        self._too_long = False
        self._verb = 0
        self._sb = bytearray()
        self._sb_too_long = False

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        for byte in data:
            self._step(byte, events)
        return events

    def _step(self, byte: int, events: list[Event]) -> None:
        state = self._state
        if state == _DATA:
            self._data(byte, events)
        elif state == _CR:
            self._state = _DATA
            if byte not in (LF, NUL):  # a lone CR ended the line; this byte starts the next
                self._data(byte, events)
        elif state == _IAC:
            self._command(byte, events)
        elif state == _VERB:
            self._state = _DATA
            events.append(Negotiation(self._verb, byte))
        elif state == _SB:
            if byte == IAC:
                self._state = _SB_IAC
            else:
                self._sb_byte(byte)
        else:  # _SB_IAC
            self._subnegotiation_escape(byte, events)

    def _data(self, byte: int, events: list[Event]) -> None:
        if byte == IAC:
            self._state = _IAC
        elif byte == CR or byte == LF:
            self._end_line(events)
            if byte == CR:
                self._state = _CR
        elif byte == NUL:
            pass
        elif byte == BS or byte == DEL:
            self._erase_character()
        else:
            self._add(byte)

    def _command(self, byte: int, events: list[Event]) -> None:
        self._state = _DATA
        if byte == IAC:
            self._add(IAC)  # an escaped 0xFF data byte
        elif byte in VERBS:
            self._verb = byte
            self._state = _VERB
        elif byte == SB:
            self._sb.clear()
            self._sb_too_long = False
            self._state = _SB
        elif byte == EC:
            self._erase_character()
        elif byte == EL:
            self._line.clear()
        else:
            events.append(Command(byte))

    def _subnegotiation_escape(self, byte: int, events: list[Event]) -> None:
        if byte == IAC:
            self._state = _SB
            self._sb_byte(IAC)
            return
        self._state = _DATA
        if byte == SE:
            if self._sb and not self._sb_too_long:
                events.append(Subnegotiation(self._sb[0], bytes(self._sb[1:])))
        else:  # a broken subnegotiation: read this byte as the command after IAC
            self._command(byte, events)
        self._sb.clear()

    def _sb_byte(self, byte: int) -> None:
        if len(self._sb) >= MAX_SUBNEGOTIATION_BYTES:
            self._sb_too_long = True
        else:
            self._sb.append(byte)

    def _add(self, byte: int) -> None:
        if self._too_long:
            return
        if len(self._line) >= self.max_line_bytes:
            self._too_long = True
            self._line.clear()
            return
        self._line.append(byte)

    def _erase_character(self) -> None:
        """Drop the last character (all the bytes of a UTF-8 sequence)."""
        line = self._line
        while line and 0x80 <= line[-1] < 0xC0:
            line.pop()
        if line:
            line.pop()

    def _end_line(self, events: list[Event]) -> None:
        if self._too_long:
            events.append(LineTooLong(self.max_line_bytes))
        else:
            events.append(Line(bytes(self._line)))
        self._line.clear()
        self._too_long = False


def encode_text(text: str) -> bytes:
    """A text as NVT bytes: UTF-8, newlines as CR LF, 0xFF doubled (it cannot be
    in UTF-8, but a caller's bytes could be anything)."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n").encode("utf-8")
    return data.replace(b"\xff", b"\xff\xff")


def negotiation(verb: int, option: int) -> bytes:
    return bytes((IAC, verb, option))


def subnegotiation(option: int, payload: bytes) -> bytes:
    return bytes((IAC, SB, option)) + payload.replace(b"\xff", b"\xff\xff") + bytes((IAC, SE))


def mssp_payload(variables: dict[str, str]) -> bytes:
    """The body of an MSSP subnegotiation: ``VAR name VAL value`` for each variable
    (markers and IAC taken out of names and values, so none can end it early)."""
    def clean(text: str) -> bytes:
        return text.encode("utf-8").translate(None, bytes((0, MSSP_VAR, MSSP_VAL, IAC)))

    return b"".join(bytes((MSSP_VAR,)) + clean(name) + bytes((MSSP_VAL,)) + clean(value)
                    for name, value in variables.items())
