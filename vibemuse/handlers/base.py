"""``ApiHandler``: the base of every HTTP handler.

It parses and validates JSON bodies against spec/, authenticates bearer
tokens, writes JSON, and maps every failure to the one error body of the
protocol, ``{"error": {"code", "message", "details"?}}``: a ``ProtocolError``
keeps its code and status, Tornado's own 404/405 become ``not_found`` and
``method_not_allowed``, anything else is an ``internal_error`` (logged).
"""

from __future__ import annotations

import json
from typing import Any

import tornado.web

from vibemuse.context import ServerContext
from vibemuse.logs import new_request_id, request_id
from vibemuse.protocol.errors import ERROR_CATALOGUE, ErrorCode, ProtocolError
from vibemuse.protocol.frames import decode_json_object
from vibemuse.protocol.numbers import ascii_whole_number, parse_whole_number
from vibemuse.services.accounts import Principal

_STATUS_CODES = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED, 413: ErrorCode.PAYLOAD_TOO_LARGE}


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json``, in any case, with no parameter but an optional ``charset=utf-8``
    (bodies are UTF-8 JSON; any other label is a body the server would misread)."""
    if content_type is None:
        return False
    media_type, *parameters = content_type.split(";")
    if media_type.strip().lower() != "application/json":
        return False
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


def _no_form_arguments() -> None:
    """Stands in for ``HTTPServerRequest._parse_body``: form arguments are never read here."""


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProtocolError(ErrorCode.INVALID_TOKEN, "The Authorization header must be 'Bearer <token>'.")
    return token.strip()


class ApiHandler(tornado.web.RequestHandler):
    context: ServerContext
    # The JSON body each method of this endpoint takes (its requestBody in openapi.json), by the
    # name of its schema in spec/v1/schemas/http/; the Content-Type is checked before anything else.
    request_schemas: dict[str, str] = {}

    def initialize(self, context: ServerContext) -> None:
        self.context = context
        # The request's task is made after this (and copies the context): what it logs carries the id.
        self.request_id = new_request_id()
        request_id.set(self.request_id)
        self.set_header("X-Request-Id", self.request_id)
        # The API reads JSON only: Tornado must not parse form and multipart bodies before
        # prepare() can refuse them (415), nor answer a malformed one with its own 400.
        self.request._parse_body = _no_form_arguments  # type: ignore[method-assign]

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        if getattr(self, "request_id", None):  # an error answer starts again from the defaults
            self.set_header("X-Request-Id", self.request_id)

    def prepare(self) -> None:
        # Content-Length is checked first; a chunked body only once read (Tornado
        # stops reading any body at HTTP_BODY_HARD_LIMIT and drops the connection).
        length = ascii_whole_number(self.request.headers.get("Content-Length"))
        limit = self.context.config.max_http_body_bytes
        if (length is not None and length > limit) or len(self.request.body or b"") > limit:
            raise ProtocolError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"Bodies are at most {self.context.config.max_http_body_bytes} bytes.",
            )
        if self.request.method in self.request_schemas and not is_json_media_type(
                self.request.headers.get("Content-Type")):
            raise ProtocolError(
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                "This endpoint takes a JSON body: send it with 'Content-Type: application/json'.",
            )

    def json_body(self) -> dict[str, Any]:
        """The request body, parsed and checked against its schema (``request_schemas``)."""
        schema = self.request_schemas[self.request.method]
        body = decode_json_object(self.request.body or b"", "body")
        violation = self.context.schemas.body_violation(schema, body)
        if violation is not None:
            raise ProtocolError(
                ErrorCode.INVALID_REQUEST,
                f"The body does not match {schema} at {violation.path}: {violation.reason}",
                details={"path": violation.path},
            )
        return body

    def int_argument(self, name: str, default: int, lowest: int, highest: int) -> int:
        raw = self.get_query_argument(name, None, strip=False)
        return default if raw is None else parse_whole_number(name, raw, lowest, highest)

    async def principal(self) -> Principal:
        """The authenticated user; requests that change things count against ``http_write``."""
        token = bearer_token(self.request.headers.get("Authorization"))
        if token is None:
            raise ProtocolError(ErrorCode.NOT_AUTHENTICATED, "This endpoint needs 'Authorization: Bearer <token>'.")
        principal = await self.context.accounts.authenticate(token)
        if self.request.method in ("POST", "PUT", "PATCH", "DELETE"):
            self.context.guard.limit("http_write", principal.user_id)
        return principal

    @property
    def address(self) -> str:
        return self.request.remote_ip or "unknown"

    def send_json(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(body, separators=(",", ":"), ensure_ascii=False))

    # -- errors -----------------------------------------------------------

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, ProtocolError):
            status_code = error.http_status
        super().send_error(status_code, **kwargs)

    def allowed_methods(self) -> list[str]:
        """The methods this endpoint implements (for the ``Allow`` header of a 405)."""
        return [method for method in ("GET", "POST", "PUT", "DELETE")
                if getattr(type(self), method.lower()) is not getattr(tornado.web.RequestHandler, method.lower())]

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if not isinstance(value, ProtocolError):
            super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if not isinstance(error, ProtocolError):
            code = _STATUS_CODES.get(status_code)
            if code is None:  # Tornado's own 4xx (a malformed request) or a failure of ours
                code = ErrorCode.INVALID_REQUEST if 400 <= status_code < 500 else ErrorCode.INTERNAL_ERROR
                self.set_status(ERROR_CATALOGUE[code].http_status)
            error = ProtocolError(code, _default_message(code))
        self.context.metrics.refused(error.code)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        if error.code is ErrorCode.METHOD_NOT_ALLOWED:
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        if error.code is ErrorCode.RATE_LIMITED:
            self.set_header("Retry-After", str(max(1, -(-error.details.get("retryAfterMs", 1000) // 1000))))
        elif error.code is ErrorCode.UNAVAILABLE:
            self.set_header("Retry-After", str(UNAVAILABLE_RETRY_SECONDS))
        self.finish(json.dumps({"error": error.to_wire()}, separators=(",", ":")))


def _default_message(code: ErrorCode) -> str:
    return {
        ErrorCode.INVALID_REQUEST: "The request is malformed.",
        ErrorCode.NOT_FOUND: "No such endpoint.",
        ErrorCode.METHOD_NOT_ALLOWED: "This endpoint does not take that method.",
        ErrorCode.PAYLOAD_TOO_LARGE: "The body is too large.",
    }.get(code, "The server failed; nothing was changed.")


class NotFoundHandler(ApiHandler):
    """The default handler: every unknown path is a JSON ``not_found``."""

    def prepare(self) -> None:
        raise tornado.web.HTTPError(404)


class ServerFullHandler(tornado.web.RequestHandler):
    """Every request of a connection past ``max_connections``: 503 ``server_full``, then close."""

    def prepare(self) -> None:
        self.set_status(503)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Retry-After", str(SERVER_FULL_RETRY_SECONDS))
        self.set_header("Connection", "close")
        self.finish(server_full_body())


SERVER_FULL_RETRY_SECONDS = 5
UNAVAILABLE_RETRY_SECONDS = 2  # the database is away: its pool tries again on the next request


def server_full_body() -> bytes:
    error = ProtocolError(ErrorCode.SERVER_FULL, "The server is full: try again later.")
    return json.dumps({"error": error.to_wire()}, separators=(",", ":")).encode()
