"""``/federation/v1/*`` and ``/.well-known/vibemuse/server``: what other servers (and clients) ask of this one.

``GET /federation/v1/keys`` is public and unauthenticated: the signed
document of this server's verify keys, current and rotated-out, with which
anyone can check the signature of an event this server made. It answers
even with federation switched off.

``GET /.well-known/vibemuse/server`` tells other servers at which base URL
this server's federation paths live (``public_base_url``); with federation
switched off it is 404 ``not_found``, like the federation paths it points to.

``PUT /federation/v1/send/{txnId}`` receives a transaction from another
server (spec/v1/federation.md); the checks and the answer are the
receiver's (vibemuse/federation/receiver.py).

``POST /federation/v1/channels/{channelId}/join`` and ``GET
/federation/v1/channels/{channelId}/events`` serve the channels homed here
to the servers of their members, ``GET /federation/v1/channels`` lists the
public ones to any server (federation.md section 10;
vibemuse/services/channel_home.py).
"""

from __future__ import annotations

import tornado.web

from vibemuse.handlers.base import ApiHandler
from vibemuse.protocol.discovery import well_known_body
from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.federation_units import is_valid_txn_id

# How long others may cache our well-known answer (their own cache time is theirs to choose).
WELL_KNOWN_MAX_AGE_SECONDS = 3600


class ServerKeysHandler(ApiHandler):
    def get(self) -> None:
        context = self.context
        valid_until = context.clock() + context.config.key_validity_seconds * 1000
        self.set_header("Cache-Control", f"public, max-age={min(context.config.key_validity_seconds, 3600)}")
        self.send_json(context.keyring.server_keys_response(context.server_name, valid_until))

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Access-Control-Allow-Origin", "*")


class FederationHandler(ApiHandler):
    """A server-to-server endpoint: 404 while federation is switched off."""

    def prepare(self) -> None:
        if not self.context.federation.policy.enabled:
            raise tornado.web.HTTPError(404)
        super().prepare()


class SendTransactionHandler(FederationHandler):
    request_schemas = {"PUT": "federation/transaction"}

    async def put(self, txn_id: str) -> None:
        receiver = self.context.federation
        sig, body = await receiver.authenticate(
            self.request.headers.get("Authorization"), "PUT", self.request.uri or "", self.request.body)
        if self.context.contacted is not None:  # the process that sends may be another one
            self.context.contacted(sig.origin)
        elif self.context.federation_sender is not None:  # it answers us: send what waits for it now
            await self.context.federation_sender.contacted(sig.origin)
        if not is_valid_txn_id(txn_id):
            raise ProtocolError(ErrorCode.INVALID_REQUEST, "txnId must be 1-64 characters of [A-Za-z0-9._~-].")
        self.send_json(await receiver.receive_transaction(sig.origin, txn_id, body))


class ChannelJoinHandler(FederationHandler):
    request_schemas = {"POST": "federation/channel-join"}

    async def get(self, channel_id: str) -> None:
        receiver, home = self.context.federation, self.context.channel_home
        sig, _ = await receiver.authenticate(
            self.request.headers.get("Authorization"), "GET", self.request.uri or "", self.request.body)
        assert home is not None
        self.send_json(await home.may_join(sig.origin, channel_id, self.get_query_argument("user", "")))

    async def post(self, channel_id: str) -> None:
        receiver, home = self.context.federation, self.context.channel_home
        sig, body = await receiver.authenticate(
            self.request.headers.get("Authorization"), "POST", self.request.uri or "", self.request.body)
        violation = self.context.schemas.violation("federation/channel-join.json", body)
        if violation is not None:
            raise ProtocolError(ErrorCode.INVALID_REQUEST, f"The body does not match federation/channel-join at "
                                f"{violation.path}: {violation.reason}", details={"path": violation.path})
        refusal = await receiver.check_event(body["event"], sig.origin)
        if refusal is not None:
            raise ProtocolError(ErrorCode(refusal.code), f"The join event is refused: {refusal.message}")
        assert home is not None
        self.send_json(await home.accept_join(sig.origin, channel_id, body["event"]))


class ChannelEventsHandler(FederationHandler):
    async def get(self, channel_id: str) -> None:
        receiver, home = self.context.federation, self.context.channel_home
        sig, _ = await receiver.authenticate(
            self.request.headers.get("Authorization"), "GET", self.request.uri or "", self.request.body)
        after = self.int_argument("after", 0, 0, 2**53 - 1)
        limit = self.int_argument("limit", 100, 1, 100)
        assert home is not None
        self.send_json(await home.events_after(sig.origin, channel_id, after, limit))


class ChannelDirectoryHandler(FederationHandler):
    async def get(self) -> None:
        """The public channels homed here, for any server that asks (a signed request; 10.7)."""
        receiver, home = self.context.federation, self.context.channel_home
        await receiver.authenticate(
            self.request.headers.get("Authorization"), "GET", self.request.uri or "", self.request.body)
        search = self.get_query_argument("q", None)
        if search is not None and len(search) > 100:
            raise ProtocolError(ErrorCode.INVALID_REQUEST, "'q' is at most 100 characters.")
        limit = self.int_argument("limit", 50, 1, 200)
        assert home is not None
        self.send_json(await home.directory(search, self.get_query_argument("after", None), limit))


class WellKnownServerHandler(ApiHandler):
    def get(self) -> None:
        config = self.context.config
        if not config.federation:
            raise tornado.web.HTTPError(404)
        self.set_header("Cache-Control", f"public, max-age={WELL_KNOWN_MAX_AGE_SECONDS}")
        self.send_json(well_known_body(config.resolved_public_base_url))

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Access-Control-Allow-Origin", "*")
