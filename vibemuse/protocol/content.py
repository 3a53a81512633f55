"""The content of room, membership and announcement events.

Pure composition: sanitized text (``markup.check_text``), parsed markup
(``markup.parse_markup``) and the lines MUSH players expect
(``rendering``), gathered into the ``content`` object of an event. Every
event carries both the structure (kind, body, speaker, and spans when the
text is styled) and the rendered lines, so a simple client prints
``rendered`` and a rich one styles ``rendered_spans`` when present.
"""

from __future__ import annotations

from typing import Any

from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.markup import DEFAULT_STYLE, check_text, parse_markup, spans_to_wire
from vibemuse.protocol.rendering import (
    OOC_STYLES,
    Frame,
    channel_frame,
    page_frame,
    render_arrival,
    render_channel_notice,
    render_departure,
    render_line,
    render_line_spans,
)

ROOM_KINDS = ("say", "pose", "semipose", "ooc", "emit")


def largest_event_bytes(max_text_length: int) -> int:
    """A generous bound on one encoded event frame: the text appears up to five
    times (body, spans, rendered, rendered_self, rendered_spans), at most four
    UTF-8 bytes a character, plus names, ids, signature and JSON."""
    return 5 * 4 * max_text_length + 16 * 1024


def room_message(kind: str, speaker: str, text: str, max_length: int, *, style: str = "say") -> dict[str, Any]:
    """Content of a ``vm.room.message``; raises ``empty_text`` / ``text_too_long``."""
    if kind not in ROOM_KINDS or style not in OOC_STYLES:
        raise ProtocolError(ErrorCode.INVALID_REQUEST, f"unknown message kind {kind!r}/{style!r}")
    content = _styled(kind, speaker, text, max_length, style)
    if kind == "ooc":
        content["style"] = style
    content["rendered_self"] = render_line(kind, speaker, content["body"], ooc_style=style, self_view=True)
    return content


def wall(speaker: str, text: str, max_length: int) -> dict[str, Any]:
    """Content of a ``vm.system`` announcement (``@wall``)."""
    return _styled("wall", speaker, text, max_length, "say")


def membership(membership: str, speaker: str) -> dict[str, Any]:
    """Content of a ``vm.room.member`` event: an arrival or a departure."""
    rendered = render_arrival(speaker) if membership == "join" else render_departure(speaker)
    return {"membership": membership, "speaker": speaker, "rendered": rendered}


def _styled(kind: str, speaker: str, text: str, max_length: int, style: str) -> dict[str, Any]:
    """The common keys; ``spans`` and ``rendered_spans`` only when the text has styles
    (unstyled text would just repeat ``body`` and ``rendered``)."""
    markup = parse_markup(check_text(text, max_length))
    content: dict[str, Any] = {
        "kind": kind,
        "body": markup.plain,
        "speaker": speaker,
        "rendered": render_line(kind, speaker, markup.plain, ooc_style=style),
    }
    if any(span.style != DEFAULT_STYLE for span in markup.spans):
        content["spans"] = spans_to_wire(markup.spans)
        content["rendered_spans"] = spans_to_wire(render_line_spans(kind, speaker, markup, ooc_style=style))
    return content


def page(sender: str, recipient_names: list[str], text: str, max_length: int, *, style: str = "say") -> dict[str, Any]:
    """Content of a ``vm.page``: one rendered line for every recipient, one for the sender."""
    if style not in OOC_STYLES:
        raise ProtocolError(ErrorCode.INVALID_REQUEST, f"unknown page style {style!r}")
    markup = parse_markup(check_text(text, max_length))
    to_them = page_frame(sender, recipient_names, style)
    to_me = page_frame(sender, recipient_names, style, self_view=True)
    content: dict[str, Any] = {
        "kind": "page",
        "style": style,
        "body": markup.plain,
        "speaker": sender,
        "recipient_names": list(recipient_names),
        "rendered": to_them.around(markup.plain),
        "rendered_self": to_me.around(markup.plain),
    }
    return _with_spans(content, markup, to_them)


def channel_message(
    channel_name: str, speaker: str, text: str, max_length: int, *, style: str = "say"
) -> dict[str, Any]:
    """Content of a ``vm.channel.message``: ``<Public> Alice says, "hi"``."""
    if style not in OOC_STYLES:
        raise ProtocolError(ErrorCode.INVALID_REQUEST, f"unknown channel style {style!r}")
    markup = parse_markup(check_text(text, max_length))
    framing = channel_frame(channel_name, speaker, style)
    content: dict[str, Any] = {
        "kind": "channel",
        "style": style,
        "body": markup.plain,
        "speaker": speaker,
        "channel_name": channel_name,
        "rendered": framing.around(markup.plain),
    }
    return _with_spans(content, markup, framing)


def channel_notice(channel_name: str, notice: str) -> str:
    """A channel notice line, e.g. ``<Public> Alice has joined this channel.``"""
    return render_channel_notice(channel_name, notice)


def server_membership_line(membership: str, actor: str, server: str, reason: str | None) -> str:
    """The notice of a whole server kicked, banned, unbanned or leaving a channel."""
    shown = f" ({reason})" if reason and membership in ("kick", "ban") else ""
    return {
        "kick": f"{server} and its players have been removed by {actor}{shown}.",
        "ban": f"{server} and its players have been banned by {actor}{shown}.",
        "unban": f"{server} has been unbanned by {actor}.",
        "leave": f"{server} and its players have left this channel.",
    }[membership]


def _with_spans(content: dict[str, Any], markup: Any, framing: Frame) -> dict[str, Any]:
    if any(span.style != DEFAULT_STYLE for span in markup.spans):
        content["spans"] = spans_to_wire(markup.spans)
        content["rendered_spans"] = spans_to_wire(framing.around_spans(markup.spans))
    return content
