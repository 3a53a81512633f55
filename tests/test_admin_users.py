"""Admins on the running server: who is on, kick, roles and bans, in force at once.

Everything over real HTTP and real sockets: a kick or a ban closes the
user's open sockets with its code, a ban refuses the next login, a new role
is in force on the user's very next frame.
"""

from __future__ import annotations

import pytest

from tests.conftest import count_rows
from tests.support.client import PASSWORD, WsClient, acked, refused


async def admin_call(api, world_admin, method, path, body=None, schema=None):
    return await api.call(method, path, body, token=world_admin.token, schema=schema)


@pytest.mark.gen_test(timeout=30)
async def test_sessions_list_who_is_on_with_each_socket(world, api):
    root = await world.player("Root", role="admin")
    alice = await world.player("Alice", sockets=2)
    await world.offline_player("Bob")
    status, body = await admin_call(api, root, "GET", "/api/admin/sessions", schema="sessions")
    assert status == 200 and body["total"] == 2
    by_id = {user["id"]: user for user in body["users"]}
    assert set(by_id) == {root.user_id, alice.user_id}
    assert by_id[alice.user_id]["role"] == "player" and by_id[alice.user_id]["location"].startswith("!")
    sockets = by_id[alice.user_id]["sockets"]
    assert [s["transport"] for s in sockets] == ["websocket", "websocket"]
    welcomes = {socket.of_type("welcome")[0]["data"]["connectionId"] for socket in alice.sockets}
    assert {s["connectionId"] for s in sockets} == welcomes
    assert all(s["address"] == "127.0.0.1" for s in sockets)

    status, body = await api.call("GET", "/api/admin/sessions", token=alice.token)
    assert status == 403 and body["error"]["code"] == "forbidden"


@pytest.mark.gen_test(timeout=30)
async def test_a_kick_closes_every_socket_of_the_user_who_may_come_back(world, api, ws_url, spec):
    root = await world.player("Root", role="admin")
    alice = await world.player("Alice", sockets=2)
    status, body = await admin_call(api, root, "POST", "/api/admin/users/alice/kick", {"reason": "cool off"},
                                    schema="kick-result")
    assert status == 200 and body == {"userId": alice.user_id, "closed": 2}
    for socket in alice.sockets:
        assert await socket.closed() == (4010, "cool off")
    again = await WsClient.logged_in(ws_url, spec, alice.token)  # a kick is not a ban
    await acked(again, "say", {"text": "I am back."})
    again.close()
    status, body = await admin_call(api, root, "POST", "/api/admin/users/nobody/kick", {})
    assert status == 404 and body["error"]["code"] == "unknown_user"


@pytest.mark.gen_test(timeout=30)
async def test_a_new_role_is_in_force_on_the_users_next_frame(world, api):
    root = await world.player("Root", role="admin")
    mira = await world.player("Mira")
    error = await refused(mira.ws, "wall", {"text": "Hear me!"})
    assert error["code"] == "forbidden"
    status, body = await admin_call(api, root, "PUT", f"/api/admin/users/{mira.user_id}/role", {"role": "admin"},
                                    schema="role-result")
    assert status == 200 and body["user"]["role"] == "admin" and body["sessions"] == 1
    await acked(mira.ws, "wall", {"text": "Hear me!"})  # the same socket, no reconnect
    status, body = await api.call("GET", "/api/users/me", token=mira.token)
    assert body["user"]["role"] == "admin"
    # nor may an admin change their own role
    status, body = await admin_call(api, root, "PUT", "/api/admin/users/root/role", {"role": "player"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await admin_call(api, root, "PUT", "/api/admin/users/root/role", {"role": "wizard"})
    assert status == 400 and body["error"]["code"] == "invalid_request"


@pytest.mark.gen_test(timeout=30)
async def test_a_ban_closes_the_sessions_revokes_the_tokens_and_refuses_logins_until_lifted(world, api, server):
    root = await world.player("Root", role="admin")
    alice = await world.player("Alice")
    status, body = await admin_call(api, root, "POST", "/api/admin/users/Alice/ban", {"reason": "Harassment."},
                                    schema="ban")
    assert status == 200 and body["banned"] is True and body["reason"] == "Harassment." and body["closed"] == 1
    assert await alice.ws.closed() == (4011, "Harassment.")
    status, body = await api.call("GET", "/api/users/me", token=alice.token)
    assert status == 401 and body["error"]["code"] == "invalid_token"
    login = {"username": "alice", "password": PASSWORD}
    status, body = await api.call("POST", "/api/auth/login", login)
    assert status == 403 and body["error"] == {"code": "account_banned", "message": body["error"]["message"],
                                               "details": {"reason": "Harassment."}}
    status, body = await api.call("POST", "/api/auth/login", {"username": "alice", "password": "wrong " + PASSWORD})
    assert status == 401 and body["error"]["code"] == "invalid_credentials"  # no news for a guesser
    tokens = count_rows(server, "access_tokens")

    status, body = await admin_call(api, root, "DELETE", "/api/admin/users/alice/ban", schema="ban")
    assert status == 200 and body["banned"] is False and body["bannedTs"] is None and body["closed"] == 0
    assert count_rows(server, "access_tokens") == tokens
    status, body = await api.call("POST", "/api/auth/login", login, schema="session")
    assert status == 200


@pytest.mark.gen_test(timeout=30)
async def test_an_admin_cannot_ban_themselves_and_players_cannot_ban(world, api):
    root = await world.player("Root", role="admin")
    alice = await world.player("Alice")
    status, body = await admin_call(api, root, "POST", f"/api/admin/users/{root.user_id}/ban", {})
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await api.call("POST", "/api/admin/users/root/ban", {}, token=alice.token)
    assert status == 403 and body["error"]["code"] == "forbidden"
    await acked(root.ws, "say", {"text": "Still here."})
    status, body = await api.call("GET", "/api/users/me", token=root.token)
    assert status == 200
