"""``/federation/v1/*``: what other servers (and clients) ask of this one.

``GET /federation/v1/keys`` is public and unauthenticated: the signed
document of this server's verify keys, current and rotated-out, with which
anyone can check the signature of an event this server made.
"""

from __future__ import annotations

from vibemuse.handlers.base import ApiHandler


class ServerKeysHandler(ApiHandler):
    def get(self) -> None:
        context = self.context
        valid_until = context.clock() + context.config.key_validity_seconds * 1000
        self.set_header("Cache-Control", f"public, max-age={min(context.config.key_validity_seconds, 3600)}")
        self.send_json(context.keyring.server_keys_response(context.server_name, valid_until))

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Access-Control-Allow-Origin", "*")
