"""Logging: plain lines or JSON lines (``log_format``), with request and connection ids.

Theory of operation. Two context variables say what a log record is about:
``request_id`` (set when an HTTP request starts) and ``connection_id`` (set
when a socket's handshake starts, or a telnet session's). asyncio copies the
context into every task a request or socket starts, so every record written
while handling it, in whatever module, carries its ids without passing them
around. The JSON formatter writes one object per line: ``ts`` (ISO 8601, UTC),
``level``, ``logger``, ``message``, the ids when set, the fields a record
was given with ``extra`` (the access log's ``status``, ``method``, ``path``,
``durationMs``, ``remoteIp``) and ``exception`` when there is one.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import secrets
import sys
from typing import Any, TextIO

import tornado.web

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
connection_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("connection_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ACCESS = logging.getLogger("tornado.access")
# Fields the access log adds to its records (and the JSON lines carry).
ACCESS_FIELDS = ("status", "method", "path", "durationMs", "remoteIp")


def new_request_id() -> str:
    """A fresh id for one HTTP request (also sent back as ``X-Request-Id``)."""
    return "r" + secrets.token_hex(8)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request, connection = request_id.get(), connection_id.get()
        if request is not None:
            line["requestId"] = request
        if connection is not None:
            line["connectionId"] = connection
        for name in ACCESS_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str, log_format: str, stream: TextIO = sys.stderr) -> None:
    """The root logger's one handler, in the chosen format (``vibemuse`` commands call this once)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log (``log_function``): its line, and the same facts as fields."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    if not ACCESS.isEnabledFor(level):
        return
    request = handler.request
    duration = 1000.0 * request.request_time()
    fields = {"status": status, "method": request.method, "path": request.path,
              "durationMs": round(duration, 2), "remoteIp": request.remote_ip}
    ACCESS.log(level, "%d %s %s (%s) %.2fms", status, request.method, request.uri, request.remote_ip, duration,
               extra=fields)
