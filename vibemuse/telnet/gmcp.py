"""GMCP (Generic MUD Communication Protocol, telnet option 201): the room, its
players and the player's channels as data, for clients that draw them in panes
(Mudlet, MUSHclient plugins).

A message is ``IAC SB GMCP <package> <JSON> IAC SE``. :func:`gmcp_messages`
maps one server frame (as on the wire) to the messages it stands for, in the
package names MUD clients already know (the IRE set): ``Room.Info``,
``Room.Players``, ``Room.AddPlayer``, ``Room.RemovePlayer``,
``Comm.Channel.Text`` and ``Comm.Channel.List``; ``Char.Name`` is made at
login. ``arrival`` says what the viewer's :class:`~vibemuse.telnet.screen.Screen`
made of a ``presence`` frame (a connection or a disconnection in the room).
"""

from __future__ import annotations

import json
from typing import Any

from vibemuse.telnet.codec import GMCP, subnegotiation

Message = tuple[str, Any]


def encode_gmcp(package: str, value: Any) -> bytes:
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return subnegotiation(GMCP, f"{package} {body}".encode("utf-8"))


def player(user_id: str, username: str) -> dict[str, str]:
    return {"name": username, "fullname": user_id}


def char_name(user_id: str, username: str) -> Message:
    return "Char.Name", player(user_id, username)


def channel_list(channels: list[dict[str, Any]]) -> Message:
    """``Comm.Channel.List`` from the wire's memberships (``channel_list`` frame's ``channels``)."""
    return "Comm.Channel.List", [
        {"name": channel["name"], "caption": channel["name"],
         "command": f"+{channel['alias']}" if channel.get("alias") else f"@chat {channel['name']}="}
        for channel in channels]


def gmcp_messages(frame: dict[str, Any], viewer: str, arrival: str | None = None) -> list[Message]:
    kind, data = frame.get("type"), frame.get("data") or {}
    if kind == "roster":
        room = data.get("room") or {}
        members = data.get("members") or []
        return [("Room.Info", {"num": room.get("id", ""), "name": room.get("name", ""),
                               "desc": room.get("description", "")}),
                ("Room.Players", [player(m["userId"], m["username"]) for m in members])]
    if kind == "presence" and arrival is not None:
        if arrival == "connected":
            return [("Room.AddPlayer", player(data["userId"], data.get("username", "")))]
        return [("Room.RemovePlayer", data.get("username", ""))]
    event = data.get("event") or {}
    content = event.get("content") or {}
    if kind == "user_joined" and event.get("sender") != viewer:
        return [("Room.AddPlayer", player(event.get("sender", ""), content.get("speaker", "")))]
    if kind == "user_left" and event.get("sender") != viewer:
        return [("Room.RemovePlayer", content.get("speaker", ""))]
    if kind == "channel_message":
        return [("Comm.Channel.Text", {"channel": content.get("channel_name", ""),
                                       "talker": content.get("speaker", ""), "text": content.get("rendered", "")})]
    if kind == "channel_list":
        return [channel_list(data.get("channels") or [])]
    return []


def is_own_membership(frame: dict[str, Any], viewer: str) -> bool:
    """A ``channel_notice`` of the viewer joining or leaving: their channel list changed."""
    content = ((frame.get("data") or {}).get("event") or {}).get("content") or {}
    return (frame.get("type") == "channel_notice" and content.get("target") == viewer
            and content.get("membership") in ("join", "leave"))
