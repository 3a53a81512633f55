"""The exact refusals of the federation units: what a remote operator reads, and the edges."""

from __future__ import annotations

import pytest

from vibemuse.protocol.canonical_json import MAX_SAFE_INT
from vibemuse.protocol.events import MAX_EVENT_BYTES, ServerKeys, build_event
from vibemuse.protocol.federation_auth import (
    InvalidRequestSignature,
    MalformedAuthorization,
    RequestExpired,
    check_request_time,
    parse_authorization,
    request_signed_bytes,
    sign_request,
    verify_request,
)
from vibemuse.protocol.federation_units import (
    MAX_EDU_BYTES,
    TransactionError,
    check_pdu,
    parse_transaction,
)
from vibemuse.protocol.signing import generate_signing_key

KEY = generate_signing_key("1", bytes(range(32)))
NONCE = "n0nce_of-16chars"
URI = "/federation/v1/send/t1"


def header(**changes):
    args = dict(method="PUT", uri=URI, origin="alpha.test", destination="beta.test", content=None,
                ts=5, nonce=NONCE)
    args.update(changes)
    return sign_request(KEY, **args)


def params_of(value):
    return dict(part.split("=", 1) for part in value.split(" ", 1)[1].split(","))


def with_param(name, value):
    params = params_of(header())
    params[name] = f'"{value}"'
    return "X-VibeMUSE " + ",".join(f"{k}={v}" for k, v in params.items())


@pytest.mark.parametrize("value,message", [
    (None, "no Authorization header"),
    (5, "no Authorization header"),
    ("Bearer x", "Authorization scheme must be X-VibeMUSE"),
    ('X-VibeMUSE origin="a" x', 'Authorization parameters must be name="value", comma-separated (at 0)'),
    ('X-VibeMUSE origin="a",x', 'Authorization parameters must be name="value", comma-separated (at 11)'),
    ('X-VibeMUSE origin="a",', "Authorization ends with a comma"),
    ('X-VibeMUSE origin="a",origin="a"', "Authorization gives origin twice"),
    ('X-VibeMUSE origin="a"', "Authorization lacks destination, key, ts, nonce, sig"),
    (with_param("origin", "a b"), "Authorization origin is not a server name"),
    (with_param("key", "rsa:1"), "Authorization key: key id 'rsa:1' must match ed25519:[A-Za-z0-9_]+"),
    (with_param("ts", "x"), "Authorization ts must be a non-negative integer (ms)"),
    (with_param("ts", str(MAX_SAFE_INT + 1)), "Authorization ts must be a non-negative integer (ms)"),
    (with_param("nonce", "short"), "Authorization nonce must be 16-64 of [A-Za-z0-9_-]"),
    (with_param("sig", "!"), "Authorization sig: base64 contains characters outside the alphabet"),
    (with_param("sig", "AAAA"), "Authorization sig must be 64 bytes, unpadded standard base64"),
    (with_param("sig", "-" + "A" * 85), "Authorization sig must be 64 bytes, unpadded standard base64"),
    (with_param("sig", "_" + "A" * 85), "Authorization sig must be 64 bytes, unpadded standard base64"),
])
def test_malformed_authorization_messages(value, message):
    with pytest.raises(MalformedAuthorization) as caught:
        parse_authorization(value)
    assert str(caught.value) == message


def test_largest_ts_accepted_everywhere():
    assert parse_authorization(header(ts=MAX_SAFE_INT)).ts == MAX_SAFE_INT
    assert parse_authorization(header(ts=0)).ts == 0


@pytest.mark.parametrize("changes,message", [
    ({"nonce": "x"}, "nonce must be 16-64 characters of [A-Za-z0-9_-]"),
    ({"ts": -1}, "ts must be a non-negative integer (ms)"),
    ({"ts": MAX_SAFE_INT + 1}, "ts must be a non-negative integer (ms)"),
    ({"ts": 1.0}, "ts must be a non-negative integer (ms)"),
])
def test_signing_refusals(changes, message):
    with pytest.raises(ValueError) as caught:
        header(**changes)
    assert str(caught.value) == message


def test_verification_and_window_messages():
    sig = parse_authorization(header())
    with pytest.raises(InvalidRequestSignature) as caught:
        verify_request(sig, KEY.verify_key, method="GET", uri=URI, content=None)
    assert str(caught.value) == "request signature by alpha.test does not verify"
    with pytest.raises(InvalidRequestSignature) as caught:
        request_signed_bytes(method="PUT", uri=URI, origin="a", destination="b", content={"x": 1.5},
                             ts=1, nonce=NONCE)
    assert str(caught.value) == "request is not canonical JSON: floats are not allowed (got 1.5) at content.x"
    with pytest.raises(RequestExpired) as caught:
        check_request_time(0, 1001, 1000)
    assert str(caught.value) == "request ts 0 is more than 1000 ms from now (1001)"


def _body(**changes):
    body = {"origin": "alpha.test", "origin_server_ts": 1, "pdus": [], "edus": []}
    body.update(changes)
    return body


@pytest.mark.parametrize("body,message", [
    ([], "a transaction must be a JSON object"),
    (_body(x=1, y=2), "unknown field(s): x, y"),
    (_body(origin="gamma.test"), "origin must be the requesting server alpha.test"),
    (_body(origin_server_ts=-1), "origin_server_ts must be a non-negative integer (ms)"),
    (_body(pdus={}), "pdus must be a list of at most 50 objects"),
    (_body(edus=[1]), "every item of edus must be an object"),
    (_body(pdus=[{}, {"event_id": "$"}]), "pdus[0] needs an event_id string"),
    (_body(pdus=[{"event_id": "$"}, {"event_id": ""}]), "pdus[1] needs an event_id string"),
    (_body(pdus=[{"event_id": "$"}, {"event_id": "x" * 256}]), "pdus[1] needs an event_id string"),
    (_body(edus=[{}, {"x": 1.5}]), "an EDU is not canonical JSON: floats are not allowed (got 1.5) at x"),
    (_body(edus=[{}, {"x": "y" * MAX_EDU_BYTES}]), f"edus[1] is over {MAX_EDU_BYTES} bytes"),
])
def test_transaction_messages(body, message):
    with pytest.raises(TransactionError) as caught:
        parse_transaction(body, "alpha.test")
    assert str(caught.value) == message


def test_transaction_edges_accepted():
    longest = {"event_id": "x" * 255}
    edu = {"x": "y" * (MAX_EDU_BYTES - len('{"x":""}'))}
    txn = parse_transaction(_body(pdus=[{"event_id": "$"}, longest], edus=[edu]), "alpha.test")
    assert len(txn.pdus) == 2 and len(txn.edus) == 1


KEYS = ServerKeys("alpha.test", {KEY.key_id: KEY.verify_key}, {}, 10**13)


def page(**changes):
    args = dict(event_type="vm.page", sender="@ann:alpha.test", origin="alpha.test", origin_server_ts=1,
                content={"text": "hi"}, recipients=["@bob:beta.test"], signing_key=KEY)
    args.update(changes)
    return build_event(**args)


def _refusal(event):
    refusal = check_pdu(event, "alpha.test", KEYS, {"vm.page"})
    return refusal.code, refusal.message


def test_pdu_messages():
    event = page(origin="gamma.test", sender="@ann:gamma.test")
    assert _refusal(event) == ("origin_mismatch", "event origin gamma.test is not alpha.test")
    event = page()
    event["origin"] = "gamma.test"  # the sender still names alpha.test
    assert _refusal(event) == ("origin_mismatch", "event origin gamma.test is not alpha.test")
    event = page()
    event["sender"] = "@eve:gamma.test"
    assert _refusal(event) == ("origin_mismatch", "sender @eve:gamma.test is not on alpha.test")
    event = page()
    del event["content"]
    assert _refusal(event) == ("bad_event", "missing field(s): content")
    event = page()
    event["content"] = {"text": "x" * MAX_EVENT_BYTES}
    code, message = _refusal(event)
    assert code == "event_too_large" and message.endswith(f"bytes, over {MAX_EVENT_BYTES}")
    assert _refusal(page(event_type="vm.other")) == ("unsupported_event_type",
                                                       "this server does not accept vm.other")
    forged = page(signing_key=generate_signing_key("1", bytes(32)))
    assert _refusal(forged) == ("invalid_event_signature", "signature alpha.test/ed25519:1 does not verify")
    tampered = page()
    tampered["content"]["text"] = "forged"
    assert _refusal(tampered) == ("invalid_event_hash", "content does not match hashes.sha256")


def test_wrong_event_id_message():
    from vibemuse.protocol.events import compute_event_id, redact_event
    from vibemuse.protocol.signing import sign_json

    event = page()
    right = event["event_id"]
    event["event_id"] = "$" + "B" * 43
    event["signatures"] = sign_json(redact_event(event), "alpha.test", KEY)["signatures"]
    assert compute_event_id(event) == right
    assert _refusal(event) == ("invalid_event_id", f"event_id {'$' + 'B' * 43} does not match contents ({right})")
