"""Unpadded base64 in both alphabets."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vibemuse.protocol.encoding import Base64Error, decode_base64, encode_base64


def test_encode_is_unpadded():
    assert encode_base64(b"a") == "YQ"
    assert encode_base64(b"ab") == "YWI"
    assert encode_base64(b"abc") == "YWJj"
    assert encode_base64(b"") == ""


def test_urlsafe_alphabet():
    data = bytes([0xFB, 0xFF, 0xBF])
    assert encode_base64(data) == "+/+/"
    assert encode_base64(data, urlsafe=True) == "-_-_"
    assert decode_base64("-_-_") == data
    assert decode_base64("+/+/") == data


@pytest.mark.parametrize("text", ["YQ", "YQ==", b"YQ", b"YQ=="])
def test_padded_and_unpadded_accepted(text):
    assert decode_base64(text) == b"a"


def test_nonzero_trailing_bits_accepted():
    # Real keys carry them (signedjson's test seed ends in such a character).
    assert decode_base64("YR") == b"a"


@pytest.mark.parametrize(
    "bad, message",
    [
        ("YQ!", "outside the alphabet"),
        ("Y Q", "outside the alphabet"),
        ("é", "outside the alphabet"),
        (b"\xff", "must be ASCII"),
        ("YWJjZ", "impossible"),
        ("YQ=", "wrong amount"),
        ("YWI==", "wrong amount"),
        ("=YQ", "outside the alphabet"),
        ("+_AA", "mixes"),
        (None, "must be a string"),
    ],
)
def test_garbage_rejected(bad, message):
    with pytest.raises(Base64Error, match=message):
        decode_base64(bad)


def test_error_is_value_error():
    assert issubclass(Base64Error, ValueError)


@given(st.binary(max_size=80), st.booleans())
def test_round_trip(data, urlsafe):
    text = encode_base64(data, urlsafe=urlsafe)
    assert "=" not in text
    assert decode_base64(text) == data
    padded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data)
    assert decode_base64(padded.decode()) == data
