"""JSON data as Python source, byte-for-byte the same on every run and every Python version.

``pprint`` would do, but its layout is not promised to stay put across Python releases, and the
generated package is committed and checked for drift. This writer's rules are fixed here: keys
sorted, one entry per line, short lists of scalars kept on one line, strings double-quoted.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["python_literal"]

INDENT = 4


def python_literal(value: Any, *, indent: int = 0, width: int = 120) -> str:
    """Source for ``value`` (JSON-like data) whose first line starts at column ``indent``."""
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = " " * (indent + INDENT)
        lines = [
            f"{inner}{_scalar(key)}: {python_literal(item, indent=indent + INDENT, width=width)},"
            for key, item in sorted(value.items())
        ]
        return "{\n" + "\n".join(lines) + "\n" + " " * indent + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        if all(not isinstance(item, dict | list) for item in value):
            one_line = "[" + ", ".join(_scalar(item) for item in value) + "]"
            if indent + len(one_line) <= width:
                return one_line
        inner = " " * (indent + INDENT)
        lines = [f"{inner}{python_literal(item, indent=indent + INDENT, width=width)}," for item in value]
        return "[\n" + "\n".join(lines) + "\n" + " " * indent + "]"
    return _scalar(value)


def _scalar(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no JSON form")
        return repr(value)
    if isinstance(value, str):
        # A JSON string literal is a valid Python string literal with the same value.
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: escape everything rather than write invalid UTF-8
            return json.dumps(value)
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"{type(value).__name__} is not JSON data")
