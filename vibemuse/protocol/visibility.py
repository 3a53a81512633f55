"""Who may see an event: the one rule behind every path to an event (protocol.md 17.1, 19.1).

Theory of operation. A ``Viewer`` is what decides, for one user: are they an
admin, which room their character stands in now, and for each channel they are
on, the ``Floor`` their view of it starts at — the whole history on a
``shared`` channel, their own latest join on a ``joined`` one. ``may_see``
then decides one event:

- admins see everything; everyone sees the events they sent and those
  addressed to them (``about``: a page's recipients, the member a channel
  membership event is about);
- a room's events: those standing in the room;
- a channel's events: its members, from their floor on;
- a page (or receipt): its sender and recipients (above) only;
- an announcement (``vm.system``): everyone;
- an edit (``vm.edit``) or a deletion (``vm.redaction``) besides needs the
  event it is about (its *target*) to be visible: an edit of a message you may
  not see is as invisible as the message.

The SQL form of the same rule, for histories and search, is
``vibemuse.storage.visibility_txns``; a test runs both over the same events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

SYSTEM = "vm.system"
# The event types that are about another event, and the content key naming it.
TARGET_KEYS: Mapping[str, str] = MappingProxyType({"vm.edit": "relates_to", "vm.redaction": "redacts"})


@dataclass(frozen=True)
class Floor:
    """Where a member's view of a channel starts: from stream position ``position`` on, or for
    a membership from before joins were recorded, from time ``ts`` on; neither: all of it."""

    position: int | None = None
    ts: int | None = None

    def admits(self, position: int, ts: int) -> bool:
        if self.position is not None:
            return position >= self.position
        return self.ts is None or ts >= self.ts


WHOLE_HISTORY = Floor()


def channel_floor(history_visibility: str, joined_position: int | None, joined_ts: int | None) -> Floor:
    """A member's floor on a channel: all of a ``shared`` channel; a ``joined`` one from their
    latest join event on (by its time for memberships from before join positions were kept)."""
    if history_visibility != "joined":
        return WHOLE_HISTORY
    if joined_position is not None:
        return Floor(position=joined_position)
    return Floor(ts=joined_ts)


@dataclass(frozen=True)
class Viewer:
    user_id: str
    admin: bool = False
    room_id: str | None = None  # the room the character stands in now
    channels: Mapping[str, Floor] = field(default_factory=dict)  # channel id -> floor, for channels they are on


def target_of(event: Mapping[str, Any]) -> str | None:
    """The id of the event an edit or deletion is about (None for other events)."""
    key = TARGET_KEYS.get(event.get("type", ""))
    target = event.get("content", {}).get(key) if key else None
    return target if isinstance(target, str) else None


def may_see(viewer: Viewer, event: Mapping[str, Any], target: Mapping[str, Any] | None = None) -> bool:
    """Whether ``viewer`` may see ``event`` (with ``unsigned.stream_position``). ``target``: for an
    edit or a deletion, the event it is about, if the server still keeps it."""
    if not _sees(viewer, event):
        return False
    return target is None or target_of(event) is None or _sees(viewer, target)


def about(event: Mapping[str, Any]) -> list[str]:
    """The users an event is addressed to by name: a page's recipients, and the member a
    channel membership event is about (a kick, ban or invitation reaches them, member or not)."""
    named = list(event.get("recipients", ()))
    target = event.get("content", {}).get("target") if event.get("type") == "vm.channel.member" else None
    if isinstance(target, str) and target not in named:
        named.append(target)
    return named


def _sees(viewer: Viewer, event: Mapping[str, Any]) -> bool:
    if viewer.admin or event["sender"] == viewer.user_id or viewer.user_id in about(event):
        return True
    if "room_id" in event:
        return event["room_id"] == viewer.room_id
    if "channel_id" in event:
        floor = viewer.channels.get(event["channel_id"])
        return floor is not None and floor.admits(event["unsigned"]["stream_position"], event["origin_server_ts"])
    if "recipients" in event:
        return False  # a page or receipt: for its sender and recipients only
    return event["type"] in (SYSTEM, *TARGET_KEYS)  # announcements, and their edits and deletions
