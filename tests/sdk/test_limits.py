"""What a consumer refuses to parse, and JSON edge cases read deliberately (see _limits.py)."""

from __future__ import annotations

import orjson
import pytest

from eventbus import ConfigurationError, EnvelopeError, InputLimits
from eventbus._limits import check_raw, load_json

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
