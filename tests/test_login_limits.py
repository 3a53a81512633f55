"""Login limits (protocol.md 18.1) attacked over real sockets from several client addresses:
a stranger guessing from one address cannot lock the owner out, credential stuffing from one
address is cut off, many addresses together are held back by the account's own bucket
(except at the owner's usual address), right passwords never count, parallel guesses get no
extra tries, and a password change counts like a login.

The server listens on 127.0.0.1; the client binds its side of each connection to another
loopback address (all of 127.0.0.0/8 is loopback on Linux), so the server sees distinct peer
addresses without trusting any header.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import count_rows
from tests.support.attack import fetch
from tests.support.client import PASSWORD
from tests.support.security import (  # noqa: F401 (overrides and server_config are fixtures)
    MEMORY_ONLY,
    bucket,
    limits,
    overrides,
    server_config,
)
from vibemuse.config import DEFAULT_RATE_LIMITS
from vibemuse.services.login_throttle import address_key

OWNER, STRANGER, ELSEWHERE = "127.0.0.2", "127.0.0.3", "127.0.0.4"
LOGIN_LIMITS = ("login_address", "login_account_address", "login_failures_address", "login_account")
DEFAULTS = limits(**{action: DEFAULT_RATE_LIMITS[action] for action in LOGIN_LIMITS})


async def login(base_url, spec, address, username, password=PASSWORD):
    """(status, error code or None, headers) of a login from ``address``."""
    url = base_url.replace("localhost", "127.0.0.1")
    status, headers, body = await fetch(url, "POST", "/api/auth/login", {"username": username, "password": password},
                                        network_interface=address)
    if status >= 400:
        spec.check_body("error", body)
        return status, body["error"]["code"], body["error"].get("details", {}), headers
    spec.check_body("session", body)
    return status, None, {}, headers


async def outcome(base_url, spec, address, username, password=PASSWORD):
    status, code, details, _ = await login(base_url, spec, address, username, password)
    return (status, code, details.get("action")) if code == "rate_limited" else (status, code)


WRONG = (401, "invalid_credentials")
OK = (200, None)


@pytest.mark.parametrize("overrides", [DEFAULTS], ids=["defaults"])
@pytest.mark.gen_test(timeout=30)
async def test_a_stranger_guessing_from_one_address_cannot_lock_the_owner_out(api, spec, base_url, server):
    await api.register("Alice")
    await api.register("Bob")
    burst = int(DEFAULT_RATE_LIMITS["login_account_address"][0])
    for _ in range(burst):
        assert await outcome(base_url, spec, STRANGER, "alice", "guess!guess") == WRONG
    tokens = count_rows(server, "access_tokens")
    status, code, details, headers = await login(base_url, spec, STRANGER, "ALICE", "guess!guess")
    assert (status, code, details["action"]) == (429, "rate_limited", "login_account_address")
    assert int(headers["Retry-After"]) == -(-details["retryAfterMs"] // 1000) >= 1
    # the stranger's address is refused even the right password: else each refusal would tell
    assert await outcome(base_url, spec, STRANGER, "alice") == (429, "rate_limited", "login_account_address")
    assert count_rows(server, "access_tokens") == tokens
    for _ in range(10):  # hammering on changes nothing for the owner
        assert (await login(base_url, spec, STRANGER, "alice", "guess!guess"))[0] == 429
        assert await outcome(base_url, spec, OWNER, "alice") == OK
    assert await outcome(base_url, spec, ELSEWHERE, "Alice") == OK
    assert await outcome(base_url, spec, STRANGER, "bob") == OK  # other accounts, same address


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [limits(login_failures_address=bucket(3))], ids=["failures3"])
@pytest.mark.gen_test(timeout=30)
async def test_credential_stuffing_from_one_address_is_cut_off(api, spec, base_url):
    for name in ("Alice", "Bob", "Carol", "Dave"):
        await api.register(name)
    for name in ("alice", "bob", "nobody"):  # one guess each, at accounts that exist or not
        assert await outcome(base_url, spec, STRANGER, name, "guess!guess") == WRONG
    assert await outcome(base_url, spec, STRANGER, "carol", "guess!guess") == (429, "rate_limited",
                                                                              "login_failures_address")
    assert await outcome(base_url, spec, STRANGER, "dave") == (429, "rate_limited", "login_failures_address")
    for name in ("alice", "bob", "carol", "dave"):
        assert await outcome(base_url, spec, OWNER, name) == OK


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [limits(login_account=bucket(4), login_account_address=bucket(2))],
                         ids=["account4"])
@pytest.mark.gen_test(timeout=30)
async def test_many_addresses_empty_the_account_bucket_but_not_for_the_owners_address(api, spec, base_url):
    await api.register("Alice")
    assert await outcome(base_url, spec, OWNER, "alice") == OK  # the owner's usual address
    for address in ("127.0.0.10", "127.0.0.11"):
        for _ in range(2):
            assert await outcome(base_url, spec, address, "alice", "guess!guess") == WRONG
    assert await outcome(base_url, spec, "127.0.0.12", "alice", "guess!guess") == (429, "rate_limited",
                                                                                  "login_account")
    # a right password from an address never used does not skip it (18.1) ...
    assert await outcome(base_url, spec, "127.0.0.13", "alice") == (429, "rate_limited", "login_account")
    # ... but the owner at an address they logged in from is not held back by strangers
    assert await outcome(base_url, spec, OWNER, "alice") == OK
    assert await outcome(base_url, spec, OWNER, "alice", "a typo") == WRONG


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [limits(login_account_address=bucket(2), login_account=bucket(2))],
                         ids=["account2"])
@pytest.mark.gen_test(timeout=30)
async def test_right_passwords_do_not_count_and_clear_the_addresses_failures(api, spec, base_url):
    await api.register("Alice")
    for _ in range(6):
        assert await outcome(base_url, spec, OWNER, "alice") == OK
    assert await outcome(base_url, spec, OWNER, "alice", "typo one") == WRONG
    assert await outcome(base_url, spec, OWNER, "alice") == OK  # fills this address's bucket again
    assert await outcome(base_url, spec, OWNER, "alice", "typo two") == WRONG
    assert await outcome(base_url, spec, OWNER, "alice", "typo three") == WRONG
    assert await outcome(base_url, spec, OWNER, "alice", "typo four") == (429, "rate_limited",
                                                                         "login_account_address")


@pytest.mark.parametrize("overrides", [limits(login_account_address=bucket(3))], ids=["account_address3"])
@pytest.mark.gen_test(timeout=30)
async def test_parallel_guesses_get_no_extra_tries(api, spec, base_url, server):
    await api.register("Alice")
    guesses = [outcome(base_url, spec, STRANGER, "alice", f"guess number {n}") for n in range(8)]
    results = await asyncio.gather(*guesses)
    assert sorted(results, key=str) == sorted([WRONG] * 3 + [(429, "rate_limited", "login_account_address")] * 5,
                                              key=str)
    assert count_rows(server, "access_tokens") == 1  # the registration's
    assert await outcome(base_url, spec, OWNER, "alice") == OK


@pytest.mark.parametrize("overrides", [limits(login_account_address=bucket(2))], ids=["account_address2"])
@pytest.mark.gen_test(timeout=30)
async def test_a_password_change_counts_like_a_login(api, spec, base_url, server):
    session = await api.register("Alice")
    url = base_url.replace("localhost", "127.0.0.1")

    async def change(current):
        status, _, body = await fetch(url, "POST", "/api/auth/password",
                                      {"currentPassword": current, "newPassword": "a much better passphrase"},
                                      token=session["accessToken"], network_interface=STRANGER)
        return status, body["error"]["code"], body["error"].get("details", {}).get("action")

    for _ in range(2):
        assert await change("not my password") == (401, "invalid_credentials", None)
    tokens = count_rows(server, "access_tokens")
    assert await change(PASSWORD) == (429, "rate_limited", "login_account_address")
    assert await outcome(base_url, spec, STRANGER, "alice") == (429, "rate_limited", "login_account_address")
    assert count_rows(server, "access_tokens") == tokens
    assert await outcome(base_url, spec, OWNER, "alice") == OK


@MEMORY_ONLY
@pytest.mark.parametrize("overrides", [limits(login_address=bucket(4))], ids=["address4"])
@pytest.mark.gen_test(timeout=30)
async def test_attempts_per_address_count_right_and_wrong(api, spec, base_url):
    await api.register("Alice")
    assert await outcome(base_url, spec, STRANGER, "alice") == OK
    for n in range(3):
        assert await outcome(base_url, spec, STRANGER, f"nobody{n}", "guess!guess") == WRONG
    assert await outcome(base_url, spec, STRANGER, "alice") == (429, "rate_limited", "login_address")
    assert await outcome(base_url, spec, OWNER, "alice") == OK


@pytest.mark.parametrize("address, key", [
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
    ("::ffff:203.0.113.7", "203.0.113.7"),
    ("unknown", "unknown"),
])
def test_limits_apply_to_an_ipv6_address_by_its_64(address, key):
    assert address_key(address) == key
