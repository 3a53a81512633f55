"""``/federation/v1/*``: what other servers (and clients) ask of this one.

``GET /federation/v1/keys`` is public and unauthenticated: the signed
document of this server's verify keys, current and rotated-out, with which
anyone can check the signature of an event this server made.

``GET /.well-known/vibemuse/server`` tells other servers at which base URL
this server's federation paths live (``public_base_url``); with federation
switched off it is 404 ``not_found``, like the federation paths it points to.
"""

from __future__ import annotations

import tornado.web

from vibemuse.handlers.base import ApiHandler
from vibemuse.protocol.discovery import well_known_body

# How long others may cache our well-known answer (their own cache time is theirs to choose).
WELL_KNOWN_MAX_AGE_SECONDS = 3600


class ServerKeysHandler(ApiHandler):
    def get(self) -> None:
        context = self.context
        valid_until = context.clock() + context.config.key_validity_seconds * 1000
        self.set_header("Cache-Control", f"public, max-age={min(context.config.key_validity_seconds, 3600)}")
        self.send_json(context.keyring.server_keys_response(context.server_name, valid_until))

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Access-Control-Allow-Origin", "*")


class WellKnownServerHandler(ApiHandler):
    def get(self) -> None:
        config = self.context.config
        if not config.federation:
            raise tornado.web.HTTPError(404)
        self.set_header("Cache-Control", f"public, max-age={WELL_KNOWN_MAX_AGE_SECONDS}")
        self.send_json(well_known_body(config.resolved_public_base_url))

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Access-Control-Allow-Origin", "*")
