"""The published server keys, fetched over HTTP and checked with signedjson."""

from __future__ import annotations

import signedjson.key
import signedjson.sign
from unpaddedbase64 import decode_base64

import pytest

from vibemuse.federation.server_keys import rotate_signing_key
from vibemuse.protocol.events import build_event, parse_server_keys_response, verify_event


def _verify_key(key_id: str, key_b64: str):
    algorithm, version = key_id.split(":", 1)
    return signedjson.key.decode_verify_key_bytes(key_id, decode_base64(key_b64))


@pytest.mark.gen_test
async def test_keys_are_public_signed_and_verify_with_signedjson(api, server, clock):
    status, body = await api.call("GET", "/federation/v1/keys", schema="server-keys")
    assert status == 200
    assert body["server_name"] == "test.localhost"
    assert body["valid_until_ts"] == clock() + server.context.config.key_validity_seconds * 1000
    (key_id, entry), = body["verify_keys"].items()
    assert key_id == server.context.keyring.current.key_id
    signedjson.sign.verify_signed_json(body, "test.localhost", _verify_key(key_id, entry["key"]))
    parsed = parse_server_keys_response(body, "test.localhost", clock())
    assert key_id in parsed.verify_keys


@pytest.mark.gen_test
async def test_the_key_file_is_private(server):
    path = server.context.config.resolved_signing_key_path
    assert path.exists() and (path.stat().st_mode & 0o777) == 0o600


@pytest.mark.gen_test
async def test_events_signed_before_a_rotation_still_verify(api, server, clock):
    old_key = server.context.keyring.current
    event = build_event(
        event_type="vm.system", sender="@admin:test.localhost", origin="test.localhost",
        origin_server_ts=clock(), content={"text": "Reboot at noon."}, signing_key=old_key,
    )
    rotate_signing_key(str(server.context.config.resolved_signing_key_path), clock())
    server.reload_signing_keys()
    status, body = await api.call("GET", "/federation/v1/keys", schema="server-keys")
    assert status == 200
    assert old_key.key_id not in body["verify_keys"]
    assert old_key.key_id in body["old_verify_keys"]
    assert body["old_verify_keys"][old_key.key_id]["expired_ts"] == clock()
    keys = parse_server_keys_response(body, "test.localhost", clock())
    verified = verify_event(event, {"test.localhost": keys.all_verify_keys()})
    assert not verified.redacted_only
    new_key_id = server.context.keyring.current.key_id
    signedjson.sign.verify_signed_json(
        body, "test.localhost", _verify_key(new_key_id, body["verify_keys"][new_key_id]["key"])
    )


@pytest.mark.gen_test
async def test_keys_carry_cors_and_public_caching_and_nothing_else_does(server, api):
    """events.md section 8: the public key document is CORS-open and cacheable; /api is neither."""
    from tornado.httpclient import HTTPRequest

    client, base_url = api.http, api.base_url
    keys = await client.fetch(base_url + "/federation/v1/keys", headers={"Origin": "https://elsewhere.example"})
    assert keys.code == 200
    assert keys.headers["Access-Control-Allow-Origin"] == "*"
    validity = server.context.config.key_validity_seconds
    assert keys.headers["Cache-Control"] == f"public, max-age={min(validity, 3600)}"
    assert keys.headers["Content-Type"] == "application/json; charset=utf-8"
    refused = await client.fetch(HTTPRequest(base_url + "/federation/v1/keys", method="POST", body=b"{}"),
                                 raise_error=False)
    assert refused.code == 405
    assert refused.headers["Access-Control-Allow-Origin"] == "*" and refused.headers["Cache-Control"] == "no-store"
    versions = await client.fetch(base_url + "/api/versions", headers={"Origin": "https://elsewhere.example"})
    assert "Access-Control-Allow-Origin" not in versions.headers and versions.headers["Cache-Control"] == "no-store"
