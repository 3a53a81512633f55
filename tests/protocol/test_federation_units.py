"""Received transactions and PDUs: shape, limits, and every per-PDU refusal."""

from __future__ import annotations

import copy

import pytest

from vibemuse.protocol.events import ServerKeys, build_event, compute_content_hash, compute_event_id, redact_event
from vibemuse.protocol.federation_units import (
    MAX_EDUS,
    MAX_PDUS,
    TransactionError,
    check_pdu,
    is_valid_txn_id,
    keys_in_force,
    parse_transaction,
)
from vibemuse.protocol.signing import OldVerifyKey, generate_signing_key, sign_json

ALPHA = "alpha.test"
ACCEPTED = frozenset({"vm.page", "vm.receipt"})
NOW = 1_700_000_000_000


@pytest.fixture
def alpha_key():
    return generate_signing_key("1", bytes(range(32)))


@pytest.fixture
def alpha_keys(alpha_key):
    return ServerKeys(ALPHA, {alpha_key.key_id: alpha_key.verify_key}, {}, NOW + 86_400_000)


def _page(key, origin=ALPHA, sender="@ann:alpha.test", event_type="vm.page", ts=NOW, text="hi"):
    return build_event(event_type=event_type, sender=sender, origin=origin, origin_server_ts=ts,
                       content={"text": text}, signing_key=key, recipients=["@bob:beta.test"])


def _code(event, keys, origin=ALPHA):
    refusal = check_pdu(event, origin, keys, ACCEPTED)
    return None if refusal is None else refusal.code


def test_good_page_accepted(alpha_key, alpha_keys):
    assert _code(_page(alpha_key), alpha_keys) is None


def test_tampered_content_is_bad_hash(alpha_key, alpha_keys):
    event = _page(alpha_key)
    event["content"]["text"] = "forged"
    assert _code(event, alpha_keys) == "invalid_event_hash"


def test_rehashed_tampering_breaks_the_id_then_the_signature(alpha_key, alpha_keys):
    event = _page(alpha_key)
    event["content"]["text"] = "forged"
    event["hashes"]["sha256"] = compute_content_hash(event)
    assert _code(event, alpha_keys) == "invalid_event_signature"
    event["event_id"] = compute_event_id(event)
    assert _code(event, alpha_keys) == "invalid_event_signature"


def test_wrong_event_id(alpha_key, alpha_keys):
    """A changed id breaks the signature; an origin that signs a wrong id
    gets invalid_event_id."""
    event = _page(alpha_key)
    event["event_id"] = "$" + "A" * 43
    assert _code(event, alpha_keys) == "invalid_event_signature"
    event["signatures"] = sign_json(redact_event(event), ALPHA, alpha_key)["signatures"]
    assert _code(event, alpha_keys) == "invalid_event_id"


def test_signature_by_another_key(alpha_key, alpha_keys):
    forger = generate_signing_key("1", bytes(32))
    assert _code(_page(forger), alpha_keys) == "invalid_event_signature"


def test_unknown_key_id_or_no_keys(alpha_key, alpha_keys):
    other = generate_signing_key("2", bytes(range(32)))
    assert _code(_page(other), alpha_keys) == "invalid_event_signature"
    assert _code(_page(alpha_key), None) == "invalid_event_signature"


def test_event_from_another_origin(alpha_key, alpha_keys):
    gamma = _page(alpha_key, origin="gamma.test", sender="@eve:gamma.test")
    assert _code(gamma, alpha_keys) == "origin_mismatch"


def test_sender_on_another_server(alpha_key, alpha_keys):
    event = _page(alpha_key)
    event["sender"] = "@eve:gamma.test"
    assert _code(event, alpha_keys) == "origin_mismatch"


def test_unsupported_type(alpha_key, alpha_keys):
    assert _code(_page(alpha_key, event_type="vm.message"), alpha_keys) == "unsupported_event_type"


def test_malformed(alpha_key, alpha_keys):
    event = _page(alpha_key)
    del event["content"]
    assert _code(event, alpha_keys) == "bad_event"
    assert _code("not an event", alpha_keys) == "bad_event"
    event = _page(alpha_key)
    event["extra"] = 1
    assert _code(event, alpha_keys) == "bad_event"


def test_too_large(alpha_key, alpha_keys):
    event = _page(alpha_key)
    event["content"] = {"text": "x" * 70_000}
    assert _code(event, alpha_keys) == "event_too_large"


def test_old_key_verifies_only_events_made_before_it_expired(alpha_key):
    current = generate_signing_key("2", bytes(32))
    keys = ServerKeys(ALPHA, {current.key_id: current.verify_key},
                      {alpha_key.key_id: OldVerifyKey(alpha_key.verify_key, NOW)}, NOW + 10**8)
    assert _code(_page(alpha_key, ts=NOW - 1), keys) is None
    assert _code(_page(alpha_key, ts=NOW), keys) == "invalid_event_signature"
    assert set(keys_in_force(keys, NOW - 1)) == {"ed25519:1", "ed25519:2"}
    assert set(keys_in_force(keys, NOW)) == {"ed25519:2"}


def _body(**changes):
    body = {"origin": ALPHA, "origin_server_ts": NOW, "pdus": [], "edus": []}
    body.update(changes)
    return body


def test_transaction_parsed(alpha_key):
    page = _page(alpha_key)
    txn = parse_transaction(_body(pdus=[page], edus=[{"edu_type": "x"}]), ALPHA)
    assert (txn.origin, txn.origin_server_ts, txn.pdus, len(txn.edus)) == (ALPHA, NOW, (page,), 1)
    assert parse_transaction({"origin": ALPHA, "origin_server_ts": 0}, ALPHA).pdus == ()


@pytest.mark.parametrize("body", [
    [], _body(origin="gamma.test"), _body(origin=None), _body(origin_server_ts=-1),
    _body(origin_server_ts="1"), _body(pdus={}), _body(pdus=[1]), _body(pdus=[{"type": "x"}]),
    _body(pdus=[{"event_id": 5}]), _body(edus=[[]]), _body(extra=1),
    _body(pdus=[{"event_id": "$a"}] * (MAX_PDUS + 1)), _body(edus=[{}] * (MAX_EDUS + 1)),
    _body(edus=[{"x": "y" * 70_000}]), _body(edus=[{"x": 1.5}]),
])
def test_transaction_refused(body):
    with pytest.raises(TransactionError):
        parse_transaction(copy.deepcopy(body), ALPHA)


def test_limits_are_inclusive():
    body = _body(pdus=[{"event_id": "$a"}] * MAX_PDUS, edus=[{}] * MAX_EDUS)
    assert len(parse_transaction(body, ALPHA).pdus) == MAX_PDUS


@pytest.mark.parametrize("txn_id,ok", [("t1", True), ("A.b_c~d-9", True), ("x" * 64, True),
                                       ("", False), ("x" * 65, False), ("a/b", False),
                                       ("a b", False), (None, False)])
def test_txn_id_grammar(txn_id, ok):
    assert is_valid_txn_id(txn_id) is ok
