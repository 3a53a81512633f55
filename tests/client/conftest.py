"""Servers for the SDK's tests: the real app, in this process, restartable on its port."""

from __future__ import annotations

import pytest

from tests.conftest import FAST_HASHER
from tests.support.client import PASSWORD
from vibemuse.app import VibeMuseServer
from vibemuse.config import Config
from vibemuse_client import Backoff, Client

FAST_BACKOFF = Backoff(initial=0.05, maximum=0.5)


class InProcessServer:
    """A ``VibeMuseServer`` on 127.0.0.1; ``restart`` stops it (every socket closed with 1001)
    and serves the same database again on the same port."""

    def __init__(self, config: Config):
        self.config = config
        self.port = 0
        self.server: VibeMuseServer | None = None
        self.clients: list[Client] = []  # closed when the test ends

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.server = await VibeMuseServer.create(self.config, hasher=FAST_HASHER)
        self.port = self.server.listen(self.port, "127.0.0.1")

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
            self.server = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def set_role(self, client: Client, role: str) -> None:
        assert self.server is not None and client.session is not None
        await self.server.context.storage.set_role(client.session.user.id, role)

    async def player(self, name: str, *, base_url: str | None = None, **options) -> Client:
        """A new account, connected (through ``base_url`` if given): a Client as a bot would use it."""
        options.setdefault("backoff", FAST_BACKOFF)
        client = await Client.register(base_url or self.base_url, name, PASSWORD, **options)
        self.clients.append(client)
        await client.connect()
        return client

    async def close_clients(self) -> None:
        for client in self.clients:
            await client.close()


@pytest.fixture
def served(io_loop, config):
    server = InProcessServer(config)
    io_loop.run_sync(server.start)
    yield server
    io_loop.run_sync(server.close_clients)
    io_loop.run_sync(server.stop)
