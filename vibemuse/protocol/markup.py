"""What players type, made safe, and its MUSH markup turned into styled spans.

Theory of operation. Every message text passes through two steps:

1. **Sanitizing** (:func:`sanitize_text`, idempotent) makes the text safe to
   store and show. In order:

   - ``\\r\\n``, a lone ``\\r``, U+2028 and U+2029 become ``\\n``;
   - every control character (C0, DEL, C1 — NUL, ESC, NEL, ...) except
     ``\\n`` and ``\\t`` is removed, so raw ANSI escapes cannot reach a client;
   - every format character (category Cf) is removed: bidi controls
     (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), zero-width and
     invisible characters (U+200B, U+2060-U+2064, U+FEFF, U+180E) and the soft
     hyphen U+00AD (invisible in chat, used to slip words past filters) — except
     ZWNJ U+200C and ZWJ U+200D (Persian, Indic scripts, emoji ZWJ sequences)
     and the tag characters of a subdivision flag (🏴 + 2 tag letters + 1-3
     tag letters/digits + CANCEL TAG, e.g. the flag of England); any other tag
     character is removed (they smuggle invisible text);
   - surrogates (Cs), private-use characters (Co), noncharacters and the
     Hangul fillers U+3164 and U+FFA0 are removed;
   - the text is NFC-normalized (``e`` + U+0301 becomes ``é``);
   - at most :data:`MAX_COMBINING_MARKS` combining marks (Mn, Me) follow one
     base character; further ones ("zalgo") are dropped. ZWJ/ZWNJ do not
     start a new run, so they cannot be used to reset the count.

   Whitespace is not trimmed: that is the caller's business. :func:`is_blank`
   says whether a text shows nothing (only whitespace, marks, format
   characters, Hangul fillers and U+2800 BRAILLE PATTERN BLANK).
   :func:`check_text` sanitizes and refuses empty (``empty_text``) and
   overlong (``text_too_long``) texts; the length is counted in code points
   after sanitizing and before markup is expanded, and a text is never
   truncated silently.

2. **Markup** (:func:`parse_markup`) reads TinyMUX/PennMUSH %-codes and
   returns :class:`Markup`: styled :class:`Span` s whose texts, joined, are
   the plain text. It never fails: an unknown or malformed %-sequence stays
   literally in the text. Codes (case matters):

   ===================  ====================================================
   ``%r`` ``%R``        newline
   ``%t`` ``%T``        tab
   ``%b`` ``%B``        space
   ``%%``               a literal ``%``
   ``%x<c>`` ``%c<c>``  colour code ``<c>``, one character (``%X`` and
                        ``%C`` read single characters the same way):
                        ``x r g y b m c w`` foreground black, red, green,
                        yellow, blue, magenta, cyan, white; ``X R G Y B M C
                        W`` the same as background; ``h`` bold (highlight),
                        ``u`` underline, ``f`` blink, ``i`` inverse, ``n``
                        back to the default style
   ``%x<#rrggbb>``      foreground colour in hex (``%c<#rrggbb>`` too)
   ``%X<#rrggbb>``      background colour in hex (``%C<#rrggbb>`` too)
   ``%x<red>``          foreground by name, one of the eight above
                        (``%c<name>``; ``%X<name>``/``%C<name>`` background)
   ===================  ====================================================

   A code changes the style from that point until ``%xn`` or the end of the
   message; styles never leak from one message into another. On the wire a
   colour is one of the eight names or ``#rrggbb`` (lower case). Markup only
   ever produces spans: never ANSI escapes, never HTML. Codes can separate a
   base character from its combining marks; the mark cap is applied again
   across spans, so the plain text keeps it (it may not be NFC there).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from typing import Any

from vibemuse.protocol.errors import ErrorCode, ProtocolError

__all__ = [
    "COLOUR_NAMES", "DEFAULT_STYLE", "MAX_COMBINING_MARKS", "Markup", "Span", "Style",
    "check_text", "is_blank", "merge_spans", "parse_markup", "sanitize_text", "spans_to_wire",
]

MAX_COMBINING_MARKS = 4
COLOUR_NAMES = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")


# --- styles and spans -------------------------------------------------------

@dataclass(frozen=True)
class Style:
    """How a span looks; the default (all off, no colours) is the terminal's own."""

    fg: str | None = None
    bg: str | None = None
    bold: bool = False
    underline: bool = False
    blink: bool = False
    inverse: bool = False

    def to_wire(self) -> dict[str, Any]:
        """Only the keys that differ from the default style."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != f.default}


DEFAULT_STYLE = Style()


@dataclass(frozen=True)
class Span:
    """A run of text in one style."""

    text: str
    style: Style = DEFAULT_STYLE

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"text": self.text}
        if self.style != DEFAULT_STYLE:
            wire["style"] = self.style.to_wire()
        return wire


@dataclass(frozen=True)
class Markup:
    """A parsed message: its spans, merged, none empty."""

    spans: tuple[Span, ...]

    @property
    def plain(self) -> str:
        """The text as shown, without any styling."""
        return "".join(span.text for span in self.spans)


def merge_spans(spans: Iterable[Span]) -> tuple[Span, ...]:
    """Drop empty spans and join neighbours of equal style."""
    merged: list[Span] = []
    for span in spans:
        if not span.text:
            continue
        if merged and merged[-1].style == span.style:
            merged[-1] = Span(merged[-1].text + span.text, span.style)
        else:
            merged.append(span)
    return tuple(merged)


def spans_to_wire(spans: Iterable[Span]) -> list[dict[str, Any]]:
    """``[{"text": ..., "style": {...}}]``, merged; ``style`` omitted when default."""
    return [span.to_wire() for span in merge_spans(spans)]


# --- sanitizing -------------------------------------------------------------

_NEWLINES = re.compile("\r\n?|[\u2028\u2029]")
_ASCII_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_FLAG_WITH_TAGS = re.compile(
    "\U0001F3F4[\U000E0061-\U000E007A]{2}"
    "[\U000E0030-\U000E0039\U000E0061-\U000E007A]{1,3}\U000E007F")
_KEPT_CONTROLS = frozenset("\n\t")
_JOINERS = frozenset("\u200c\u200d")
_STRIPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})
_STRIPPED_FILLERS = frozenset("\u3164\uffa0")
_MARK_CATEGORIES = frozenset({"Mn", "Me"})


def sanitize_text(text: str) -> str:
    """The text made safe to store and show (see the module docstring)."""
    text = _NEWLINES.sub("\n", text)
    if text.isascii():
        return _ASCII_CONTROLS.sub("", text)
    text = unicodedata.normalize("NFC", _strip_invisible(text))
    capped, _ = _cap_marks(text, 0)
    return unicodedata.normalize("NFC", capped)


def _strip_invisible(text: str) -> str:
    """Remove control, format, private and filler characters; keep flag tags."""
    kept: list[str] = []
    position = 0
    for flag in _FLAG_WITH_TAGS.finditer(text):
        kept.extend(ch for ch in text[position:flag.start()] if _is_kept(ch))
        kept.append(flag.group())
        position = flag.end()
    kept.extend(ch for ch in text[position:] if _is_kept(ch))
    return "".join(kept)


def _is_kept(ch: str) -> bool:
    if ch in _KEPT_CONTROLS or ch in _JOINERS:
        return True
    if ch in _STRIPPED_FILLERS or _is_noncharacter(ord(ch)):
        return False
    return unicodedata.category(ch) not in _STRIPPED_CATEGORIES


def _is_noncharacter(code_point: int) -> bool:
    return 0xFDD0 <= code_point <= 0xFDEF or (code_point & 0xFFFE) == 0xFFFE


def _cap_marks(text: str, run: int) -> tuple[str, int]:
    """Drop combining marks beyond the cap; ``run`` carries the count across calls."""
    kept: list[str] = []
    for ch in text:
        if unicodedata.category(ch) in _MARK_CATEGORIES:
            run += 1
            if run > MAX_COMBINING_MARKS:
                continue
        elif ch not in _JOINERS:
            run = 0
        kept.append(ch)
    return "".join(kept), run


_INVISIBLE_CATEGORIES = frozenset({"Mn", "Me", "Cc", "Cf", "Cs", "Co", "Zs", "Zl", "Zp"})
_BLANK_LOOKALIKES = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def is_blank(text: str) -> bool:
    """True if the text shows nothing a reader could see."""
    return not any(_is_visible(ch) for ch in text)


def _is_visible(ch: str) -> bool:
    if ch.isspace() or ch in _BLANK_LOOKALIKES:
        return False
    return unicodedata.category(ch) not in _INVISIBLE_CATEGORIES


def check_text(text: object, max_length: int) -> str:
    """Sanitize a message text, or refuse it as empty or too long.

    Empty means blank after sanitizing, or blank once markup is expanded
    (``%b``, ``%xr``). Length is in code points, after sanitizing, before
    markup expansion.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    clean = sanitize_text(text)
    if is_blank(clean) or is_blank(parse_markup(clean).plain):
        raise ProtocolError(ErrorCode.EMPTY_TEXT, "What do you want to say?")
    if len(clean) > max_length:
        raise ProtocolError(
            ErrorCode.TEXT_TOO_LONG,
            f"That is too long: {len(clean)} characters, at most {max_length} are allowed.",
            details={"maxLength": max_length, "length": len(clean)},
        )
    return clean


# --- markup -----------------------------------------------------------------

_SUBSTITUTIONS = {"r": "\n", "R": "\n", "t": "\t", "T": "\t", "b": " ", "B": " ", "%": "%"}
_COLOUR_INTRODUCERS = frozenset("xXcC")
_FOREGROUND_CODES = dict(zip("xrgybmcw", COLOUR_NAMES))
_BACKGROUND_CODES = dict(zip("XRGYBMCW", COLOUR_NAMES))
_ATTRIBUTE_CODES = {"h": "bold", "u": "underline", "f": "blink", "i": "inverse"}
_BRACKETED = re.compile(r"<([^<>%]{1,16})>")
_HEX_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")


def parse_markup(text: str) -> Markup:
    """Sanitize ``text`` and read its %-codes into spans. Never raises."""
    source = sanitize_text(text)
    spans: list[Span] = []
    style = DEFAULT_STYLE
    position = 0
    while (percent := source.find("%", position)) >= 0:
        spans.append(Span(source[position:percent], style))
        code = _read_code(source, percent, style)
        if code is None:
            spans.append(Span("%", style))
            position = percent + 1
        else:
            emitted, style, position = code
            spans.append(Span(emitted, style))
    spans.append(Span(source[position:], style))
    return Markup(_cap_marks_across(merge_spans(spans)))


def _read_code(source: str, percent: int, style: Style) -> tuple[str, Style, int] | None:
    """The %-code at ``percent``: (text it stands for, style after it, end); None if none."""
    letter = source[percent + 1:percent + 2]
    if letter in _SUBSTITUTIONS:
        return _SUBSTITUTIONS[letter], style, percent + 2
    if letter and letter in _COLOUR_INTRODUCERS:
        return _read_colour(source, percent + 2, letter.isupper(), style)
    return None


def _read_colour(source: str, start: int, background: bool,
                 style: Style) -> tuple[str, Style, int] | None:
    bracketed = _BRACKETED.match(source, start)
    if bracketed is not None:
        colour = _colour_value(bracketed.group(1))
        if colour is None:
            return None
        changed = replace(style, bg=colour) if background else replace(style, fg=colour)
        return "", changed, bracketed.end()
    changed = _apply_code(source[start:start + 1], style)
    return None if changed is None else ("", changed, start + 1)


def _colour_value(name: str) -> str | None:
    if _HEX_COLOUR.fullmatch(name):
        return name.lower()
    return name.lower() if name.lower() in COLOUR_NAMES else None


def _apply_code(code: str, style: Style) -> Style | None:
    if code in _FOREGROUND_CODES:
        return replace(style, fg=_FOREGROUND_CODES[code])
    if code in _BACKGROUND_CODES:
        return replace(style, bg=_BACKGROUND_CODES[code])
    if code in _ATTRIBUTE_CODES:
        return replace(style, **{_ATTRIBUTE_CODES[code]: True})
    return DEFAULT_STYLE if code == "n" else None


def _cap_marks_across(spans: tuple[Span, ...]) -> tuple[Span, ...]:
    """Re-apply the combining-mark cap where codes split a base from its marks."""
    capped: list[Span] = []
    run = 0
    for span in spans:
        text, run = _cap_marks(span.text, run)
        capped.append(Span(text, span.style))
    return merge_spans(capped)
