"""Real in-process VibeMUSE servers on loopback that federate with each other.

Each server (``alpha.test``, ``beta.test``, ``gamma.test`` ...) has its own
data folder, database and port, knows the others by ``federation_peers``, and
comes with a ``World`` of players on real sockets. One of them (``main``,
beta by default) runs on the ``database_url`` of the test, the others on
SQLite. A server can be stopped and started again on the same folder,
database and port: what it stored survives, and its peers find it again.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any, Iterable

from tests.conftest import FAST_HASHER
from tests.federation.test_two_servers import BETA, free_port, server_config
from tests.support.client import Api
from tests.support.spec import SpecValidator
from tests.support.world import World
from vibemuse.app import VibeMuseServer


class Federation:
    def __init__(self, tmp_path: Path, database_url: str, names: Iterable[str], *, main: str = BETA,
                 settings: dict[str, dict[str, Any]] | None = None):
        """``settings``: per server name, Config fields to change."""
        ports = {name: free_port() for name in names}
        self.ports = ports
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        self.spec = SpecValidator()
        self.configs = {}
        for name in ports:
            database = database_url if name == main else f"sqlite:///{tmp_path}/{name}.db"
            peers = {other: url for other, url in self.urls.items() if other != name}
            self.configs[name] = dataclasses.replace(server_config(tmp_path, name, database, peers),
                                                     **(settings or {}).get(name, {}))
        self.worlds: dict[str, World] = {}

    async def start(self, name: str) -> World:
        server = await VibeMuseServer.create(self.configs[name], hasher=FAST_HASHER)
        server.listen(self.ports[name], "127.0.0.1")
        url = self.urls[name]
        world = self.worlds[name] = World(Api(url, self.spec), url.replace("http://", "ws://") + "/api/ws",
                                          self.spec, server)
        return world

    async def stop(self, name: str) -> None:
        """Close the players' sockets and shut the server down (gracefully)."""
        world = self.worlds.pop(name)
        world.close()
        await world.server.shutdown()

    async def close(self) -> None:
        for name in reversed(list(self.worlds)):
            await self.stop(name)


@contextlib.asynccontextmanager
async def running(tmp_path: Path, database_url: str, names: Iterable[str], *, main: str = BETA):
    """A ``Federation`` of ``names``, all started; closed on the way out."""
    names = tuple(names)
    federation = Federation(tmp_path, database_url, names, main=main)
    try:
        for name in names:
            await federation.start(name)
        yield federation
    finally:
        await federation.close()
