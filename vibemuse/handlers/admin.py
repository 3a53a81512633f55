"""``/api/admin/spam``: who the spam rules caught, and lifting a mute (staff only)."""

from __future__ import annotations

from vibemuse.handlers.base import ApiHandler
from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.services.accounts import Principal

STAFF = ("builder", "admin")


def require_staff(principal: Principal) -> None:
    if not principal.has_role(*STAFF):
        raise ProtocolError(ErrorCode.FORBIDDEN, "Only builders and admins handle spam.")


class SpamHandler(ApiHandler):
    async def get(self) -> None:
        require_staff(await self.principal())
        now = self.context.clock()
        offenders = [
            {"userId": o.user_id, "strikes": o.strikes, "mutes": o.mutes, "lastReason": o.last_reason,
             "mutedForMs": max(0, o.muted_until_ms - now)}
            for o in self.context.guard.spam.offenders()
        ]
        self.send_json({"offenders": offenders})


class SpamUnmuteHandler(ApiHandler):
    async def post(self, user_id: str) -> None:
        require_staff(await self.principal())
        self.send_json({"userId": user_id, "lifted": self.context.guard.spam.lift(user_id)})
