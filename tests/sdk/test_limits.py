"""What a consumer refuses to parse, and JSON edge cases read deliberately (see _limits.py)."""

from __future__ import annotations

import json
import random

import orjson
import pytest

from eventbus import ConfigurationError, EnvelopeError, InputLimits
from eventbus._limits import (
    _KEY_TOKEN,
    _check_int,
    _key_tokens_differ,
    _refuse_duplicates,
    _scan,
    check_raw,
    load_json,
)

LIMITS = InputLimits(max_body_bytes=1000, max_depth=5)


def _reason(body: bytes, limits: InputLimits = LIMITS) -> str | None:
    early = check_raw(body, limits)
    if early is not None:
        return early.reason
    try:
        load_json(body, limits)
    except EnvelopeError as exc:
        return exc.reason
    return None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"a": "' + b"x" * 1000 + b'"}', "body_too_large"),
        (b"[[[[[[1]]]]]]", "too_deep"),
        (b'{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}', "too_deep"),
        (b'{"a": 1, "a": 2}', "duplicate_key"),
        (b'{"a": {"b": 1, "c": 2, "b": 3}}', "duplicate_key"),
        (b'{"a" : 1, "b": 2, "b" : 3}', "duplicate_key"),  # whitespace before the colon
        (b'{"n": 123456789012345678901234567890}', "number_out_of_range"),
        (b'{"n": 9223372036854775808}', "number_out_of_range"),  # 2**63: orjson keeps it as an int
        (b'{"n": -9223372036854775809}', "number_out_of_range"),  # orjson turns this into a float
        (b"18446744073709551616", "number_out_of_range"),
        (b'{"a": "\xff\xfe"}', "invalid_json"),  # malformed UTF-8
        (b'{"a": "\\ud800"}', "invalid_json"),  # lone surrogate
        (b"\xef\xbb\xbf{}", "invalid_json"),  # byte order mark
        (b'{"a": NaN}', "invalid_json"),
        (b'{"a": 1e400}', "invalid_json"),
    ],
)
def test_bad_bodies_get_a_stable_reason(body: bytes, reason: str) -> None:
    assert _reason(body) == reason


@pytest.mark.parametrize(
    "body",
    [
        b"[[[[[1]]]]]",  # exactly the limit
        b'{"s": "[[[[[[[[[[{{{{{{{{"}',  # brackets inside strings do not nest
        b'{"s": "\\"[[[[[[[[[[", "t": "\\\\"}',  # escaped quotes and backslashes
        b'{"n": 9223372036854775807, "m": -9223372036854775808}',  # int64 bounds
        b'{"f": 1.5e300, "g": 12345678901234567890.5}',  # floats are floats
        b'{"id": "12345678901234567890123", "text": "a\\": b"}',  # digits and key-like text in strings
        b'{"a": 1, "b": {"a": 1}}',  # the same key in different objects
    ],
)
def test_good_bodies_pass(body: bytes) -> None:
    assert _reason(body) is None
    assert load_json(body, LIMITS) == orjson.loads(body)


def test_duplicate_keys_can_be_allowed_last_one_wins() -> None:
    assert load_json(b'{"a": 1, "a": 2}', InputLimits(reject_duplicate_keys=False)) == {"a": 2}


def test_limits_are_validated() -> None:
    with pytest.raises(ConfigurationError):
        InputLimits(max_depth=0)
    with pytest.raises(ConfigurationError):
        InputLimits(max_body_bytes=0)


@pytest.mark.parametrize(
    "body",
    [
        b'{"a" : 1, "a":2}',
        b'{"a"\n:1,"a":2}',
        b'{"a"\t:1,"a":2}',
        b'{"a"\r\n :1,"a":2}',
        b'{"a":1, "a" :2}',
        b'{"t": "12:00", "a": 1, "a": 2}',  # colons inside strings beside the duplicate
        b'{"s": "x\\": y", "a": 1, "a": 2}',  # a key-like token inside a string
        b'{"s": "\\u0022:", "a": 1, "a": 2}',  # an escaped quote that is not a quote byte
        b'[{"a": 1}, {"b": 1, "b": 2}]',
    ],
)
def test_duplicate_keys_are_found_however_the_key_tokens_are_spaced(body: bytes) -> None:
    assert _reason(body, InputLimits()) == "duplicate_key"


@pytest.mark.parametrize(
    "body",
    [
        b'{"a" : 1, "b":2}',
        b'{"a"\n:1,"b"\r\n:2}',
        b'{"t": "12:00:00", "a": 1}',
        b'{"s": "x\\": y", "a": 1}',
        b'{"s": "x\\"  : y", "a": 1}',
        b'{"s": "\\u0022:", "a": 1}',
        b'{"a\\\\": 1, "b": "\\\\"}',  # keys and strings ending in a backslash
    ],
)
def test_bodies_with_key_like_text_but_no_duplicate_pass(body: bytes) -> None:
    assert _reason(body, InputLimits()) is None


def _reference_scan(value: object) -> tuple[int, bool]:
    """The straightforward walk that ``_scan`` must agree with."""
    keys, suspicious, stack = 0, False, [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            keys += len(item)
            stack.extend(item.values())
        elif type(item) is list:
            stack.extend(item)
        elif type(item) is int:
            suspicious = suspicious or item > 2**63 - 1
        elif type(item) is float:
            suspicious = suspicious or abs(item) >= 2.0**63
    return keys, suspicious


_PIECES = [b'"', b":", b" ", b"\n", b"\t", b'\\"', b"a", b'"a"', b'":', b'" :', b"{", b"}", b","]


def test_the_fast_key_count_agrees_with_the_regex_on_random_bytes() -> None:
    # What load_json asks: parsing never keeps more keys than the bytes have key tokens.
    rng = random.Random(7)
    for _ in range(20_000):
        body = b"".join(rng.choice(_PIECES) for _ in range(rng.randrange(1, 12)))
        tokens = len(_KEY_TOKEN.findall(body))
        for keys in range(max(0, tokens - 2), tokens + 1):
            assert _key_tokens_differ(body, keys) == (tokens != keys), (body, keys)


def _random_json(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice(["", "x", "12:00", 'a":b', "a\\", '" : '])
    if kind == 1:
        return rng.choice([0, -1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63)])
    if kind == 2:
        return rng.choice([0.5, -1.5e300, 9.3e18, -9.3e18, 2.0**63, -(2.0**63), 9.2e18])
    if kind == 3:
        return rng.choice([True, False, None])
    if kind in (4, 5):
        return rng.choice(["plain", 7])
    if kind in (6, 7):
        return {rng.choice("abcdef") + str(i): _random_json(rng, depth + 1) for i in range(rng.randrange(4))}
    return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]


def test_the_scan_agrees_with_the_reference_walk_and_load_json_with_the_exact_parser() -> None:
    rng = random.Random(11)
    for _ in range(3_000):
        value = {"v": _random_json(rng)} if rng.random() < 0.7 else [_random_json(rng)]
        body = orjson.dumps(value)
        parsed = orjson.loads(body)
        assert _scan(parsed) == _reference_scan(parsed)
        spaced = body.replace(b'":', b'" :')  # pretty-printed: also inside strings, which is fine
        for raw in (body, spaced, body.replace(b"}", b',"dup":1,"dup":2}', 1)):
            try:
                orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue  # the replacements above can make invalid JSON
            try:
                expected: str | None = None
                json.loads(raw, parse_int=_check_int, object_pairs_hook=_refuse_duplicates)
            except EnvelopeError as exc:
                expected = exc.reason
            assert _reason(raw, InputLimits()) == expected, raw
