"""``GET /api/versions``: what this server speaks (public, unauthenticated)."""

from __future__ import annotations

from vibemuse import SOFTWARE_NAME, __version__
from vibemuse.handlers.base import ApiHandler
from vibemuse.handlers.wire import limits_to_wire
from vibemuse.protocol.versions import SUPPORTED_VERSIONS


class VersionsHandler(ApiHandler):
    def get(self) -> None:
        self.send_json(
            {
                "versions": [version.name for version in SUPPORTED_VERSIONS],
                "subprotocols": [version.subprotocol for version in SUPPORTED_VERSIONS],
                "features": {version.name: version.features for version in SUPPORTED_VERSIONS},
                "server": {"name": self.context.server_name, "software": SOFTWARE_NAME, "version": __version__},
                "limits": limits_to_wire(self.context.config),
            }
        )
