"""``/api/admin/spam``: who the spam rules caught, and lifting a mute (staff only);
``/api/admin/federation``: the outbox of each destination server (admins only);
``/api/admin/sessions`` and ``/api/admin/users/{userId}/...``: who is on, kick, role, ban
(admins only; ``vibemuse admin`` calls these)."""

from __future__ import annotations

from typing import Any

from vibemuse.handlers.base import ApiHandler
from vibemuse.handlers.wire import user_to_wire
from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.services.accounts import Principal
from vibemuse.services.operators import BanOutcome
from vibemuse.storage.outbox_txns import QueueStats

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


class FederationQueuesHandler(ApiHandler):
    """``GET /api/admin/federation``: each destination's outbox (admins only)."""

    async def get(self) -> None:
        if not (await self.principal()).has_role("admin"):
            raise ProtocolError(ErrorCode.FORBIDDEN, "Only admins see the federation queues.")
        now = self.context.clock()
        assert self.context.outbox is not None
        self.send_json({"destinations": [queue_figures(stats, now) for stats in await self.context.outbox.queue_stats()]})


def queue_figures(stats: QueueStats, now_ms: int) -> dict[str, Any]:
    state = stats.state
    oldest = None if stats.oldest_enqueued_ts is None else max(0, now_ms - stats.oldest_enqueued_ts)
    return {
        "destination": state.destination, "depth": stats.depth, "oldestPendingAgeMs": oldest,
        "lastDeliveryLagMs": state.last_delivery_lag_ms, "consecutiveFailures": state.failures,
        "nextAttemptTs": state.next_attempt_ts or None, "lastSuccessTs": state.last_success_ts,
        "lastContactTs": state.last_contact_ts, "delivered": state.delivered, "refused": state.refused,
        "lastRefusal": state.last_refusal,
    }


async def require_admin(handler: ApiHandler, what: str) -> Principal:
    principal = await handler.principal()
    if not principal.has_role("admin"):
        raise ProtocolError(ErrorCode.FORBIDDEN, f"Only admins {what}.")
    return principal


class SessionsHandler(ApiHandler):
    """``GET /api/admin/sessions``: who is on this server now, with each of their sockets."""

    async def get(self) -> None:
        await require_admin(self, "see the sessions")
        users = [{**user_to_wire(online.user), "location": online.location, "status": online.status,
                  "idleMs": online.idle_ms, "sockets": online.sockets}
                 for online in await self.context.operators.online()]
        self.send_json({"users": users, "total": len(users)})


class KickHandler(ApiHandler):
    """``POST /api/admin/users/{userId}/kick``: close every session of the user (4010)."""

    request_schemas = {"POST": "kick-request"}

    async def post(self, name: str) -> None:
        await require_admin(self, "kick users")
        user, closed = await self.context.operators.kick(name, self.json_body().get("reason", ""))
        self.send_json({"userId": user.user_id, "closed": closed})


class RoleHandler(ApiHandler):
    """``PUT /api/admin/users/{userId}/role``: a new role, in force at once."""

    request_schemas = {"PUT": "role-request"}

    async def put(self, name: str) -> None:
        actor = await require_admin(self, "set roles")
        user, sessions = await self.context.operators.set_role(actor, name, self.json_body()["role"])
        self.send_json({"user": user_to_wire(user), "sessions": sessions})


class BanHandler(ApiHandler):
    """``POST`` bans the user from the server (tokens revoked, sessions closed with 4011, no
    more logins); ``DELETE`` lifts the ban."""

    request_schemas = {"POST": "ban-request"}

    async def post(self, name: str) -> None:
        actor = await require_admin(self, "ban users")
        outcome = await self.context.operators.ban(actor, name, self.json_body().get("reason", ""))
        self.send_json(ban_to_wire(outcome))

    async def delete(self, name: str) -> None:
        await require_admin(self, "lift bans")
        self.send_json(ban_to_wire(await self.context.operators.unban(name)))


def ban_to_wire(outcome: BanOutcome) -> dict[str, Any]:
    user = outcome.user
    return {"userId": user.user_id, "banned": user.banned_ts is not None, "bannedTs": user.banned_ts,
            "reason": user.ban_reason, "closed": outcome.closed}
