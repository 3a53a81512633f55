"""The receiving side of federation: one signed request, one transaction.

Theory of operation
-------------------
:meth:`FederationReceiver.authenticate` checks a request from another server
in the order of ``spec/v1/federation.md`` section 4, each failure with its own
code and nothing stored: the Authorization header parses, names us as the
destination, comes from a server the ACL permits, within the time window,
with a signature that verifies with one of the origin's *current* keys (its
key document is fetched and cached by :class:`RemoteKeyCache`; an unknown key
id makes one refetch; a rotated-out key does not sign new requests), with a
nonce not seen from that origin within the window, and within the origin's
rate limit with no other transaction of it in flight.

:meth:`FederationReceiver.receive_transaction` then answers the transaction:
a repeat of (origin, txn_id) gets the stored answer; otherwise each PDU is
judged by :func:`check_pdu`, and an acceptable one handed to
:meth:`FederationInbox.accept_all` (all of one transaction at once, so an
inbox can store them in one database transaction). The answer is stored
before it is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vibemuse.federation.key_cache import KeyFetchError, RemoteKeyCache
from vibemuse.federation.policy import FederationPolicy
from vibemuse.protocol.canonical_json import CanonicalJsonError, decode_json_strict
from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.events import ServerKeys
from vibemuse.protocol.federation_auth import (
    RequestAuthError,
    RequestExpired,
    RequestSignature,
    check_request_time,
    parse_authorization,
    verify_request,
)
from vibemuse.protocol.channel_chain import STAMP_KEY, StampError, verify_stamp
from vibemuse.protocol.federation_units import (
    PduRefusal, TransactionError, check_pdu, keys_in_force, parse_transaction,
)
from vibemuse.protocol.ids import parse_channel_id
from vibemuse.protocol.signing import SignatureError, UnknownKey, signature_key_ids
from vibemuse.services.guard import Guard, rate_limited
from vibemuse.storage.federation_inbound import FederationInboundStore

ACCEPTED_EVENT_TYPES = frozenset({"vm.page", "vm.receipt", "vm.channel.create", "vm.channel.member",
                                   "vm.channel.message", "vm.channel.settings"})
RATE_ACTION = "federation_origin"
BUSY_RETRY_MS = 1000


def _parse_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return decode_json_strict(body, max_bytes=len(body))
    except CanonicalJsonError as exc:
        raise ProtocolError(ErrorCode.BAD_JSON, f"The body is not canonical-JSON-compatible JSON: {exc}") from None


class FederationInbox:
    """Where the PDUs that pass :func:`check_pdu` go. This one keeps nothing
    beyond the transaction's answer; ``federation.inbox.PageInbox`` replaces it."""

    async def accept_all(self, events: list[dict[str, Any]]) -> list[PduRefusal | None]:
        """A refusal (or None: accepted) per event of one transaction, in order;
        an inbox that stores them does so in one database transaction."""
        return [await self.accept(event) for event in events]

    async def accept(self, event: dict[str, Any]) -> PduRefusal | None:
        return None


class FederationReceiver:
    def __init__(
        self, *, server_name: str, policy: FederationPolicy, window_ms: int, keys: RemoteKeyCache,
        store: FederationInboundStore, inbox: FederationInbox, guard: Guard, clock: Callable[[], int],
        accepted_types: Collection[str] = ACCEPTED_EVENT_TYPES,
    ) -> None:
        self.server_name = server_name
        self.policy = policy
        self.window_ms = window_ms
        self.keys = keys
        self.store = store
        self.inbox = inbox
        self.guard = guard
        self.clock = clock
        self.accepted_types = frozenset(accepted_types)
        self._in_flight: set[str] = set()
        # this server's own keys (a relayed channel event may be one of ours), set by app.py
        self.own_keys: Callable[[], ServerKeys] | None = None

    # -- the request ----------------------------------------------------

    async def authenticate(
        self, header: str | None, method: str, uri: str, body: bytes
    ) -> tuple[RequestSignature, Any]:
        """The checked signature of a request and its parsed JSON body (None: no
        body), or a ProtocolError (401/403/429, or 400 ``bad_json``)."""
        try:
            sig = parse_authorization(header)
        except RequestAuthError as exc:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED_SERVER, str(exc)) from None
        if sig.destination != self.server_name:
            raise ProtocolError(ErrorCode.WRONG_DESTINATION,
                                f"The request is for {sig.destination}; this server is {self.server_name}.")
        if not self.policy.permits(sig.origin):
            raise ProtocolError(ErrorCode.SERVER_FORBIDDEN, f"This server does not federate with {sig.origin}.")
        now = self.clock()
        try:
            check_request_time(sig.ts, now, self.window_ms)
        except RequestExpired as exc:
            raise ProtocolError(ErrorCode.REQUEST_EXPIRED, str(exc)) from None
        key = await self._current_key(sig.origin, sig.key_id)
        content = _parse_body(body)
        try:
            verify_request(sig, key, method=method, uri=uri, content=content)
        except RequestAuthError as exc:
            raise ProtocolError(ErrorCode.INVALID_SIGNATURE, str(exc)) from None
        if not await self.store.claim_nonce(sig.origin, sig.nonce, sig.ts, now - self.window_ms):
            raise ProtocolError(ErrorCode.REPLAYED_REQUEST, f"{sig.origin} already sent nonce {sig.nonce}.")
        self.guard.limit(RATE_ACTION, sig.origin)
        return sig, content

    async def _current_key(self, origin: str, key_id: str) -> Ed25519PublicKey:
        """The origin's current key ``key_id``, refetching its keys once if it is unknown."""
        try:
            document = await self.keys.get_server_keys(origin)
            if key_id not in document.verify_keys and key_id not in document.old_verify_keys:
                await self.keys.get_verify_key(origin, key_id)  # one refetch
                document = self.keys.cached(origin) or document
        except (KeyFetchError, SignatureError) as exc:
            raise ProtocolError(ErrorCode.INVALID_SIGNATURE, f"No key {key_id} of {origin}: {exc}") from None
        key = document.verify_keys.get(key_id)
        if key is None:
            why = "was rotated out" if key_id in document.old_verify_keys else "is not published"
            raise ProtocolError(ErrorCode.INVALID_SIGNATURE, f"Key {key_id} of {origin} {why}.")
        return key

    # -- the transaction --------------------------------------------------

    async def receive_transaction(self, origin: str, txn_id: str, body: Any) -> dict[str, Any]:
        """The answer to one transaction from an authenticated ``origin``."""
        stored = await self.store.transaction_answer(origin, txn_id)
        if stored is not None:
            return stored
        if origin in self._in_flight:
            raise rate_limited(RATE_ACTION, BUSY_RETRY_MS)
        self._in_flight.add(origin)
        try:
            try:
                transaction = parse_transaction(body, origin)
            except TransactionError as exc:
                raise ProtocolError(ErrorCode.INVALID_REQUEST, f"The transaction is refused: {exc}") from None
            keys = await self._keys_for(origin, transaction.pdus)
            firsts: dict[str, Any] = {}
            for pdu in transaction.pdus:
                firsts.setdefault(pdu["event_id"], pdu)
            refusals = {}
            for event_id, pdu in firsts.items():
                stamp = relayed_stamp(pdu)
                refusals[event_id] = (check_pdu(pdu, origin, keys, self.accepted_types) if stamp is None
                                      else await self._check_relayed(pdu, stamp, origin))
            acceptable = [dict(pdu) for event_id, pdu in firsts.items() if refusals[event_id] is None]
            for pdu, refusal in zip(acceptable, await self.inbox.accept_all(acceptable)):
                refusals[pdu["event_id"]] = refusal
            results = {event_id: _result(refusal) for event_id, refusal in refusals.items()}
            return await self.store.record_transaction(origin, txn_id, {"pdus": results}, self.clock())
        finally:
            self._in_flight.discard(origin)

    async def check_event(self, event: Any, origin: str) -> PduRefusal | None:
        """The checks of an event ``origin`` made (section 6), outside a transaction (a join)."""
        return check_pdu(event, origin, await self._keys_for(origin, [event]), self.accepted_types)

    async def _check_relayed(self, pdu: Any, stamp: Any, origin: str) -> PduRefusal | None:
        """A channel event relayed by ``origin``, which must be the channel's home."""
        channel = parse_channel_id(pdu.get("channel_id"))
        if channel is None or channel.server_name != origin:
            return PduRefusal(ErrorCode.ORIGIN_MISMATCH.value,
                              f"only the channel's home relays its events, not {origin}")
        return await self.check_stamped(pdu, stamp)

    async def check_stamped(self, event: Any, stamp: Any) -> PduRefusal | None:
        """None if ``event`` is good (its own origin's signature, hash and id) and ``stamp`` is its
        home's stamp of it; a refusal otherwise (a transaction's relay, a join's or a backfill's
        answer)."""
        event_origin = event.get("origin") if isinstance(event, dict) else None
        if not isinstance(event_origin, str):
            return PduRefusal(ErrorCode.BAD_EVENT.value, "event has no origin")
        keys = await self._keys_for(event_origin, [event])
        refusal = check_pdu(event, event_origin, keys, self.accepted_types)
        if refusal is not None:
            return refusal
        channel = parse_channel_id(event.get("channel_id"))
        if channel is None:
            return PduRefusal(ErrorCode.BAD_EVENT.value, "a stamped event must be a channel's")
        try:
            home_keys = await self._server_keys(channel.server_name)
            verify_stamp(stamp, event, keys_in_force(home_keys, event["origin_server_ts"]))
        except (KeyFetchError, SignatureError) as exc:
            return PduRefusal(ErrorCode.INVALID_STAMP.value, f"no keys of {channel.server_name}: {exc}")
        except StampError as exc:
            return PduRefusal(ErrorCode.INVALID_STAMP.value, str(exc))
        return None

    async def _server_keys(self, name: str) -> ServerKeys:
        if name == self.server_name and self.own_keys is not None:
            return self.own_keys()
        return await self.keys.get_server_keys(name)

    async def _keys_for(self, origin: str, pdus: Collection[Any]) -> ServerKeys | None:
        """The origin's key document, refetched once if a PDU names a key it lacks."""
        if origin == self.server_name and self.own_keys is not None:
            return self.own_keys()
        try:
            document = await self.keys.get_server_keys(origin)
        except KeyFetchError:
            return None
        for pdu in pdus:
            try:
                named = signature_key_ids(pdu, origin)
            except SignatureError:
                continue
            unknown = [key_id for key_id in named if document.lookup(key_id) is None]
            if unknown:
                try:
                    await self.keys.get_verify_key(origin, unknown[0])
                except (KeyFetchError, UnknownKey, SignatureError, ValueError):
                    pass
                return self.keys.cached(origin) or document
        return document


def relayed_stamp(pdu: Any) -> Any:
    """The home's stamp a relayed channel event carries (``unsigned.channel_stamp``), or None."""
    unsigned = pdu.get("unsigned") if isinstance(pdu, dict) else None
    return unsigned.get(STAMP_KEY) if isinstance(unsigned, dict) else None


def _result(refusal: PduRefusal | None) -> dict[str, Any]:
    """One event's entry in a transaction's answer: {} (accepted) or its error."""
    if refusal is None:
        return {}
    return {"error": {"code": refusal.code, "message": refusal.message}}
