"""Limits on what a consumer will parse, and JSON read deliberately. No I/O.

What we chose, and why (docs/reliability.md repeats it for users):

- **Size**: a body over ``max_body_bytes`` (1 MiB by default) is parked as ``body_too_large``
  before anything looks inside it.
- **Nesting**: a body nested deeper than ``max_depth`` (64) is parked as ``too_deep``, found
  by a scan of the raw bytes before parsing. The scan is skipped when the body does not even
  contain ``max_depth`` brackets, which is every ordinary event, so it costs nothing there.
- **UTF-8**: malformed UTF-8, lone surrogate escapes (``"\\ud800"``), a byte order mark,
  ``NaN``/``Infinity`` and numbers that overflow a double are ``invalid_json`` (orjson refuses
  them; we never "repair" input).
- **Big integers**: orjson silently turns an integer beyond 64 bits into a float, which would
  let ``12345678901234567890123`` pass ``"type": "integer"`` with its digits changed. We
  refuse any integer outside the signed 64-bit range (what Go's ``int64``, Java's ``long``
  and SQL ``BIGINT`` hold) as ``number_out_of_range``. Detecting it costs nothing on the
  common path: only a float of magnitude ≥ 2**63, or an int above it, triggers an exact
  re-read of the body with the standard library.
- **Duplicate keys**: ``{"a": 1, "a": 2}`` is ``duplicate_key``. Parsers disagree on which
  value wins, so a producer in another language could mean something else than what we
  validated. Found by comparing the keys orjson kept with the key tokens in the raw bytes
  (a C-speed count); only a mismatch triggers an exact check.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from ._exceptions import ConfigurationError, EnvelopeError

__all__ = ["DEFAULT_LIMITS", "InputLimits", "check_raw", "load_json"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_BIG = float(2**63)
_STRUCTURAL = re.compile(rb'[\[\]{}"\\]')
_KEY_TOKEN = re.compile(rb'"\s*:')
_SPACED_KEY_TOKEN = re.compile(rb'"\s+:')


@dataclass(frozen=True, slots=True)
class InputLimits:
    """What a consumer refuses to parse; see the module docstring for the reasons."""

    max_body_bytes: int = 1 << 20
    max_depth: int = 64
    reject_duplicate_keys: bool = True

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise ConfigurationError("max_body_bytes must be positive")
        if not 1 <= self.max_depth <= 1000:
            raise ConfigurationError("max_depth must be between 1 and 1000 (orjson stops at 1024)")


DEFAULT_LIMITS = InputLimits()


def _depth(body: bytes) -> int:
    """Deepest nesting of arrays and objects in ``body``, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = False
    skip_until = -1
    for match in _STRUCTURAL.finditer(body):
        at = match.start()
        if at < skip_until:
            continue
        char = body[at]
        if in_string:
            if char == 0x5C:  # backslash: the next byte is escaped
                skip_until = at + 2
            elif char == 0x22:
                in_string = False
            continue
        if char == 0x22:
            in_string = True
        elif char in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif char in (0x5D, 0x7D):
            depth -= 1
    return deepest


def check_raw(body: bytes, limits: InputLimits) -> EnvelopeError | None:
    """Size and nesting, checked on the raw bytes before any parser runs."""
    if len(body) > limits.max_body_bytes:
        return EnvelopeError(
            "body_too_large", f"body of {len(body)} bytes exceeds the limit of {limits.max_body_bytes}"
        )
    if body.count(b"[") + body.count(b"{") > limits.max_depth:
        depth = _depth(body)
        if depth > limits.max_depth:
            return EnvelopeError("too_deep", f"JSON nested {depth} levels deep exceeds the limit of {limits.max_depth}")
    return None


def _scan(
    value: dict[str, Any] | list[Any],
    *,
    _big_int: int = _INT64_MAX,
    _big_float: float = _BIG,
    _dict: type = dict,
    _list: type = list,
    _str: type = str,
    _int: type = int,
    _float: type = float,
    _type: Any = type,
) -> tuple[int, bool]:
    """(number of object keys, whether a number may be outside int64) in a parsed object or array."""
    # This loop sees every value of every message: the keyword-only defaults make bounds and
    # builtins fast locals, only containers go on the stack, and strings, the commonest leaf,
    # are let go first.
    keys = 0
    suspicious = False
    stack: list[Any] = [value]
    pop = stack.pop
    push = stack.append
    while stack:
        children = pop()
        if _type(children) is _dict:
            keys += len(children)
            children = children.values()
        for child in children:
            kind = _type(child)
            if kind is _str:
                continue
            if kind is _dict or kind is _list:
                push(child)
            elif kind is _int:
                if child > _big_int:
                    suspicious = True
            elif kind is _float and (child >= _big_float or child <= -_big_float):
                suspicious = True
    return keys, suspicious


def _check_int(text: str) -> int:
    value = int(text)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise EnvelopeError("number_out_of_range", f"integer {text[:40]} does not fit in 64 bits")
    return value


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise EnvelopeError("duplicate_key", f"JSON object has the key {duplicate!r} more than once")
    return result


def load_json(body: bytes, limits: InputLimits = DEFAULT_LIMITS) -> Any:
    """Parse a JSON body under ``limits``; ``EnvelopeError`` with a stable reason otherwise."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError("invalid_json", f"body is not valid UTF-8 JSON: {exc}") from None
    kind = type(value)
    if kind is not dict and kind is not list:
        if kind is int or kind is float:
            _scan_exactly(body, limits)
        return value
    keys, suspicious = _scan(value)
    duplicates = limits.reject_duplicate_keys and _key_tokens_differ(body, keys)
    if suspicious or duplicates:
        _scan_exactly(body, limits)
    return value


def _key_tokens_differ(body: bytes, keys: int) -> bool:
    """``len(_KEY_TOKEN.findall(body)) != keys``, with a C-speed count where it gives the same answer.

    A token is ``"``, optional whitespace, ``:``; tokens never overlap. Unless some quote is
    followed by whitespace and then a colon, every token is exactly ``":`` and counting those
    is counting tokens. (Counting all colons first does not pay: every contract has timestamps.)
    """
    if _SPACED_KEY_TOKEN.search(body) is None:
        return body.count(b'":') != keys
    return len(_KEY_TOKEN.findall(body)) != keys


def _scan_exactly(body: bytes, limits: InputLimits) -> None:
    """Re-read with the standard library, which keeps every key and integer digit, to be sure."""
    hook = _refuse_duplicates if limits.reject_duplicate_keys else None
    json.loads(body, parse_int=_check_int, object_pairs_hook=hook)
