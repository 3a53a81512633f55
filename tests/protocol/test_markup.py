"""Sanitizing message text, checking it, and reading MUSH markup into spans."""

from __future__ import annotations

import unicodedata
from itertools import pairwise

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from vibemuse.protocol.errors import ErrorCode, ProtocolError
from vibemuse.protocol.markup import (
    COLOUR_NAMES,
    DEFAULT_STYLE,
    MAX_COMBINING_MARKS,
    Markup,
    Span,
    Style,
    check_text,
    is_blank,
    merge_spans,
    parse_markup,
    sanitize_text,
    spans_to_wire,
)

ENGLAND = "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"

# Text that exercises the tricky parts: markup, controls, marks, invisibles.
_tricky_alphabet = st.sampled_from(
    list("%xXcCrRtTbBnhufiz<>#0aF ") + ["\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85",
    "\u0301", "\u0308", "\u20dd", "\u200b", "\u200c", "\u200d", "\u202e", "\u2066", "\ufeff",
    "\u00ad", "\u2028", "\ud800", "\ue000", "\U000E0067", "\U000E007F", "\U0001F3F4", "e",
    "\u0958", "\u1100", "\u1161", "\u11a8", "\u3164", "\ufffe"])
tricky_text = st.one_of(st.text(), st.text(_tricky_alphabet), st.text(st.characters()))


def _marks_after_base(text: str) -> int:
    """The longest run of combining marks (ZWJ/ZWNJ do not break a run)."""
    longest = run = 0
    for ch in text:
        if unicodedata.category(ch) in ("Mn", "Me"):
            run += 1
            longest = max(longest, run)
        elif ch not in "\u200c\u200d":
            run = 0
    return longest


def _has_forbidden_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs", "Co") and ch not in "\n\t" for ch in text)


# --- sanitize_text ----------------------------------------------------------

@pytest.mark.parametrize("raw, clean", [
    ("a\x00b", "ab"),
    ("\x1b[31mred\x1b[0m", "[31mred[0m"),
    ("bell\x07 del\x7f nel\x85 csi\x9b", "bell del nel csi"),
    ("form\x0cfeed\x0bvtab", "formfeedvtab"),
    ("evil\u202egnp.exe", "evilgnp.exe"),
    ("\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061cok", "ok"),
    ("z\u200bero\u2060\u2061\u2062\u2063\u2064\ufeff\u180ewidth", "zerowidth"),
    ("soft\u00adhyphen", "softhyphen"),
    ("private\ue000\U000F0000use", "privateuse"),
    ("lone\ud800surrogate", "lonesurrogate"),
    ("non\ufffe\uffff\ufdd0char", "nonchar"),
    ("filler\u3164\uffa0", "filler"),
    ("hidden\U000E0041\U000E0042tags", "hiddentags"),
])
def test_sanitize_strips_abuse(raw, clean):
    assert sanitize_text(raw) == clean


@pytest.mark.parametrize("raw, clean", [
    ("a\r\nb", "a\nb"),
    ("a\rb", "a\nb"),
    ("a\r\r\nb", "a\n\nb"),
    ("a\u2028b\u2029c", "a\nb\nc"),
    ("keep\ttabs\nand newlines", "keep\ttabs\nand newlines"),
])
def test_sanitize_newlines(raw, clean):
    assert sanitize_text(raw) == clean


def test_sanitize_keeps_joiners():
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # ZWNJ inside a word
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"
    assert sanitize_text(persian) == persian
    assert sanitize_text(family) == family
    assert sanitize_text("\u2764\ufe0f") == "\u2764\ufe0f"  # variation selector kept


def test_sanitize_keeps_subdivision_flags_only():
    assert sanitize_text(ENGLAND) == ENGLAND
    assert sanitize_text(f"go {ENGLAND}!") == f"go {ENGLAND}!"
    # A flag whose tag run is too long carries smuggled text: all tags go.
    smuggled = "\U0001F3F4" + "".join(chr(0xE0000 + ord(c)) for c in "secret") + "\U000E007F"
    assert sanitize_text(smuggled) == "\U0001F3F4"


def test_sanitize_normalizes_to_nfc():
    assert sanitize_text("e\u0301") == "\u00e9"
    assert sanitize_text("Cafe\u0301") == "Caf\u00e9"
    # Stripping happens first, so an invisible character cannot block composition.
    assert sanitize_text("e\u200b\u0301") == "\u00e9"


def test_sanitize_caps_zalgo():
    zalgo = "Z" + "\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307" * 3 + "a"
    clean = sanitize_text(zalgo)
    assert clean == "Z\u0300\u0301\u0302\u0303a"
    assert _marks_after_base(sanitize_text("o" + "\u0336" * 50)) == MAX_COMBINING_MARKS
    # Joiners do not reset the count.
    assert _marks_after_base(sanitize_text("a" + "\u0336\u200d" * 20)) == MAX_COMBINING_MARKS


def test_sanitize_keeps_legitimate_marks():
    vietnamese = "Vi\u1ec7t Nam"  # ệ: NFC leaves one mark-free letter
    hindi = "\u0928\u092e\u0938\u094d\u0924\u0947"
    hebrew = "\u05d1\u05bc\u05b0\u05e8\u05b5\u05d0\u05e9\u05c1\u05b4\u05d9\u05ea"
    for text in (vietnamese, hindi, hebrew):
        assert sanitize_text(text) == unicodedata.normalize("NFC", text)


def test_sanitize_does_not_trim():
    assert sanitize_text("  hi  \n") == "  hi  \n"


@given(tricky_text)
@example("o" + "\u0301" * 9)
@example("\u0958" + "\u0301" * 4)
@example("e\u200b\u0301")
def test_sanitize_is_idempotent_and_clean(text):
    clean = sanitize_text(text)
    assert sanitize_text(clean) == clean
    assert unicodedata.is_normalized("NFC", clean)
    assert not _has_forbidden_control(clean)
    assert "\r" not in clean
    assert _marks_after_base(clean) <= MAX_COMBINING_MARKS
    assert not any(unicodedata.category(ch) == "Cf" and ch not in "\u200c\u200d"
                   and not 0xE0020 <= ord(ch) <= 0xE007F for ch in clean)


# --- is_blank ---------------------------------------------------------------

@pytest.mark.parametrize("text", ["", " ", "\n\t ", "\u00a0\u3000", "\u200b\u200d", "\u0301",
                                  "\u2800", "\u3164", "\u115f\u1160"])
def test_blank(text):
    assert is_blank(text)


@pytest.mark.parametrize("text", ["a", " . ", "\U0001F600", "\u00e9", "\u0915", "%"])
def test_not_blank(text):
    assert not is_blank(text)


# --- check_text -------------------------------------------------------------

def test_check_text_returns_sanitized_untrimmed():
    assert check_text(" he\u200bllo\x00 ", 100) == " hello "


@pytest.mark.parametrize("text", ["", "   ", "\n", "\x00\x1b", "\u200b\u202e", "%b%r%t", "%xr%xn"])
def test_check_text_refuses_empty(text):
    with pytest.raises(ProtocolError) as caught:
        check_text(text, 100)
    assert caught.value.code == ErrorCode.EMPTY_TEXT
    assert caught.value.message == "What do you want to say?"


def test_check_text_refuses_too_long_without_truncating():
    with pytest.raises(ProtocolError) as caught:
        check_text("x" * 11, 10)
    assert caught.value.code == ErrorCode.TEXT_TOO_LONG
    assert caught.value.details == {"maxLength": 10, "length": 11}
    assert check_text("x" * 10, 10) == "x" * 10


def test_check_text_counts_after_sanitizing():
    assert check_text("x" * 10 + "\u200b" * 50 + "\x00" * 50, 10) == "x" * 10
    assert check_text("e\u0301" * 10, 10) == "\u00e9" * 10  # NFC: 20 code points become 10


def test_check_text_counts_before_markup_expansion():
    assert check_text("%xrab", 5) == "%xrab"  # 2 characters shown, 5 counted
    with pytest.raises(ProtocolError) as caught:
        check_text("%xrab", 4)
    assert caught.value.details == {"maxLength": 4, "length": 5}


def test_check_text_checks_blank_before_length():
    with pytest.raises(ProtocolError) as caught:
        check_text(" " * 1000, 10)
    assert caught.value.code == ErrorCode.EMPTY_TEXT


def test_check_text_rejects_non_strings():
    with pytest.raises(TypeError):
        check_text(b"hi", 10)


# --- parse_markup: substitutions ---------------------------------------------

@pytest.mark.parametrize("source, plain", [
    ("a%rb%Rc", "a\nb\nc"),
    ("a%tb%Tc", "a\tb\tc"),
    ("a%bb%Bc", "a b c"),
    ("100%%", "100%"),
    ("%%r", "%r"),
    ("%%%r", "%\n"),
])
def test_substitutions(source, plain):
    markup = parse_markup(source)
    assert markup.plain == plain
    assert markup.spans == (Span(plain),)


@pytest.mark.parametrize("source", [
    "%", "100%", "%q", "%N", "%0", "% ", "%x", "%c", "%X", "%C", "%xz", "%xH", "%xN", "%x%",
    "%x<", "%x<>", "%x<bogus>", "%x<#12345>", "%x<#1234567>", "%x<#gggggg>", "%x<red",
    "%x< red>", "%c<#fff>", "%X<orange>", "%x<r>", "%x<%xr>x", "%\u00e9",
])
def test_malformed_codes_stay_literal(source):
    markup = parse_markup(source)
    assert "%" in markup.plain
    if source != "%x<%xr>x":
        assert markup.plain == source
        assert markup.spans == (Span(source),)


def test_malformed_code_next_to_a_good_one():
    markup = parse_markup("%x<%xr>x")
    assert markup.spans == (Span("%x<"), Span(">x", Style(fg="red")))


# --- parse_markup: colours and attributes ------------------------------------

@pytest.mark.parametrize("introducer", ["x", "c", "X", "C"])
@pytest.mark.parametrize("code, name", list(zip("xrgybmcw", COLOUR_NAMES)))
def test_foreground_letters(introducer, code, name):
    assert parse_markup(f"%{introducer}{code}hi").spans == (Span("hi", Style(fg=name)),)


@pytest.mark.parametrize("introducer", ["x", "c", "X", "C"])
@pytest.mark.parametrize("code, name", list(zip("XRGYBMCW", COLOUR_NAMES)))
def test_background_letters(introducer, code, name):
    assert parse_markup(f"%{introducer}{code}hi").spans == (Span("hi", Style(bg=name)),)


@pytest.mark.parametrize("code, style", [
    ("h", Style(bold=True)), ("u", Style(underline=True)),
    ("f", Style(blink=True)), ("i", Style(inverse=True)),
])
def test_attribute_letters(code, style):
    assert parse_markup(f"%x{code}hi").spans == (Span("hi", style),)
    assert parse_markup(f"%c{code}hi").spans == (Span("hi", style),)


def test_attributes_and_colours_combine():
    markup = parse_markup("%xh%xu%xf%xi%xr%XBall")
    everything = Style(fg="red", bg="blue", bold=True, underline=True, blink=True, inverse=True)
    assert markup.spans == (Span("all", everything),)


@pytest.mark.parametrize("source, style", [
    ("%x<#FF8800>hi", Style(fg="#ff8800")),
    ("%c<#ff8800>hi", Style(fg="#ff8800")),
    ("%X<#00aaFF>hi", Style(bg="#00aaff")),
    ("%C<#00aaff>hi", Style(bg="#00aaff")),
    ("%x<red>hi", Style(fg="red")),
    ("%c<Magenta>hi", Style(fg="magenta")),
    ("%X<white>hi", Style(bg="white")),
    ("%C<BLACK>hi", Style(bg="black")),
])
def test_bracketed_colours(source, style):
    assert parse_markup(source).spans == (Span("hi", style),)


@pytest.mark.parametrize("name", COLOUR_NAMES)
def test_every_colour_name(name):
    assert parse_markup(f"%x<{name}>a%X<{name}>b").spans == (
        Span("a", Style(fg=name)), Span("b", Style(fg=name, bg=name)))


def test_reset_and_persistence():
    markup = parse_markup("a%xrb%xhc%xnd%cne")
    assert markup.spans == (
        Span("a"), Span("b", Style(fg="red")), Span("c", Style(fg="red", bold=True)), Span("de"))
    assert markup.plain == "abcde"


def test_later_colour_replaces_earlier():
    assert parse_markup("%xr%xgx").spans == (Span("x", Style(fg="green")),)


def test_style_does_not_leak_between_messages():
    assert parse_markup("%xh%xrloud").spans == (Span("loud", Style(fg="red", bold=True)),)
    assert parse_markup("quiet").spans == (Span("quiet"),)


def test_style_carries_over_substitutions():
    assert parse_markup("%xra%rb").spans == (Span("a\nb", Style(fg="red")),)


def test_spans_merge_and_empty_spans_drop():
    markup = parse_markup("%xra%xr%xgb%xrc%xn%xn")
    assert markup.spans == (Span("a", Style(fg="red")), Span("b", Style(fg="green")),
                            Span("c", Style(fg="red")))
    assert parse_markup("%xr%xn").spans == ()
    assert parse_markup("").spans == ()
    assert parse_markup("%xnplain%xn").spans == (Span("plain"),)


def test_markup_sanitizes_its_input():
    assert parse_markup("\x1b[31mred\x00").plain == "[31mred"
    assert parse_markup("e\u0301").plain == "\u00e9"


def test_codes_cannot_smuggle_zalgo():
    source = "a" + "\u0301\u0302%xr\u0303\u0304%xg\u0305\u0306%xn\u0307"
    assert _marks_after_base(parse_markup(source).plain) == MAX_COMBINING_MARKS


# --- wire form ----------------------------------------------------------------

def test_style_to_wire_only_non_defaults():
    assert DEFAULT_STYLE.to_wire() == {}
    assert Style(fg="red", bold=True).to_wire() == {"fg": "red", "bold": True}
    assert Style(bg="#00ff00", underline=True, blink=True, inverse=True).to_wire() == {
        "bg": "#00ff00", "underline": True, "blink": True, "inverse": True}


def test_spans_to_wire():
    markup = parse_markup("hi %xh%xrthere%xn!")
    assert spans_to_wire(markup.spans) == [
        {"text": "hi "}, {"text": "there", "style": {"fg": "red", "bold": True}}, {"text": "!"}]


def test_spans_to_wire_merges_and_drops():
    red = Style(fg="red")
    spans = [Span("a", red), Span("", DEFAULT_STYLE), Span("b", red), Span("c"), Span("")]
    assert spans_to_wire(spans) == [{"text": "ab", "style": {"fg": "red"}}, {"text": "c"}]
    assert merge_spans(spans) == (Span("ab", red), Span("c"))


def test_markup_is_frozen():
    markup = parse_markup("x")
    with pytest.raises(AttributeError):
        markup.spans = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Style().bold = True  # type: ignore[misc]


# --- properties -----------------------------------------------------------------

@given(tricky_text)
@example("%x<#ff0000>%X<red>%xh%xu%xf%xi%xn%%%r%t%b")
def test_parse_markup_never_fails_and_stays_clean(text):
    markup = parse_markup(text)
    assert isinstance(markup, Markup)
    assert markup.plain == "".join(span.text for span in markup.spans)
    assert not _has_forbidden_control(markup.plain)
    assert "\x1b" not in markup.plain
    assert all(span.text for span in markup.spans)
    assert all(a.style != b.style for a, b in pairwise(markup.spans))
    assert _marks_after_base(markup.plain) <= MAX_COMBINING_MARKS
    wire = spans_to_wire(markup.spans)
    assert "".join(item["text"] for item in wire) == markup.plain


@given(st.text(alphabet=st.characters(exclude_characters="%", exclude_categories=("Cc", "Cf", "Cs", "Co"))))
def test_text_without_percent_is_its_own_plain(text):
    clean = sanitize_text(text)
    assert parse_markup(text).plain == clean


# ---------------------------------------------------------------- edges

ACUTE = "\u0301"


def test_marks_at_the_very_start_are_capped_at_four_not_three():
    assert sanitize_text(ACUTE * MAX_COMBINING_MARKS) == ACUTE * MAX_COMBINING_MARKS
    assert sanitize_text(ACUTE * (MAX_COMBINING_MARKS + 1)) == ACUTE * MAX_COMBINING_MARKS
    assert parse_markup(ACUTE * MAX_COMBINING_MARKS + "x").plain == ACUTE * MAX_COMBINING_MARKS + "x"


@pytest.mark.parametrize("noncharacter", ["\ufdd0", "\ufdef", "\ufffe", "\uffff", "\U0001fffe"])
def test_noncharacters_are_removed_up_to_the_edges(noncharacter):
    assert sanitize_text(f"a{noncharacter}b") == "ab"


@pytest.mark.parametrize("neighbour", ["\ufdcf", "\ufdf0", "\ufffd"])
def test_characters_next_to_the_noncharacter_blocks_are_kept(neighbour):
    assert sanitize_text(f"a{neighbour}b") == f"a{neighbour}b"


@pytest.mark.parametrize("source", ["100%ar done", "%qr", "%zh!"])
def test_an_unknown_code_before_a_colour_letter_stays_literal(source):
    assert parse_markup(source).spans == (Span(source),)


def test_a_literal_percent_keeps_the_current_style():
    red = Style(fg="red")
    assert parse_markup("%xrA%qB").spans == (Span("A%qB", red),)


def test_check_text_messages():
    with pytest.raises(TypeError, match="^text must be a str, not bytes$"):
        check_text(b"hi", 10)
    with pytest.raises(ProtocolError) as info:
        check_text("x" * 11, 10)
    assert info.value.message == "That is too long: 11 characters, at most 10 are allowed."
    assert check_text("x" * 10, 10) == "x" * 10
