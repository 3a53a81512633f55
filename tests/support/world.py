"""Players for integration tests: an account, a role, and open sockets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.client import Api, WsClient


@dataclass
class Player:
    name: str
    session: dict[str, Any]
    sockets: list[WsClient] = field(default_factory=list)

    @property
    def user_id(self) -> str:
        return self.session["user"]["id"]

    @property
    def token(self) -> str:
        return self.session["accessToken"]

    @property
    def ws(self) -> WsClient:
        return self.sockets[0]

    def close(self) -> None:
        for socket in self.sockets:
            socket.close()


class World:
    def __init__(self, api: Api, ws_url: str, spec: Any, server: Any):
        self.api, self.ws_url, self.spec, self.server = api, ws_url, spec, server
        self.players: list[Player] = []

    async def player(self, name: str, *, role: str = "player", sockets: int = 1) -> Player:
        session = await self.api.register(name)
        if role != "player":
            await self.server.context.storage.set_role(session["user"]["id"], role)
        player = Player(name, session)
        for _ in range(sockets):
            await self.open_socket(player)
        self.players.append(player)
        return player

    async def offline_player(self, name: str) -> Player:
        """An account with no socket yet (``open_socket`` connects it later)."""
        player = Player(name, await self.api.register(name))
        self.players.append(player)
        return player

    async def open_socket(self, player: Player) -> WsClient:
        socket = await WsClient.logged_in(self.ws_url, self.spec, player.token)
        player.sockets.append(socket)
        return socket

    async def room(self, name: str, builder: Player) -> str:
        status, room = await self.api.call("POST", "/api/rooms", {"name": name}, token=builder.token)
        assert status == 201, room
        return room["id"]

    def close(self) -> None:
        for player in self.players:
            player.close()

    async def wait_offline(self, player: Player) -> None:
        """Close all of a player's sockets and wait until the server has let them go."""
        import asyncio

        for socket in player.sockets:
            socket.close()
        for _ in range(100):
            if not self.server.context.registry.is_online(player.user_id):
                player.sockets.clear()
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{player.name} is still online")

    def event_count(self) -> int:
        with self.server.context.storage.engine.connect() as connection:
            return connection.exec_driver_sql("SELECT COUNT(*) FROM events").scalar_one()
