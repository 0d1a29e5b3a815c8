"""What lint and breaking report, and the three ways to print it (text, json, github).

Both verbs produce ``Finding`` values: a rule id, a file, a JSON pointer into it and the line and
column that pointer has in the file's text, so a terminal, an editor and GitHub's annotations
all land on the offending key. Breaking findings add what the change does (``details``).
Rendering is separate from finding, as in buf: the checks never print.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._positions import SourceMap

__all__ = ["FORMATS", "Finding", "Locator", "render_findings"]

FORMATS = ("text", "json", "github")


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's verdict on one spot. ``level`` is ``error`` (fails the run) or ``notice`` (informs)."""

    rule: str
    path: Path
    pointer: str
    line: int
    column: int
    message: str
    level: str = "error"
    details: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_error(self) -> bool:
        return self.level == "error"

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.path.as_posix(), self.line, self.column, self.rule, self.message)


class Locator:
    """Line and column of a pointer in a file, each file parsed once however many findings it gets."""

    def __init__(self) -> None:
        self._maps: dict[Path, SourceMap] = {}

    def locate(self, path: Path, pointer: str) -> tuple[int, int]:
        source_map = self._maps.get(path)
        if source_map is None:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                text = ""
            source_map = self._maps[path] = SourceMap.parse(text)
        return source_map.locate(pointer)

    def finding(self, rule: str, path: Path, pointer: str, message: str, **kwargs: Any) -> Finding:
        line, column = self.locate(path, pointer)
        return Finding(rule, path, pointer, line, column, message, **kwargs)


def render_findings(findings: Iterable[Finding], output_format: str, *, relative_to: Path | None = None) -> str:
    """All ``findings`` in one of ``FORMATS``; paths are shown relative to ``relative_to`` when inside it."""
    items = list(findings)
    if output_format == "text":
        return "".join(f"{_shown(f.path, relative_to)}:{f.line}:{f.column} {f.rule} {f.message}\n" for f in items)
    if output_format == "json":
        return json.dumps([_as_json(f, relative_to) for f in items], indent=2, sort_keys=True) + "\n"
    if output_format == "github":
        return "".join(_as_annotation(f, relative_to) for f in items)
    raise ValueError(f"unknown output format {output_format!r} (known: {', '.join(FORMATS)})")


def _shown(path: Path, relative_to: Path | None) -> str:
    if relative_to is not None:
        try:
            return path.resolve().relative_to(relative_to.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def _as_json(finding: Finding, relative_to: Path | None) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "path": _shown(finding.path, relative_to),
        "pointer": finding.pointer,
        "line": finding.line,
        "column": finding.column,
        "level": finding.level,
        "message": finding.message,
        **dict(finding.details),
    }


def _as_annotation(finding: Finding, relative_to: Path | None) -> str:
    # GitHub workflow commands: properties escape %, CR, LF, ':' and ','; the message escapes %, CR, LF.
    def prop(value: str) -> str:
        return _escape(value).replace(":", "%3A").replace(",", "%2C")

    command = "error" if finding.is_error else "notice"
    props = (
        f"file={prop(_shown(finding.path, relative_to))},line={finding.line},col={finding.column},"
        f"title={prop(finding.rule)}"
    )
    return f"::{command} {props}::{_escape(finding.message)}\n"


def _escape(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
