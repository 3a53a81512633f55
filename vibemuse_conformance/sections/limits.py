"""Errors and limits: sizes, sockets per user, rate limits (protocol.md 7, 11, 18). Runs late: it
empties buckets on purpose."""

from __future__ import annotations

import asyncio
import json

from vibemuse_conformance.harness import HandshakeRefused
from vibemuse_conformance.runner import CheckFailed, SectionRun, Skip, section
from vibemuse_conformance.sections.session import error_code

MAX_BYTES_SENT = 4 << 20  # the suite does not send more than this to prove a size limit
PING_FLOOD = 150  # pings sent at once to find the queries limit


@section("limits", "protocol.md 7, 11, 18 errors and limits")
async def limits(run: SectionRun) -> None:
    harness = run.harness
    server = harness.server
    published = server.limits
    account = await harness.account("c")

    async def socket():
        raw = await harness.raw(token=account.token)
        await raw.read_type("roster")
        return raw

    async with run.check("a message over limits.maxFrameBytes: close 1009, no error frame") as c:
        if published.max_frame_bytes > MAX_BYTES_SENT:
            raise Skip(f"maxFrameBytes {published.max_frame_bytes} is more than the suite sends")
        raw = await socket()
        raw.frames.clear()
        raw.send(json.dumps({"type": "ping", "messageId": "big", "data": {"pad": "x" * published.max_frame_bytes}}))
        c.equal(await raw.closed(), 1009, "the close code")
        c.equal([f["type"] for f in raw.frames if f["type"] == "error"], [], "error frames before the close")
    async with run.check("a binary message: close 1003") as c:
        raw = await socket()
        raw.send(b'{"type": "ping", "messageId": "bin", "data": {}}')
        c.equal(await raw.closed(), 1003, "the close code")
    async with run.check("a text over limits.maxTextLength: text_too_long with maxLength and length, nothing cut") as c:
        length = published.max_text_length + 1
        if length > 60000 or length * 4 + 200 > published.max_frame_bytes:
            raise Skip("maxTextLength does not fit in a frame the schema allows")
        raw = await socket()
        raw.send({"type": "say", "messageId": "long", "data": {"text": "é" * length}})
        error = await raw.read_type("error")
        c.equal(error["data"]["code"], "text_too_long", "the code")
        c.equal(error["data"].get("details"), {"maxLength": published.max_text_length, "length": length}, "details")
        raw.close()
    async with run.check("an HTTP body over limits.maxHttpBodyBytes: 413 payload_too_large") as c:
        if published.max_http_body_bytes > MAX_BYTES_SENT:
            raise Skip(f"maxHttpBodyBytes {published.max_http_body_bytes} is more than the suite sends")
        body = json.dumps({"username": "x", "password": "y" * published.max_http_body_bytes}).encode()
        status, _, answer = await harness.raw_http(server.base_url + "/api/auth/login", "POST", body,
                                           {"Content-Type": "application/json"})
        c.equal((status, error_code(run, answer)), (413, "payload_too_large"), "status and code")
    async with run.check("one socket over limits.maxConnectionsPerUser: HTTP 429 too_many_connections") as c:
        most = published.max_connections_per_user
        if most > 12:
            raise Skip(f"maxConnectionsPerUser {most} is more sockets than the suite opens")
        sockets = [await socket() for _ in range(most)]
        try:
            await harness.raw(token=account.token)
            raise CheckFailed("HTTP 429 too_many_connections", f"socket {most + 1} opened")
        except HandshakeRefused as refusal:
            c.equal((refusal.status, refusal.code), (429, "too_many_connections"), "status and code")
        for raw in sockets:
            raw.close()
            await raw.closed()
    async with run.check("a flood of pings: rate_limited with retryAfterMs and action; later, served again") as c:
        raw = await socket()
        for number in range(PING_FLOOD):
            raw.send({"type": "ping", "messageId": f"flood{number}", "data": {}})
        answers = []
        while len(answers) < PING_FLOOD:
            frame = await raw.read()
            if frame is None:
                raise CheckFailed("the socket to stay open", f"closed with {raw.close_code}")
            if frame["type"] in ("pong", "error"):
                answers.append(frame)
        refusals = [f for f in answers if f["type"] == "error"]
        if not refusals:
            raise Skip(f"the server answered all {PING_FLOOD} pings: its queries limit is above what the suite sends")
        details = refusals[0]["data"].get("details", {})
        c.equal(refusals[0]["data"]["code"], "rate_limited", "the refusal's code")
        c.expect(isinstance(details.get("retryAfterMs"), int), "details.retryAfterMs", details)
        c.equal(details.get("action"), "queries", "details.action")
        c.equal([f["data"]["inReplyTo"] for f in answers], [f"flood{n}" for n in range(PING_FLOOD)],
                "every ping answered once, in order")
        await asyncio.sleep(details["retryAfterMs"] / 1000 + 0.1)
        raw.send({"type": "ping", "messageId": "after", "data": {}})
        pong = await raw.read_type("pong")
        c.equal(pong["data"]["inReplyTo"], "after", "the next ping's pong")
        raw.close()
