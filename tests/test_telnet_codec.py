"""The pure parts of the telnet port: the byte reader, option negotiation, ANSI, the screen."""

from __future__ import annotations

import pytest

from vibemuse.telnet import gmcp, screen
from vibemuse.telnet.ansi import palette_index, render_spans
from vibemuse.telnet.codec import (
    AYT, DO, DONT, ECHO, GMCP, IAC, MCCP2, MSSP, NAWS, SB, SE, TIMING_MARK, TTYPE, WILL, WONT, Command, Line,
    LineTooLong, Negotiation, Subnegotiation, TelnetReader, encode_text, mssp_payload,
)
from vibemuse.telnet.options import Options, Terminal


def lines(*chunks: bytes, limit: int = 100) -> list:
    reader = TelnetReader(limit)
    events = []
    for chunk in chunks:
        events.extend(reader.feed(chunk))
    return events


# -- the reader -----------------------------------------------------------------


@pytest.mark.parametrize("ending", [b"\r\n", b"\r\x00", b"\n", b"\r"])
def test_every_line_ending_ends_a_line_once(ending):
    assert lines(b"one" + ending + b"two" + ending) == [Line(b"one"), Line(b"two")]


def test_crlf_split_across_reads_is_one_line_end():
    assert lines(b"one\r", b"\ntwo\r", b"\n") == [Line(b"one"), Line(b"two")]


def test_commands_mid_line_never_end_it_nor_enter_it():
    data = b"he" + bytes((IAC, WILL, TTYPE)) + b"l" + bytes((IAC, 241)) + b"lo" + bytes((IAC, AYT)) + b"\r\n"
    assert lines(data) == [Negotiation(WILL, TTYPE), Command(241), Command(AYT), Line(b"hello")]


def test_commands_split_byte_by_byte():
    data = bytes((IAC, DO, ECHO, IAC, SB, NAWS, 0, 80, 0, 24, IAC, SE)) + b"x\n"
    reader = TelnetReader(100)
    events = [event for byte in data for event in reader.feed(bytes((byte,)))]
    assert events == [Negotiation(DO, ECHO), Subnegotiation(NAWS, bytes((0, 80, 0, 24))), Line(b"x")]


def test_escaped_iac_is_a_data_byte_in_lines_and_subnegotiations():
    assert lines(bytes((IAC, IAC)) + b"\n") == [Line(b"\xff")]
    sub = bytes((IAC, SB, NAWS, 1, IAC, IAC, 2, 3, IAC, SE))
    assert lines(sub) == [Subnegotiation(NAWS, bytes((1, 255, 2, 3)))]


def test_nul_is_dropped_and_backspace_erases_a_whole_character():
    assert lines(b"a\x00b\n") == [Line(b"ab")]
    assert lines("xé\b\x7fy\n".encode()) == [Line(b"y")]
    assert lines(b"ab" + bytes((IAC, 248)) + b"c\n") == [Line(b"c")]  # EL: erase line


def test_a_line_past_the_limit_is_dropped_whole_and_the_next_one_reads():
    assert lines(b"x" * 11 + b"\n" + b"ok\n", limit=10) == [LineTooLong(10), Line(b"ok")]
    assert lines(b"x" * 10 + b"\n", limit=10) == [Line(b"x" * 10)]
    assert lines(b"x" * 6, b"y" * 6, b"\nok\n", limit=10) == [LineTooLong(10), Line(b"ok")]


def test_an_endless_subnegotiation_is_dropped():
    data = bytes((IAC, SB, TTYPE)) + b"a" * 5000 + bytes((IAC, SE)) + b"ok\n"
    assert lines(data) == [Line(b"ok")]


def test_a_broken_subnegotiation_reads_the_command_after_it():
    data = bytes((IAC, SB, NAWS, 1, IAC, WILL, ECHO)) + b"ok\n"
    assert lines(data) == [Negotiation(WILL, ECHO), Line(b"ok")]


def test_text_goes_out_as_nvt_lines():
    assert encode_text("a\nb\r\nc\rd") == b"a\r\nb\r\nc\r\nd"
    assert encode_text("é") == "é".encode()


# -- negotiation --------------------------------------------------------------


def test_the_server_asks_for_ttype_naws_and_a_timing_mark_and_offers_mssp_mccp2_and_gmcp():
    assert Options().start() == bytes((IAC, DO, TTYPE, IAC, DO, NAWS, IAC, DO, TIMING_MARK, IAC, WILL, MSSP,
                                       IAC, WILL, MCCP2, IAC, WILL, GMCP))


def test_mssp_and_mccp2_start_once_when_the_client_agrees():
    options = Options()
    options.start()
    assert options.received(DO, MSSP) == b"" and options.started == [MSSP]
    assert options.received(DO, MCCP2) == b"" and options.started == [MSSP, MCCP2]
    options.started.clear()
    assert options.received(DO, MSSP) == b"" and options.started == []
    assert options.received(DONT, MCCP2) == bytes((IAC, WONT, MCCP2)) and not options.us(MCCP2)
    refusing = Options()
    refusing.start()
    assert refusing.received(DONT, MSSP) == b"" and refusing.started == []
    assert refusing.received(DO, MSSP) == bytes((IAC, WONT, MSSP))  # the offer was withdrawn


def test_mssp_payload_keeps_its_markers_out_of_values():
    assert mssp_payload({"NAME": "a\x01b\x02c\x00", "PLAYERS": "2"}) == b"\x01NAME\x02abc\x01PLAYERS\x022"


def test_agreeing_to_what_was_asked_needs_no_answer_but_starts_ttype():
    options = Options()
    options.start()
    assert options.received(WILL, NAWS) == b""
    assert options.received(WILL, TTYPE) == bytes((IAC, SB, TTYPE, 1, IAC, SE))
    assert options.them(NAWS) and options.them(TTYPE)
    assert options.received(WILL, TTYPE) == b""  # already on: no loop


def test_unwanted_options_are_refused_once():
    options = Options()
    assert options.received(WILL, 201) == bytes((IAC, DONT, 201))
    assert options.received(DO, 86) == bytes((IAC, WONT, 86))
    assert options.received(WONT, 201) == b"" and options.received(DONT, 86) == b""
    assert options.received(DO, TIMING_MARK) == bytes((IAC, WONT, TIMING_MARK))


def test_a_client_turning_an_option_off_is_acknowledged_once():
    options = Options()
    options.start()
    options.received(WILL, NAWS)
    assert options.received(WONT, NAWS) == bytes((IAC, DONT, NAWS))
    assert options.received(WONT, NAWS) == b""
    assert not options.them(NAWS)


def test_an_unasked_will_of_a_wanted_option_is_accepted():
    options = Options()
    assert options.received(WILL, NAWS) == bytes((IAC, DO, NAWS))


def test_echo_is_offered_for_passwords_only():
    options = Options()
    assert options.received(DO, ECHO) == bytes((IAC, WONT, ECHO))
    assert options.hide_input() == bytes((IAC, WILL, ECHO))
    assert options.hide_input() == b""
    assert options.received(DO, ECHO) == b"" and options.us(ECHO)
    assert options.show_input() == bytes((IAC, WONT, ECHO))
    assert options.show_input() == b""


def test_timing_mark_answers_are_proof_of_life():
    options = Options()
    assert not options.answers_timing_mark
    assert options.received(WONT, TIMING_MARK) == b""
    assert options.answers_timing_mark


def test_naws_is_read_only_once_agreed():
    options = Options()
    options.subnegotiated(NAWS, bytes((0, 100, 0, 30)))
    assert options.terminal.width is None
    options.start()
    options.received(WILL, NAWS)
    options.subnegotiated(NAWS, bytes((1, 0, 0, 30)))
    assert (options.terminal.width, options.terminal.height) == (256, 30)


def test_ttype_cycles_until_mtts_or_a_repeat():
    options = Options()
    options.start()
    options.received(WILL, TTYPE)
    send = bytes((IAC, SB, TTYPE, 1, IAC, SE))
    assert options.subnegotiated(TTYPE, b"\x00Mudlet") == send
    assert options.subnegotiated(TTYPE, b"\x00ANSI-TRUECOLOR") == send
    assert options.subnegotiated(TTYPE, b"\x00MTTS 265") == b""
    assert options.terminal.names == ["MUDLET", "ANSI-TRUECOLOR", "MTTS 265"]
    assert options.terminal.mtts == 265 and options.terminal.colours == 1 << 24
    repeating = Options()
    repeating.start()
    repeating.received(WILL, TTYPE)
    assert repeating.subnegotiated(TTYPE, b"\x00xterm") == send
    assert repeating.subnegotiated(TTYPE, b"\x00xterm") == b""
    assert repeating.terminal.names == ["XTERM"]


@pytest.mark.parametrize("names, mtts, colours", [
    ([], None, 0),
    (["DUMB"], None, 0),
    (["VT100"], None, 0),
    (["XTERM"], None, 8),
    (["TINTIN++", "XTERM-256COLOR"], None, 256),
    (["MUDLET", "ANSI-TRUECOLOR"], None, 1 << 24),
    (["XTERM"], 0, 0),  # MTTS says more than the name
    (["DUMB"], 1, 8),
    (["DUMB"], 9, 256),
])
def test_colours_from_what_the_client_said(names, mtts, colours):
    assert Terminal(names=names, mtts=mtts).colours == colours


# -- ANSI ------------------------------------------------------------------------


def test_spans_drawn_with_sgr_and_reset_after_each():
    spans = [{"text": "a "}, {"text": "red", "style": {"fg": "red", "bold": True}}, {"text": " b"},
             {"text": "x", "style": {"bg": "blue", "underline": True, "blink": True, "inverse": True}}]
    assert render_spans(spans, 8) == "a \x1b[0;1;31mred\x1b[0m b\x1b[0;4;5;7;44mx\x1b[0m"
    assert render_spans(spans, 0) == "a red bx"


def test_hex_colours_by_what_the_client_draws():
    spans = [{"text": "o", "style": {"fg": "#ff8700", "bg": "#000000"}}]
    assert render_spans(spans, 1 << 24) == "\x1b[0;38;2;255;135;0;48;2;0;0;0mo\x1b[0m"
    assert render_spans(spans, 256) == "\x1b[0;38;5;208;48;5;16mo\x1b[0m"
    assert render_spans(spans, 8) == "\x1b[0;33;40mo\x1b[0m"


def test_palette_takes_greys_from_the_ramp():
    assert palette_index(128, 128, 128) == 244
    assert palette_index(255, 0, 0) == 196


# -- the screen -----------------------------------------------------------------


def event_frame(frame_type, sender, content):
    return {"type": frame_type, "data": {"event": {"sender": sender, "content": content}}}


def texts(frame, viewer="@alice:x"):
    return ["".join(span["text"] for span in line) for line in screen.render_frame(frame, viewer)]


def test_own_lines_are_rendered_self_others_get_their_spans():
    content = {"rendered": 'Bob says, "hi"', "rendered_self": 'You say, "hi"',
               "rendered_spans": [{"text": 'Bob says, "'}, {"text": "hi", "style": {"fg": "red"}}, {"text": '"'}]}
    assert texts(event_frame("message", "@alice:x", content)) == ['You say, "hi"']
    lines = screen.render_frame(event_frame("message", "@bob:x", content), "@alice:x")
    assert lines == [content["rendered_spans"]]
    assert texts(event_frame("user_joined", "@bob:x", {"rendered": "Bob has arrived."})) == ["Bob has arrived."]


def test_who_table_and_times():
    frame = {"type": "who", "data": {"total": 2, "users": [
        {"username": "Mira", "status": "away", "onForMs": 2 * 86_400_000 + 3_840_000, "idleMs": 7_200_000,
         "awayMessage": "Tea."},
        {"username": "Alice", "status": "online", "onForMs": 65_000, "idleMs": 4_000}]}}
    assert texts(frame) == [
        "Player Name                 On For  Idle  Doing",
        "Mira                      2d 01:04    2h  Tea.",
        "Alice                        00:01    4s",
        "2 players logged in.",
    ]


def test_roster_is_the_room_as_look_shows_it():
    frame = {"type": "roster", "data": {"room": {"name": "Library", "description": "Books."}, "memberCount": 3,
                                        "members": [{"username": "Alice", "status": "online"},
                                                    {"username": "Mira", "status": "idle"}]}}
    assert texts(frame) == ["Library", "Books.", "Players:", "Alice", "Mira (idle)", "... and 1 more."]


def test_answers_and_silences():
    assert texts({"type": "error", "data": {"code": "x", "message": "No."}}) == ["No."]
    assert texts({"type": "ack", "data": {"inReplyTo": "a", "duplicate": False}}) == []
    assert texts({"type": "ack", "data": {"offline": ["@bob:x"]}}) == [
        "(bob is not connected; the page waits for them.)"]
    assert texts({"type": "typing", "data": {}}) == [] and texts({"type": "presence", "data": {}}) == []
    receipt = {"type": "page_receipt", "data": {"event": {"content": {"kind": "delivered", "recipient": "@bob:x"}}}}
    assert texts(receipt) == ["Your page to bob was delivered."]
    assert texts({"type": "channel_list", "data": {"channels": []}}) == ["You are on no channels."]
    assert texts({"type": "channel_who", "data": {"channelId": "#public:x", "members": [{"userId": "@bob:x"}]}}) == [
        "Connected on public: bob."]


def test_screen_announces_connections_and_disconnections_in_the_room():
    view = screen.Screen("@alice:x")
    roster = {"type": "roster", "data": {"room": {"name": "Hall"}, "members": [
        {"userId": "@alice:x", "username": "Alice", "status": "online"},
        {"userId": "@mira:x", "username": "Mira", "status": "idle"}]}}
    assert view.render(roster)[0] == [{"text": "Hall", "style": {"bold": True}}]

    def presence(user, status):
        lines = view.render({"type": "presence", "data": {"userId": f"@{user.lower()}:x", "username": user,
                                                          "status": status}})
        return ["".join(span["text"] for span in line) for line in lines]

    assert presence("Bob", "online") == ["Bob has connected."]
    assert presence("Bob", "idle") == [] and presence("Bob", "online") == []
    assert presence("Mira", "online") == []  # back from idle, not a connection
    assert presence("Mira", "offline") == ["Mira has disconnected."]
    assert presence("Mira", "online") == ["Mira has connected."]
    assert presence("Alice", "away") == [] and presence("Alice", "offline") == []
    walked_in = {"type": "user_joined",
                 "data": {"event": {"sender": "@dan:x", "content": {"rendered": "Dan has arrived."}}}}
    assert view.render(walked_in) == [[{"text": "Dan has arrived."}]]
    assert presence("Dan", "idle") == [] and presence("Dan", "online") == []
    walked_out = {"type": "user_left",
                  "data": {"event": {"sender": "@dan:x", "content": {"rendered": "Dan has left."}}}}
    assert view.render(walked_out) == [[{"text": "Dan has left."}]]
    assert "@dan:x" not in view.statuses


def test_gmcp_messages_of_frames():
    roster = {"type": "roster", "data": {"room": {"id": "!r:x", "name": "Hall", "description": "Big."},
                                        "members": [{"userId": "@alice:x", "username": "Alice"}]}}
    assert gmcp.gmcp_messages(roster, "@alice:x") == [
        ("Room.Info", {"num": "!r:x", "name": "Hall", "desc": "Big."}),
        ("Room.Players", [{"name": "Alice", "fullname": "@alice:x"}])]
    presence = {"type": "presence", "data": {"userId": "@bob:x", "username": "Bob", "status": "online"}}
    assert gmcp.gmcp_messages(presence, "@alice:x", "connected") == [
        ("Room.AddPlayer", {"name": "Bob", "fullname": "@bob:x"})]
    assert gmcp.gmcp_messages(presence, "@alice:x", "disconnected") == [("Room.RemovePlayer", "Bob")]
    assert gmcp.gmcp_messages(presence, "@alice:x", None) == []
    left = {"type": "user_left", "data": {"event": {"sender": "@bob:x", "content": {"speaker": "Bob"}}}}
    assert gmcp.gmcp_messages(left, "@alice:x") == [("Room.RemovePlayer", "Bob")]
    assert gmcp.gmcp_messages(left, "@bob:x") == []
    said = {"type": "channel_message", "data": {"event": {"sender": "@bob:x", "content": {
        "channel_name": "Public", "speaker": "Bob", "rendered": "<Public> Bob waves."}}}}
    assert gmcp.gmcp_messages(said, "@alice:x") == [
        ("Comm.Channel.Text", {"channel": "Public", "talker": "Bob", "text": "<Public> Bob waves."})]
    listing = {"type": "channel_list", "data": {"channels": [{"name": "Public", "alias": "pub"}, {"name": "Ops"}]}}
    assert gmcp.gmcp_messages(listing, "@alice:x") == [("Comm.Channel.List", [
        {"name": "Public", "caption": "Public", "command": "+pub"},
        {"name": "Ops", "caption": "Ops", "command": "@chat Ops="}])]
    assert gmcp.encode_gmcp("Room.RemovePlayer", "Bö") == bytes((IAC, SB, GMCP)) + 'Room.RemovePlayer "Bö"'.encode() \
        + bytes((IAC, SE))


def test_own_channel_membership_changes_are_noticed():
    notice = {"type": "channel_notice", "data": {"event": {"content": {"membership": "join", "target": "@alice:x"}}}}
    assert gmcp.is_own_membership(notice, "@alice:x") and not gmcp.is_own_membership(notice, "@bob:x")
