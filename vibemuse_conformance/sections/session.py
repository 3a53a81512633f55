"""Versions, accounts, the handshake and frame envelopes (protocol.md sections 1-10)."""

from __future__ import annotations

import json
import re

from vibemuse_conformance.harness import HandshakeRefused
from vibemuse_conformance.runner import CheckFailed, SectionRun, Skip, section

USER_ID = re.compile(r"^@[a-z][a-z0-9_.\-]{1,31}:.+$")
ROOM_ID = re.compile(r"^![A-Za-z0-9]{16}:.+$")


def error_code(run: SectionRun, body) -> str | None:
    run.harness.spec.check("http/error.json", body)
    return body["error"]["code"]


@section("versions", "protocol.md 3 versions and features")
async def versions(run: SectionRun) -> None:
    server = run.harness.server
    async with run.check("GET /api/versions offers v1 and the subprotocol vibemuse.v1") as c:
        c.expect("v1" in server.versions.versions, "versions to hold v1", server.versions.versions)
        c.expect("vibemuse.v1" in server.versions.subprotocols, "subprotocols to hold vibemuse.v1",
                 server.versions.subprotocols)
        c.expect("v1" in server.versions.features, "features of v1", dict(server.versions.features))
    async with run.check("the answer carries Cache-Control: no-store and an X-Request-Id") as c:
        status, headers, body = await run.harness.raw_http(server.base_url + "/api/versions", "GET", None, {})
        c.equal(status, 200, "the status")
        c.expect("no-store" in headers.get("Cache-Control", ""), "Cache-Control: no-store",
                 headers.get("Cache-Control"))
        c.expect(headers.get("X-Request-Id"), "an X-Request-Id header (protocol.md 9)", dict(headers))
    async with run.check("the public key document names the server (events.md 8)") as c:
        keys = await run.harness.api().server_keys()
        c.equal(keys.get("server_name"), server.name, "server_name")
    async with run.check("a path outside the protocol is 404 not_found") as c:
        status, _, body = await run.harness.raw_http(server.base_url + f"/api/no-such-path-{run.harness.run_id}", "GET", None, {})
        c.equal((status, error_code(run, body)), (404, "not_found"), "status and code")
    async with run.check("a method not listed for a path is 405 method_not_allowed") as c:
        status, _, body = await run.harness.raw_http(server.base_url + "/api/versions", "DELETE", None, {})
        c.equal((status, error_code(run, body)), (405, "method_not_allowed"), "status and code")


@section("accounts", "protocol.md 4, 9 accounts and tokens")
async def accounts(run: SectionRun) -> None:
    harness = run.harness
    server = harness.server
    async with run.check("register answers a session: player, user id, default room", critical=True) as c:
        account = await harness.account("a")
        c.expect(USER_ID.match(account.user_id) and account.user_id.endswith(":" + server.name),
                 f"a user id @<lower-case name>:{server.name}", account.user_id)
        c.equal(account.user_id, f"@{account.username.lower()}:{server.name}", "the user id")
        c.equal(account.role, "player", "the role")
        c.expect(account.token.startswith("vmt_"), "an access token starting vmt_", account.token[:8])
        c.expect(ROOM_ID.match(account.location), "a room id as location", account.location)
    api = harness.api()
    async with run.check("a taken username, in another case, is 409 username_taken") as c:
        await harness.pacer.take(server.base_url, "address", "register_address")
        error = await harness.http_refused(api, "address", "POST", "/api/auth/register", "username_taken",
                                           {"username": account.username.upper(), "password": harness.password()},
                                           authenticated=False)
        c.equal(error.status, 409, "the status")
    async with run.check("login with a wrong password is 401 invalid_credentials") as c:
        await harness.pacer.take(server.base_url, "address", "login_address")
        await harness.http_refused(api, "address", "POST", "/api/auth/login", "invalid_credentials",
                                   {"username": account.username, "password": "not-" + account.password},
                                   authenticated=False)
    async with run.check("login is case-insensitive and makes a new token") as c:
        await harness.pacer.take(server.base_url, "address", "login_address")
        session = await harness.http(api, "address", "POST", "/api/auth/login",
                                     {"username": account.username.lower(), "password": account.password},
                                     authenticated=False)
        c.equal(session["user"]["id"], account.user_id, "the user id")
        c.expect(session["accessToken"] != account.token, "a new token", session["accessToken"][:8])
        second_token = session["accessToken"]
    async with run.check("GET /api/users/me with the token") as c:
        me = await harness.api(token=account.token).me()
        c.equal(me["user"]["id"], account.user_id, "user.id")
    async with run.check("no token is 401 not_authenticated, a bad one 401 invalid_token") as c:
        await harness.http_refused(harness.api(), "address", "GET", "/api/users/me", "not_authenticated")
        await harness.http_refused(harness.api(token="vmt_" + "A" * 43), "address", "GET", "/api/users/me",
                                   "invalid_token")
    async with run.check("a body not labelled application/json is 415 unsupported_media_type") as c:
        status, _, body = await run.harness.raw_http(server.base_url + "/api/auth/login", "POST",
                                         json.dumps({"username": "x", "password": "y"}).encode(),
                                         {"Content-Type": "text/plain"})
        c.equal((status, error_code(run, body)), (415, "unsupported_media_type"), "status and code")
    async with run.check("a body that is not JSON is 400 bad_json") as c:
        await harness.pacer.take(server.base_url, "address", "login_address")
        status, _, body = await run.harness.raw_http(server.base_url + "/api/auth/login", "POST", b"{not json",
                                         {"Content-Type": "application/json"})
        c.equal((status, error_code(run, body)), (400, "bad_json"), "status and code")
    async with run.check("logout revokes that token only, and closes its sockets with 4003") as c:
        raw = await harness.raw(token=second_token)
        await raw.read_type("welcome")
        await harness.http(harness.api(token=second_token), account.user_id, "POST", "/api/auth/logout")
        code = await raw.closed()
        c.equal(code, 4003, "the close code of the logged-out token's socket")
        await harness.http_refused(harness.api(token=second_token), "address", "GET", "/api/users/me",
                                   "invalid_token")
        me = await harness.api(token=account.token).me()
        c.equal(me["user"]["id"], account.user_id, "the other token still working")
    async with run.check("a password change (18.5): a new session; every old token revoked, its sockets closed "
                         "with 4003") as c:
        api = harness.api(token=account.token)
        await harness.pacer.take(server.base_url, "address", "login_address")
        await harness.http_refused(api, account.user_id, "POST", "/api/auth/password", "invalid_credentials",
                                   {"currentPassword": "not-" + account.password, "newPassword": harness.password()})
        await harness.pacer.take(server.base_url, "address", "login_address")
        await harness.http_refused(api, account.user_id, "POST", "/api/auth/password", "weak_password",
                                   {"currentPassword": account.password,
                                    "newPassword": "Zq9-" + account.username.upper() + "-x"})
        raw = await harness.raw(token=account.token)
        await raw.read_type("welcome")
        old_token, new_password = account.token, harness.password()
        await harness.pacer.take(server.base_url, "address", "login_address")
        session = await harness.http(api, account.user_id, "POST", "/api/auth/password",
                                     {"currentPassword": account.password, "newPassword": new_password})
        account.password, account.token = new_password, session["accessToken"]
        c.equal(session["user"]["id"], account.user_id, "the new session's user")
        c.equal(await raw.closed(), 4003, "the close code of the old token's socket")
        await harness.http_refused(harness.api(token=old_token), "address", "GET", "/api/users/me", "invalid_token")
        me = await harness.api(token=account.token).me()
        c.equal(me["user"]["id"], account.user_id, "the new token working")


@section("handshake", "protocol.md 5.1-5.3 handshake and authentication")
async def handshake(run: SectionRun) -> None:
    harness = run.harness
    server = harness.server
    account = await harness.account("a")
    if server.has("header_auth"):
        async with run.check("header auth: the subprotocol is selected and welcome is the first frame") as c:
            raw = await harness.raw(token=account.token)
            c.equal(raw.selected_subprotocol, "vibemuse.v1", "the selected subprotocol")
            first = await raw.read()
            c.expect(first is not None and first["type"] == "welcome", "welcome first", first)
            c.equal(first["data"]["user"]["id"], account.user_id, "welcome.data.user.id")
            c.equal(first["toUser"], account.user_id, "welcome.toUser")
            c.equal(first["fromUser"], server.name, "welcome.fromUser (the server name)")
            c.equal(first["data"]["serverName"], server.name, "welcome.data.serverName")
            c.equal(first["data"]["limits"], dict(server.versions.limits.raw), "welcome limits = /api/versions limits")
            second = await raw.read()
            c.expect(second is not None and second["type"] == "roster", "roster after welcome (5.3)", second)
            raw.close()
        async with run.check("no subprotocol offered: the socket speaks v1 and selects none") as c:
            raw = await harness.raw(token=account.token, subprotocols=[])
            c.equal(raw.selected_subprotocol, None, "the selected subprotocol")
            first = await raw.read()
            c.expect(first is not None and first["type"] == "welcome", "welcome first", first)
            raw.close()
        async with run.check("a bad token in the header is HTTP 401 invalid_token") as c:
            try:
                await harness.raw(token="vmt_" + "B" * 43)
                raise CheckFailed("HTTP 401 invalid_token", "the socket opened")
            except HandshakeRefused as refusal:
                c.equal((refusal.status, refusal.code), (401, "invalid_token"), "status and code")
    async with run.check("only unknown subprotocols: HTTP 400 unsupported_version with offered and supported") as c:
        try:
            await harness.raw(token=account.token, subprotocols=["vibemuse.v99"])
            raise CheckFailed("HTTP 400 unsupported_version", "the socket opened")
        except HandshakeRefused as refusal:
            c.equal((refusal.status, refusal.code), (400, "unsupported_version"), "status and code")
            c.equal(refusal.details.get("offered"), ["vibemuse.v99"], "details.offered")
            c.expect("vibemuse.v1" in refusal.details.get("supported", []), "vibemuse.v1 in details.supported",
                     refusal.details)
    async with run.check("a request to /api/ws that is no upgrade is HTTP 400 invalid_request") as c:
        status, _, body = await run.harness.raw_http(server.base_url + "/api/ws", "GET", None, {})
        c.equal((status, error_code(run, body)), (400, "invalid_request"), "status and code")
    if not server.has("frame_auth"):
        raise Skip("frame auth: not offered by the server: frame_auth")
    async with run.check("frame auth: a frame before auth is not_authenticated; then auth gets welcome") as c:
        raw = await harness.raw()
        raw.send({"type": "ping", "messageId": "early1", "data": {}})
        error = await raw.read()
        c.expect(error is not None and error["type"] == "error", "an error frame", error)
        c.equal(error["data"]["code"], "not_authenticated", "the code")
        c.equal(error["data"].get("inReplyTo"), "early1", "inReplyTo")
        raw.send({"type": "auth", "messageId": "auth1", "data": {"token": account.token}})
        welcome = await raw.read()
        c.expect(welcome is not None and welcome["type"] == "welcome", "welcome", welcome)
        raw.send({"type": "auth", "messageId": "auth2", "data": {"token": account.token}})
        again = await raw.read_type("error")
        c.equal(again["data"]["code"], "already_authenticated", "a second auth's code")
        c.equal(again["data"].get("inReplyTo"), "auth2", "inReplyTo")
        raw.close()
    async with run.check("auth with a refused token: error invalid_token, then close 4002") as c:
        raw = await harness.raw()
        raw.send({"type": "auth", "messageId": "auth3", "data": {"token": "vmt_" + "C" * 43}})
        error = await raw.read()
        c.expect(error is not None and error["type"] == "error", "an error frame", error)
        c.equal(error["data"]["code"], "invalid_token", "the code")
        c.equal(await raw.closed(), 4002, "the close code")


@section("envelopes", "protocol.md 6, 8.3, 8.4 frame envelopes and processing")
async def envelopes(run: SectionRun) -> None:
    harness = run.harness
    server = harness.server
    account = await harness.account("a")
    raw = await harness.raw(token=account.token) if server.has("header_auth") else None
    if raw is None:
        raw = await harness.raw()
        raw.send({"type": "auth", "messageId": "auth1", "data": {"token": account.token}})
    await raw.read_type("roster")

    async def answer(frame) -> dict:
        raw.send(frame)
        while True:
            got = await raw.read()
            if got is None:
                raise CheckFailed("an answer", f"the socket closed ({raw.close_code})")
            if got["type"] in ("pong", "error", "ack"):
                return got

    async with run.check("ping is answered by pong naming its messageId, from the server to the user") as c:
        pong = await answer({"type": "ping", "messageId": "p17", "data": {}})
        c.equal(pong["type"], "pong", "the answer's type")
        c.equal(pong["data"]["inReplyTo"], "p17", "data.inReplyTo")
        c.equal(pong["fromUser"], server.name, "fromUser")
        c.equal(pong["toUser"], account.user_id, "toUser")
    async with run.check("answers come in the order of the frames (5.4)") as c:
        for number in range(3):
            raw.send({"type": "ping", "messageId": f"order{number}", "data": {}})
        seen = []
        while len(seen) < 3:
            got = await raw.read()
            if got is not None and got["type"] == "pong":
                seen.append(got["data"]["inReplyTo"])
        c.equal(seen, ["order0", "order1", "order2"], "the pongs' order")
    async with run.check("not JSON: error bad_json without inReplyTo") as c:
        error = await answer("{not json")
        c.equal(error["data"]["code"], "bad_json", "the code")
        c.expect("inReplyTo" not in error["data"], "no inReplyTo", error["data"])
    async with run.check("JSON that is no frame object: invalid_frame") as c:
        error = await answer("[1, 2]")
        c.equal(error["data"]["code"], "invalid_frame", "the code")
    async with run.check("an unknown type: unknown_type with details.known, and inReplyTo") as c:
        error = await answer({"type": "no_such_frame", "messageId": "u1", "data": {}})
        c.equal(error["data"]["code"], "unknown_type", "the code")
        c.equal(error["data"].get("inReplyTo"), "u1", "inReplyTo")
        known = error["data"].get("details", {}).get("known", [])
        c.expect("ping" in known and "auth" in known, "details.known listing the client frame types", known)
    async with run.check("a frame off its schema: invalid_frame with details.path") as c:
        error = await answer({"type": "ping", "messageId": "p18", "data": {"text": "x"}})
        c.equal(error["data"]["code"], "invalid_frame", "the code")
        c.equal(error["data"].get("inReplyTo"), "p18", "inReplyTo")
        c.expect(isinstance(error["data"].get("details", {}).get("path"), str), "details.path", error["data"])
    async with run.check("a malformed messageId: an error without inReplyTo (8.4)") as c:
        error = await answer({"type": "ping", "messageId": "bad id!", "data": {}})
        c.equal(error["type"], "error", "the answer's type")
        c.expect("inReplyTo" not in error["data"], "no inReplyTo", error["data"])
    async with run.check("fromUser naming another user: forbidden") as c:
        error = await answer({"type": "ping", "messageId": "p19", "fromUser": f"@someone:{server.name}", "data": {}})
        c.equal(error["data"]["code"], "forbidden", "the code")
        c.equal(error["data"].get("inReplyTo"), "p19", "inReplyTo")
    async with run.check("the socket stays open after refused frames") as c:
        pong = await answer({"type": "ping", "messageId": "p20", "data": {}})
        c.equal(pong["type"], "pong", "the answer")
