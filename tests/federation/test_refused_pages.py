"""Bad pages from other servers, through the real page path: refused, and no trace left.

beta.test (on the test's ``database_url``) is a whole server with its real
receiver and inbox, Bob on a real WebSocket and Dave offline; alpha.test is
a real server whose key document beta fetches over HTTP (its first key was
rotated out a minute before it started: ``retired``); gamma.test is a real
server that beta denies (``federation_deny``). Requests are signed here with
the servers' own keys, as their senders would sign them, so that each can
break exactly one rule:

- a page tampered after signing, with a sender of another server than its
  origin, signed with the rotated-out key, or with a forged signature: the
  transaction is taken (200) and the page refused with its code;
- a replayed request (the same one again, or a new one with a used nonce), a
  request for another destination, one from a denied server, one signed with
  the rotated-out key: refused as a whole (401/403) with its code.

None of them leaves anything: no event on beta, no pending delivery for Dave,
no receipt in beta's outbox, no message on Bob's socket. The last point is
shown by order rather than by waiting: the next message Bob gets is a later
page that Alice sends through alpha's ordinary page path.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

import pytest

from tests.conftest import count_rows
from tests.federation.test_receive_transactions import send, transaction
from tests.federation.test_remote_pages import GAMMA
from tests.federation.test_two_servers import ALPHA, BETA, until
from tests.support.client import acked
from tests.support.federation import Federation
from vibemuse.clock import system_clock_ms
from vibemuse.federation.server_keys import load_or_create_signing_keys, rotate_signing_key
from vibemuse.protocol import content
from vibemuse.protocol.events import build_event
from vibemuse.protocol.federation_auth import sign_request
from vibemuse.protocol.signing import SigningKey, generate_signing_key

BOB, DAVE = "@bob:beta.test", "@dave:beta.test"


@contextlib.asynccontextmanager
async def three_servers(tmp_path, database_url):
    """alpha, beta (denying gamma) and gamma; alpha's first key already rotated out (yielded too)."""
    federation = Federation(tmp_path, database_url, (ALPHA, BETA, GAMMA),
                            settings={BETA: {"federation_deny": (GAMMA,)}})
    key_path = str(federation.configs[ALPHA].resolved_signing_key_path)
    retired = load_or_create_signing_keys(key_path).current
    rotate_signing_key(key_path, system_clock_ms() - 60_000)
    try:
        for name in (ALPHA, BETA, GAMMA):
            await federation.start(name)
        yield federation, retired
    finally:
        await federation.close()


def page(key: SigningKey, text: str, *, sender: str = "@alice:alpha.test", origin: str = ALPHA) -> dict[str, Any]:
    """A page to Bob and Dave as ``origin``'s page service makes it, signed with ``key``."""
    return build_event(event_type="vm.page", sender=sender, origin=origin, origin_server_ts=system_clock_ms(),
                       content=content.page("alice", ["bob", "dave"], text, 4000), recipients=[BOB, DAVE],
                       signing_key=key)


def traces(beta) -> dict[str, int]:
    """What an accepted page leaves on beta."""
    return {table: count_rows(beta, table) for table in ("events", "event_recipients", "pending_deliveries",
                                                          "federation_outbox")}


@pytest.mark.gen_test(timeout=90)
async def test_each_bad_page_is_refused_with_its_code_and_leaves_no_trace(tmp_path, database_url):
    async with three_servers(tmp_path, database_url) as (federation, retired):
        alpha, beta, gamma = (federation.worlds[name] for name in (ALPHA, BETA, GAMMA))
        alice, bob = await alpha.player("alice"), await beta.player("bob")
        await beta.offline_player("dave")
        url, spec, key = federation.urls[BETA], federation.spec, alpha.server.context.keyring.current
        assert key.key_id != retired.key_id

        async def put(txn_id: str, pdus: list[dict[str, Any]], **options: Any) -> tuple[int, dict[str, Any]]:
            options.setdefault("key", key)
            status, answer, _ = await send(url, txn_id, transaction(system_clock_ms, pdus, options.get("origin", ALPHA)),
                                           clock=system_clock_ms, spec=spec, **options)
            return status, answer

        # A good page by a signed request: the path works (and its nonce is used again below).
        good = page(key, "a good one")
        now = system_clock_ms()
        await alpha.server.context.storage.append_events([good], transaction=None, now_ms=now)  # alpha's own page
        good_body = transaction(system_clock_ms, [good])
        nonce = secrets.token_urlsafe(16)
        good_header = sign_request(key, method="PUT", uri="/federation/v1/send/good", origin=ALPHA, destination=BETA,
                                   content=good_body, ts=system_clock_ms(), nonce=nonce)
        status, answer, _ = await send(url, "good", good_body, key=key, clock=system_clock_ms, spec=spec,
                                       authorization=good_header)
        assert (status, answer) == (200, {"pdus": {good["event_id"]: {}}})
        assert (await bob.ws.receive_type("message", timeout=15))["data"]["event"]["event_id"] == good["event_id"]
        assert await until(lambda: count_rows(beta.server, "federation_outbox") == 0)  # its receipts went back
        before = traces(beta.server)

        gamma_key = gamma.server.context.keyring.current
        tampered, impostor = page(key, "the original"), page(key, "who am I")
        tampered["content"]["body"] = "a forgery"
        impostor["sender"] = "@eve:gamma.test"  # a sender of another server than the origin
        bad_pages = [
            ("invalid_event_hash", tampered),
            ("origin_mismatch", impostor),
            ("origin_mismatch", page(gamma_key, "gamma's, relayed by alpha", sender="@carol:gamma.test",
                                     origin=GAMMA)),
            ("invalid_event_signature", page(retired, "signed with the retired key")),
            ("invalid_event_signature", page(generate_signing_key(key.version, bytes(32)), "forged")),  # alpha's key id
        ]
        for code, event in bad_pages:
            status, answer = await put(f"bad.{event['event_id'][1:9]}", [event])
            result = answer["pdus"][event["event_id"]]
            assert (status, result.get("error", {}).get("code")) == (200, code), (code, result)

        again = page(key, "the same nonce again")
        elsewhere, with_retired = page(key, "for gamma"), page(key, "in a request the retired key signed")
        from_gamma = page(gamma_key, "from a denied server", sender="@carol:gamma.test", origin=GAMMA)
        refused_requests = [
            ((401, "replayed_request"), await send(url, "good", good_body, key=key, clock=system_clock_ms, spec=spec,
                                                   authorization=good_header)),
            ((401, "replayed_request"), await put("again", [again], nonce=nonce)),
            ((401, "wrong_destination"), await put("elsewhere", [elsewhere], destination=GAMMA)),
            ((403, "server_forbidden"), await put("gamma", [from_gamma], origin=GAMMA, key=gamma_key)),
            ((401, "invalid_signature"), await put("retired", [with_retired], key=retired)),
        ]
        for expected, (status, answer, *_) in refused_requests:
            assert (status, answer["error"]["code"]) == expected

        assert traces(beta.server) == before  # no event, recipient, pending delivery or receipt
        refused_ids = [event["event_id"] for event in [*(event for _, event in bad_pages), again, elsewhere,
                                                         with_retired, from_gamma]]
        assert await beta.server.context.storage.events_by_id(refused_ids) == {}

        later = await acked(alice.ws, "page", {"to": [BOB, DAVE], "text": "a later page"})
        got = (await bob.ws.receive_type("message", timeout=15))["data"]["event"]
        assert got["event_id"] == later["data"]["eventId"]  # nothing refused came before it
        assert count_rows(beta.server, "pending_deliveries") == before["pending_deliveries"] + 1  # Dave's, for it
