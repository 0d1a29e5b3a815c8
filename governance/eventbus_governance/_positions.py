"""Where a JSON pointer sits in a JSON text: the line and column an editor jumps to.

``json.loads`` forgets positions, and findings are worth little without them (``path:line:col``
is what editors, terminals and GitHub annotations link). This walks the text once with the
standard library's own scanners (``scanstring`` for keys, ``raw_decode`` for scalars), so it
accepts exactly what ``json`` accepts, and records the position of every object key and array
item. A finding about a member points at its key; a finding about something missing points at
the nearest ancestor that exists.
"""

from __future__ import annotations

import bisect
import json
import json.decoder
from dataclasses import dataclass, field

from eventbus_codegen._refs import escape_pointer

__all__ = ["SourceMap"]

_WHITESPACE = " \t\n\r"
_DECODER = json.JSONDecoder()


@dataclass(frozen=True, slots=True)
class SourceMap:
    """JSON pointer → ``(line, column)``, both 1-based, of the key (or array item) it names."""

    positions: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SourceMap:
        """The map of ``text``; an unparsable text maps everything to 1:1 (the loader reports why)."""
        offsets: dict[str, int] = {}
        try:
            _Scanner(text, offsets).value(_skip(text, 0), "")
        except (ValueError, IndexError):
            return cls({"": (1, 1)})
        line_starts = [0] + [index + 1 for index, char in enumerate(text) if char == "\n"]
        positions = {}
        for pointer, offset in offsets.items():
            line = bisect.bisect_right(line_starts, offset)
            positions[pointer] = (line, offset - line_starts[line - 1] + 1)
        return cls(positions)

    def locate(self, pointer: str) -> tuple[int, int]:
        """Position of ``pointer``, or of its nearest existing ancestor, or 1:1."""
        while pointer:
            if pointer in self.positions:
                return self.positions[pointer]
            pointer = pointer.rpartition("/")[0]
        return self.positions.get("", (1, 1))


class _Scanner:
    def __init__(self, text: str, offsets: dict[str, int]) -> None:
        self.text = text
        self.offsets = offsets

    def value(self, index: int, pointer: str) -> int:
        """Scan the value starting at ``index``; return the index just past it."""
        self.offsets.setdefault(pointer, index)
        char = self.text[index]
        if char == "{":
            return self._object(index + 1, pointer)
        if char == "[":
            return self._array(index + 1, pointer)
        _, end = _DECODER.raw_decode(self.text, index)
        return end

    def _object(self, index: int, pointer: str) -> int:
        index = _skip(self.text, index)
        if self.text[index] == "}":
            return index + 1
        while True:
            if self.text[index] != '"':
                raise ValueError("expected a key")
            key, after_key = json.decoder.scanstring(self.text, index + 1)  # type: ignore[attr-defined]  # public, untyped
            child = f"{pointer}/{escape_pointer(key)}"
            self.offsets[child] = index
            index = _skip(self.text, after_key)
            if self.text[index] != ":":
                raise ValueError("expected ':'")
            # The key's position is already recorded, so the value scan keeps it (setdefault).
            index = _skip(self.text, self.value(_skip(self.text, index + 1), child))
            if self.text[index] == "}":
                return index + 1
            if self.text[index] != ",":
                raise ValueError("expected ',' or '}'")
            index = _skip(self.text, index + 1)

    def _array(self, index: int, pointer: str) -> int:
        index = _skip(self.text, index)
        if self.text[index] == "]":
            return index + 1
        item = 0
        while True:
            index = _skip(self.text, self.value(index, f"{pointer}/{item}"))
            if self.text[index] == "]":
                return index + 1
            if self.text[index] != ",":
                raise ValueError("expected ',' or ']'")
            index = _skip(self.text, index + 1)
            item += 1


def _skip(text: str, index: int) -> int:
    while text[index] in _WHITESPACE:
        index += 1
    return index
