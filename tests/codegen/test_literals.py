"""``python_literal``: JSON data as Python source that evaluates back to the same data."""

from __future__ import annotations

import ast

from eventbus_codegen.python._literals import python_literal


def test_round_trips_and_sorts_keys() -> None:
    data = {"b": [1, 2.5, True, None, "x"], "a": {"z": {}, "y": []}, "c": 'quote " and \\ and \u00e9 and \u2028'}

    source = python_literal(data)

    assert ast.literal_eval(source) == data
    assert source.index('"a"') < source.index('"b"') < source.index('"c"')


def test_layout_is_fixed() -> None:
    expected = '{\n    "k": ["a", "b"],\n    "n": {\n        "m": 1,\n    },\n}'

    assert python_literal({"k": ["a", "b"], "n": {"m": 1}}) == expected


def test_long_lists_break_one_item_per_line() -> None:
    source = python_literal(["x" * 60, "y" * 60])

    assert source == f'[\n    "{"x" * 60}",\n    "{"y" * 60}",\n]'
