"""Stamps and the hash chain of a channel's order (vibemuse/protocol/channel_chain.py)."""

from __future__ import annotations

import pytest

from vibemuse.protocol.channel_chain import (
    GENESIS, StampError, chain_of, check_successor, make_stamp, verify_stamp,
)
from vibemuse.protocol.events import build_event
from vibemuse.protocol.signing import generate_signing_key

ALPHA_KEY = generate_signing_key("a1", seed=b"\x01" * 32)
BETA_KEY = generate_signing_key("b1", seed=b"\x02" * 32)
CHANNEL = "#public:alpha.test"


def message(text: str, sender: str = "@bob:beta.test", key=BETA_KEY) -> dict:
    return build_event(event_type="vm.channel.message", sender=sender, origin=sender.split(":", 1)[1],
                       origin_server_ts=1_700_000_000_000, content={"kind": "channel", "body": text},
                       channel_id=CHANNEL, signing_key=key)


def chain(*texts: str) -> list[tuple[dict, dict]]:
    """(event, stamp) pairs stamped 1, 2, ... by alpha."""
    pairs, prev = [], GENESIS
    for seq, text in enumerate(texts, start=1):
        event = message(text)
        stamp = make_stamp(CHANNEL, seq, event["event_id"], prev, "alpha.test", ALPHA_KEY)
        pairs.append((event, stamp))
        prev = chain_of(stamp)
    return pairs


def test_a_stamp_verifies_with_the_homes_key_and_gives_its_chain():
    (event, stamp), = chain("hi")
    assert verify_stamp(stamp, event, {ALPHA_KEY.key_id: ALPHA_KEY.verify_key}) == chain_of(stamp)
    assert stamp["prev"] == GENESIS and stamp["seq"] == 1 and stamp["home"] == "alpha.test"


def test_each_stamp_names_its_predecessor_and_the_chain_follows_on():
    pairs = chain("one", "two", "three")
    seq, head = 0, GENESIS
    for event, stamp in pairs:
        assert check_successor(stamp, seq, head) is True
        seq, head = stamp["seq"], chain_of(stamp)
    assert check_successor(pairs[1][1], seq, head) is False  # already held


def test_a_gap_or_a_foreign_predecessor_is_refused():
    pairs = chain("one", "two", "three")
    with pytest.raises(StampError, match="missing"):
        check_successor(pairs[2][1], 1, chain_of(pairs[0][1]))
    other = chain("uno", "dos")
    with pytest.raises(StampError, match="predecessor"):
        check_successor(other[1][1], 1, chain_of(pairs[0][1]))


def test_chains_differ_as_soon_as_one_event_differs():
    first, second = chain("one", "two"), chain("one", "TWO")
    assert chain_of(first[0][1]) == chain_of(second[0][1])
    assert chain_of(first[1][1]) != chain_of(second[1][1])  # the second events differ, so do their chains


@pytest.mark.parametrize("change, why", [
    (lambda s: s.update(seq=2, prev="abc"), "signature"),
    (lambda s: s.update(event_id="$other"), "not"),
    (lambda s: s.update(home="beta.test"), "home"),
    (lambda s: s.update(channel_id="#public:beta.test"), "home"),
    (lambda s: s.update(prev="abc"), "prev"),
    (lambda s: s.update(extra=1), "unknown"),
    (lambda s: s.update(seq=0), "seq"),
    (lambda s: s.update(seq="1"), "seq"),
    (lambda s: s.pop("signatures"), "signature"),
])
def test_a_changed_or_malformed_stamp_is_refused(change, why):
    (event, stamp), = chain("hi")
    stamp = dict(stamp)
    change(stamp)
    with pytest.raises(StampError, match=why):
        verify_stamp(stamp, event, {ALPHA_KEY.key_id: ALPHA_KEY.verify_key})


def test_a_stamp_signed_by_another_server_does_not_verify():
    event = message("hi")
    forged = make_stamp(CHANNEL, 1, event["event_id"], GENESIS, "alpha.test", BETA_KEY)  # beta's key, alpha's name
    with pytest.raises(StampError, match="signature"):
        verify_stamp(forged, event, {ALPHA_KEY.key_id: ALPHA_KEY.verify_key})


def test_a_stamp_of_another_event_does_not_verify():
    (event, stamp), = chain("hi")
    with pytest.raises(StampError, match="stamp is for"):
        verify_stamp(stamp, message("other"), {ALPHA_KEY.key_id: ALPHA_KEY.verify_key})
