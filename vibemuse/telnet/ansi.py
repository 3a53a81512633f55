"""Styled spans (spec 14.5) as ANSI SGR escapes, for terminals that draw colour.

Each styled span is drawn as ``ESC[0;<codes>m`` + its text + ``ESC[0m``, so no
style ever leaks past its span, whatever the client did before. Colour names
are the eight SGR colours (30-37, 40-47 for backgrounds). A ``#rrggbb``
colour is sent as 24-bit (``38;2;r;g;b``) to a client that draws it, else as
the nearest of the 256-colour palette (``38;5;n``), else as the nearest of
the eight. Unstyled spans, and everything for a client without colour, are
the text alone. Texts are sanitized upstream: they hold no escapes of their own.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

ESC = "\x1b"
RESET = f"{ESC}[0m"
COLOUR_NAMES = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")
BASIC_RGB = ((0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205),
             (229, 229, 229))
FLAGS = (("bold", 1), ("underline", 4), ("blink", 5), ("inverse", 7))
CUBE_LEVELS = (0, 95, 135, 175, 215, 255)
TRUECOLOUR = 1 << 24


def render_spans(spans: Iterable[Mapping[str, Any]], colours: int) -> str:
    """The spans as one string: with SGR escapes when ``colours`` (8, 256, 2**24), plain when 0."""
    parts = []
    for span in spans:
        text = span["text"]
        style = span.get("style")
        codes = sgr_codes(style, colours) if style and colours else ""
        parts.append(f"{ESC}[0;{codes}m{text}{RESET}" if codes else text)
    return "".join(parts)


def sgr_codes(style: Mapping[str, Any], colours: int) -> str:
    codes = [str(code) for flag, code in FLAGS if style.get(flag)]
    for key, base in (("fg", 30), ("bg", 40)):
        if key in style:
            codes.append(_colour(style[key], base, colours))
    return ";".join(codes)


def _colour(value: str, base: int, colours: int) -> str:
    if value in COLOUR_NAMES:
        return str(base + COLOUR_NAMES.index(value))
    red, green, blue = (int(value[i:i + 2], 16) for i in (1, 3, 5))
    if colours >= TRUECOLOUR:
        return f"{base + 8};2;{red};{green};{blue}"
    if colours >= 256:
        return f"{base + 8};5;{palette_index(red, green, blue)}"
    return str(base + nearest_basic(red, green, blue))


def palette_index(red: int, green: int, blue: int) -> int:
    """The nearest colour of xterm's 256: the 6x6x6 cube (16-231) or the grey ramp (232-255)."""
    cube = [min(range(6), key=lambda i: abs(CUBE_LEVELS[i] - c)) for c in (red, green, blue)]
    cube_rgb = [CUBE_LEVELS[i] for i in cube]
    grey_step = min(23, max(0, round(((red + green + blue) / 3 - 8) / 10)))
    grey = 8 + 10 * grey_step
    if _distance((grey, grey, grey), (red, green, blue)) < _distance(cube_rgb, (red, green, blue)):
        return 232 + grey_step
    return 16 + 36 * cube[0] + 6 * cube[1] + cube[2]


def nearest_basic(red: int, green: int, blue: int) -> int:
    return min(range(8), key=lambda i: _distance(BASIC_RGB[i], (red, green, blue)))


def _distance(one: Iterable[int], other: Iterable[int]) -> int:
    return sum((a - b) ** 2 for a, b in zip(one, other))
