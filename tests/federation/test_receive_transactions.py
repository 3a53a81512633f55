"""PUT /federation/v1/send/{txnId} over real sockets.

The receiver is beta.test (the ``server`` fixture, on SQLite and PostgreSQL);
the sender is alpha.test, a second real VibeMUSE server on loopback whose key
document the receiver fetches over HTTP. Requests are signed with alpha's
real signing key by the same code the sender will use.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tests.conftest import FAST_HASHER, count_rows
from vibemuse.app import VibeMuseServer
from vibemuse.config import DEFAULT_RATE_LIMITS, Config
from vibemuse.federation.receiver import FederationInbox
from vibemuse.federation.server_keys import KeyRing, rotate_signing_key
from vibemuse.protocol.events import build_event, redact_event
from vibemuse.protocol.federation_auth import sign_request
from vibemuse.protocol.signing import generate_signing_key, sign_json

ALPHA, BETA = "alpha.test", "beta.test"


@pytest.fixture
def server_config(config):
    # alpha is found by the test's base_url_of on loopback, not in federation_peers
    return dataclasses.replace(config, server_name=BETA, max_http_body_bytes=256 * 1024,
                               federation_private_addresses=True)


@pytest.fixture
def alpha(io_loop, tmp_path, clock):
    config = Config(server_name=ALPHA, port=0, data_dir=str(tmp_path / "alpha"),
                    database_url=f"sqlite:///{tmp_path}/alpha.db", database_threads=1,
                    key_validity_seconds=3600, shutdown_grace_seconds=0.2,
                    rate_limits={action: (1e9, 1e9) for action in DEFAULT_RATE_LIMITS})

    async def start():
        alpha = await VibeMuseServer.create(config, clock=clock, hasher=FAST_HASHER)
        return alpha, alpha.listen(0, "127.0.0.1")

    alpha, port = io_loop.run_sync(start)
    peers = {ALPHA: f"http://127.0.0.1:{port}"}
    yield alpha, peers
    io_loop.run_sync(alpha.shutdown)


async def _resolve(peers, name):
    return peers[name]


@pytest.fixture
def receivers(io_loop, clock, alpha):
    """Start more receivers (other settings, or the same database after a restart)."""
    started = []

    async def start(config):
        receiver = await VibeMuseServer.create(config, clock=clock, hasher=FAST_HASHER,
                                               base_url_of=lambda name: _resolve(alpha[1], name))
        port = receiver.listen(0, "127.0.0.1")
        started.append(receiver)
        return receiver, f"http://127.0.0.1:{port}"

    yield start
    for receiver in started:
        io_loop.run_sync(receiver.shutdown)


@pytest.fixture
def server_options(alpha):
    return {"base_url_of": lambda name: _resolve(alpha[1], name)}


@pytest.fixture
def url(server, http_server, base_url):
    """The receiver's base URL, served."""
    return base_url


class RecordingInbox(FederationInbox):
    def __init__(self):
        self.accepted = []

    async def accept(self, event):
        self.accepted.append(event["event_id"])
        return None


@pytest.fixture
def inbox(server):
    server.context.federation.inbox = RecordingInbox()
    return server.context.federation.inbox


def page(alpha_server, clock, text="hi bob", key=None, **changes):
    args = dict(event_type="vm.page", sender="@ann:alpha.test", origin=ALPHA, origin_server_ts=clock(),
                content={"text": text}, recipients=["@bob:beta.test"])
    args.update(changes)
    return build_event(signing_key=key or alpha_server.context.keyring.current, **args)


def transaction(clock, pdus=(), origin=ALPHA):
    return {"origin": origin, "origin_server_ts": clock(), "pdus": list(pdus), "edus": []}


async def send(url, txn_id, body, *, key, clock, spec, origin=ALPHA, destination=BETA, ts=None,
               nonce=None, authorization=None, path=None):
    uri = path or f"/federation/v1/send/{txn_id}"
    if authorization is None:
        authorization = sign_request(key, method="PUT", uri=uri, origin=origin, destination=destination,
                                     content=body, ts=clock() if ts is None else ts,
                                     nonce=nonce or secrets.token_urlsafe(16))
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    request = HTTPRequest(url + uri, method="PUT", headers=headers, body=json.dumps(body))
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    answer = json.loads(response.body)
    schema = "federation/transaction-answer.json" if response.code == 200 else "http/error.json"
    assert spec.errors(schema, answer) == [], answer
    return response.code, answer, response.headers


def stored(server):
    return count_rows(server, "federation_transactions"), count_rows(server, "federation_nonces")


@pytest.fixture
def alpha_key(alpha):
    return alpha[0].context.keyring.current


@pytest.mark.gen_test(timeout=30)
async def test_accepted_and_repeated_also_after_a_restart(server, url, alpha, alpha_key, clock, spec,
                                                          inbox, receivers):
    event = page(alpha[0], clock)
    body = transaction(clock, [event])
    status, answer, _ = await send(url, "t1", body, key=alpha_key, clock=clock, spec=spec)
    assert (status, answer) == (200, {"pdus": {event["event_id"]: {}}})
    assert inbox.accepted == [event["event_id"]]
    assert stored(server) == (1, 1)
    # a repeat (new nonce, even another body) gets the stored answer and is not processed again
    other = transaction(clock, [page(alpha[0], clock, text="other")])
    status, again, _ = await send(url, "t1", other, key=alpha_key, clock=clock, spec=spec)
    assert (status, again) == (200, answer)
    assert inbox.accepted == [event["event_id"]]
    # a fresh server on the same database (a restart) answers the same
    _, restarted_url = await receivers(server.context.config)
    status, after_restart, _ = await send(restarted_url, "t1", other, key=alpha_key, clock=clock, spec=spec)
    assert (status, after_restart) == (200, answer)
    assert count_rows(server, "federation_transactions") == 1


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("authorization", ["", "Bearer abc", 'X-VibeMUSE origin="alpha.test"'])
async def test_missing_or_malformed_authorization(server, url, alpha, alpha_key, clock, spec, authorization):
    status, answer, _ = await send(url, "t1", transaction(clock), key=alpha_key, clock=clock, spec=spec,
                                   authorization=authorization)
    assert (status, answer["error"]["code"]) == (401, "unauthenticated_server")
    assert stored(server) == (0, 0)


@pytest.mark.gen_test(timeout=30)
async def test_wrong_destination(server, url, alpha, alpha_key, clock, spec):
    status, answer, _ = await send(url, "t1", transaction(clock), key=alpha_key, clock=clock, spec=spec,
                                   destination="gamma.test")
    assert (status, answer["error"]["code"]) == (401, "wrong_destination")
    assert stored(server) == (0, 0)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("acl", [{"federation_deny": (ALPHA,)}, {"federation_allow": ("gamma.test",)}])
async def test_denied_server(server, alpha, alpha_key, clock, spec, receivers, acl):
    receiver, url = await receivers(dataclasses.replace(server.context.config, **acl))
    status, answer, _ = await send(url, "t1", transaction(clock), key=alpha_key, clock=clock, spec=spec)
    assert (status, answer["error"]["code"]) == (403, "server_forbidden")
    assert stored(receiver) == (0, 0)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("offset_ms", [-300_001, 300_001])
async def test_request_outside_the_window(server, url, alpha, alpha_key, clock, spec, offset_ms):
    status, answer, _ = await send(url, "t1", transaction(clock), key=alpha_key, clock=clock, spec=spec,
                                   ts=clock() + offset_ms)
    assert (status, answer["error"]["code"]) == (401, "request_expired")
    assert stored(server) == (0, 0)


@pytest.mark.gen_test(timeout=30)
async def test_request_signed_by_a_forger(server, url, alpha, alpha_key, clock, spec):
    forger = generate_signing_key(alpha_key.version, bytes(32))  # alpha's key id, another key
    status, answer, _ = await send(url, "t1", transaction(clock), key=forger, clock=clock, spec=spec)
    assert (status, answer["error"]["code"]) == (401, "invalid_signature")
    assert stored(server) == (0, 0)


@pytest.mark.gen_test(timeout=30)
async def test_request_signed_with_a_key_id_the_origin_does_not_publish(server, url, alpha, alpha_key, clock, spec):
    assert (await send(url, "t1", transaction(clock), key=alpha_key, clock=clock, spec=spec))[0] == 200
    clock.advance(31)  # the refetch this provokes is allowed, and finds no such key
    unknown = generate_signing_key("9_none", bytes(32))
    status, answer, _ = await send(url, "t2", transaction(clock), key=unknown, clock=clock, spec=spec)
    assert (status, answer["error"]["code"]) == (401, "invalid_signature")
    assert stored(server) == (1, 1)


@pytest.mark.gen_test(timeout=30)
async def test_request_with_a_tampered_body(server, url, alpha, alpha_key, clock, spec):
    body = transaction(clock)
    header = sign_request(alpha_key, method="PUT", uri="/federation/v1/send/t1", origin=ALPHA, destination=BETA,
                          content=body, ts=clock(), nonce="tampered_nonce_01")
    body["origin_server_ts"] += 1
    status, answer, _ = await send(url, "t1", body, key=alpha_key, clock=clock, spec=spec,
                                   authorization=header)
    assert (status, answer["error"]["code"]) == (401, "invalid_signature")
    assert stored(server) == (0, 0)


@pytest.mark.gen_test(timeout=30)
async def test_replayed_request(server, url, alpha, alpha_key, clock, spec, inbox):
    body = transaction(clock, [page(alpha[0], clock)])
    header = sign_request(alpha_key, method="PUT", uri="/federation/v1/send/t1", origin=ALPHA, destination=BETA,
                          content=body, ts=clock(), nonce="replayed_nonce_01")
    first = await send(url, "t1", body, key=alpha_key, clock=clock, spec=spec, authorization=header)
    assert first[0] == 200
    status, answer, _ = await send(url, "t1", body, key=alpha_key, clock=clock, spec=spec,
                                   authorization=header)
    assert (status, answer["error"]["code"]) == (401, "replayed_request")
    assert stored(server) == (1, 1) and len(inbox.accepted) == 1


@pytest.mark.gen_test(timeout=30)
async def test_rotated_key_refetched_and_old_key_refused(server, url, alpha, alpha_key, clock, spec, inbox):
    old_event = page(alpha[0], clock)
    assert (await send(url, "t1", transaction(clock), key=alpha_key, clock=clock, spec=spec))[0] == 200
    clock.advance(1)
    alpha_server = alpha[0]
    rotate_signing_key(str(alpha_server.context.config.resolved_signing_key_path), clock())
    alpha_server.reload_signing_keys()
    new_key = alpha_server.context.keyring.current
    clock.advance(31)  # past the key cache's refetch interval
    # the new key id is unknown to the receiver's cache: one refetch finds it; the
    # old event (made before the rotation) still verifies, one made after by the old key does not
    stale_event = page(alpha_server, clock, text="late", key=alpha_key)
    body = transaction(clock, [old_event, stale_event])
    status, answer, _ = await send(url, "t2", body, key=new_key, clock=clock, spec=spec)
    assert status == 200
    assert answer["pdus"][old_event["event_id"]] == {}
    assert answer["pdus"][stale_event["event_id"]]["error"]["code"] == "invalid_event_signature"
    # the rotated-out (expired) key does not sign new requests
    status, refused, _ = await send(url, "t3", transaction(clock), key=alpha_key, clock=clock, spec=spec)
    assert (status, refused["error"]["code"]) == (401, "invalid_signature")
    assert inbox.accepted == [old_event["event_id"]]
    assert count_rows(server, "federation_transactions") == 2


@pytest.mark.gen_test(timeout=30)
async def test_rate_limited_per_origin(server, alpha, alpha_key, clock, spec, receivers):
    limits = dict(server.context.config.rate_limits, federation_origin=(1.0, 0.001))
    receiver, url = await receivers(dataclasses.replace(server.context.config, rate_limits=limits))
    assert (await send(url, "t1", transaction(clock), key=alpha_key, clock=clock, spec=spec))[0] == 200
    status, answer, headers = await send(url, "t2", transaction(clock), key=alpha_key, clock=clock, spec=spec)
    assert (status, answer["error"]["code"]) == (429, "rate_limited")
    assert answer["error"]["details"]["action"] == "federation_origin"
    assert int(headers["Retry-After"]) >= 1
    assert count_rows(receiver, "federation_transactions") == 1


class BlockingInbox(FederationInbox):
    """Holds the first accepted event until released: a transaction stays in flight."""

    def __init__(self):
        self.entered, self.release = asyncio.Event(), asyncio.Event()

    async def accept(self, event):
        self.entered.set()
        await self.release.wait()
        return None


@pytest.mark.gen_test(timeout=30)
async def test_busy_while_a_transaction_of_the_origin_is_in_flight(server, url, alpha, alpha_key, clock, spec):
    inbox = server.context.federation.inbox = BlockingInbox()
    first = asyncio.ensure_future(send(url, "t1", transaction(clock, [page(alpha[0], clock)]), key=alpha_key,
                                       clock=clock, spec=spec))
    await inbox.entered.wait()
    status, answer, headers = await send(url, "t2", transaction(clock), key=alpha_key, clock=clock, spec=spec)
    assert (status, answer["error"]["code"], headers["Retry-After"]) == (429, "rate_limited", "1")
    inbox.release.set()
    assert (await first)[0] == 200
    assert count_rows(server, "federation_transactions") == 1


@pytest.mark.gen_test(timeout=30)
async def test_federation_off_hides_everything_but_keys(server, alpha, alpha_key, clock, spec, receivers):
    receiver, url = await receivers(dataclasses.replace(server.context.config, federation=False))
    status, answer, _ = await send(url, "t1", transaction(clock), key=alpha_key, clock=clock, spec=spec)
    assert (status, answer["error"]["code"]) == (404, "not_found")
    assert stored(receiver) == (0, 0)
    keys = await AsyncHTTPClient().fetch(url + "/federation/v1/keys", raise_error=False)
    assert keys.code == 200 and json.loads(keys.body)["server_name"] == BETA


@pytest.mark.gen_test(timeout=30)
async def test_bad_txn_id_and_bad_body(server, url, alpha, alpha_key, clock, spec):
    status, answer, _ = await send(url, "a%20b", transaction(clock), key=alpha_key, clock=clock, spec=spec)
    assert (status, answer["error"]["code"]) == (400, "invalid_request")
    status, answer, _ = await send(url, "t1", transaction(clock, origin="gamma.test"), key=alpha_key,
                                   clock=clock, spec=spec)
    assert (status, answer["error"]["code"]) == (400, "invalid_request")
    assert count_rows(server, "federation_transactions") == 0


def _refused_pdus(alpha_server, clock, alpha_key):
    tampered = page(alpha_server, clock, text="original")
    tampered["content"]["text"] = "forged"
    gamma_key = generate_signing_key("1", bytes(range(32)))
    wrong_origin = page(alpha_server, clock, key=gamma_key, origin="gamma.test", sender="@eve:gamma.test")
    forged = page(alpha_server, clock, key=generate_signing_key(alpha_key.version, bytes(32)))
    bad_id = page(alpha_server, clock, text="bad id")
    bad_id["event_id"] = "$" + "B" * 43
    bad_id["signatures"] = sign_json(redact_event(bad_id), ALPHA, alpha_key)["signatures"]
    room_message = page(alpha_server, clock, event_type="vm.room.message", recipients=None,
                        room_id="!AAAAAAAAAAAAAAAA:alpha.test")
    too_large = page(alpha_server, clock, text="x")
    too_large["content"]["text"] = "x" * 70_000
    malformed = page(alpha_server, clock, text="malformed")
    del malformed["sender"]
    return {"invalid_event_hash": tampered, "origin_mismatch": wrong_origin,
            "invalid_event_signature": forged, "invalid_event_id": bad_id,
            "unsupported_event_type": room_message, "event_too_large": too_large, "bad_event": malformed}


@pytest.mark.gen_test(timeout=30)
async def test_each_refused_pdu_has_its_code_and_is_not_stored(server, url, alpha, alpha_key, clock, spec,
                                                                inbox):
    refused = _refused_pdus(alpha[0], clock, alpha_key)
    good = page(alpha[0], clock, text="good")
    events_before = count_rows(server, "events")
    status, answer, _ = await send(url, "t1", transaction(clock, [*refused.values(), good]),
                                   key=alpha_key, clock=clock, spec=spec)
    assert status == 200
    assert answer["pdus"][good["event_id"]] == {}
    for code, event in refused.items():
        assert answer["pdus"][event["event_id"]]["error"]["code"] == code, code
    assert inbox.accepted == [good["event_id"]]
    assert count_rows(server, "events") == events_before


@pytest.mark.gen_test(timeout=30)
async def test_checks_run_in_the_order_of_the_spec(server, url, alpha, alpha_key, clock, spec, receivers):
    """Each step's code wins over the later ones (federation.md section 4)."""
    denying, denying_url = await receivers(dataclasses.replace(server.context.config, federation_deny=(ALPHA,)))
    forger = generate_signing_key(alpha_key.version, bytes(32))
    late = clock() - 400_000
    for target, changes, code in [(denying_url, {"destination": "gamma.test", "ts": late}, "wrong_destination"),
                                  (denying_url, {"ts": late}, "server_forbidden"),
                                  (url, {"ts": late}, "request_expired"),
                                  (url, {}, "invalid_signature")]:
        _, answer, _ = await send(target, "t1", transaction(clock), key=forger, clock=clock, spec=spec, **changes)
        assert answer["error"]["code"] == code
    assert stored(denying) == (0, 0) and stored(server) == (0, 0)


@pytest.mark.gen_test(timeout=30)
async def test_a_key_document_is_trusted_until_its_valid_until_ts(server, url, alpha, alpha_key, clock, spec):
    """alpha loses its key A and starts over with B, publishing no old key: the
    receiver keeps trusting A while its cached document is valid (3600 s), and not after."""
    assert (await send(url, "t1", transaction(clock), key=alpha_key, clock=clock, spec=spec))[0] == 200
    alpha[0].context.keyring = KeyRing(generate_signing_key("7_B", bytes(range(1, 33))))
    clock.advance(3599)
    assert (await send(url, "t2", transaction(clock), key=alpha_key, clock=clock, spec=spec))[0] == 200
    clock.advance(2)
    status, answer, _ = await send(url, "t3", transaction(clock), key=alpha_key, clock=clock, spec=spec)
    assert (status, answer["error"]["code"]) == (401, "invalid_signature")
    new_key = alpha[0].context.keyring.current
    assert (await send(url, "t4", transaction(clock), key=new_key, clock=clock, spec=spec))[0] == 200
    assert count_rows(server, "federation_transactions") == 3
