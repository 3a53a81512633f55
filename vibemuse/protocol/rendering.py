"""The lines players see: a speaker's name and a message, framed MUSH-style.

Theory of operation. Every message line is a :class:`Frame` — a prefix and a
suffix in the default style — around the message's own text:

======================  ====================================  =======================
kind (``ooc_style``)    others see                            the speaker sees
======================  ====================================  =======================
``say``                 ``Alice says, "hi"``                  ``You say, "hi"``
``pose``                ``Alice waves``                       the same
``semipose``            ``Alice's hat`` (no space)            the same
``ooc`` (``say``)       ``<OOC> Alice says, "hi"``            ``<OOC> You say, "hi"``
``ooc`` (``pose``)      ``<OOC> Alice waves``                 the same
``ooc`` (``semipose``)  ``<OOC> Alice's hat``                 the same
``emit``                ``hi``                                the same
``wall``                ``Announcement: Alice shouts, "hi"``  the same
======================  ====================================  =======================

The kinds are the wire's ``kind`` values; ``ooc_style`` (the wire's
``style``) matters only for ``ooc``.

:func:`render_line` frames plain text; :func:`render_line_spans` frames a
parsed :class:`~vibemuse.protocol.markup.Markup`, so a colour-capable client
can draw the whole line; the spans' texts joined are exactly
``render_line(kind, name, markup.plain)``. The name is taken literally (its
``%`` are not markup). Multi-line text stays as it is: a newline from ``%r``
stays inside the quotes, as on a MUSH. The ``render_*`` helpers are the same
frames with fixed kinds. :func:`message_kind` maps a parsed command to its
kind (for an :class:`~vibemuse.protocol.commands.Ooc` the style is its
``style``). Arrivals and departures are plain lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence, TypeAlias, get_args

from vibemuse.protocol.commands import Command, Emit, Ooc, OocStyle, Pose, Say, Wall
from vibemuse.protocol.markup import Markup, Span, merge_spans

__all__ = [
    "MESSAGE_KINDS", "OOC_STYLES", "Frame", "MessageKind", "frame", "message_kind",
    "render_arrival", "render_departure", "render_emit", "render_line", "render_line_spans",
    "render_ooc", "render_ooc_self", "render_pose", "render_say", "render_say_self", "render_wall",
]

MessageKind: TypeAlias = Literal["say", "pose", "semipose", "ooc", "emit", "wall"]
MESSAGE_KINDS: tuple[MessageKind, ...] = get_args(MessageKind)
OOC_STYLES: tuple[OocStyle, ...] = get_args(OocStyle)
OOC_TAG = "<OOC> "


@dataclass(frozen=True)
class Frame:
    """What goes before and after a message's own text."""

    prefix: str
    suffix: str = ""

    def around(self, text: str) -> str:
        return f"{self.prefix}{text}{self.suffix}"

    def around_spans(self, spans: tuple[Span, ...]) -> tuple[Span, ...]:
        return merge_spans((Span(self.prefix), *spans, Span(self.suffix)))


def frame(kind: MessageKind, name: str, *, ooc_style: OocStyle = "say",
          self_view: bool = False) -> Frame:
    """The frame of a line by ``name``, as others or (``self_view``) the speaker see it."""
    if kind not in MESSAGE_KINDS:
        raise ValueError(f"not a message kind: {kind!r}")
    if kind == "ooc":
        if ooc_style not in OOC_STYLES:
            raise ValueError(f"not an OOC style: {ooc_style!r}")
        inner = frame(ooc_style, name, self_view=self_view)
        return Frame(OOC_TAG + inner.prefix, inner.suffix)
    if kind == "say":
        return Frame("You say, \"" if self_view else f'{name} says, "', '"')
    if kind == "pose":
        return Frame(f"{name} ")
    if kind == "semipose":
        return Frame(name)
    if kind == "wall":
        return Frame(f'Announcement: {name} shouts, "', '"')
    return Frame("")


def message_kind(command: Command) -> MessageKind:
    """The kind of line a message command makes; ValueError for Who, Home, ..."""
    match command:
        case Say():
            return "say"
        case Pose(semipose=semipose):
            return "semipose" if semipose else "pose"
        case Ooc():
            return "ooc"
        case Emit():
            return "emit"
        case Wall():
            return "wall"
    raise ValueError(f"{type(command).__name__} is not a message command")


def render_line(kind: MessageKind, name: str, text: str, *, ooc_style: OocStyle = "say",
                self_view: bool = False) -> str:
    """The plain line."""
    return frame(kind, name, ooc_style=ooc_style, self_view=self_view).around(text)


def render_line_spans(kind: MessageKind, name: str, markup: Markup, *,
                      ooc_style: OocStyle = "say", self_view: bool = False) -> tuple[Span, ...]:
    """The line as spans: the frame in the default style around the message's spans."""
    framing = frame(kind, name, ooc_style=ooc_style, self_view=self_view)
    return framing.around_spans(markup.spans)


def render_say(name: str, text: str) -> str:
    return render_line("say", name, text)


def render_say_self(text: str) -> str:
    return render_line("say", "", text, self_view=True)


def render_pose(name: str, text: str, semipose: bool = False) -> str:
    return render_line("semipose" if semipose else "pose", name, text)


def render_ooc(name: str, text: str, style: OocStyle = "say") -> str:
    return render_line("ooc", name, text, ooc_style=style)


def render_ooc_self(name: str, text: str, style: OocStyle = "say") -> str:
    return render_line("ooc", name, text, ooc_style=style, self_view=True)


def render_emit(text: str) -> str:
    return render_line("emit", "", text)


def render_wall(name: str, text: str) -> str:
    return render_line("wall", name, text)


def render_arrival(name: str) -> str:
    return f"{name} has arrived."


def render_departure(name: str) -> str:
    return f"{name} has left."


# -- pages and channels ---------------------------------------------------------


def join_names(names: Sequence[str]) -> str:
    """``Bob``, ``Bob and Carol``, ``Bob, Carol and Dave``."""
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def page_frame(sender: str, recipients: Sequence[str], style: OocStyle, *, self_view: bool = False) -> Frame:
    """How a page reads (PennMUSH's formats).

    To recipients: ``Alice pages: hi``, ``Alice pages Bob and Carol: hi``,
    ``From afar, Alice waves``, ``From afar (to Bob and Carol), Alice waves``.
    To the sender: ``You paged Bob with 'hi'.``, ``Long distance to Bob: Alice waves``.
    """
    to = join_names(recipients)
    if style == "say":
        if self_view:
            return Frame(f"You paged {to} with '", "'.")
        return Frame(f"{sender} pages: " if len(recipients) == 1 else f"{sender} pages {to}: ")
    name_frame = frame(style, sender)
    if self_view:
        return Frame(f"Long distance to {to}: {name_frame.prefix}")
    afar = "From afar, " if len(recipients) == 1 else f"From afar (to {to}), "
    return Frame(afar + name_frame.prefix)


def channel_frame(channel: str, speaker: str, style: OocStyle) -> Frame:
    """``<Public> Alice says, "hi"``, ``<Public> Alice waves``, ``<Public> Alice's hat``."""
    inner = frame(style, speaker)
    return Frame(f"<{channel}> {inner.prefix}", inner.suffix)


def render_channel_notice(channel: str, text: str) -> str:
    """``<Public> Alice has joined this channel.``"""
    return f"<{channel}> {text}"
