"""``LoginThrottle`` on its own, with a hand-driven clock: what a check takes, what a right
password gives back, that a refusal takes nothing, and which addresses an account knows."""

from __future__ import annotations

import pytest

from vibemuse.protocol.errors import ProtocolError
from vibemuse.realtime.ratelimit import Rate, RateLimiter
from vibemuse.services.login_throttle import KNOWN_ADDRESSES_PER_ACCOUNT, LoginThrottle


def throttle(**bursts):
    rates = {"login_address": 100, "login_account_address": 100, "login_failures_address": 100,
             "login_account": 100, **bursts}
    now = [0.0]
    limiter = RateLimiter({action: Rate(burst, 0.001) for action, burst in rates.items()}, monotonic=lambda: now[0])
    return LoginThrottle(limiter), limiter


def refused_by(check, account, address):
    with pytest.raises(ProtocolError) as refusal:
        check.attempt(account, address)
    return refusal.value.details["action"]


def test_a_refusal_takes_no_token_from_any_bucket():
    check, _ = throttle(login_account=1, login_failures_address=2)
    check.attempt("alice", "10.0.0.9")  # a wrong password empties Alice's account bucket
    for _ in range(3):
        assert refused_by(check, "alice", "10.0.0.1") == "login_account"
    check.attempt("bob", "10.0.0.1")  # 10.0.0.1 still has both of its failure tokens
    check.attempt("carol", "10.0.0.1")
    assert refused_by(check, "dave", "10.0.0.1") == "login_failures_address"


def test_a_right_password_gives_its_tokens_back_and_makes_the_address_known():
    check, _ = throttle(login_account=1, login_account_address=1, login_failures_address=1)
    check.succeeded(check.attempt("alice", "10.0.0.1"))
    check.succeeded(check.attempt("ALICE", "10.0.0.1"))  # nothing was kept
    check.attempt("alice", "10.0.0.2")  # a wrong password from elsewhere empties the account's bucket
    assert refused_by(check, "alice", "10.0.0.3") == "login_account"
    check.attempt("alice", "10.0.0.1")  # the known address does not need it


def test_an_account_knows_its_last_few_addresses():
    check, _ = throttle(login_account=1)
    addresses = [f"10.0.0.{n}" for n in range(KNOWN_ADDRESSES_PER_ACCOUNT + 1)]
    for address in addresses:
        check.succeeded(check.attempt("alice", address))
    check.attempt("alice", "10.0.1.1")  # a wrong password from a stranger empties the account's bucket
    assert refused_by(check, "alice", addresses[0]) == "login_account"  # the oldest is forgotten
    for address in addresses[1:]:
        check.attempt("alice", address)
