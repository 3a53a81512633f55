"""``/api/admin/spam``: who the spam rules caught, and lifting a mute (staff only);
``/api/admin/federation``: the outbox of each destination server (admins only)."""

from __future__ import annotations

from typing import Any

from vibemuse.handlers.base import ApiHandler
from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.services.accounts import Principal
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
