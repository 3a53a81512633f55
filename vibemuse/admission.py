"""Admission of client connections: a server-wide cap below the descriptor limit,
and an accept loop that survives running out of descriptors.

Theory of operation. Every client connection costs a file descriptor, as do
the database, the signing key, log files, listening sockets and connections to
other servers. At start the server raises its soft descriptor limit to the hard
one (where the system allows) and sets ``max_connections`` below it, keeping a
tenth (at least ``RESERVED_DESCRIPTORS``) for everything else.

Connections count from accept to close: HTTP connections while the HTTP layer
holds them (``handle_stream`` to ``on_close``), WebSocket sockets from their
handshake to their end (the registry's holds; an upgrade moves a connection
from the first count to the second). A connection past ``max_connections`` is
handed to a small refusing server instead, which reads its request and
answers 503 ``server_full`` with ``Connection: close``; at most
``MAX_REFUSING`` of those are open at once (past that they are closed at
once), and each has ``REFUSAL_SECONDS`` to send its request.

If ``accept()`` itself fails for want of descriptors (EMFILE, ENFILE: the cap
is above what the process really has, or something else took them), Tornado's
loop would log and spin at full CPU while new connections hang in the
backlog. ``AcceptLoop`` instead frees its one reserve descriptor, accepts what
waits and refuses it (the 503 in plain HTTP, or just a close over TLS), takes
the reserve back, and stops accepting for ``ACCEPT_PAUSE_SECONDS``. Refusals
are logged at most once per ``LOG_PERIOD_SECONDS``, with their count.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import socket
import time
from typing import Any, Callable, Iterable

import tornado.httpserver
import tornado.web
from tornado.ioloop import IOLoop

from vibemuse.handlers.base import SERVER_FULL_RETRY_SECONDS, ServerFullHandler, server_full_body

log = logging.getLogger(__name__)

RESERVED_DESCRIPTORS = 64  # at least this many descriptors are kept from client connections
ACCEPT_BATCH = 128  # connections accepted per wake-up, like Tornado's
ACCEPT_PAUSE_SECONDS = 0.1  # out of descriptors: accepting stops this long
LOG_PERIOD_SECONDS = 10.0
REFUSAL_SECONDS = 2.0
MAX_REFUSING = 32
HTTP_IDLE_SECONDS = 60.0  # an HTTP connection without a (complete) request this long is closed
OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def raise_descriptor_limit() -> int:
    """Raise the soft RLIMIT_NOFILE towards the hard limit; the soft limit in force after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            log.warning("could not raise the file-descriptor limit from %d to %d", soft, target)
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def connection_ceiling(descriptors: int) -> int:
    """The most client connections ``descriptors`` allow, keeping room for everything else."""
    return max(1, descriptors - max(RESERVED_DESCRIPTORS, descriptors // 10))


def effective_max_connections(configured: int, descriptors: int) -> int:
    """``max_connections`` in force: the configured one (0: the ceiling), never above the ceiling."""
    ceiling = connection_ceiling(descriptors)
    if configured == 0:
        return ceiling
    if configured > ceiling:
        log.warning("max_connections = %d is more than %d file descriptors allow: using %d",
                    configured, descriptors, ceiling)
        return ceiling
    return configured


class RefusalLog:
    """Counts refusals and says so at most once per period (so a storm cannot flood the log)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.unreported = 0
        self.reported_at = float("-inf")

    def refused(self, why: str, count: int = 1) -> None:
        self.unreported += count
        now = self.clock()
        if now - self.reported_at >= LOG_PERIOD_SECONDS:
            log.warning("refusing connections: %s (%d refused since the last report)", why, self.unreported)
            self.unreported, self.reported_at = 0, now


class CountingHTTPServer(tornado.httpserver.HTTPServer):
    """An HTTPServer that knows how many connections its HTTP layer holds."""

    def initialize(self, *args: Any, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.open_connections = 0

    def handle_stream(self, stream: Any, address: Any) -> None:
        self.open_connections += 1
        super().handle_stream(stream, address)

    def on_close(self, server_conn: Any) -> None:
        self.open_connections -= 1
        super().on_close(server_conn)


class AdmittingHTTPServer(CountingHTTPServer):
    """The server's HTTPServer: admits connections up to ``max_connections``."""

    def initialize(self, *args: Any, max_connections: int, open_sockets: Callable[[], int], **kwargs: Any) -> None:
        super().initialize(*args, idle_connection_timeout=HTTP_IDLE_SECONDS, **kwargs)
        self.max_connections = max_connections
        self.open_sockets = open_sockets
        self.refusals = RefusalLog()
        self._refusing = CountingHTTPServer(
            tornado.web.Application([(r".*", ServerFullHandler)], log_function=_unlogged), no_keep_alive=True,
            idle_connection_timeout=REFUSAL_SECONDS, body_timeout=REFUSAL_SECONDS, max_body_size=64 * 1024)
        self._reserve = Reserve(plain=self.ssl_options is None)

    @property
    def connections(self) -> int:
        return self.open_connections + self.open_sockets()

    def handle_stream(self, stream: Any, address: Any) -> None:
        if self.connections < self.max_connections:
            super().handle_stream(stream, address)
            return
        self.refusals.refused(f"max_connections ({self.max_connections}) reached")
        if self._refusing.open_connections >= MAX_REFUSING:
            stream.close()
            return
        self._refusing.handle_stream(stream, address)

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        """Like Tornado's, with ``AcceptLoop`` in place of ``netutil.add_accept_handler``."""
        for sock in sockets:
            loop = AcceptLoop(sock, self._handle_connection, self._reserve, self.refusals)
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = loop.stop

    def stop(self) -> None:
        super().stop()
        self._reserve.close()


def _unlogged(handler: Any) -> None:
    """Refusals are counted by ``RefusalLog``, not logged one by one."""


class Reserve:
    """One descriptor held back so that, out of descriptors, what waits can still be refused."""

    def __init__(self, plain: bool):
        self.plain = plain  # plain HTTP: a refusal gets the 503; over TLS it is only closed
        self.refusal = _raw_refusal()
        self.fd: int | None = self._take()

    @staticmethod
    def _take() -> int | None:
        try:
            return os.open(os.devnull, os.O_RDONLY)
        except OSError:
            return None

    def refuse_waiting(self, listening: socket.socket) -> int:
        """Accept and refuse the connections waiting on ``listening``; how many."""
        refused = 0
        while self.fd is not None and refused < ACCEPT_BATCH:
            os.close(self.fd)
            try:
                connection, _ = listening.accept()
            except OSError:
                connection = None
            if connection is not None:
                self._refuse(connection)
                refused += 1
            self.fd = self._take()
            if connection is None:
                break
        return refused

    def _refuse(self, connection: socket.socket) -> None:
        try:
            connection.setblocking(False)
            if self.plain:
                connection.send(self.refusal)
        except OSError:
            pass
        finally:
            connection.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _raw_refusal() -> bytes:
    body = server_full_body()
    return (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
            b"Cache-Control: no-store\r\nRetry-After: %d\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
            % (SERVER_FULL_RETRY_SECONDS, len(body), body))


class AcceptLoop:
    """Accepts connections on one listening socket; out of descriptors, refuses and pauses."""

    def __init__(self, listening: socket.socket, on_connection: Callable[[socket.socket, Any], None],
                 reserve: Reserve, refusals: RefusalLog):
        self.listening = listening
        self.on_connection = on_connection
        self.reserve = reserve
        self.refusals = refusals
        self.io_loop = IOLoop.current()
        self.stopped = False
        self.paused: object | None = None
        self.io_loop.add_handler(listening, self._ready, IOLoop.READ)

    def stop(self) -> None:
        self.stopped = True
        if self.paused is not None:
            self.io_loop.remove_timeout(self.paused)
            self.paused = None
        else:
            self.io_loop.remove_handler(self.listening)

    def _ready(self, fd: Any, events: int) -> None:
        for _ in range(ACCEPT_BATCH):
            if self.stopped or self.paused is not None:
                return
            try:
                connection, address = self.listening.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as error:
                if error.errno not in OUT_OF_DESCRIPTORS:
                    raise
                self._out_of_descriptors(error)
                return
            self.on_connection(connection, address)

    def _out_of_descriptors(self, error: OSError) -> None:
        refused = self.reserve.refuse_waiting(self.listening)
        self.refusals.refused(f"out of file descriptors ({errno.errorcode.get(error.errno, error.errno)})",
                              max(refused, 1))
        self.io_loop.remove_handler(self.listening)
        self.paused = self.io_loop.call_later(ACCEPT_PAUSE_SECONDS, self._resume)

    def _resume(self) -> None:
        self.paused = None
        if not self.stopped:
            self.io_loop.add_handler(self.listening, self._ready, IOLoop.READ)
