"""The server's own deadlines: an unauthenticated socket's (protocol.md 5.2) and the heartbeat's (5.5).

Both are waited out in full, so they cost what the server's published limits
say: ``limits.authTimeoutMs`` (10 s by default) and ``heartbeatTimeoutMs``
plus up to one ``heartbeatIntervalMs`` (85 s by default). A wait longer than
``SLOW_SECONDS`` runs only with ``--slow`` (skipped, "needs --slow",
otherwise). The waits overlap: every socket is opened first, then each check
waits for its own.
"""

from __future__ import annotations

import asyncio
import time

from vibemuse_conformance.harness import Harness
from vibemuse_conformance.players import SUBPROTOCOL
from vibemuse_conformance.runner import SectionRun, Skip, section
from vibemuse_conformance.silent import SilentSocket

SLOW_SECONDS = 15.0  # a check that must wait longer than this runs only with --slow
GRACE_SECONDS = 10.0  # what a close may come after its deadline on a loaded machine


def waits(harness: Harness) -> tuple[float, float]:
    """How long the auth timeout and the heartbeat timeout take at most, in seconds (published limits)."""
    limits = harness.server.limits
    return limits.auth_timeout_ms / 1000, (limits.heartbeat_timeout_ms + limits.heartbeat_interval_ms) / 1000


def too_slow(harness: Harness, seconds: float, what: str) -> str | None:
    if seconds > SLOW_SECONDS and not harness.slow:
        return f"needs --slow ({what} takes up to {seconds:.0f} s)"
    return None


async def timed_close(socket, timeout: float, started: float) -> tuple[int | None, float]:
    """Wait for the server to close ``socket``: its close code and the seconds since ``started``."""
    code = await socket.closed(timeout)
    return code, time.monotonic() - started


@section("timeouts", "protocol.md 5.2, 5.5 the auth and heartbeat timeouts")
async def timeouts(run: SectionRun) -> None:
    harness = run.harness
    server = harness.server
    limits = server.limits
    auth_seconds, heartbeat_seconds = waits(harness)
    account = await harness.account("c")
    auth_skip = "not offered by the server: frame_auth" if not server.has("frame_auth") else \
        too_slow(harness, auth_seconds, "limits.authTimeoutMs")
    heartbeat_skip = too_slow(harness, heartbeat_seconds, "limits.heartbeatTimeoutMs + heartbeatIntervalMs")
    if auth_skip is not None and heartbeat_skip is not None:
        raise Skip(f"{auth_skip}; {heartbeat_skip}")
    waiting: dict[str, asyncio.Task] = {}
    if auth_skip is None:
        started = time.monotonic()
        quiet = await harness.raw()
        early = await harness.raw()
        early.send({"type": "ping", "messageId": "early", "data": {}})
        waiting["quiet"] = asyncio.create_task(timed_close(quiet, auth_seconds + GRACE_SECONDS, started))
        first = await early.read()
        waiting["early"] = asyncio.create_task(timed_close(early, auth_seconds + GRACE_SECONDS, started))
    if heartbeat_skip is None:
        await harness.pacer.take(server.base_url, "address", "handshake_address")
        started = time.monotonic()
        silent = await SilentSocket.open(server.ws_url, token=account.token, subprotocol=SUBPROTOCOL,
                                         check=harness.check_frame)
        waiting["silent"] = asyncio.create_task(timed_close(silent, heartbeat_seconds + GRACE_SECONDS, started))
        alive = await harness.raw(token=account.token)  # Tornado's client answers every ping
        await alive.read_type("roster")
    try:
        async with run.check("a socket that sends nothing is closed with 4001, not before limits.authTimeoutMs") as c:
            if auth_skip is not None:
                raise Skip(auth_skip)
            code, seconds = await waiting["quiet"]
            c.equal(code, 4001, "the close code (AUTH_TIMEOUT)")
            c.expect(seconds >= auth_seconds, f"the close after authTimeoutMs ({auth_seconds:.1f} s)",
                     f"after {seconds:.2f} s")
        async with run.check("a frame before auth gets not_authenticated; the deadline still runs (4001)") as c:
            if auth_skip is not None:
                raise Skip(auth_skip)
            c.expect(first is not None and first["type"] == "error", "an error frame", first)
            c.equal((first["data"]["code"], first["data"].get("inReplyTo")), ("not_authenticated", "early"),
                    "the code and inReplyTo")
            code, seconds = await waiting["early"]
            c.equal(code, 4001, "the close code (AUTH_TIMEOUT)")
        async with run.check("a socket that answers no ping is closed with 4004, not before heartbeatTimeoutMs") as c:
            if heartbeat_skip is not None:
                raise Skip(heartbeat_skip)
            code, seconds = await waiting["silent"]
            c.equal(code, 4004, "the close code (HEARTBEAT_TIMEOUT)")
            c.expect(seconds >= limits.heartbeat_timeout_ms / 1000,
                     f"the close after heartbeatTimeoutMs ({limits.heartbeat_timeout_ms / 1000:.1f} s)",
                     f"after {seconds:.2f} s")
            types = [f["type"] for f in silent.frames]
            c.equal(types[:2], ["welcome", "roster"], "the first frames")
            if limits.heartbeat_timeout_ms > limits.heartbeat_interval_ms:
                c.expect(silent.pings >= 1, "a WebSocket ping every heartbeatIntervalMs before the close",
                         f"{silent.pings} pings")
        async with run.check("a socket that answers the pings, silent as long, stays open") as c:
            if heartbeat_skip is not None:
                raise Skip(heartbeat_skip)
            alive.send({"type": "ping", "messageId": "alive", "data": {}})
            pong = await alive.read_type("pong")
            c.equal(pong["data"]["inReplyTo"], "alive", "the pong's inReplyTo")
    finally:
        for task in waiting.values():
            task.cancel()
        await asyncio.gather(*waiting.values(), return_exceptions=True)
        if "silent" in waiting:
            silent.close()
