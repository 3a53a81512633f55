"""What the checks stand on: the servers under test, accounts, players on real sockets, raw sockets.

Theory of operation. Everything goes through the SDK (``vibemuse_client``)
with ``validate=True`` and ``verify=True``, so every frame and HTTP body the
suite receives is checked against spec/'s schemas and every event of the
stream against its origin's published keys; what fails lands in the SDK's
``violations``, which the runner turns into a failed check of the section
where it happened. The few things the SDK will not do on purpose (a bad
subprotocol, malformed JSON, an oversized frame) go through ``RawSocket``,
Tornado's WebSocket client, whose frames are checked the same way (both in
``players.py``).

A ``Player`` is one connected ``Client`` that keeps every frame it got, in
order, so that a check can wait for a frame (``wait``), look at the order of
what came (``frames_since``), and fence what a request caused with
``barrier`` (a ``ping``: the server answers frames in order, so whatever an
earlier frame of this socket caused for it came before the ``pong``).

Accounts are made once per run (random names), shared by the sections, and
each section leaves them as it found them (in the default room, no blocks,
no haven). Registering is the scarcest thing a default server allows (5 per
address, then one a minute), so the suite makes few.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import string
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from vibemuse_client import Client, HttpApi, Spec, Versions, VibeMuseError, load_spec
from vibemuse_client.errors import SchemaViolation
from vibemuse_conformance.coverage import Coverage
from vibemuse_conformance.pacing import Pacer
from vibemuse_conformance.players import SUBPROTOCOL, WAIT_SECONDS, Player, RawSocket
from vibemuse_conformance.runner import CheckFailed, Skip



class Unreachable(Exception):
    """A server given on the command line does not answer ``GET /api/versions``."""


@dataclass
class Server:
    index: int
    base_url: str
    versions: Versions

    @property
    def name(self) -> str:
        return str(self.versions.server["name"])

    @property
    def limits(self):
        return self.versions.limits

    def has(self, flag: str) -> bool:
        return self.versions.has(flag)

    @property
    def ws_url(self) -> str:
        scheme, rest = self.base_url.split("://", 1)
        return {"http": "ws", "https": "wss"}[scheme] + "://" + rest + "/api/ws"

    def describe(self) -> dict[str, Any]:
        return {"url": self.base_url, "name": self.name, "software": self.versions.server.get("software"),
                "version": self.versions.server.get("version"), "features": sorted(self.versions.features.get("v1", ()))}


@dataclass
class Account:
    server: Server
    username: str
    password: str
    user_id: str
    token: str
    role: str = "player"
    location: str = ""


@dataclass
class SectionScope:
    """What one section opened: closed, and its violations collected, when it ends."""

    players: list["Player"] = field(default_factory=list)
    raws: list["RawSocket"] = field(default_factory=list)
    apis: list[HttpApi] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    accounts: dict[int, Account] = field(default_factory=dict)  # by id(): the run's accounts it used
    undo: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)  # run when it ends, last first


class Harness:
    def __init__(self, servers: list[Server], spec: Spec, *, admin: tuple[str, str] | None = None,
                 builder: tuple[str, str] | None = None, slow: bool = False):
        self.servers = servers
        self.slow = slow  # --slow: wait out the server's own long deadlines (the heartbeat timeout)
        self.spec = spec
        self.admin_credentials = admin
        self.builder_credentials = builder
        self.pacer = Pacer()
        self.run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(6))
        self._texts = itertools.count(1)
        self._accounts: dict[tuple[int, str], Account] = {}
        self._account_locks: dict[tuple[int, str], asyncio.Lock] = {}
        self._refused: dict[tuple[int, str], VibeMuseError] = {}
        self.scope = SectionScope()
        self.key_servers = {server.name: server.base_url for server in servers}
        self.coverage = Coverage(spec)

    # -- servers and texts ------------------------------------------------------------------

    @property
    def server(self) -> Server:
        return self.servers[0]

    def text(self, label: str = "text") -> str:
        """A text no other request of this run uses (the spam rules count repeats, 18.2)."""
        return f"{label} {self.run_id}-{next(self._texts)}"

    @staticmethod
    async def probe(base_url: str, index: int, spec: Spec) -> Server:
        api = HttpApi(base_url, spec, validate=True, timeout=15)
        try:
            versions = await api.versions()
        except (OSError, HTTPClientError, asyncio.TimeoutError) as error:
            raise Unreachable(f"{base_url}: {error}") from None
        except VibeMuseError as error:
            raise Unreachable(f"{base_url}/api/versions: {error}") from None
        return Server(index, base_url.rstrip("/"), versions)

    def check_frame(self, frame: Any) -> bool:
        """A frame read outside the SDK: its schema (True), or a violation of the current section (False)."""
        try:
            self.spec.check_server_frame(frame)
            return True
        except VibeMuseError as violation:
            self.scope.violations.append(str(violation))
            return False

    def api(self, server: Server | None = None, token: str | None = None) -> HttpApi:
        api = HttpApi((server or self.server).base_url, self.spec, token=token, validate=True)
        api.observer = self.coverage.called
        self.scope.apis.append(api)
        return api

    async def raw_http(self, url: str, method: str, body: bytes | None, headers: dict[str, str]):
        """One HTTP request as is (no SDK manners): its status, headers and decoded JSON body."""
        response = await AsyncHTTPClient().fetch(HTTPRequest(url, method=method, body=body, headers=headers,
                                                             request_timeout=20, allow_nonstandard_methods=True),
                                                 raise_error=False)
        if response.code == 599:
            raise CheckFailed(f"an answer to {method} {url}", str(response.error))
        self.coverage.called(method, urlsplit(url).path, response.code)
        try:
            decoded = json.loads(response.body) if response.body else None
        except ValueError:
            decoded = response.body[:200]
        return response.code, response.headers, decoded

    # -- HTTP, paced ------------------------------------------------------------------------

    async def http(self, api: HttpApi, owner: str, method: str, path: str, body: Any = None, *,
                   retries: int = 3, **options: Any) -> Any:
        if method != "GET" and options.get("authenticated", True) and api.token:
            await self.pacer.take(api.base_url, owner, "http_write")
        for attempt in itertools.count():
            try:
                return await api.request(method, path, body, **options)
            except SchemaViolation:
                raise
            except VibeMuseError as error:
                if error.code != "rate_limited" or attempt >= retries:
                    raise
                await asyncio.sleep(min(65.0, float(error.details.get("retryAfterMs", 1000)) / 1000 + 0.05))

    async def http_refused(self, api: HttpApi, owner: str, method: str, path: str, code: str, body: Any = None,
                           **options: Any) -> VibeMuseError:
        try:
            answer = await self.http(api, owner, method, path, body, **options)
        except SchemaViolation:
            raise
        except VibeMuseError as error:
            if error.code != code:
                raise CheckFailed(f"{method} {path} refused with {code}",
                                  f"HTTP {error.status} {error.code}: {error.message}") from None
            return error
        raise CheckFailed(f"{method} {path} refused with {code}", f"success: {describe_body(answer)}")

    # -- accounts ------------------------------------------------------------------------------

    def username(self, tag: str) -> str:
        return f"Cf{self.run_id}{tag}"[:32]

    @staticmethod
    def password() -> str:
        return "pw-" + secrets.token_urlsafe(18)

    async def register(self, server: Server, username: str, password: str) -> dict[str, Any]:
        """``POST /api/auth/register``, paced to the default 5 per address, then one a minute."""
        await self.pacer.take(server.base_url, "address", "register_address")
        api = self.api(server)
        return await self.http(api, "address", "POST", "/api/auth/register",
                               {"username": username, "password": password}, authenticated=False, retries=2)

    async def account(self, tag: str, server: Server | None = None) -> Account:
        """The run's account ``tag`` on ``server`` (made on first use)."""
        server = server or self.server
        key = (server.index, tag)
        lock = self._account_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._accounts:
                username, password = self.username(tag), self.password()
                session = await self.register(server, username, password)
                self._accounts[key] = Account(server, session["user"]["username"], password, session["user"]["id"],
                                              session["accessToken"], session["user"]["role"], session["location"])
            self.scope.accounts[id(self._accounts[key])] = self._accounts[key]
            return self._accounts[key]

    async def privileged(self, role: str) -> Account:
        """The ``--admin`` (or ``--builder``) account of the first server, logged in once."""
        credentials = self.admin_credentials if role == "admin" else self.builder_credentials
        if credentials is None and role == "builder" and self.admin_credentials is not None:
            role, credentials = "admin", self.admin_credentials  # an admin may do what a builder may
        if credentials is None:
            raise Skip(f"needs --{role}")
        key = (0, "@" + role)
        lock = self._account_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key in self._refused:  # wrong credentials are tried once, not in every section
                raise self._refused[key]
            if key not in self._accounts:
                await self.pacer.take(self.server.base_url, "address", "login_address")
                api = self.api()
                try:
                    session = await self.http(api, "address", "POST", "/api/auth/login",
                                              {"username": credentials[0], "password": credentials[1]},
                                              authenticated=False)
                except VibeMuseError as refusal:
                    self._refused[key] = refusal
                    raise
                account = Account(self.server, session["user"]["username"], credentials[1], session["user"]["id"],
                                  session["accessToken"], session["user"]["role"], session["location"])
                wanted = ("admin",) if role == "admin" else ("builder", "admin")
                if account.role not in wanted:
                    raise CheckFailed(f"the --{role} account to have the role {' or '.join(wanted)}", account.role)
                self._accounts[key] = account
            self.scope.accounts[id(self._accounts[key])] = self._accounts[key]
            return self._accounts[key]

    def client(self, account: Account, **options: Any) -> Client:
        options.setdefault("validate", True)
        options.setdefault("verify", True)
        options.setdefault("key_servers", self.key_servers)
        client = Client(account.server.base_url, account.token, username=account.username,
                        password=account.password, spec_dir=str(self.spec.root), **options)
        client.http.observer = self.coverage.called
        return client

    async def player(self, account: Account, *, wait_roster: bool = True, **options: Any) -> Player:
        """A new socket of ``account`` through the SDK, started (and, by default, past its roster)."""
        player = Player(self, account, self.client(account, **options))
        self.scope.players.append(player)
        await player.start()
        if wait_roster:
            await player.wait_type("roster", "the roster after welcome (protocol.md 5.3)")
        return player

    async def players(self, *tags: str, server: Server | None = None) -> list[Player]:
        return [await self.player(await self.account(tag, server)) for tag in tags]

    async def raw(self, server: Server | None = None, *, token: str | None = None, query: str = "",
                  subprotocols: list[str] | None = None, headers: Mapping[str, str] | None = None) -> RawSocket:
        """A raw socket; a refused handshake raises ``HandshakeRefused``."""
        server = server or self.server
        await self.pacer.take(server.base_url, "address", "handshake_address")
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        request = HTTPRequest(server.ws_url + query, headers=all_headers, connect_timeout=15, request_timeout=15)
        try:
            socket = await websocket_connect(request, subprotocols=[SUBPROTOCOL] if subprotocols is None
                                             else subprotocols, max_message_size=1 << 22)
        except HTTPClientError as refusal:
            if refusal.code == 599:
                raise
            raise HandshakeRefused(self, refusal) from None
        raw = RawSocket(self, socket)
        self.scope.raws.append(raw)
        return raw

    # -- sections ------------------------------------------------------------------------------

    def open_scope(self) -> None:
        self.scope = SectionScope()

    def undo(self, callback: Callable[[], Awaitable[Any]]) -> None:
        """Run ``callback`` when the current section ends, however it ends (to put back what it changed)."""
        self.scope.undo.append(callback)

    async def login(self, account: Account) -> None:
        """A new token for ``account`` (its tokens were revoked: a password change, a ban)."""
        await self.pacer.take(account.server.base_url, "address", "login_address")
        session = await self.http(self.api(account.server), "address", "POST", "/api/auth/login",
                                  {"username": account.username, "password": account.password}, authenticated=False)
        account.token = session["accessToken"]

    async def tidy(self) -> list[str]:
        """Put back what the current section changed, so that a section failing midway does not fail the
        next ones: its ``undo`` callbacks, then each account it used back in a working session and in the
        room it started in. What could not be put back."""
        problems: list[str] = []
        for callback in reversed(self.scope.undo):
            try:
                await asyncio.wait_for(callback(), WAIT_SECONDS * 2)
            except Exception as error:
                problems.append(f"{getattr(callback, '__name__', 'undo')}: {type(error).__name__} {error}")
        for account in self.scope.accounts.values():
            try:
                await asyncio.wait_for(self._home(account), WAIT_SECONDS * 3)
            except Exception as error:
                problems.append(f"{account.username}: {type(error).__name__} {error}")
        return problems

    async def _home(self, account: Account) -> None:
        api = self.api(account.server, token=account.token)
        try:
            me = await self.http(api, account.user_id, "GET", "/api/users/me")
        except VibeMuseError as error:
            if error.code not in ("invalid_token", "token_expired"):
                raise
            await self.login(account)
            me = await self.http(self.api(account.server, token=account.token), account.user_id, "GET",
                                 "/api/users/me")
        if account.location and me.get("location") != account.location:
            player = Player(self, account, self.client(account))
            self.scope.players.append(player)
            await player.start()
            await player.ack("join_room", {"roomId": account.location})

    async def close_scope(self) -> list[str]:
        """Close what the section opened; the violations seen there."""
        scope = self.scope
        for player in scope.players:
            await player.close()
        for raw in scope.raws:
            raw.close()
        found = list(scope.violations)
        for player in scope.players:
            found += [f"{player.account.username}: {type(v).__name__} {v}" for v in player.client.violations]
        return found


class HandshakeRefused(Exception):
    """The server answered the WebSocket handshake with an HTTP error (checked against http/error.json)."""

    def __init__(self, harness: Harness, refusal: HTTPClientError):
        self.status = refusal.code
        self.headers = refusal.response.headers if refusal.response is not None else {}
        body = refusal.response.body if refusal.response is not None else b""
        try:
            self.body = json.loads(body)
        except ValueError:
            self.body = None
        try:
            harness.spec.check("http/error.json", self.body)
        except VibeMuseError as violation:
            harness.scope.violations.append(f"handshake refusal {self.status}: {violation}")
        error = self.body.get("error", {}) if isinstance(self.body, dict) else {}
        self.code = error.get("code") if isinstance(error, dict) else None
        self.details = error.get("details", {}) if isinstance(error, dict) else {}
        super().__init__(f"HTTP {self.status} {self.code}")


def describe_body(body: Any) -> str:
    text = json.dumps(body)[:300] if body is not None else "no body"
    return text


def default_spec(spec_dir: str | None = None) -> Spec:
    return load_spec(spec_dir)
