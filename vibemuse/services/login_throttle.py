"""``LoginThrottle``: how many wrong passwords anyone may try, without letting a stranger
lock an owner out (protocol.md 18.1).

Theory of operation. Four token buckets of ``realtime.ratelimit``, each a ``rate_limits``
setting:

- ``login_address``: every attempt from one address, whatever the account and the outcome;
  it bounds the password hashing one address can make the server do;
- ``login_account_address``: wrong passwords for one account from one address, a small burst
  and a slow refill: all a guesser at one address gets;
- ``login_failures_address``: wrong passwords from one address over all accounts together
  (credential stuffing: a guess or two at many accounts);
- ``login_account``: wrong passwords for one account from every address together. It is much
  larger and refills faster than one address's ``login_account_address`` lets failures in,
  so no single address can empty it; only many addresses at once can. Addresses the account
  has logged in from with the right password (the last few, kept in memory) do not need it,
  the address form of OWASP's device cookies: the owner at their usual address gets in even
  while a botnet guesses.

An attempt takes a token from each bucket before the password is checked, so parallel guesses
cannot all slip through on one token; a right password gives the failure tokens back (and
fills its (account, address) bucket again), so only wrong passwords count. A refused attempt
takes nothing. A right password does not skip ``login_account``: knowing it is right means
checking it, and a limit that checks first and refuses only the wrong ones is no limit on
guessing (each refusal would say "wrong").

Accounts are keyed by the name as typed, case-folded, whether or not it exists (the answers
must not tell); IPv6 addresses by their /64, which one host commonly holds whole.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from vibemuse.realtime.ratelimit import RateLimiter
from vibemuse.services.guard import rate_limited

ATTEMPTS = "login_address"
ACCOUNT_AT_ADDRESS = "login_account_address"
FAILURES_AT_ADDRESS = "login_failures_address"
ACCOUNT = "login_account"
KNOWN_ADDRESSES_PER_ACCOUNT = 4
MAX_KNOWN_ACCOUNTS = 100_000


def address_key(address: str) -> str:
    """The address a limit applies to: an IPv4 address as is, an IPv6 one by its /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class LoginAttempt:
    """One password check under way, and the failure tokens it holds."""

    account: str
    address: str
    held: tuple[tuple[str, str], ...]


class LoginThrottle:
    def __init__(self, limiter: RateLimiter):
        self._limiter = limiter
        self._known: dict[str, list[str]] = {}  # account -> addresses of its last successful logins

    def attempt(self, account: str, address: str) -> LoginAttempt:
        """Take the tokens of one password check, or raise ``rate_limited`` having taken none."""
        account, address = account.casefold(), address_key(address)
        buckets = [(ATTEMPTS, address), (ACCOUNT_AT_ADDRESS, f"{len(account)}:{account}@{address}"),
                   (FAILURES_AT_ADDRESS, address)]
        if address not in self._known.get(account, ()):
            buckets.append((ACCOUNT, account))
        taken: list[tuple[str, str]] = []
        for action, key in buckets:
            retry_after = self._limiter.take(action, key)
            if retry_after:
                for held in taken:
                    self._limiter.give_back(*held)
                raise rate_limited(action, retry_after)
            taken.append((action, key))
        return LoginAttempt(account, address, tuple(taken[1:]))

    def succeeded(self, attempt: LoginAttempt) -> None:
        """The password was right: it was no failure, and this address is now known."""
        for action, key in attempt.held:
            if action == ACCOUNT_AT_ADDRESS:
                self._limiter.forget(action, key)
            else:
                self._limiter.give_back(action, key)
        known = [address for address in self._known.pop(attempt.account, []) if address != attempt.address]
        self._known[attempt.account] = [*known[-(KNOWN_ADDRESSES_PER_ACCOUNT - 1):], attempt.address]
        if len(self._known) > MAX_KNOWN_ACCOUNTS:  # forget the account that logged in longest ago
            del self._known[next(iter(self._known))]
