"""``vibemuse serve --workers N``: N processes of one server on this machine, one port.

Theory of operation. The parent process forks the workers before it makes
anything they could share by mistake (no event loop, no thread, no database
connection yet); each worker is a whole server process that binds the port
with ``SO_REUSEPORT``, so the kernel spreads new connections over them, and
they work together through the bus (``bus_url``) and the one PostgreSQL
database. The parent only watches: a worker that dies (``kill -9``, a
crash) is started again after a second, its clients reconnect to the
others meanwhile; SIGTERM or SIGINT to the parent is passed to every worker,
which closes its sockets with 1001 and ends, and the parent ends with them
(a worker sent SIGTERM on its own just ends); SIGHUP is passed on too (each
worker reloads the signing keys).
A worker that stops because it cannot run at all (a configuration or schema
error: exit codes 2 and 3) stops the others too, rather than failing again
and again.

Why ``SO_REUSEPORT`` rather than one socket shared by the forks: each worker
has its own accept queue, filled by the kernel by a hash of the connection,
so one busy worker does not take more than its share, and a worker started
again binds the port anew like any other.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Callable

log = logging.getLogger(__name__)

FATAL_EXIT_CODES = (2, 3)  # a bad configuration, a schema that needs migrating: starting again will not help
RESTART_DELAY_SECONDS = 1.0


def supervise(count: int, run_worker: Callable[[int], int]) -> int:
    """Run ``run_worker(index)`` in ``count`` forked processes until told to stop; its exit code."""
    children: dict[int, int] = {}  # pid -> worker index
    stopping = False
    exit_code = 0

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the server listens for it: a key reload
            code = 1
            try:
                code = run_worker(index)
            except BaseException:  # noqa: BLE001  # a worker's failure ends the worker, never the parent's loop
                log.exception("worker %d failed", index)
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = index
        log.info("worker %d started (pid %d)", index, pid)

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def reload(signum: int, _frame: object) -> None:  # SIGHUP: every worker picks up rotated keys
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGHUP)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    for index in range(count):
        spawn(index)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, None)
        if index is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        if stopping:
            continue
        if code == 0:  # told to stop on its own (SIGTERM to it alone): the others go on
            log.info("worker %d (pid %d) stopped", index, pid)
            continue
        if code in FATAL_EXIT_CODES:
            log.error("worker %d (pid %d) cannot run (exit code %d): stopping the others", index, pid, code)
            exit_code = code
            stop(signal.SIGTERM, None)
            continue
        log.warning("worker %d (pid %d) ended (%s); starting it again", index, pid,
                    f"signal {-code}" if code < 0 else f"exit code {code}")
        time.sleep(RESTART_DELAY_SECONDS)
        if not stopping:
            spawn(index)
    return exit_code
