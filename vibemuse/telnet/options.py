"""Telnet option negotiation, and what it tells about the client's terminal.

Theory of operation. :class:`Options` is the server's side of RFC 1143 (the
"Q method", simplified: no queued second request), which answers each
``WILL/WONT/DO/DONT`` only when it changes an option's state, so two parties
can never loop. The server offers MSSP (the MUD Server Status Protocol, for
listing crawlers), MCCP2 (compression of what it sends) and GMCP (room,
players and channels as data); when the client
agrees to one, it is added to :attr:`started` and the caller acts on it (sends
the status, starts compressing). It asks the client for two options, TTYPE (RFC 1091,
with MTTS: the client's name, its terminal, then ``MTTS <bits>``) and NAWS
(RFC 1073: the window's size), and offers ECHO itself only while a password is
typed (it then echoes nothing, so the password does not show). Every other
option is refused: ``DONT`` for a ``WILL``, ``WONT`` for a ``DO``.

TIMING-MARK (RFC 860) is the keep-alive: ``DO TIMING-MARK`` asks the client
to answer ``WILL`` or ``WONT`` once it has read everything before it. An
answer is proof of life and never changes a state.

Every method returns the bytes to send (possibly none) and records what it
learnt in :attr:`terminal`; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vibemuse.telnet.codec import (
    DO, DONT, ECHO, GMCP, MCCP2, MSSP, NAWS, TIMING_MARK, TTYPE, TTYPE_IS, TTYPE_SEND, WILL, WONT, negotiation,
    subnegotiation,
)

MAX_TTYPE_ROUNDS = 3  # client name, terminal type, MTTS
MAX_NAME_CHARACTERS = 64

# MTTS bits (the MUD Terminal Type Standard)
MTTS_ANSI, MTTS_UTF8, MTTS_256_COLORS, MTTS_TRUECOLOR = 1, 4, 8, 256

# Terminal and client names that draw ANSI colour (checked as prefixes, upper case).
ANSI_NAMES = ("ANSI", "XTERM", "LINUX", "SCREEN", "TMUX", "RXVT", "VT220", "VT320", "VT420", "VT525", "PUTTY",
              "KONSOLE", "GNOME", "ALACRITTY", "KITTY", "WEZTERM", "MUDLET", "MUSHCLIENT", "TINTIN", "TINYFUGUE",
              "POTATO", "CMUD", "ZMUD", "BEIP", "ATLANTIS", "MUDRAMMER", "BLOWTORCH", "MUKLUK", "AXMUD", "KILDCLIENT")

NO, YES, WANT_YES, WANT_NO = "no", "yes", "want-yes", "want-no"


@dataclass
class Terminal:
    """What the client said about itself."""

    names: list[str] = field(default_factory=list)  # TTYPE answers, in order, upper case
    mtts: int | None = None
    width: int | None = None
    height: int | None = None

    @property
    def colours(self) -> int:
        """0 (no colour), 8, 256 or 16777216 (24-bit)."""
        if self.mtts is not None:
            if self.mtts & MTTS_TRUECOLOR:
                return 1 << 24
            if self.mtts & MTTS_256_COLORS:
                return 256
            return 8 if self.mtts & MTTS_ANSI else 0
        if any("TRUECOLOR" in name or "24BIT" in name for name in self.names):
            return 1 << 24
        if any("256" in name for name in self.names):
            return 256
        return 8 if any(name.startswith(ANSI_NAMES) for name in self.names) else 0


class Options:
    """The server's side of option negotiation; see the module's theory of operation."""

    def __init__(self) -> None:
        self.terminal = Terminal()
        self._them: dict[int, str] = {}  # options the client performs (WILL/WONT from it)
        self._us: dict[int, str] = {}  # options the server performs (DO/DONT from the client)
        self._ttype_rounds = 0
        self.answers_timing_mark = False
        self.started: list[int] = []  # offers of ours the client took, for the caller to act on

    def start(self) -> bytes:
        """The opening requests: TTYPE and NAWS, a timing mark to learn whether the client
        answers them (the keep-alive uses it then), and the offers of MSSP, MCCP2 and GMCP."""
        self._us[MSSP] = self._us[MCCP2] = self._us[GMCP] = WANT_YES
        return (self._ask_them(TTYPE) + self._ask_them(NAWS) + negotiation(DO, TIMING_MARK)
                + negotiation(WILL, MSSP) + negotiation(WILL, MCCP2) + negotiation(WILL, GMCP))

    def _ask_them(self, option: int) -> bytes:
        self._them[option] = WANT_YES
        return negotiation(DO, option)

    def them(self, option: int) -> bool:
        return self._them.get(option) == YES

    def us(self, option: int) -> bool:
        return self._us.get(option) == YES

    # -- requests from the client ------------------------------------------

    def received(self, verb: int, option: int) -> bytes:
        if option == TIMING_MARK:
            return self._timing_mark(verb)
        if verb in (WILL, WONT):
            return self._client_offers(option, verb == WILL)
        return self._client_asks(option, verb == DO)

    def _timing_mark(self, verb: int) -> bytes:
        if verb in (WILL, WONT):
            self.answers_timing_mark = True  # the answer to our DO: nothing to say back
            return b""
        return negotiation(WONT, TIMING_MARK) if verb == DO else b""

    def _client_offers(self, option: int, will: bool) -> bytes:
        state = self._them.get(option, NO)
        wanted = option in (TTYPE, NAWS)
        if will:
            if state == YES:
                return b""
            if not wanted:
                return negotiation(DONT, option) if state == NO else b""
            reply = negotiation(DO, option) if state == NO else b""
            self._them[option] = YES
            return reply + self._enabled(option)
        self._them[option] = NO
        return negotiation(DONT, option) if state == YES else b""

    def _client_asks(self, option: int, do: bool) -> bytes:
        state = self._us.get(option, NO)
        if do:
            if state == YES:
                return b""
            if state == WANT_YES:  # the client agrees to what we offered
                self._us[option] = YES
                if option != ECHO:
                    self.started.append(option)
                return b""
            return negotiation(WONT, option)  # we offer nothing else
        self._us[option] = NO
        return negotiation(WONT, option) if state == YES else b""

    def _enabled(self, option: int) -> bytes:
        if option == TTYPE:
            return self._next_ttype()
        return b""

    def _next_ttype(self) -> bytes:
        self._ttype_rounds += 1
        return subnegotiation(TTYPE, bytes((TTYPE_SEND,)))

    # -- echo for passwords ----------------------------------------------------

    def hide_input(self) -> bytes:
        """Offer to echo (and echo nothing): the client stops showing what is typed."""
        if self._us.get(ECHO, NO) != NO:
            return b""
        self._us[ECHO] = WANT_YES
        return negotiation(WILL, ECHO)

    def show_input(self) -> bytes:
        """Give echo back to the client."""
        if self._us.get(ECHO, NO) == NO:
            return b""
        self._us[ECHO] = NO
        return negotiation(WONT, ECHO)

    # -- subnegotiations -----------------------------------------------------

    def subnegotiated(self, option: int, payload: bytes) -> bytes:
        if option == NAWS and self.them(NAWS) and len(payload) == 4:
            self.terminal.width = payload[0] << 8 | payload[1]
            self.terminal.height = payload[2] << 8 | payload[3]
        elif option == TTYPE and self.them(TTYPE) and payload[:1] == bytes((TTYPE_IS,)):
            return self._ttype_answer(payload[1:])
        return b""

    def _ttype_answer(self, raw: bytes) -> bytes:
        name = raw.decode("ascii", "replace")[:MAX_NAME_CHARACTERS].strip().upper()
        names = self.terminal.names
        repeated = bool(names) and names[-1] == name
        if not repeated:
            names.append(name)
            if name.startswith("MTTS ") and name[5:].isdigit():
                self.terminal.mtts = int(name[5:])
        if repeated or self.terminal.mtts is not None or self._ttype_rounds >= MAX_TTYPE_ROUNDS:
            return b""
        return self._next_ttype()
