"""``SourceMap``: JSON pointer → line and column of the key, for path:line:col findings."""

from __future__ import annotations

import json

from eventbus_governance._positions import SourceMap

TEXT = """{
  "a~b": {
    "x/y": [1, {"z": null}],
    "s": "with \\"quotes\\" and {braces}"
  },
  "n": -1.5e3
}
"""


def test_keys_and_items_are_located() -> None:
    source = SourceMap.parse(TEXT)

    assert source.locate("") == (1, 1)
    assert source.locate("/a~0b") == (2, 3)
    assert source.locate("/a~0b/x~1y") == (3, 5)
    assert source.locate("/a~0b/x~1y/1/z") == (3, 17)
    assert source.locate("/a~0b/s") == (4, 5)
    assert source.locate("/n") == (6, 3)


def test_a_missing_pointer_falls_back_to_its_nearest_ancestor() -> None:
    source = SourceMap.parse(TEXT)

    assert source.locate("/a~0b/x~1y/7") == (3, 5)
    assert source.locate("/nothing/here") == (1, 1)


def test_every_key_of_a_real_contract_is_found_on_its_line(contract_text: str) -> None:
    source = SourceMap.parse(contract_text)
    lines = contract_text.split("\n")

    def walk(value: object, pointer: str) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                child_pointer = f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"
                line, column = source.locate(child_pointer)
                assert lines[line - 1][column - 1:].startswith(json.dumps(key)), child_pointer
                walk(child, child_pointer)

    walk(json.loads(contract_text), "")


def test_text_that_is_not_json_maps_to_the_start() -> None:
    assert SourceMap.parse('{"a": ').locate("/a") == (1, 1)
