"""``/api/auth/*`` and ``/api/users/me``: accounts and sessions."""

from __future__ import annotations

from vibemuse.handlers.base import ApiHandler
from vibemuse.handlers.wire import session_to_wire, user_to_wire


class RegisterHandler(ApiHandler):
    request_schemas = {"POST": "register-request"}

    async def post(self) -> None:
        body = self.json_body()
        self.context.guard.limit("register_address", self.address)
        session = await self.context.accounts.register(body["username"], body["password"])
        self.send_json(session_to_wire(session), status=201)


class LoginHandler(ApiHandler):
    request_schemas = {"POST": "login-request"}

    async def post(self) -> None:
        body = self.json_body()
        session = await self.context.accounts.login(body["username"], body["password"], self.address)
        self.send_json(session_to_wire(session))


class LogoutHandler(ApiHandler):
    async def post(self) -> None:
        principal = await self.principal()
        await self.context.accounts.logout(principal)
        self.set_status(204)
        self.finish()


class MeHandler(ApiHandler):
    async def get(self) -> None:
        principal = await self.principal()
        self.send_json({"user": user_to_wire(principal.user), "location": principal.user.location_room_id})


class PasswordHandler(ApiHandler):
    request_schemas = {"POST": "password-change-request"}

    async def post(self) -> None:
        """Change the password: every token of the user is revoked, a new session is returned."""
        principal = await self.principal()
        body = self.json_body()
        session = await self.context.accounts.change_password(
            principal, body["currentPassword"], body["newPassword"], self.address)
        self.send_json(session_to_wire(session))
