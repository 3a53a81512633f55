"""The web client: static files served at ``/`` (its page) and ``/client/...`` (its modules).

The client is not part of the protocol: it is a program like any other that
speaks ``spec/v1`` from the server's own origin (so its WebSocket passes the
``Origin`` check). Its files are plain ES modules, CSS and one HTML page in
``vibemuse/web/static``, shipped as package data; there is no build step.

Every answer carries a strict Content-Security-Policy: scripts and styles
from this origin only, no inline script, no ``eval``, nothing framed, no
plugins. The client renders players' texts with ``textContent``, never as
markup; the policy is the second wall should a mistake ever let markup in.
Files are revalidated on every load (``Cache-Control: no-cache`` with an
``ETag``), so an upgraded server never runs with a stale module. Errors are
the JSON errors of the API (``not_found``, ``method_not_allowed``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tornado.web

from vibemuse.context import ServerContext
from vibemuse.protocol.errors import ErrorCode, ProtocolError

WEB_ROOT = Path(__file__).resolve().parent.parent / "web" / "static"

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))

_TEXT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
               ".json": "application/json", ".webmanifest": "application/manifest+json"}


class WebClientHandler(tornado.web.StaticFileHandler):
    """``/`` is the page; ``/client/<file>`` its modules and styles."""

    def initialize(self, context: ServerContext, path: str = str(WEB_ROOT),  # type: ignore[override]
                   default_filename: str | None = None) -> None:
        super().initialize(path=path, default_filename=default_filename)

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cross-Origin-Opener-Policy", "same-origin")

    def get_content_type(self) -> str:
        suffix = Path(self.absolute_path or "").suffix.lower()
        if suffix in _TEXT_TYPES:
            kind = _TEXT_TYPES[suffix]
            return kind if kind.startswith("image/") else kind + "; charset=utf-8"
        return super().get_content_type()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        code = ErrorCode.METHOD_NOT_ALLOWED if status_code == 405 else ErrorCode.NOT_FOUND
        if code is ErrorCode.NOT_FOUND:
            self.set_status(404)
        message = "This endpoint does not take that method." if status_code == 405 else "No such endpoint."
        self.clear_header("Content-Security-Policy")
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        if status_code == 405:
            self.set_header("Allow", "GET, HEAD")
        self.finish(json.dumps({"error": ProtocolError(code, message).to_wire()}, separators=(",", ":")))


def web_client_routes(context: ServerContext) -> list[tuple[str, type, dict[str, Any]]]:
    """The page at ``/`` and its files under ``/client/``; everything else stays the API's."""
    return [
        (r"/()", WebClientHandler, {"context": context, "default_filename": "index.html"}),
        (r"/client/(.+)", WebClientHandler, {"context": context}),
    ]
