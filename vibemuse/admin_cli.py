"""``vibemuse admin ...``: the operator's commands, run against the running server.

Every action is one or two requests to the server's admin HTTP API (spec/v1
protocol.md section 20.3), made with an admin's access token, so that what it
changes takes effect at once where the users are connected: a kick closes
their sockets, a ban also refuses their next login, a new role is in force
on their next frame. Nothing here opens the database.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterator

from vibemuse.telnet.screen import idle_for

TIMEOUT_SECONDS = 30

USER = ("user", {"help": "a username of this server, or a user id (@name:server)"})
REASON = ("--reason", {"default": "", "help": "why, shown to the user (at most 200 characters)"})

# name -> (help, [(argument, argparse options)])
ACTIONS: dict[str, tuple[str, list[tuple[str, dict[str, Any]]]]] = {
    "online": ("list the users on the server now (on every process), with their sockets and idle times", []),
    "kick": ("close every session of a user (they may reconnect)", [USER, REASON]),
    "role": ("set a user's role (player, builder, admin), in force at once",
             [USER, ("role", {"choices": ["player", "builder", "admin"]})]),
    "ban": ("ban a user from the server: sessions closed, no more logins", [USER, REASON]),
    "unban": ("lift a user's ban", [USER]),
    "room": ("show a room (by id or name): its description and who is there", [("room", {"help": "id or name"})]),
}


class AdminError(Exception):
    """A refusal of the server (its message and code), or no server to ask."""


class AdminClient:
    def __init__(self, base_url: str, token: str):
        self.base_url = base_url.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                raw = response.read()
        except urllib.error.HTTPError as refusal:
            raise AdminError(_refusal(refusal)) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise AdminError(f"cannot reach the server at {self.base_url}: {reason}") from None
        return json.loads(raw) if raw else None


def _refusal(refusal: urllib.error.HTTPError) -> str:
    try:
        error = json.loads(refusal.read())["error"]
        return f"{error['message']} ({error['code']})"
    except (ValueError, KeyError, TypeError):
        return f"the server answered {refusal.code} {refusal.reason}"


def _user_path(name: str, action: str) -> str:
    return f"/api/admin/users/{urllib.parse.quote(name, safe='@:')}/{action}"


def run_action(client: AdminClient, args: argparse.Namespace) -> Iterator[str]:
    """Do ``args.admin_command``; yields the lines to print."""
    action = args.admin_command
    if action == "online":
        answer = client.call("GET", "/api/admin/sessions")
    elif action == "kick":
        answer = client.call("POST", _user_path(args.user, "kick"), {"reason": args.reason} if args.reason else {})
    elif action == "role":
        answer = client.call("PUT", _user_path(args.user, "role"), {"role": args.role})
    elif action == "ban":
        answer = client.call("POST", _user_path(args.user, "ban"), {"reason": args.reason} if args.reason else {})
    elif action == "unban":
        answer = client.call("DELETE", _user_path(args.user, "ban"))
    else:
        answer = client.call("GET", "/api/rooms/" + urllib.parse.quote(_room_id(client, args.room), safe="!:"))
    if args.json:
        yield json.dumps(answer, indent=2, ensure_ascii=False)
        return
    yield from SHOW[action](answer)


def _room_id(client: AdminClient, room: str) -> str:
    """A room id as given, or the id of the room of that name (case-insensitively)."""
    if room.startswith("!"):
        return room
    after = None
    while True:
        query = "?limit=500" + (f"&after={urllib.parse.quote(after)}" if after else "")
        page = client.call("GET", "/api/rooms" + query)
        for found in page["rooms"]:
            if found["name"].casefold() == room.casefold():
                return found["id"]
        after = page["next"]
        if after is None:
            raise AdminError(f"no room is named {room!r}")


def _online(answer: dict[str, Any]) -> Iterator[str]:
    yield f"{answer['total']} online"
    for user in answer["users"]:
        sockets = ", ".join(f"{s['transport']} {s['connectionId']} from {s['address']}"
                            + (f" on {s['process']}" if "process" in s else "") for s in user["sockets"])
        state = user.get("status", "online") + (f" {idle_for(user['idleMs'])}" if "idleMs" in user else "")
        yield f"{user['id']}  {user['role']}  in {user['location']}  {state}  ({sockets})"


def _kicked(answer: dict[str, Any]) -> Iterator[str]:
    yield f"kicked {answer['userId']}: {answer['closed']} session(s) closed"


def _role(answer: dict[str, Any]) -> Iterator[str]:
    user = answer["user"]
    yield f"{user['id']} is now {user['role']} ({answer['sessions']} open session(s))"


def _ban(answer: dict[str, Any]) -> Iterator[str]:
    if answer["banned"]:
        reason = f" ({answer['reason']})" if answer["reason"] else ""
        yield f"banned {answer['userId']}{reason}: {answer['closed']} session(s) closed"
    else:
        yield f"{answer['userId']} is not banned"


def _room(answer: dict[str, Any]) -> Iterator[str]:
    yield f"{answer['name']}  {answer['id']}"
    if answer.get("description"):
        yield from ("  " + line for line in answer["description"].splitlines())
    occupants = answer.get("occupants", [])
    yield f"{len(occupants)} here: " + (", ".join(f"{user['username']} ({user['id']})" for user in occupants) or "nobody")


SHOW = {"online": _online, "kick": _kicked, "role": _role, "ban": _ban, "unban": _ban, "room": _room}
