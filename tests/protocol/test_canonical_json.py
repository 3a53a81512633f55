"""Canonical JSON: Matrix's rules, checked against examples, an oracle and properties."""

from __future__ import annotations

import json

import canonicaljson  # test-only oracle (a dependency of signedjson)
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibemuse.protocol.canonical_json import (
    MAX_SAFE_INT,
    MIN_SAFE_INT,
    CanonicalJsonError,
    decode_json_strict,
    encode_canonical_json,
)

# ---------------------------------------------------------------- strategies

safe_ints = st.integers(min_value=MIN_SAFE_INT, max_value=MAX_SAFE_INT)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = st.none() | st.booleans() | safe_ints | texts
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(texts, children, max_size=4),
    max_leaves=25,
)


def reversed_order(value):
    """The same value with every dict built in reverse insertion order."""
    if isinstance(value, dict):
        return {k: reversed_order(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_order(v) for v in value]
    return value


def containers(value):
    """Every dict and list inside ``value`` (including itself)."""
    if isinstance(value, (dict, list)):
        yield value
        for child in value.values() if isinstance(value, dict) else value:
            yield from containers(child)


def plant(value, poison, index):
    """Put ``poison`` into one container of ``value`` (or wrap the value)."""
    found = list(containers(value))
    if not found:
        return [value, poison]
    target = found[index % len(found)]
    if isinstance(target, dict):
        target["\u2603poison"] = poison
    else:
        target.append(poison)
    return value


# ---------------------------------------------------------------- examples

@pytest.mark.parametrize(
    "value, expected",
    [
        ({"one": 1, "two": "Two"}, b'{"one":1,"two":"Two"}'),
        ({"b": "2", "a": "1"}, b'{"a":"1","b":"2"}'),
        ({"a": "日本語"}, '{"a":"日本語"}'.encode()),
        ({"本": 2, "日": 1}, '{"日":1,"本":2}'.encode()),
        ({"a": None, "b": [True, False]}, b'{"a":null,"b":[true,false]}'),
        ({"a": "\u0000\n\"\\/"}, b'{"a":"\\u0000\\n\\"\\\\/"}'),
        ([MIN_SAFE_INT, MAX_SAFE_INT, 0, -1], b"[-9007199254740991,9007199254740991,0,-1]"),
        ({"auth": {"z": {"y": [{"b": 1, "a": 2}]}, "m": "x"}},
         b'{"auth":{"m":"x","z":{"y":[{"a":2,"b":1}]}}}'),
    ],
)
def test_matrix_examples(value, expected):
    assert encode_canonical_json(value) == expected


def test_keys_sort_by_code_point_not_utf16():
    keys = ["\U0001F600", "\uffff", "\ue000", "a"]
    encoded = encode_canonical_json({k: 0 for k in keys}).decode("utf-8")
    order = sorted(keys, key=encoded.index)
    assert order == ["a", "\ue000", "\uffff", "\U0001F600"]
    utf16_order = sorted(keys, key=lambda k: k.encode("utf-16-be"))
    assert order != utf16_order  # the astral key would come first in UTF-16


@pytest.mark.parametrize("bad", [1.0, -0.0, 0.5, float("nan"), float("inf")])
def test_floats_rejected_with_path(bad):
    with pytest.raises(CanonicalJsonError, match=r"floats are not allowed .* at content\.count"):
        encode_canonical_json({"content": {"count": bad}})


@pytest.mark.parametrize("bad", [MAX_SAFE_INT + 1, MIN_SAFE_INT - 1, 2**64])
def test_out_of_range_int_rejected_with_list_path(bad):
    with pytest.raises(CanonicalJsonError) as info:
        encode_canonical_json({"a": [0, {"b": bad}]})
    assert info.value.path == "a[1].b"
    assert "out of range" in str(info.value)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({1: "x"}, "object key 1 is int"),
        ({"a": (1, 2)}, "tuple is not a JSON type"),
        ({"a": b"x"}, "bytes is not a JSON type"),
        ({"a": {1, 2}}, "set is not a JSON type"),
        ({"a": "\ud800"}, "lone surrogate at a"),
        ({"k": {"\udfff": 1}}, "key contains a lone surrogate at k"),
    ],
)
def test_non_json_values_rejected(bad, message):
    with pytest.raises(CanonicalJsonError, match=message):
        encode_canonical_json(bad)


def test_bool_is_not_treated_as_int():
    assert encode_canonical_json([True, 1]) == b"[true,1]"


def test_nesting_limit():
    ok = []
    for _ in range(63):
        ok = [ok]
    assert encode_canonical_json(ok).startswith(b"[[")
    with pytest.raises(CanonicalJsonError, match="nesting deeper than 64"):
        encode_canonical_json([[ok]])


def test_error_is_value_error():
    assert issubclass(CanonicalJsonError, ValueError)


# ---------------------------------------------------------------- properties

@given(json_values)
def test_independent_of_insertion_order(value):
    assert encode_canonical_json(value) == encode_canonical_json(reversed_order(value))


@given(json_values)
def test_round_trips(value):
    encoded = encode_canonical_json(value)
    assert json.loads(encoded) == value
    assert decode_json_strict(encoded, require_canonical=True) == value


@given(json_values)
def test_matches_canonicaljson_library(value):
    assert encode_canonical_json(value) == canonicaljson.encode_canonical_json(value)


@settings(max_examples=200)
@given(json_values, st.floats(allow_nan=True, allow_infinity=True), st.integers(0, 50))
def test_rejects_a_float_anywhere(value, poison, index):
    with pytest.raises(CanonicalJsonError, match="floats are not allowed"):
        encode_canonical_json(plant(value, poison, index))


@settings(max_examples=200)
@given(
    json_values,
    st.integers(min_value=MAX_SAFE_INT + 1) | st.integers(max_value=MIN_SAFE_INT - 1),
    st.integers(0, 50),
)
def test_rejects_an_out_of_range_int_anywhere(value, poison, index):
    with pytest.raises(CanonicalJsonError, match="out of range"):
        encode_canonical_json(plant(value, poison, index))


# ---------------------------------------------------------------- strict decoding

@pytest.mark.parametrize(
    "text, message",
    [
        (b'{"a":1.0}', "floats are not allowed"),
        (b'{"a":1e3}', "floats are not allowed"),
        (b"[9007199254740992]", "out of range"),
        (b"[-9007199254740992]", "out of range"),
        (b"[" + b"9" * 5000 + b"]", "out of range"),
        (b"[NaN]", "NaN is not allowed"),
        (b"[Infinity]", "Infinity is not allowed"),
        (b"[-Infinity]", "-Infinity is not allowed"),
        (b'{"a":1,"a":2}', "duplicate object key 'a'"),
        (b'{"a":', "invalid JSON"),
        (b'{"a":"\xff"}', "not valid UTF-8"),
        (b'{"a":"\\ud800"}', "lone surrogate at a"),
    ],
)
def test_decode_rejects(text, message):
    with pytest.raises(CanonicalJsonError, match=message):
        decode_json_strict(text)


def test_decode_accepts_plain_json_and_str():
    assert decode_json_strict('{ "b" : [1, true, null], "a": "é" }') == {
        "b": [1, True, None],
        "a": "é",
    }


def test_decode_size_limit():
    body = json.dumps({"a": "x" * 100}).encode()
    assert decode_json_strict(body, max_bytes=len(body))["a"] == "x" * 100
    with pytest.raises(CanonicalJsonError, match=r"over the \d+ limit"):
        decode_json_strict(body, max_bytes=len(body) - 1)


def test_decode_depth_limit():
    assert decode_json_strict(b"[" * 5 + b"]" * 5, max_depth=5) == [[[[[]]]]]
    with pytest.raises(CanonicalJsonError, match="nesting deeper than 4"):
        decode_json_strict(b"[" * 5 + b"]" * 5, max_depth=4)
    bomb = b"[" * 60000 + b"]" * 60000
    with pytest.raises(CanonicalJsonError, match="nesting deeper"):
        decode_json_strict(bomb, max_bytes=len(bomb))


def test_decode_require_canonical():
    assert decode_json_strict(b'{"a":1,"b":2}', require_canonical=True) == {"a": 1, "b": 2}
    for text in (b'{"b":2,"a":1}', b'{"a": 1}', b'{"a":"\\u00e9"}'):
        with pytest.raises(CanonicalJsonError, match="not in canonical form"):
            decode_json_strict(text, require_canonical=True)


# ---------------------------------------------------------------- edges
# Each limit is tested at the edge (accepted) and one past it (refused), and
# each walk with several items, so that no off-by-one or early exit survives.


def nest(depth, make):
    """``depth`` containers, one inside the other, built by ``make``."""
    value = 0
    for _ in range(depth):
        value = make(value)
    return value


CONTAINER_MAKERS = {
    "arrays": lambda inner: [inner],
    "objects": lambda inner: {"k": inner},
    "mixed": lambda inner: {"k": inner} if isinstance(inner, list) else [inner],
}


@pytest.mark.parametrize("make", CONTAINER_MAKERS.values(), ids=list(CONTAINER_MAKERS))
def test_encode_accepts_64_nested_containers_and_refuses_65(make):
    deepest_allowed = nest(64, make)
    assert json.loads(encode_canonical_json(deepest_allowed)) == deepest_allowed
    with pytest.raises(CanonicalJsonError, match="^nesting deeper than 64 at "):
        encode_canonical_json(nest(65, make))


@pytest.mark.parametrize("make", CONTAINER_MAKERS.values(), ids=list(CONTAINER_MAKERS))
def test_decode_accepts_64_nested_containers_and_refuses_65(make):
    assert decode_json_strict(json.dumps(nest(64, make))) == nest(64, make)
    with pytest.raises(CanonicalJsonError, match="^nesting deeper than 64 at "):
        decode_json_strict(json.dumps(nest(65, make)))


def test_decode_depth_error_names_the_path():
    with pytest.raises(CanonicalJsonError) as info:
        decode_json_strict('{"a": {"b": [[]]}}', max_depth=3)
    assert info.value.path == "a.b[0]"
    assert str(info.value) == "nesting deeper than 3 at a.b[0]"


@pytest.mark.parametrize("number", [MAX_SAFE_INT, MIN_SAFE_INT, 0, -1])
def test_integers_at_the_range_edges_are_accepted(number):
    assert encode_canonical_json([number]) == f"[{number}]".encode()
    assert decode_json_strict(f"[{number}]") == [number]


@pytest.mark.parametrize("number", [MAX_SAFE_INT + 1, MIN_SAFE_INT - 1])
def test_integers_one_past_the_range_are_refused(number):
    with pytest.raises(CanonicalJsonError, match=r"^integer out of range \[-\(2\*\*53\)\+1, 2\*\*53-1\]$"):
        encode_canonical_json(number)
    with pytest.raises(CanonicalJsonError, match=f"^integer out of range \\(got {number}\\)$"):
        decode_json_strict(str(number))


def test_an_overlong_integer_literal_is_refused_without_echoing_it():
    with pytest.raises(CanonicalJsonError, match=r"^integer out of range \(more than 16 digits\)$"):
        decode_json_strict("1" + "0" * 16)
    with pytest.raises(CanonicalJsonError, match=r"^integer out of range \(more than 16 digits\)$"):
        decode_json_strict("-" + "9" * 400)


def test_int_subclasses_are_range_checked_like_int():
    class Count(int):
        pass

    assert encode_canonical_json({"n": Count(MAX_SAFE_INT)}) == f'{{"n":{MAX_SAFE_INT}}}'.encode()
    with pytest.raises(CanonicalJsonError) as info:
        encode_canonical_json({"n": Count(MAX_SAFE_INT + 1)})
    assert info.value.path == "n"


def test_booleans_and_null_are_json_values():
    assert encode_canonical_json({"f": False, "t": True, "n": None}) == b'{"f":false,"n":null,"t":true}'


def test_error_reason_path_and_message():
    with pytest.raises(CanonicalJsonError) as info:
        encode_canonical_json([1.5])
    assert info.value.reason == "floats are not allowed (got 1.5)"
    assert info.value.path == "[0]"
    assert str(info.value) == "floats are not allowed (got 1.5) at [0]"
    top = CanonicalJsonError("why")
    assert (top.reason, top.path, str(top)) == ("why", "", "why")


@pytest.mark.parametrize(
    "value, path, message",
    [
        ("\ud800", "", "string contains a lone surrogate"),
        (["ok", "\udc00"], "[1]", "string contains a lone surrogate at [1]"),
        ({"a": ["ok", {"b": "\ud800"}]}, "a[1].b", "string contains a lone surrogate at a[1].b"),
        ({"a": {"ok": 1, "\udfff": 1}}, "a", "object key contains a lone surrogate at a"),
        ({"ok": 1, "\ud800": 1}, "", "object key contains a lone surrogate"),
    ],
)
def test_encode_names_the_lone_surrogate(value, path, message):
    with pytest.raises(CanonicalJsonError) as info:
        encode_canonical_json(value)
    assert (info.value.path, str(info.value)) == (path, message)


@pytest.mark.parametrize(
    "text, path, message",
    [
        ('["\\ud800", "ok"]', "[0]", "string contains a lone surrogate at [0]"),
        ('["\\ud800", 1]', "[0]", "string contains a lone surrogate at [0]"),
        ('{"\\udc00": 1, "ok": 2}', "", "object key contains a lone surrogate"),
        ('{"a": {"\\ud800": 1}}', "a", "object key contains a lone surrogate at a"),
        ('{"a": {"b": "\\ud800"}}', "a.b", "string contains a lone surrogate at a.b"),
    ],
)
def test_decode_finds_every_lone_surrogate(text, path, message):
    with pytest.raises(CanonicalJsonError) as info:
        decode_json_strict(text)
    assert (info.value.path, str(info.value)) == (path, message)


def test_decode_refuses_a_str_holding_a_lone_surrogate():
    with pytest.raises(CanonicalJsonError, match="^input contains a lone surrogate$"):
        decode_json_strict('"\ud800"')


@pytest.mark.parametrize("data, name", [(None, "NoneType"), (12, "int"), ({"a": 1}, "dict")])
def test_decode_refuses_what_is_not_text(data, name):
    with pytest.raises(CanonicalJsonError, match=f"^cannot decode {name} as JSON$"):
        decode_json_strict(data)


@pytest.mark.parametrize("data", ['{"a":[1]}', b'{"a":[1]}', bytearray(b'{"a":[1]}'), memoryview(b'{"a":[1]}')])
def test_decode_accepts_str_and_bytes_alike(data):
    assert decode_json_strict(data, require_canonical=True) == {"a": [1]}


def test_decode_size_limit_counts_utf8_bytes_of_str():
    text = '"' + "é" * 10 + '"'  # 12 characters, 22 bytes
    assert decode_json_strict(text, max_bytes=22) == "é" * 10
    with pytest.raises(CanonicalJsonError, match="^JSON is 22 bytes, over the 21 limit$"):
        decode_json_strict(text, max_bytes=21)


def test_decode_names_the_second_copy_of_a_duplicate_key():
    with pytest.raises(CanonicalJsonError, match="^duplicate object key 'b'$"):
        decode_json_strict('{"a": 1, "b": 2, "b": 3}')


def test_decode_require_canonical_message():
    with pytest.raises(CanonicalJsonError, match="^JSON is valid but not in canonical form$"):
        decode_json_strict('{"a": 1}', require_canonical=True)
