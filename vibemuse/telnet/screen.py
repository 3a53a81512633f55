"""What a telnet player reads: server frames of spec/v1 turned into MUSH lines.

:func:`render_frame` takes a server frame as it is on the wire (a dict) and
the viewer's user id, and returns the lines to print, each a list of spans
(``{"text", "style"?}``, spec 14.5); :func:`vibemuse.telnet.ansi.render_spans`
then draws them with or without colour. It follows the rules of spec 14.3 for
a client that draws styles: ``rendered_self`` (plain) for the viewer's own
messages, ``rendered_spans`` when present, else ``rendered``. Frames that a
MUSH shows nothing for (``ack``, ``pong``, ``typing``, ...) render to no
lines; :class:`Screen` adds connections and disconnections from ``presence``
frames. The login screen's texts live here too.
"""

from __future__ import annotations

from typing import Any, Callable

Spans = list[dict[str, Any]]
SOFTWARE = "VibeMUSE"

WELCOME = """\
Welcome to {server} ({software} {version}).

  connect <name> <password>    log in (or: connect <name>, then the password)
  create <name> <password>     make a new character
  WHO                          who is connected
  QUIT                         leave
"""

HELP = """\
Commands:
  "<text>  or  say <text>        say something in the room
  :<text>  or  pose <text>       pose (;<text> for a possessive)
  ooc <text>                     out of character
  page <name>[ <name>...]=<text> page someone (page <text>: the last ones again)
  +<alias> <text>                talk on a channel (addcom <alias>=<channel> joins it)
  @channel/list, @channel/who <channel>, delcom <alias>
  WHO                            who is connected
  look                           the room you are in
  home                           go back to the room you started in
  @ansi on|off                   colour on or off
  QUIT                           leave
Texts take MUSH markup: %r newline, %xr red, %xh bold, %xn normal."""


def plain(text: str) -> Spans:
    return [{"text": text}]


class Screen:
    """One player's view: :func:`render_frame`, plus arrivals and departures as a MUSH
    announces them (``Bob has connected.``, ``Bob has disconnected.``), told from the
    ``presence`` frames of the room by the statuses seen so far."""

    def __init__(self, viewer: str = ""):
        self.viewer = viewer
        self.statuses: dict[str, str] = {}  # user id -> last status seen in this room

    def render(self, frame: dict[str, Any]) -> list[Spans]:
        data = frame.get("data") or {}
        if frame.get("type") == "roster":
            self.statuses = {member["userId"]: member.get("status", "online") for member in data.get("members") or []}
        elif frame.get("type") == "presence":
            return self._presence(data)
        elif frame.get("type") in ("user_joined", "user_left"):  # walked in (online) or out of the room
            sender = (data.get("event") or {}).get("sender", "")
            if frame["type"] == "user_joined":
                self.statuses[sender] = "online"
            else:
                self.statuses.pop(sender, None)
        return render_frame(frame, self.viewer)

    def arrival(self, frame: dict[str, Any]) -> str | None:
        """What a ``presence`` frame is, seen from here: ``"connected"``, ``"disconnected"``
        (of another user) or None (idle, away, back, the viewer's own, any other frame)."""
        data = frame.get("data") or {}
        user_id, status = data.get("userId", ""), data.get("status", "")
        if frame.get("type") != "presence" or user_id == self.viewer:
            return None
        before = self.statuses.get(user_id, "offline")
        if status == before:
            return None
        if status == "offline":
            return "disconnected"
        return "connected" if before == "offline" else None

    def _presence(self, data: dict[str, Any]) -> list[Spans]:
        arrival = self.arrival({"type": "presence", "data": data})
        user_id, status = data.get("userId", ""), data.get("status", "")
        self.statuses[user_id] = status
        if status == "offline":
            self.statuses.pop(user_id, None)
        if arrival is None:
            return []
        return [plain(f"{data.get('username', localpart(user_id))} has {arrival}.")]


def render_frame(frame: dict[str, Any], viewer: str) -> list[Spans]:
    renderer = RENDERERS.get(frame.get("type", ""))
    return renderer(frame.get("data") or {}, viewer) if renderer else []


def _event_lines(data: dict[str, Any], viewer: str) -> list[Spans]:
    """A message, page, announcement or channel line (spec 14.3)."""
    event = data.get("event") or {}
    content = event.get("content") or {}
    if event.get("sender") == viewer and "rendered_self" in content:
        return [plain(content["rendered_self"])]
    if "rendered_spans" in content:
        return [content["rendered_spans"]]
    return [plain(content["rendered"])] if "rendered" in content else []


def _roster(data: dict[str, Any], viewer: str) -> list[Spans]:
    """The room, as ``look`` shows it: name, description, who is here."""
    room = data.get("room") or {}
    lines = [[{"text": room.get("name", ""), "style": {"bold": True}}]]
    if room.get("description"):
        lines.append(plain(room["description"]))
    members = data.get("members") or []
    if members:
        lines.append(plain("Players:"))
        lines.extend(plain(_name_with_status(member)) for member in members)
    more = data.get("memberCount", len(members)) - len(members)
    if more > 0:
        lines.append(plain(f"... and {more} more."))
    return lines


def _name_with_status(member: dict[str, Any]) -> str:
    status = member.get("status", "online")
    return member["username"] + ("" if status == "online" else f" ({status})")


def _who(data: dict[str, Any], viewer: str) -> list[Spans]:
    """PennMUSH's WHO: name, time on, idle time, away message."""
    lines = [plain(f"{'Player Name':<24}{'On For':>10}{'Idle':>6}  Doing")]
    for user in data.get("users") or []:
        doing = user.get("awayMessage", "") if user.get("status") == "away" else ""
        lines.append(plain(f"{user['username']:<24}{on_for(user.get('onForMs', 0)):>10}"
                           f"{idle_for(user.get('idleMs', 0)):>6}  {doing}".rstrip()))
    total = data.get("total", 0)
    lines.append(plain(f"{total} player{'' if total == 1 else 's'} logged in."))
    return lines


def on_for(ms: int) -> str:
    """``05:12`` (hours:minutes), ``2d 03:04`` past a day."""
    minutes = ms // 60_000
    days, minutes = divmod(minutes, 24 * 60)
    clock = f"{minutes // 60:02d}:{minutes % 60:02d}"
    return f"{days}d {clock}" if days else clock


def idle_for(ms: int) -> str:
    """``4s``, ``12m``, ``3h``, ``2d``: the largest unit, as MUSH WHO shows idle time."""
    seconds = ms // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def localpart(user_id: str) -> str:
    """``@bob:server`` -> ``bob`` (frames name some users by id only)."""
    return user_id[1:].partition(":")[0] if user_id.startswith("@") else user_id


def _error(data: dict[str, Any], viewer: str) -> list[Spans]:
    return [plain(data.get("message", "That did not work."))]


def _notice(data: dict[str, Any], viewer: str) -> list[Spans]:
    return [plain(data["text"])] if data.get("text") else []


def _ack(data: dict[str, Any], viewer: str) -> list[Spans]:
    """Silent, but for a page some recipients of which are not connected."""
    offline = [localpart(user_id) for user_id in data.get("offline") or []]
    if not offline:
        return []
    verb = "is" if len(offline) == 1 else "are"
    return [plain(f"({', '.join(offline)} {verb} not connected; the page waits for them.)")]


def _receipt(data: dict[str, Any], viewer: str) -> list[Spans]:
    content = ((data.get("event") or {}).get("content")) or {}
    recipient = localpart(content.get("recipient", ""))
    kind = content.get("kind")
    if kind == "delivered":
        return [plain(f"Your page to {recipient} was delivered.")]
    if kind == "held":
        return [plain(f"{recipient} is not connected; the page waits for them.")]
    if kind == "refused":
        return [plain(content.get("message") or f"Your page to {recipient} was refused.")]
    return []


def _channel_list(data: dict[str, Any], viewer: str) -> list[Spans]:
    channels = data.get("channels") or []
    if not channels:
        return [plain("You are on no channels.")]
    lines = [plain(f"{'Alias':<12}{'Channel':<28}Role")]
    lines.extend(plain(f"{channel.get('alias') or '-':<12}{channel['name']:<28}{channel.get('role', '')}")
                 for channel in channels)
    return lines


def _channel_who(data: dict[str, Any], viewer: str) -> list[Spans]:
    names = [localpart(member["userId"]) for member in data.get("members") or []]
    channel = _channel_name(data.get("channelId", ""))
    return [plain(f"Connected on {channel}: {', '.join(names) if names else 'nobody'}.")]


def _channel_name(channel_id: str) -> str:
    return channel_id[1:].partition(":")[0] if channel_id.startswith("#") else channel_id


def _edited(data: dict[str, Any], viewer: str) -> list[Spans]:
    new = (((data.get("event") or {}).get("content")) or {}).get("new_content") or {}
    return [plain(f"(edited) {new['rendered']}")] if "rendered" in new else []


RENDERERS: dict[str, Callable[[dict[str, Any], str], list[Spans]]] = {
    "message": _event_lines,
    "system_message": _event_lines,
    "channel_message": _event_lines,
    "channel_notice": _event_lines,
    "user_joined": _event_lines,
    "user_left": _event_lines,
    "roster": _roster,
    "who": _who,
    "error": _error,
    "notice": _notice,
    "ack": _ack,
    "page_receipt": _receipt,
    "channel_list": _channel_list,
    "channel_who": _channel_who,
    "message_edited": _edited,
}
