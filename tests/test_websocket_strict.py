"""RFC 6455 strictness of /api/ws (protocol.md section 7), over raw sockets.

Each violation must end in a close frame with the RFC's code — never a dropped
TCP connection — followed by a clean end of the stream; a close code a client
may not send is not echoed. One server serves the whole module: these tests
only open sockets (and the server must survive all of them).
"""

from __future__ import annotations

import json
import struct

import pytest

from tests.conftest import FAST_HASHER
from tests.support.live import LiveServer
from tests.support.rawws import RawWebSocket
from vibemuse.config import DEFAULT_RATE_LIMITS, Config
from vibemuse.handlers.rfc6455 import close_code_allowed

TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
PING_FRAME = json.dumps({"type": "ping", "messageId": "p1", "data": {}}).encode()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    data = tmp_path_factory.mktemp("strict")
    config = Config(server_name="test.localhost", port=0, data_dir=str(data), database_url=f"sqlite:///{data}/v.db",
                    max_frame_bytes=16 * 1024, auth_timeout_seconds=30.0, database_threads=1,
                    shutdown_grace_seconds=0.5,
                    rate_limits={action: (1e9, 1e9) for action in DEFAULT_RATE_LIMITS})
    with LiveServer(config, hasher=FAST_HASHER) as server:
        yield server


@pytest.fixture
def raw(live):
    socket = RawWebSocket("127.0.0.1", live.port)
    yield socket
    socket.close()


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


VIOLATIONS = {
    "unmasked": (1002, [dict(opcode=TEXT, payload=PING_FRAME, masked=False)]),
    "rsv1": (1002, [dict(opcode=TEXT, payload=PING_FRAME, rsv=4)]),
    "rsv2": (1002, [dict(opcode=TEXT, payload=PING_FRAME, rsv=2)]),
    "rsv3": (1002, [dict(opcode=PING, rsv=1)]),
    "opcode 3": (1002, [dict(opcode=0x3, payload=b"x")]),
    "opcode 0xB": (1002, [dict(opcode=0xB)]),
    "ping over 125 bytes": (1002, [dict(opcode=PING, payload=b"x" * 126)]),
    "fragmented ping": (1002, [dict(opcode=PING, payload=b"x", fin=False)]),
    "continuation of nothing": (1002, [dict(opcode=CONTINUATION, payload=b"{}")]),
    "new message inside a fragmented one": (1002, [dict(opcode=TEXT, payload=b"{", fin=False),
                                                   dict(opcode=TEXT, payload=b"}")]),
    "close of one byte": (1002, [dict(opcode=CLOSE, payload=b"\x03")]),
    "close code 999": (1002, [dict(opcode=CLOSE, payload=close_payload(999))]),
    "close code 1005": (1002, [dict(opcode=CLOSE, payload=close_payload(1005))]),
    "close code 1006": (1002, [dict(opcode=CLOSE, payload=close_payload(1006))]),
    "close code 1015": (1002, [dict(opcode=CLOSE, payload=close_payload(1015))]),
    "close code 2000": (1002, [dict(opcode=CLOSE, payload=close_payload(2000))]),
    "close code 5000": (1002, [dict(opcode=CLOSE, payload=close_payload(5000))]),
    "binary message": (1003, [dict(opcode=BINARY, payload=PING_FRAME)]),
    "invalid UTF-8": (1007, [dict(opcode=TEXT, payload=b'{"type": "\xc3\x28"}')]),
    "a surrogate in UTF-8": (1007, [dict(opcode=TEXT, payload=b'"\xed\xa0\x80"')]),
    "invalid UTF-8 across fragments": (1007, [dict(opcode=TEXT, payload=b'"\xf0\x9f', fin=False),
                                              dict(opcode=CONTINUATION, payload=b'\x28"')]),
    "close reason not UTF-8": (1007, [dict(opcode=CLOSE, payload=close_payload(1000, b"\xff"))]),
    "message over maxFrameBytes": (1009, [dict(opcode=TEXT, payload=b"x" * (16 * 1024 + 1))]),
}


@pytest.mark.parametrize("case", VIOLATIONS, ids=list(VIOLATIONS))
def test_violations_close_with_their_rfc_code_then_end_cleanly(live, raw, case):
    expected, frames = VIOLATIONS[case]
    for frame in frames:
        raw.send_frame(**frame)
    code, reason, clean_end = raw.read_close()
    assert code == expected, (case, reason)
    assert reason.decode("utf-8")  # a reason for people
    assert clean_end, case
    assert live.http("GET", "/api/versions")[0] == 200


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1011, 3000, 4000, 4999])
def test_a_valid_close_code_is_echoed(raw, code):
    raw.send_frame(CLOSE, close_payload(code, "bye ☺".encode()))
    assert raw.read_close()[0] == code


def test_an_empty_close_is_answered_without_a_code(raw):
    raw.send_frame(CLOSE)
    assert raw.read_close()[0] is None


def test_fragments_with_a_control_frame_between_them_make_one_message(raw):
    half = len(PING_FRAME) // 2
    raw.send_frame(TEXT, PING_FRAME[:half], fin=False)
    raw.send_frame(PING, b"hello")
    raw.send_frame(CONTINUATION, PING_FRAME[half:])
    assert raw.read_frame() == (PONG, b"hello")
    opcode, payload = raw.read_frame()
    answer = json.loads(payload)
    # an unauthenticated socket answers anything but auth with not_authenticated, naming the frame
    assert (opcode, answer["type"], answer["data"]["inReplyTo"]) == (TEXT, "error", "p1")
    raw.send_frame(CLOSE, close_payload(1000))
    assert raw.read_close()[0] == 1000


def test_close_codes_a_client_may_send():
    assert [code for code in range(0, 5100) if close_code_allowed(code)] == (
        [1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)])
