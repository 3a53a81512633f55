"""Accounts over HTTP: register, login, logout, whoami — and bad input changing nothing."""

from __future__ import annotations

import json

import pytest

from tests.conftest import count_rows
from tests.support.client import PASSWORD


@pytest.mark.gen_test
async def test_register_returns_a_session_and_puts_the_character_in_the_default_room(api, server):
    session = await api.register("Alice")
    assert session["user"] == {"id": "@alice:test.localhost", "username": "Alice", "role": "player"}
    default_room = await server.context.storage.get_state("default_room_id")
    assert session["location"] == default_room
    status, me = await api.call("GET", "/api/users/me", token=session["accessToken"], schema="me")
    assert status == 200
    assert me == {"user": session["user"], "location": default_room}


@pytest.mark.gen_test
async def test_password_is_stored_hashed_and_token_only_as_hash(api, server):
    session = await api.register("Alice")
    user = await server.context.storage.get_user("@alice:test.localhost")
    assert user.password_hash.startswith("scrypt$") and PASSWORD not in user.password_hash
    with server.context.storage.engine.connect() as connection:
        stored = [row[0] for row in connection.exec_driver_sql("SELECT token_hash FROM access_tokens")]
    assert len(stored) == 1 and session["accessToken"] not in stored[0] and len(stored[0]) == 64


@pytest.mark.gen_test
async def test_login_and_logout(api):
    await api.register("Alice")
    status, session = await api.call(
        "POST", "/api/auth/login", {"username": "ALICE", "password": PASSWORD}, schema="session"
    )
    assert status == 200 and session["user"]["username"] == "Alice"
    status, body = await api.call("POST", "/api/auth/logout", token=session["accessToken"])
    assert status == 204 and body is None
    status, body = await api.call("GET", "/api/users/me", token=session["accessToken"])
    assert status == 401 and body["error"]["code"] == "invalid_token"


@pytest.mark.parametrize(
    "username, password",
    [("Alice", "wrong password!"), ("Nobody", PASSWORD), ("not a name!", PASSWORD), ("Alice", "")],
)
@pytest.mark.gen_test
async def test_bad_login_is_invalid_credentials_and_issues_no_token(api, server, username, password):
    await api.register("Alice")
    tokens = count_rows(server, "access_tokens")
    status, body = await api.call("POST", "/api/auth/login", {"username": username, "password": password})
    assert status == 401 and body["error"]["code"] == "invalid_credentials"
    assert count_rows(server, "access_tokens") == tokens


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"username": "alice", "password": PASSWORD}, 409, "username_taken"),
        ({"username": "ALICE", "password": PASSWORD}, 409, "username_taken"),
        ({"username": "Bob", "password": ""}, 400, "weak_password"),
        ({"username": "Bob", "password": "short"}, 400, "weak_password"),
        ({"username": "Bob", "password": "password123"}, 400, "weak_password"),
        ({"username": "Bob", "password": "aaaaaaaaaaaa"}, 400, "weak_password"),
        ({"username": "Bob", "password": "my-bob-password"}, 400, "weak_password"),
        ({"username": "B", "password": PASSWORD}, 400, "invalid_username"),
        ({"username": "9lives", "password": PASSWORD}, 400, "invalid_username"),
        ({"username": "Bob Smith", "password": PASSWORD}, 400, "invalid_username"),
        ({"username": "x" * 33, "password": PASSWORD}, 400, "invalid_username"),
        ({"username": "Bob"}, 400, "invalid_request"),
        ({"username": "Bob", "password": PASSWORD, "role": "admin"}, 400, "invalid_request"),
        ({"username": 7, "password": PASSWORD}, 400, "invalid_request"),
        ([], 400, "invalid_request"),
    ],
)
@pytest.mark.gen_test
async def test_bad_registrations_change_nothing(api, server, body, status, code):
    await api.register("Alice")
    before = count_rows(server, "users"), count_rows(server, "access_tokens")
    got_status, got = await api.call("POST", "/api/auth/register", body)
    assert (got_status, got["error"]["code"]) == (status, code)
    assert (count_rows(server, "users"), count_rows(server, "access_tokens")) == before


@pytest.mark.parametrize("raw", [b"not json", b"\xff\xfe", b"", b'{"username": "Bob", "password": NaN}'])
@pytest.mark.gen_test
async def test_non_json_bodies_are_bad_json(api, server, raw):
    status, body = await api.call("POST", "/api/auth/register", raw=raw)
    assert status == 400 and body["error"]["code"] == "bad_json"
    assert count_rows(server, "users") == 0


@pytest.mark.gen_test
async def test_oversized_body_is_refused_before_parsing(api, server):
    raw = b'{"username": "Bob", "password": "' + b"x" * (server.context.config.max_http_body_bytes + 10) + b'"}'
    status, body = await api.call("POST", "/api/auth/register", raw=raw)
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    assert count_rows(server, "users") == 0


@pytest.mark.gen_test
async def test_expired_token_is_told_apart_from_a_wrong_one(api, server, clock):
    session = await api.register("Alice")
    clock.advance(server.context.config.token_lifetime_seconds + 1)
    status, body = await api.call("GET", "/api/users/me", token=session["accessToken"])
    assert status == 401 and body["error"]["code"] == "token_expired"
    status, body = await api.call("GET", "/api/users/me", token="vmt_" + "x" * 43)
    assert status == 401 and body["error"]["code"] == "invalid_token"


@pytest.mark.parametrize("header", ["", "Basic abc", "Bearer", "Bearer   "])
@pytest.mark.gen_test
async def test_missing_or_malformed_authorization(api, header):
    status, body = await api.call("GET", "/api/users/me", headers={"Authorization": header} if header else None)
    assert status == 401
    assert body["error"]["code"] == ("not_authenticated" if not header else "invalid_token")


@pytest.mark.gen_test
async def test_unknown_paths_and_methods_answer_in_protocol_errors(api):
    status, body = await api.call("GET", "/api/no/such/thing")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await api.call("DELETE", "/api/versions")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"


@pytest.mark.gen_test
async def test_versions_is_public(api):
    status, body = await api.call("GET", "/api/versions", schema="versions")
    assert status == 200
    assert body["versions"] == ["v1"] and body["subprotocols"] == ["vibemuse.v1"]
    assert "frame_auth" in body["features"]["v1"] and "signed_events" in body["features"]["v1"]
    assert body["server"]["name"] == "test.localhost"


@pytest.mark.gen_test
async def test_chunked_oversized_body_is_refused_too(api, server):
    limit = server.context.config.max_http_body_bytes
    payload = b'{"username": "Bob", "password": "' + b"x" * (limit + 10) + b'"}'

    async def producer(write):
        for start in range(0, len(payload), 4096):
            await write(payload[start : start + 4096])

    from tornado.httpclient import HTTPRequest

    request = HTTPRequest(
        api.base_url + "/api/auth/register", method="POST", body_producer=producer,
        headers={"Content-Type": "application/json"},
    )
    response = await api.http.fetch(request, raise_error=False)
    assert response.code == 413
    assert json.loads(response.body)["error"]["code"] == "payload_too_large"
    assert count_rows(server, "users") == 0


@pytest.mark.gen_test
async def test_method_not_allowed_says_what_is(api):
    response = await api.http.fetch(api.base_url + "/api/versions", method="DELETE", raise_error=False)
    assert response.code == 405 and response.headers["Allow"] == "GET"
