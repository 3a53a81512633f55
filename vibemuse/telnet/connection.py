"""One telnet client: the login screen, then a player like any socket's.

Theory of operation. The connection reads what the client sends, feeds it to
the pure ``TelnetReader`` and answers negotiations through ``Options``. Lines
are handled one at a time, in order (reading waits while a line is handled).
Before login a line is a login-screen command (``connect``, ``create``,
``WHO``, ``QUIT``). A login opens a session (an access token, revoked when the
connection ends), and the connection joins the registry as one of the user's
connections: the same presence, WHO, limits, rooms, pages and channels as a
WebSocket. From then on a line is a MUSH command line, handed to the same
handler as a ``command`` frame (``handlers.frames.dispatch``), except the few
that only mean something here (``QUIT``, ``look``, ``help``, ``@ansi``).

Everything the server sends a socket reaches this connection as a server
frame, either as an object (answers) or as the encoded WebSocket frame the bus
carries (deliveries); ``telnet.screen`` turns it into MUSH lines and
``telnet.ansi`` draws their styles when the client takes colour. A client that
reads too slowly is cut once ``outbound_queue_bytes`` wait for it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
import zlib
from typing import Any

from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamBufferFullError, StreamClosedError

from vibemuse import __version__
from vibemuse.context import ServerContext
from vibemuse.handlers.frames import dispatch
from vibemuse.handlers.session import start_session
from vibemuse.protocol.errors import CloseCode, ErrorCode, ProtocolError
from vibemuse.protocol.frames import ClientFrame, ServerFrame
from vibemuse.realtime.wire import decode_text_frame
from vibemuse.services.accounts import Principal, Session, hash_token
from vibemuse.handlers.wire import membership_to_wire
from vibemuse.logs import connection_id as logged_connection_id
from vibemuse.telnet import gmcp, screen
from vibemuse.telnet.ansi import render_spans
from vibemuse.telnet.codec import (
    DO, GMCP, MCCP2, MSSP, TIMING_MARK, Command, Line, LineTooLong, Negotiation, Subnegotiation, TelnetReader,
    encode_text,
    mssp_payload, negotiation, subnegotiation,
)
from vibemuse.telnet.options import Options

log = logging.getLogger(__name__)

LOGIN_SECONDS = 300.0  # a connection that has not logged in by then is closed
FLUSH_SECONDS = 5.0  # how long a closing connection's last lines may take to go out
READ_CHUNK = 4096
# MCCP2's deflate stream: a 4 KiB window and a small state (about 20 KiB a connection, not 270)
MCCP_WINDOW_BITS, MCCP_MEMORY_LEVEL = 12, 5

CLOSE_LINES = {
    CloseCode.GOING_AWAY: "The server is shutting down. Come back soon.",
    CloseCode.HEARTBEAT_TIMEOUT: "Your connection timed out.",
    CloseCode.TOKEN_EXPIRED: "Your session has expired; connect again.",
    CloseCode.LOGGED_OUT: "You were logged out.",
    CloseCode.SPAM: "You were disconnected for flooding.",
    CloseCode.KICKED: "You were disconnected by an admin.",
    CloseCode.BANNED: "You are banned from this server.",
    CloseCode.INTERNAL_ERROR: "The server could not start your session; connect again.",
    CloseCode.NORMAL: "Goodbye.",
}


def max_line_bytes(config: Any) -> int:
    """The longest input line: a command word and the longest text, 4 bytes a character."""
    return 4 * config.max_text_length + 256


class TelnetConnection:
    transport = "telnet"  # what GET /api/admin/sessions calls it

    def __init__(self, context: ServerContext, stream: IOStream, address: str, started_s: int = 0):
        """``started_s``: when the server started serving (Unix seconds, for MSSP)."""
        self.context = context
        self.started_s = started_s
        self.stream = stream
        self.address = address
        self.connection_id = context.registry.new_connection_id()
        self.principal: Principal | None = None
        self.last_seen = time.monotonic()
        self.reader = TelnetReader(max_line_bytes(context.config))
        self.options = Options()
        self.screen = screen.Screen()
        self.colour: bool | None = None  # the player's @ansi choice; None: what the client said
        self._held: list[tuple[int | None, bytes]] | None = None
        self._closing = False
        self._flushing = False  # close() is sending the last line, then closes the stream
        self._password_for: str | None = None  # connect <name>: the next line is the password
        self._ids = itertools.count(1)
        self._login_deadline: Any = None
        self._compressor: Any = None  # zlib's, while MCCP2 is on

    # -- the Connection shape of the registry -------------------------------

    @property
    def user_id(self) -> str:
        return self.principal.user_id if self.principal else ""

    @property
    def token_hash(self) -> str:
        return self.principal.token_hash if self.principal else ""

    @property
    def expires_ms(self) -> int | None:
        return self.principal.expires_ts if self.principal else None

    def send_text(self, text: str) -> None:
        self._print(text)

    def send_encoded(self, frame: bytes, position: int | None = None) -> None:
        if self._held is not None:
            self._held.append((position, frame))
            return
        self._show(json.loads(decode_text_frame(frame)))

    def ping(self) -> None:
        """The heartbeat: a client that answers timing marks is asked for one (its answer
        counts as life); for one that does not, the TCP keep-alive watches the line."""
        if self.options.answers_timing_mark:
            self._write(negotiation(DO, TIMING_MARK))
        else:
            self.last_seen = time.monotonic()

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        if self._closing:
            return
        self._closing = self._flushing = True
        self._unregister()
        line = CLOSE_LINES.get(code, reason)  # type: ignore[call-overload]
        IOLoop.current().spawn_callback(self._flush_and_close, line)

    # -- what frames.dispatch and start_session call ---------------------------

    @property
    def queued_bytes(self) -> int:
        """Bytes the client has not read yet (IOStream's write buffer)."""
        return getattr(self.stream, "_write_buffer_size", 0)

    def send_frame(self, frame: ServerFrame) -> None:
        if self._held is not None:  # behind what is held, as on a socket (spec 5.3)
            self._held.append((None, self.context.broadcaster.encode(frame)))
            return
        self._show(json.loads(frame.encode()))

    def send_session_frame(self, frame: ServerFrame) -> None:
        self._show(json.loads(frame.encode()))

    def send_prepared(self, frame: bytes) -> None:
        self._show(json.loads(decode_text_frame(frame)))

    # -- the life of the connection --------------------------------------------

    async def run(self) -> None:
        logged_connection_id.set(self.connection_id)  # for every log record of this session
        self._login_deadline = IOLoop.current().call_later(LOGIN_SECONDS, self._login_timed_out)
        try:
            self._write(self.options.start())
            self._print(screen.WELCOME.format(server=self.context.server_name, software=screen.SOFTWARE,
                                              version=__version__))
            while not self._closing:
                data = await self.stream.read_bytes(READ_CHUNK, partial=True)
                self.last_seen = time.monotonic()
                for event in self.reader.feed(data):
                    if self._closing:
                        break
                    await self._event(event)
        except StreamClosedError:
            pass
        finally:
            self._ended()

    async def _event(self, event: Any) -> None:
        if isinstance(event, Line):
            await self._line(event.data)
        elif isinstance(event, LineTooLong):
            self._print(f"That line is too long (at most {event.limit} bytes); it was not run.")
        elif isinstance(event, Negotiation):
            reply = self.options.received(event.verb, event.option)
            if self._compressor is not None and not self.options.us(MCCP2):
                self._end_compression()  # the client turned it off: what follows is plain
            self._write(reply)
            for option in self.options.started:
                self._started(option)
            self.options.started.clear()
        elif isinstance(event, Subnegotiation):
            self._write(self.options.subnegotiated(event.option, event.payload))
        elif isinstance(event, Command) and event.code == 246:  # AYT: are you there?
            self._print("[Yes]")

    async def _line(self, data: bytes) -> None:
        try:
            line = data.decode("utf-8")
        except UnicodeDecodeError:
            self._password_for = None
            self._write(self.options.show_input())
            self._print("That line is not UTF-8 text, so it was not run; set your client to UTF-8.")
            return
        try:
            if self._password_for is not None:
                await self._password(line)
            elif self.principal is None:
                await self._login_screen(line)
            elif line.strip():
                started = time.perf_counter()
                self.context.metrics.frame_received("command")
                await self._command(line)
                self.context.metrics.frame_answered("command", started)
        except ProtocolError as error:
            self.context.metrics.refused(error.code)
            self._show({"type": "error", "data": error.to_wire()})

    # -- the login screen -------------------------------------------------------

    async def _login_screen(self, line: str) -> None:
        word, _, rest = line.strip().partition(" ")
        word, rest = word.lower(), rest.strip()
        if word == "connect":
            name, _, password = rest.partition(" ")
            if name and not password:
                self._password_for = name
                self._write(self.options.hide_input())
                self._print("Password:")
                return
            if not name:
                self._print("Usage: connect <name> <password>")
                return
            await self._log_in(self.context.accounts.login(name, password.strip(), self.address))
        elif word == "create":
            name, _, password = rest.partition(" ")
            if not name or not password.strip():
                self._print("Usage: create <name> <password>")
                return
            self.context.guard.limit("register_address", self.address)
            await self._log_in(self.context.accounts.register(name, password.strip()))
        elif word == "who":
            self.context.guard.limit("queries", self.address)
            users, total = self.context.presence.who()
            self._show({"type": "who", "data": {"users": users, "total": total}})
        elif word == "quit":
            self.close(CloseCode.NORMAL, "quit")
        elif word:
            self._print(screen.WELCOME.split("\n", 2)[2].rstrip("\n"))

    async def _password(self, line: str) -> None:
        name, self._password_for = self._password_for, None
        self._write(self.options.show_input())
        self._print("")  # the client echoed nothing, not even the line end
        await self._log_in(self.context.accounts.login(name or "", line.strip(), self.address))

    async def _log_in(self, opening: Any) -> None:
        session: Session = await opening
        principal = Principal(user=session.user, token_hash=hash_token(session.access_token),
                              expires_ts=session.expires_ts)
        limit = self.context.config.max_connections_per_user
        if self.context.presence.sockets_anywhere(principal.user_id) >= limit:
            await self.context.accounts.logout(principal)
            raise ProtocolError(ErrorCode.TOO_MANY_CONNECTIONS, f"At most {limit} connections per user.")
        if self._closing:
            await self.context.accounts.logout(principal)
            return
        self.principal = principal
        self.screen.viewer = principal.user_id
        if self._login_deadline is not None:
            IOLoop.current().remove_timeout(self._login_deadline)
            self._login_deadline = None
        await self._start()

    async def _start(self) -> None:
        """As a socket after ``welcome``: registered, roster, waiting pages, then live."""
        context, user = self.context, self.principal.user
        await self._gmcp_player()
        self._held = []
        context.registry.add(self)
        location = context.presence.location_of(user)
        context.presence.socket_opened(user)
        try:
            sent = await start_session(self, location, None)
        except Exception:
            log.exception("could not start the telnet session of %s", self.user_id)
            self._held = None
            self.close(CloseCode.INTERNAL_ERROR, "session start failed")
            return
        held, self._held = self._held or [], None
        for position, frame in held:
            if position is None or position not in sent:
                self.send_encoded(frame)
        context.presence.went_live(self.user_id)

    def _started(self, option: int) -> None:
        if option == GMCP and self.principal is not None:
            IOLoop.current().spawn_callback(self._gmcp_player)
        elif option == MSSP:
            self._write(subnegotiation(MSSP, mssp_payload(self._status())))
        elif option == MCCP2:
            self._write(subnegotiation(MCCP2, b""))  # everything after this is compressed
            self._compressor = zlib.compressobj(6, zlib.DEFLATED, MCCP_WINDOW_BITS, MCCP_MEMORY_LEVEL)

    def _end_compression(self) -> None:
        compressor, self._compressor = self._compressor, None
        self._write(compressor.flush(zlib.Z_FINISH))

    async def _gmcp_player(self) -> None:
        """GMCP at login (or when the client turns it on later): who the player is, and
        their channels."""
        if not self.options.us(GMCP) or self.principal is None:
            return
        self._gmcp([gmcp.char_name(self.user_id, self.principal.user.username)])
        await self._gmcp_channels()

    async def _gmcp_channels(self) -> None:
        try:
            memberships = await self.context.channels.memberships(self.principal)
        except Exception:
            log.warning("could not list the channels of %s for GMCP", self.user_id, exc_info=True)
            return
        self._gmcp([gmcp.channel_list([membership_to_wire(member, channel) for member, channel in memberships])])

    def _gmcp(self, messages: list[gmcp.Message]) -> None:
        if messages and self.options.us(GMCP):
            self._write(b"".join(gmcp.encode_gmcp(package, value) for package, value in messages))

    def _status(self) -> dict[str, str]:
        """What MSSP tells listing crawlers."""
        return {"NAME": self.context.server_name, "PLAYERS": str(len(self.context.presence.online_user_ids())),
                "UPTIME": str(self.started_s), "CODEBASE": f"{screen.SOFTWARE} {__version__}",
                "FAMILY": "TinyMUD", "ANSI": "1", "UTF-8": "1", "PORT": str(self.stream.socket.getsockname()[1])}

    def _login_timed_out(self) -> None:
        self._login_deadline = None
        if self.principal is None:
            self.close(CloseCode.AUTH_TIMEOUT, "You took too long to log in. Goodbye.")

    # -- a logged-in player's lines ------------------------------------------------

    async def _command(self, line: str) -> None:
        context = self.context
        context.presence.input(self.user_id)
        word, _, rest = line.strip().partition(" ")
        word = word.lower()
        if word == "quit":
            self.close(CloseCode.NORMAL, "quit")
        elif word in ("look", "l"):
            context.guard.limit("queries", self.user_id)
            location = context.presence.subscriptions.location_of(self.user_id)
            self.send_frame(await context.chat.roster_frame(self.user_id, location))
        elif word == "help":
            self._print(screen.HELP)
        elif word == "@ansi":
            self._ansi(rest.strip().lower())
        else:
            # The message id is the idempotency key of what the line does (spec 14.7): unique
            # across connections and restarts, as the connection id is.
            frame = ClientFrame("command", f"{self.connection_id}.{next(self._ids)}", {"line": line})
            await dispatch(self, frame)  # type: ignore[arg-type]

    def _ansi(self, setting: str) -> None:
        if setting in ("on", "off"):
            self.colour = setting == "on"
        state = "on" if self._colours() else "off"
        self._print(f"Colour is {state}." if setting in ("on", "off", "") else "Usage: @ansi on|off")

    # -- output --------------------------------------------------------------------

    def _colours(self) -> int:
        detected = self.options.terminal.colours
        if self.colour is None:
            return detected
        return (detected or 8) if self.colour else 0

    def _show(self, frame: dict[str, Any]) -> None:
        messages = gmcp.gmcp_messages(frame, self.user_id, self.screen.arrival(frame)) \
            if self.options.us(GMCP) else []
        lines = self.screen.render(frame)
        if lines:
            colours = self._colours()
            self._write(encode_text("".join(render_spans(spans, colours) + "\n" for spans in lines)))
        self._gmcp(messages)
        if self.options.us(GMCP) and gmcp.is_own_membership(frame, self.user_id):
            IOLoop.current().spawn_callback(self._gmcp_channels)

    def _print(self, text: str) -> None:
        self._write(encode_text(text + "\n"))

    def _write(self, data: bytes) -> None:
        if not data or self._closing or self.stream.closed():
            return
        if self._compressor is not None:
            data = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        try:
            self.stream.write(data).add_done_callback(_written)
        except StreamBufferFullError:
            # A client that does not read: cut it on the next loop turn, never here (the
            # fan-out loop that called us is walking the registry: spec 14.11).
            self._closing = True
            IOLoop.current().add_callback(self._drop_slow_reader)
        except StreamClosedError:
            pass

    def _drop_slow_reader(self) -> None:
        self.context.metrics.slow_consumer_closes.inc()
        self._unregister()
        self.stream.close()

    async def _flush_and_close(self, line: str) -> None:
        if line and not self.stream.closed():
            try:
                data = encode_text(line + "\n")
                if self._compressor is not None:
                    data = self._compressor.compress(data) + self._compressor.flush(zlib.Z_FINISH)
                await asyncio.wait_for(self.stream.write(data), FLUSH_SECONDS)
            except (StreamClosedError, StreamBufferFullError, asyncio.TimeoutError):
                pass
        self.stream.close()

    # -- the end -------------------------------------------------------------------

    def _unregister(self) -> None:
        if self.principal is not None and self.context.registry.discard(self):
            self.context.presence.socket_closed(self.principal.user_id)

    def _ended(self) -> None:
        """The client went away (or we closed): unregister, and revoke the session's token."""
        self._closing = True
        if self._login_deadline is not None:
            IOLoop.current().remove_timeout(self._login_deadline)
            self._login_deadline = None
        self._unregister()
        if not self._flushing:
            self.stream.close()
        if self.principal is not None:
            IOLoop.current().spawn_callback(self._revoke)

    async def _revoke(self) -> None:
        try:
            await self.context.accounts.logout(self.principal)
        except Exception:  # the database is gone (shutting down): the token expires on its own
            log.debug("could not revoke the telnet session of %s", self.user_id, exc_info=True)


def _written(future: "asyncio.Future[None]") -> None:
    """Write errors surface as the read loop's StreamClosedError; nothing to report here."""
    if not future.cancelled():
        future.exception()


