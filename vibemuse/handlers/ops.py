"""What operators and their machines ask: ``/metrics``, ``/health``, ``/ready``.

``GET /health`` answers 200 while the process serves requests at all (a
liveness probe: restart the process when it stops answering). ``GET /ready``
answers 200 only when the server can do its work — its database answers a
query within ``READY_TIMEOUT_SECONDS`` — and 503 ``not_ready`` otherwise (a
readiness probe: a load balancer sends no new clients there meanwhile).
Neither needs a token: probes have none, and neither tells anything private.

``GET /metrics`` is the Prometheus text format (vibemuse/metrics.py). Like
Synapse's metrics listener it is not for the public: with no
``metrics_token`` only loopback clients may read it (a Prometheus on the same
machine, or an SSH tunnel); with one, any client that sends it as a bearer
token (Prometheus's ``authorization`` setting) may.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging

from vibemuse.handlers.base import ApiHandler, bearer_token
from vibemuse.metrics import CONTENT_TYPE
from vibemuse.protocol.errors import ErrorCode, ProtocolError

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 5.0


class HealthHandler(ApiHandler):
    def get(self) -> None:
        self.send_json({"status": "ok"})


class ReadyHandler(ApiHandler):
    async def get(self) -> None:
        failing = []
        try:
            await asyncio.wait_for(self.context.storage.ping(), READY_TIMEOUT_SECONDS)
        except Exception as error:  # noqa: BLE001 - whatever the driver raises, the answer is 503
            log.warning("not ready: the database does not answer (%s)", type(error).__name__)
            failing.append("database")
        bus_connected = self.context.bus_connected
        if bus_connected is not None and not bus_connected():  # several processes: their bus (Redis)
            log.warning("not ready: the bus is not connected")
            failing.append("bus")
        if failing:
            raise ProtocolError(ErrorCode.NOT_READY, f"The {' and the '.join(failing)} do not answer; "
                                "try another server.", details={"failing": failing})
        checks = {"database": "ok", **({"bus": "ok"} if bus_connected is not None else {})}
        self.send_json({"status": "ok", "checks": checks})


class MetricsHandler(ApiHandler):
    async def get(self) -> None:
        self._check_access()
        context = self.context
        queues = []
        if context.outbox is not None:
            try:
                queues = await asyncio.wait_for(context.outbox.queue_stats(), READY_TIMEOUT_SECONDS)
            except Exception as error:  # noqa: BLE001 - the rest of the metrics are still worth serving
                log.warning("metrics without the federation queues: %s", type(error).__name__)
        context.metrics.sample()
        body = context.metrics.exposition(queues, context.clock())
        self.set_header("Content-Type", CONTENT_TYPE)
        self.set_status(200)
        self.finish(body)

    def _check_access(self) -> None:
        expected = self.context.config.metrics_token
        if not expected:
            if not _is_loopback(self.request.remote_ip):
                raise ProtocolError(ErrorCode.FORBIDDEN, "/metrics is served to loopback clients only "
                                    "(the server has no metrics_token).")
            return
        token = bearer_token(self.request.headers.get("Authorization"))
        if token is None:
            raise ProtocolError(ErrorCode.NOT_AUTHENTICATED, "/metrics needs 'Authorization: Bearer <metrics_token>'.")
        if not hmac.compare_digest(token.encode(), expected.encode()):
            raise ProtocolError(ErrorCode.INVALID_TOKEN, "That is not the metrics token.")


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
