"""The lines players see."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vibemuse.protocol.commands import (
    Emit,
    Home,
    Ooc,
    Pose,
    Say,
    Wall,
    Who,
    parse_command,
)
from vibemuse.protocol.markup import DEFAULT_STYLE, Span, Style, parse_markup
from vibemuse.protocol.rendering import (
    MESSAGE_KINDS,
    OOC_STYLES,
    Frame,
    frame,
    message_kind,
    render_arrival,
    render_departure,
    render_emit,
    render_line,
    render_line_spans,
    render_ooc,
    render_ooc_self,
    render_pose,
    render_say,
    render_say_self,
    render_wall,
)


def test_say():
    assert render_say("Alice", "hi") == 'Alice says, "hi"'
    assert render_say_self("hi") == 'You say, "hi"'


def test_pose_and_semipose():
    assert render_pose("Alice", "waves", False) == "Alice waves"
    assert render_pose("Alice", "'s hat", True) == "Alice's hat"
    assert render_pose("Alice", "waves") == "Alice waves"


@pytest.mark.parametrize("style, others, self_view", [
    ("say", '<OOC> Alice says, "hi"', '<OOC> You say, "hi"'),
    ("pose", "<OOC> Alice hi", "<OOC> Alice hi"),
    ("semipose", "<OOC> Alicehi", "<OOC> Alicehi"),
])
def test_ooc(style, others, self_view):
    assert render_ooc("Alice", "hi", style) == others
    assert render_ooc_self("Alice", "hi", style) == self_view


def test_ooc_examples():
    assert render_ooc("Alice", "waves", "pose") == "<OOC> Alice waves"
    assert render_ooc("Alice", "'s hat", "semipose") == "<OOC> Alice's hat"


def test_emit_wall_arrival_departure():
    assert render_emit("The wind howls.") == "The wind howls."
    assert render_wall("Alice", "Reboot in 5.") == 'Announcement: Alice shouts, "Reboot in 5."'
    assert render_arrival("Alice") == "Alice has arrived."
    assert render_departure("Alice") == "Alice has left."


def test_multiline_stays_inside_the_quotes():
    text = parse_markup("one%rtwo").plain
    assert render_say("Alice", text) == 'Alice says, "one\ntwo"'
    assert render_pose("Alice", text, False) == "Alice one\ntwo"


def test_name_is_not_markup():
    assert render_say("100%xr", "hi") == '100%xr says, "hi"'
    spans = render_line_spans("say", "%xrBob", parse_markup("hi"))
    assert spans == (Span('%xrBob says, "hi"'),)


@pytest.mark.parametrize("kind, ooc_style, others, speaker", [
    ("say", "say", 'Alice says, "hi"', 'You say, "hi"'),
    ("pose", "say", "Alice hi", "Alice hi"),
    ("semipose", "say", "Alicehi", "Alicehi"),
    ("ooc", "say", '<OOC> Alice says, "hi"', '<OOC> You say, "hi"'),
    ("ooc", "pose", "<OOC> Alice hi", "<OOC> Alice hi"),
    ("ooc", "semipose", "<OOC> Alicehi", "<OOC> Alicehi"),
    ("emit", "say", "hi", "hi"),
    ("wall", "say", 'Announcement: Alice shouts, "hi"', 'Announcement: Alice shouts, "hi"'),
])
def test_render_line_every_kind(kind, ooc_style, others, speaker):
    assert render_line(kind, "Alice", "hi", ooc_style=ooc_style) == others
    assert render_line(kind, "Alice", "hi", ooc_style=ooc_style, self_view=True) == speaker


def test_ooc_style_matters_only_for_ooc():
    for kind in ("say", "pose", "semipose", "emit", "wall"):
        assert render_line(kind, "Alice", "hi", ooc_style="semipose") == render_line(kind, "Alice", "hi")


def test_kinds_are_the_wire_kinds():
    assert MESSAGE_KINDS == ("say", "pose", "semipose", "ooc", "emit", "wall")
    assert OOC_STYLES == ("say", "pose", "semipose")
    assert frame("say", "Alice") == Frame('Alice says, "', '"')
    assert frame("ooc", "Alice", ooc_style="pose") == Frame("<OOC> Alice ")
    assert frame("emit", "Alice") == Frame("")


def test_unknown_kind_or_style_refused():
    with pytest.raises(ValueError):
        frame("shout", "Alice")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        render_line("ooc", "Alice", "x", ooc_style="emit")  # type: ignore[arg-type]


def test_line_spans_frame_the_message_in_default_style():
    spans = render_line_spans("say", "Alice", parse_markup("%xrred%xn and plain"))
    assert spans == (Span('Alice says, "'), Span("red", Style(fg="red")), Span(' and plain"'))


def test_line_spans_merge_with_default_message_edges():
    assert render_line_spans("pose", "Alice", parse_markup("waves")) == (Span("Alice waves"),)
    assert render_line_spans("emit", "Alice", parse_markup("")) == ()


def test_line_spans_self_view():
    spans = render_line_spans("ooc", "Alice", parse_markup("%xhhi"), self_view=True)
    assert spans == (Span('<OOC> You say, "'), Span("hi", Style(bold=True)), Span('"'))


def test_style_does_not_leak_into_the_suffix():
    spans = render_line_spans("wall", "Alice", parse_markup("%xR%xhALERT"))
    assert spans[-1] == Span('"', DEFAULT_STYLE)


@pytest.mark.parametrize("command, kind", [
    (Say("x"), "say"), (Pose("x"), "pose"), (Pose("x", True), "semipose"),
    (Ooc("x"), "ooc"), (Ooc("x", "pose"), "ooc"), (Ooc("x", "semipose"), "ooc"),
    (Emit("x"), "emit"), (Wall("x"), "wall"),
])
def test_message_kind(command, kind):
    assert message_kind(command) == kind


@pytest.mark.parametrize("command", [Who(), Home()])
def test_message_kind_refuses_non_messages(command):
    with pytest.raises(ValueError):
        message_kind(command)


def test_from_command_line_to_rendered_line():
    command = parse_command(";'s hat is %xrred")
    markup = parse_markup(command.text)
    assert render_line(message_kind(command), "Alice", markup.plain) == "Alice's hat is red"
    ooc = parse_command("ooc :waves")
    assert render_line(message_kind(ooc), "Alice", ooc.text, ooc_style=ooc.style) == "<OOC> Alice waves"


_names = st.text(min_size=0, max_size=20)
_markup_text = st.one_of(st.text(), st.text(st.sampled_from(list("%xXcrRgGhnb<>#f0 a\n") + ["\u0301"])))


@given(st.sampled_from(MESSAGE_KINDS), st.sampled_from(OOC_STYLES), _names, _markup_text,
       st.booleans())
def test_line_spans_join_to_the_plain_line(kind, ooc_style, name, text, self_view):
    markup = parse_markup(text)
    spans = render_line_spans(kind, name, markup, ooc_style=ooc_style, self_view=self_view)
    assert "".join(span.text for span in spans) == render_line(
        kind, name, markup.plain, ooc_style=ooc_style, self_view=self_view)
    assert all(span.text for span in spans)
    assert all(a.style != b.style for a, b in pairwise(spans))
