"""``/api/rooms``: list, create and look at rooms."""

from __future__ import annotations

from vibemuse.handlers.base import ApiHandler
from vibemuse.handlers.wire import room_to_wire, user_to_wire
from vibemuse.services.rooms import MAX_PAGE


class RoomsHandler(ApiHandler):
    request_schemas = {"POST": "room-create-request"}

    async def get(self) -> None:
        await self.principal()
        limit = self.int_argument("limit", 100, 1, MAX_PAGE)
        rooms, next_cursor = await self.context.rooms.list_rooms(self.get_query_argument("after", None, strip=False), limit)
        self.send_json({"rooms": [room_to_wire(room) for room in rooms], "next": next_cursor})

    async def post(self) -> None:
        principal = await self.principal()
        body = self.json_body()
        room = await self.context.rooms.create_room(principal, body["name"], body.get("description", ""))
        self.send_json(room_to_wire(room), status=201)


class RoomHandler(ApiHandler):
    async def get(self, room_id: str) -> None:
        await self.principal()
        view = await self.context.rooms.view_room(room_id)
        body = room_to_wire(view.room)
        body["occupants"] = [user_to_wire(user) for user in view.occupants]
        self.send_json(body)
