"""Who may federate with this server: on or off, and the allow/deny lists."""

from __future__ import annotations

from dataclasses import dataclass

from vibemuse.config import Config


@dataclass(frozen=True)
class FederationPolicy:
    """``enabled``: federation is on. A server is permitted unless it is
    denied, or an allow list exists and does not name it (deny wins)."""

    enabled: bool = True
    allow: frozenset[str] = frozenset()
    deny: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config: Config) -> FederationPolicy:
        return cls(config.federation, frozenset(config.federation_allow), frozenset(config.federation_deny))

    def permits(self, server_name: str) -> bool:
        if server_name in self.deny:
            return False
        return not self.allow or server_name in self.allow
