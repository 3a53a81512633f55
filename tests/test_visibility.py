"""One visibility rule decides every path to an event (protocol.md 17.1, 19.1): a matrix
over every path × every way of standing towards a channel's events, on a live server over
real sockets and HTTP, on both engines, for both history visibilities.

One set-up per history visibility. Olive owns the channel Lore and writes in it;
each viewer stands differently towards her older messages:

    since ─ Early, Rejoiner, Leaver, Kicked, Banned join ─ Rejoiner says m0 ─ Olive says m1, m3
          ─ Late, Admin join; Rejoiner leaves and joins again; Leaver leaves; Olive kicks Kicked (k),
            bans Banned
          ─ Olive says m2 ─ Olive edits m1 (e1) and m2 (e2), deletes m3 (r3) ─ a page to all

Every cell is the set of events a viewer gets by one path; where an event is refused,
the refusal must be the one for an event that does not exist (``unknown_message``, 404).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.client import WsClient, acked

VIEWERS = ("Early", "Late", "Rejoiner", "Leaver", "Kicked", "Banned", "Outsider", "Admin")
ALL = "m0 m1 m2 m3 k e1 e2 r3"
OLIVES = set("m1 m2 m3 k e1 e2 r3".split())  # others may not edit or delete these: the answer shows visibility
SEARCHABLE = {"m0", "m1", "m2"}  # texts holding "fruit" (m3's went with its deletion)
NOT_A_MEMBER = "not_a_member"

# What each viewer may see now (single messages, reports, edits, deletions, history, search) ...
NOW = {
    "joined": {"Early": ALL, "Late": "k m2 e2", "Rejoiner": "m0 k m2 e2", "Leaver": "", "Kicked": "k",
               "Banned": "", "Outsider": "", "Admin": ALL},
    "shared": {"Early": ALL, "Late": ALL, "Rejoiner": ALL, "Leaver": "", "Kicked": "k", "Banned": "",
               "Outsider": "", "Admin": ALL},
}
# ... got live when Olive edited and deleted ...
LIVE = {
    "joined": {"Early": "e1 e2 r3", "Late": "e2", "Rejoiner": "e2", "Leaver": "", "Kicked": "", "Banned": "",
               "Outsider": "", "Admin": "e1 e2 r3"},
    "shared": {"Early": "e1 e2 r3", "Late": "e1 e2 r3", "Rejoiner": "e1 e2 r3", "Leaver": "", "Kicked": "",
               "Banned": "", "Outsider": "", "Admin": "e1 e2 r3"},
}
# ... and get replayed when resuming from before it all (as things stood at each event).
RESUME = {
    "joined": {"Early": ALL, "Late": "k m2 e2", "Rejoiner": "m0 m1 m3 k m2 e2", "Leaver": "m0 m1 m3",
               "Kicked": "m0 m1 m3 k", "Banned": "m0 m1 m3 k", "Outsider": "", "Admin": "k m2 e1 e2 r3"},
    "shared": {"Early": ALL, "Late": "k m2 e1 e2 r3", "Rejoiner": ALL, "Leaver": "m0 m1 m3",
               "Kicked": "m0 m1 m3 k", "Banned": "m0 m1 m3 k", "Outsider": "", "Admin": "k m2 e1 e2 r3"},
}
MEMBERS_NOW = {"Early", "Late", "Rejoiner", "Admin"}


def expected(visibility: str) -> dict[tuple[str, str], str]:
    table = {}
    for viewer in VIEWERS:
        now = set(NOW[visibility][viewer].split())
        table[viewer, "GET /api/messages"] = now
        table[viewer, "get_message"] = now
        table[viewer, "report_message"] = now
        table[viewer, "POST /api/messages/report"] = now
        table[viewer, "PUT /api/messages"] = now & OLIVES
        table[viewer, "edit_message"] = now & OLIVES
        if viewer != "Admin":  # an admin would really delete
            table[viewer, "delete_message"] = now & OLIVES
            table[viewer, "DELETE /api/messages"] = now & OLIVES
        table[viewer, "channel history"] = now if viewer in MEMBERS_NOW else NOT_A_MEMBER
        table[viewer, "channel search"] = now & SEARCHABLE if viewer in MEMBERS_NOW else NOT_A_MEMBER
        table[viewer, "live message_edited/deleted"] = set(LIVE[visibility][viewer].split())
        table[viewer, "resume replay"] = set(RESUME[visibility][viewer].split())
    return {cell: _show(value) for cell, value in table.items()}


def _show(value: Any) -> str:
    return value if isinstance(value, str) else " ".join(sorted(value)) or "-"


@pytest.mark.parametrize("visibility", ["joined", "shared"])
@pytest.mark.gen_test(timeout=120)
async def test_every_path_to_an_event_follows_the_one_rule(world, visibility):
    scene = await _set_up(world, visibility)
    actual = {}
    for name in VIEWERS:
        player = scene.players[name]
        actual[name, "live message_edited/deleted"] = _show(await _live(scene, player))
        for path, seen in (await _single_message_paths(scene, player)).items():
            actual[name, path] = _show(seen)
        for path, seen in (await _history_paths(scene, player)).items():
            actual[name, path] = _show(seen)
        actual[name, "resume replay"] = _show(await _resumed(scene, player))
    table = expected(visibility)
    assert set(actual) == set(table), "every cell is checked"
    wrong = {cell: (value, table[cell]) for cell, value in actual.items() if value != table[cell]}
    assert not wrong, "cells (viewer, path): (got, expected)\n" + "\n".join(f"{c}: {v}" for c, v in wrong.items())


class Scene:
    def __init__(self, world):
        self.world = world
        self.players: dict[str, Any] = {}
        self.ids: dict[str, str] = {}  # m0 ... r3 -> event id
        self.since = 0

    def name_of(self, event_id: str) -> str | None:
        return next((name for name, known in self.ids.items() if known == event_id), None)

    def names(self, event_ids) -> set[str]:
        return {name for name in map(self.name_of, event_ids) if name is not None}


async def _set_up(world, visibility: str) -> Scene:
    scene = Scene(world)
    olive = await world.player("Olive")
    for name in VIEWERS:
        scene.players[name] = await world.player(name, role="admin" if name == "Admin" else "player")
    players = scene.players
    status, body = await world.api.call("POST", "/api/communication/channels",
                                        {"name": "Lore", "historyVisibility": visibility}, token=olive.token)
    assert status == 201, body
    scene.since = await world.server.context.storage.latest_position()
    for name in ("Early", "Rejoiner", "Leaver", "Kicked", "Banned"):
        await acked(players[name].ws, "join_channel", {"channelId": "lore"})
    scene.ids["m0"] = await _say(players["Rejoiner"], "zero fruit")
    scene.ids["m1"] = await _say(olive, "apple fruit")
    scene.ids["m3"] = await _say(olive, "cherry fruit")
    for name in ("Late", "Admin", "Rejoiner"):
        if name == "Rejoiner":
            await acked(players[name].ws, "leave_channel", {"channelId": "lore"})
        await acked(players[name].ws, "join_channel", {"channelId": "lore"})
    await acked(players["Leaver"].ws, "leave_channel", {"channelId": "lore"})
    scene.ids["k"] = await _ack_id(olive, "channel_moderate", {"channelId": "lore", "action": "kick",
                                                                "user": "Kicked"})
    await acked(olive.ws, "channel_moderate", {"channelId": "lore", "action": "ban", "user": "Banned"})
    scene.ids["m2"] = await _say(olive, "banana fruit")
    scene.ids["e1"] = await _ack_id(olive, "edit_message", {"eventId": scene.ids["m1"], "text": "apple fruit, ripe"})
    scene.ids["e2"] = await _ack_id(olive, "edit_message", {"eventId": scene.ids["m2"], "text": "banana fruit, ripe"})
    scene.ids["r3"] = await _ack_id(olive, "delete_message", {"eventId": scene.ids["m3"]})
    await acked(olive.ws, "page", {"to": list(VIEWERS), "text": "that is all"})  # after every live frame
    return scene


async def _say(player, text: str) -> str:
    return await _ack_id(player, "channel", {"channelId": "lore", "text": text})


async def _ack_id(player, frame_type: str, data: dict[str, Any]) -> str:
    return (await acked(player.ws, frame_type, data))["data"]["eventId"]


async def _live(scene: Scene, player) -> set[str]:
    """The edits and deletions the viewer's socket got live (all came before the page)."""
    await player.ws.receive_type("message")  # the page
    frames = player.ws.of_type("message_edited") + player.ws.of_type("message_deleted")
    return scene.names(frame["data"]["event"]["event_id"] for frame in frames)


async def _single_message_paths(scene: Scene, player) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    api, token = scene.world.api, player.token
    for name, event_id in scene.ids.items():
        path = "/api/messages/" + event_id
        attempts = {
            "GET /api/messages": _http(api, "GET", path, token),
            "get_message": _frame(player.ws, "get_message", {"eventId": event_id}),
            "report_message": _frame(player.ws, "report_message", {"eventId": event_id, "reason": "why"}),
            "POST /api/messages/report": _http(api, "POST", path + "/report", token, {"reason": "why"}),
        }
        if name in OLIVES:
            attempts["PUT /api/messages"] = _http(api, "PUT", path, token, {"text": "not mine"})
            attempts["edit_message"] = _frame(player.ws, "edit_message", {"eventId": event_id, "text": "not mine"})
            if player.name != "Admin":
                attempts["delete_message"] = _frame(player.ws, "delete_message", {"eventId": event_id})
                attempts["DELETE /api/messages"] = _http(api, "DELETE", path, token)
        for label, attempt in attempts.items():
            if await attempt:
                seen.setdefault(label, set()).add(name)
            else:
                seen.setdefault(label, set())
    return seen


async def _http(api, method: str, path: str, token: str, body: Any = None) -> bool:
    """True if the event showed (served, or refused for another reason than not existing)."""
    status, answer = await api.call(method, path, body, token=token)
    if status >= 400 and answer["error"]["code"] == "unknown_message":
        assert status == 404 and answer["error"]["message"] == \
            "There is no such message (or it is not yours to see).", answer
        return False
    return True


async def _frame(socket: WsClient, frame_type: str, data: dict[str, Any]) -> bool:
    message_id = await socket.send_frame(frame_type, data)
    while True:
        frame = await socket.receive()
        assert frame is not None, "the socket closed"
        if frame.get("data", {}).get("inReplyTo") == message_id:
            break
    if frame["type"] == "error" and frame["data"]["code"] == "unknown_message":
        assert frame["data"]["message"] == "There is no such message (or it is not yours to see).", frame
        assert "details" not in frame["data"], frame
        return False
    return True


async def _history_paths(scene: Scene, player) -> dict[str, Any]:
    found: dict[str, Any] = {}
    path = "/api/communication/channels/lore/history"
    for label, query in (("channel history", "?limit=100"), ("channel search", "?limit=100&q=fruit")):
        status, body = await scene.world.api.call("GET", path + query, token=player.token)
        if status == 403:
            found[label] = body["error"]["code"]
        else:
            assert status == 200 and body["next"] is None, body
            found[label] = scene.names(event["event_id"] for event in body["events"])
    return found


async def _resumed(scene: Scene, player) -> set[str]:
    socket = await WsClient.open(f"{scene.world.ws_url}?since={scene.since}", scene.world.spec, token=player.token)
    player.sockets.append(socket)
    replayed = []
    while (frame := await socket.receive()) is not None and frame["type"] not in ("resumed", "resume_gap"):
        if isinstance(frame.get("data", {}).get("event"), dict):
            replayed.append(frame["data"]["event"]["event_id"])
    assert frame is not None and frame["type"] == "resumed", frame
    return scene.names(replayed)


@pytest.mark.gen_test(timeout=30)
async def test_live_edits_keep_stream_order_with_the_channel_and_skip_later_joiners(world):
    """The audience of an edit is read before it is stored, so its frame goes out right after
    its commit: a listener sees positions only rising (a client resuming from the highest one
    it saw skips nothing), and whoever joins a ``joined`` channel later never hears of it."""
    olive, early = await world.player("Olive"), await world.player("Early")
    talker, late = await world.player("Talker"), await world.player("Late")
    status, _ = await world.api.call("POST", "/api/communication/channels",
                                     {"name": "Lore", "historyVisibility": "joined"}, token=olive.token)
    assert status == 201
    for player in (early, talker):
        await acked(player.ws, "join_channel", {"channelId": "lore"})
    said = await _say(olive, "first")
    await acked(late.ws, "join_channel", {"channelId": "lore"})
    edits = [olive.ws.send_frame("edit_message", {"eventId": said, "text": f"first, take {n}"}) for n in range(5)]
    speech = [talker.ws.send_frame("channel", {"channelId": "lore", "text": f"line {n}"}) for n in range(10)]
    await asyncio.gather(*edits, *speech)
    positions, kinds = [], []
    while kinds.count("message_edited") < 5 or kinds.count("channel_message") < 10:
        frame = await early.ws.receive(timeout=5)
        assert frame is not None, kinds
        if frame["type"] == "message_edited" or (
                frame["type"] == "channel_message" and frame["data"]["event"]["content"]["body"].startswith("line")):
            kinds.append(frame["type"])
            positions.append(frame["data"]["event"]["unsigned"]["stream_position"])
    assert positions == sorted(positions) and len(set(positions)) == 15
    heard = [frame["type"] for frame in await late.ws.quiet(0.5)]
    assert "message_edited" not in heard and heard.count("channel_message") >= 10
